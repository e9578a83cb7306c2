/**
 * Lepton Lab JupyterLab extension: plugin wiring.
 *
 * - "Lepton" left sidebar with the cluster status (sidebar.ts)
 * - CPU/GPU kernel switch in every notebook toolbar (kernelswitch.ts)
 * - "CPU notebook" / "GPU notebook" launcher cards and palette entries (launcher.ts)
 * - notebook jobs and schedules in the sidebar, with a log panel (jobs.ts)
 * - "Run as job" in every notebook toolbar and two palette commands (jobdialog.ts)
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  Notification
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { IJob } from './api';
import { leptonIcon } from './icon';
import {
  JobDialogResult,
  RunAsJobExtension,
  runNotebookAsJob
} from './jobdialog';
import { JobLogView } from './jobs';
import { KernelSwitchExtension } from './kernelswitch';
import { addNotebookCommands, CATEGORY, CommandIDs } from './launcher';
import { ClusterSidebar, DEFAULT_REFRESH_MS } from './sidebar';

/** Commands of the jobs UI. */
export namespace JobCommandIDs {
  export const runAsJob = 'lepton-lab:run-notebook-as-job';
  export const schedule = 'lepton-lab:schedule-notebook';
}

/** The plugin id; its settings schema is schema/plugin.json. */
export const PLUGIN_ID = 'lepton-lab:plugin';

/** Rank of the sidebar among the left panels (file browser is 100). */
const SIDEBAR_RANK = 600;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Lepton Lab: cluster, jobs and schedules sidebar, CPU/GPU kernel switch, run as job and launcher items.',
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

    // Job logs open as read-only main-area panels, one per job.
    const logs = new Map<string, MainAreaWidget<JobLogView>>();
    const openJobLog = (job: IJob) => {
      let widget = logs.get(job.id);
      if (!widget || widget.isDisposed) {
        const content = new JobLogView(job);
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

    // 1. Sidebar.
    const sidebar = new ClusterSidebar({
      refreshInterval: DEFAULT_REFRESH_MS,
      openJobLog
    });
    shell.add(sidebar, 'left', { rank: SIDEBAR_RANK, type: 'Lepton Lab' });
    restorer?.add(sidebar, sidebar.id);

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show the Lepton cluster panel',
      execute: () => shell.activateById(sidebar.id)
    });
    commands.addCommand(CommandIDs.refreshCluster, {
      label: 'Refresh the Lepton cluster panel',
      execute: () => sidebar.refresh()
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: CATEGORY });
    palette?.addItem({ command: CommandIDs.refreshCluster, category: CATEGORY });

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const value = settings.get('refreshInterval').composite;
        sidebar.refreshInterval =
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

    // 2. Kernel switch in the notebook toolbar.
    app.docRegistry.addWidgetExtension('Notebook', new KernelSwitchExtension());

    // 3. Launcher and palette items.
    addNotebookCommands(commands, launcher, palette);

    // 4. Run as job / schedule: toolbar button, commands, and what follows a
    //    submission (a notification, and the sidebar with the new entry).
    const submitted = (result: JobDialogResult) => {
      shell.activateById(sidebar.id);
      void sidebar.jobs.refresh().catch(() => undefined);
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
      new RunAsJobExtension(submitted)
    );

    const run = (schedule: boolean) => () => {
      const panel: NotebookPanel | null = notebooks?.currentWidget ?? null;
      if (!panel) {
        return;
      }
      return runNotebookAsJob(panel, schedule, submitted);
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
  }
};

export default plugin;
