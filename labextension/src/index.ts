/**
 * Lepton Lab JupyterLab extension: plugin wiring.
 *
 * - one `LeptonModels` per page: cluster, runs, jobs, schedules, config and
 *   kernels, read from REST and shared by every view (models.ts)
 * - "Lepton" left sidebar of sections: cluster, runs, jobs, schedules, models,
 *   deployments (sidebar.ts)
 * - run panels in the main area, restored with the layout (runs.ts)
 * - job log panels (jobs.ts)
 * - model version views in the main area, restored with the layout (modelview.ts)
 * - CPU/GPU kernel switch in every notebook toolbar (kernelswitch.ts)
 * - "CPU notebook" / "GPU notebook" launcher cards and palette entries (launcher.ts)
 * - "Run as job" in every notebook toolbar and two palette commands (jobdialog.ts)
 * - toasts of the user's jobs and runs as they end, with an Open action, and the
 *   `?lepton-job=<id>` / `?lepton-run=<id>` links of emails and webhooks (notifications.ts)
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IJob, IModelRef } from './api';
import { leptonIcon } from './icon';
import {
  JobDialogResult,
  RunAsJobExtension,
  runNotebookAsJob
} from './jobdialog';
import { JobLogView } from './jobs';
import { KernelSwitchExtension } from './kernelswitch';
import { addNotebookCommands, CATEGORY, CommandIDs } from './launcher';
import { DEFAULT_REFRESH_MS, LeptonModels } from './models';
import { ModelView } from './modelview';
import { ISubject, NotificationToasts, subjectFromUrl } from './notifications';
import { RunView } from './runs';
import { LeptonSidebar } from './sidebar';

/** Commands of the jobs and runs UI. */
export namespace JobCommandIDs {
  export const runAsJob = 'lepton-lab:run-notebook-as-job';
  export const schedule = 'lepton-lab:schedule-notebook';
  export const openRun = 'lepton-lab:open-run';
  export const stopRun = 'lepton-lab:stop-run';
  export const openModel = 'lepton-lab:open-model';
}

/** The plugin id; its settings schema is schema/plugin.json. */
export const PLUGIN_ID = 'lepton-lab:plugin';

/** Rank of the sidebar among the left panels (file browser is 100). */
const SIDEBAR_RANK = 600;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Lepton Lab: cluster, runs, jobs, schedules, models and deployments sidebar, run and model panels (Serve), CPU/GPU kernel switch, run as job and launcher items.',
  autoStart: true,
  optional: [
    ILauncher,
    ICommandPalette,
    ISettingRegistry,
    ILayoutRestorer,
    INotebookTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null
  ) => {
    const { commands, shell } = app;

    // 0. The models: the sidebar's stand by while it is hidden.
    let sidebar: LeptonSidebar | null = null;
    const models = new LeptonModels({
      interval: DEFAULT_REFRESH_MS,
      standby: () => !sidebar?.isVisible
    });

    // 1. Run panels: one per run, restored with the layout.
    const runs = new WidgetTracker<MainAreaWidget<RunView>>({
      namespace: 'lepton-run'
    });
    const openRun = (runId: string, activate = true) => {
      let widget = runs.find(w => w.content.runId === runId);
      if (!widget) {
        let view: RunView | null = null;
        const model = models.run(runId, () => !view?.isVisible);
        const content = (view = new RunView(model, {
          openModel: (ref: IModelRef) => void openModel(ref.name, ref.version)
        }));
        widget = new MainAreaWidget({ content });
        widget.id = `lepton-run-${runId}`;
        widget.title.label = `Run: ${models.runs.find(runId)?.name || runId}`;
        widget.title.caption = `Lepton run ${runId}`;
        widget.title.icon = leptonIcon;
        widget.title.closable = true;
        widget.addClass('lepton-RunPanelWidget');
        void runs.add(widget);
        shell.add(widget, 'main', { mode: 'split-right' });
      }
      if (activate) {
        shell.activateById(widget.id);
      }
      return widget;
    };
    commands.addCommand(JobCommandIDs.openRun, {
      label: args =>
        args['id'] ? `Show run ${args['id']}` : 'Show a Lepton run',
      caption: "A run's curves, progress, ranks and events",
      icon: leptonIcon,
      execute: args => {
        const id = args['id'];
        if (typeof id === 'string' && id) {
          return openRun(id, args['activate'] !== false);
        }
      },
      describedBy: {
        args: {
          type: 'object',
          properties: {
            id: { type: 'string', description: 'The run id' },
            activate: {
              type: 'boolean',
              description: 'Bring the panel to the front'
            }
          },
          required: ['id']
        }
      }
    });
    commands.addCommand(JobCommandIDs.stopRun, {
      label: 'Stop a Lepton run',
      execute: args => {
        const id = args['id'];
        if (typeof id === 'string' && id) {
          return models.stopRun(id);
        }
      },
      describedBy: {
        args: {
          type: 'object',
          properties: { id: { type: 'string', description: 'The run id' } },
          required: ['id']
        }
      }
    });
    void restorer?.restore(runs, {
      command: JobCommandIDs.openRun,
      args: widget => ({ id: widget.content.runId, activate: false }),
      name: widget => widget.content.runId
    });

    // 2. Job logs open as read-only main-area panels, one per job.
    const logs = new Map<string, MainAreaWidget<JobLogView>>();
    const openJobLog = (job: IJob) => {
      let widget = logs.get(job.id);
      if (!widget || widget.isDisposed) {
        const content = new JobLogView(models.jobs.log(job));
        widget = new MainAreaWidget({ content });
        widget.id = `lepton-job-log-${job.id}`;
        widget.title.label = `Log: ${job.name || job.id}`;
        widget.title.caption = `Lepton job ${job.id} (${job.path ?? job.notebook})`;
        widget.title.icon = leptonIcon;
        widget.title.closable = true;
        widget.addClass('lepton-JobLogPanel');
        logs.set(job.id, widget);
        widget.disposed.connect(() => logs.delete(job.id));
        shell.add(widget, 'main', { mode: 'split-right' });
      }
      shell.activateById(widget.id);
    };

    // A job by id (a model's lineage links to it): its log.
    const openJob = (jobId: string) => {
      models.jobs
        .get(jobId)
        .then(openJobLog)
        .catch(error =>
          Notification.error(`Cannot open job ${jobId}: ${error.message}`, {
            autoClose: 8000
          })
        );
    };

    // 3. Model version views: one per model name, restored with the layout.
    const modelPanels = new WidgetTracker<MainAreaWidget<ModelView>>({
      namespace: 'lepton-model'
    });
    function openModel(
      name: string,
      version?: number | null,
      activate = true
    ): MainAreaWidget<ModelView> {
      let widget = modelPanels.find(w => w.content.modelName === name);
      if (!widget) {
        let view: ModelView | null = null;
        const model = models.modelVersions(name, () => !view?.isVisible);
        const content = (view = new ModelView({
          model,
          version,
          openRun: runId => void openRun(runId),
          openJob,
          serve: request => models.deployments.serve(request),
          showDeployments: () => {
            if (sidebar) {
              shell.activateById(sidebar.id);
              sidebar.deployments.node.scrollIntoView({ block: 'nearest' });
            }
          }
        }));
        widget = new MainAreaWidget({ content });
        widget.id = `lepton-model-${name}`;
        widget.title.label = content.label;
        widget.title.caption = `Lepton model ${name}`;
        widget.title.icon = leptonIcon;
        widget.title.closable = true;
        widget.addClass('lepton-ModelPanelWidget');
        void modelPanels.add(widget);
        shell.add(widget, 'main', { mode: 'split-right' });
      } else if (typeof version === 'number') {
        widget.content.select(version);
      }
      if (activate) {
        shell.activateById(widget.id);
      }
      return widget;
    }
    commands.addCommand(JobCommandIDs.openModel, {
      label: args =>
        args['name']
          ? `Show model ${args['name']}${
              typeof args['version'] === 'number' ? ` v${args['version']}` : ''
            }`
          : 'Show a Lepton model',
      caption:
        "A registered model's versions, formats, lineage and evaluations",
      icon: leptonIcon,
      execute: args => {
        const name = args['name'];
        const version = args['version'];
        if (typeof name === 'string' && name) {
          return openModel(
            name,
            typeof version === 'number' ? version : null,
            args['activate'] !== false
          );
        }
      },
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The model name' },
            version: {
              type: 'number',
              description: 'The version to show (the newest by default)'
            },
            activate: {
              type: 'boolean',
              description: 'Bring the panel to the front'
            }
          },
          required: ['name']
        }
      }
    });
    void restorer?.restore(modelPanels, {
      command: JobCommandIDs.openModel,
      args: widget => ({
        name: widget.content.modelName,
        version: widget.content.selected,
        activate: false
      }),
      name: widget => widget.content.modelName
    });

    // 4. Sidebar.
    sidebar = new LeptonSidebar({
      models,
      openRun: run => void openRun(run.id),
      openJobLog,
      openModel: (name, version) => void openModel(name, version)
    });
    shell.add(sidebar, 'left', { rank: SIDEBAR_RANK, type: 'Lepton Lab' });
    restorer?.add(sidebar, sidebar.id);
    const sidebarId = sidebar.id;

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show the Lepton cluster panel',
      execute: () => shell.activateById(sidebarId)
    });
    commands.addCommand(CommandIDs.refreshCluster, {
      label: 'Refresh the Lepton cluster panel',
      execute: () => models.refresh()
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: CATEGORY });
    palette?.addItem({
      command: CommandIDs.refreshCluster,
      category: CATEGORY
    });

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const value = settings.get('refreshInterval').composite;
        models.interval =
          typeof value === 'number' ? value : DEFAULT_REFRESH_MS;
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.warn('lepton-lab: cannot load settings', reason);
        });
    }

    // 5. Kernel switch in the notebook toolbar.
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new KernelSwitchExtension(models.kernels)
    );

    // 6. Launcher and palette items.
    addNotebookCommands(commands, launcher, palette);

    // 7. Run as job / schedule: toolbar button, commands, and what follows a
    //    submission (a notification, and the sidebar, whose models refreshed).
    const submitted = (result: JobDialogResult) => {
      shell.activateById(sidebarId);
      if (result.kind === 'job') {
        const job = result.job;
        Notification.success(`Job ${job.name} (${job.id}) queued`, {
          autoClose: 5000,
          actions: [{ label: 'Show log', callback: () => openJobLog(job) }]
        });
      } else {
        const schedule = result.schedule;
        Notification.success(
          `Schedule ${schedule.name} created: ${schedule.cron} (${schedule.timezone})`,
          { autoClose: 5000 }
        );
      }
    };
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new RunAsJobExtension(models, submitted)
    );

    const run = (schedule: boolean) => () => {
      const panel: NotebookPanel | null = notebooks?.currentWidget ?? null;
      if (!panel) {
        return;
      }
      return runNotebookAsJob(panel, schedule, models, submitted);
    };
    commands.addCommand(JobCommandIDs.runAsJob, {
      label: 'Lepton: Run notebook as job',
      caption:
        'Save the current notebook and run it as a job (parameters, timeout, retries)',
      icon: leptonIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: run(false)
    });
    commands.addCommand(JobCommandIDs.schedule, {
      label: 'Lepton: Schedule notebook',
      caption: 'Save the current notebook and run it on a cron schedule',
      icon: leptonIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: run(true)
    });
    palette?.addItem({ command: JobCommandIDs.runAsJob, category: CATEGORY });
    palette?.addItem({ command: JobCommandIDs.schedule, category: CATEGORY });

    // 8. Notifications: a toast when a job or run of this user ends (Open opens
    //    it), and the links of emails and webhooks (`/lab?lepton-job=<id>`).
    const openSubject = (subject: ISubject) => {
      if (subject.kind === 'job') {
        openJob(subject.id);
      } else if (subject.kind === 'run') {
        openRun(subject.id);
      } else {
        shell.activateById(sidebarId);
        sidebar?.schedules.node.scrollIntoView({ block: 'nearest' });
      }
    };
    const linked = subjectFromUrl(window.location.search);
    const toasts = new NotificationToasts({
      client: models.client,
      open: openSubject
    });
    void app.restored.then(() => {
      toasts.start();
      if (linked) {
        openSubject(linked);
      }
    });
  }
};

export default plugin;
