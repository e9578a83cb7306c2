/**
 * The "Lepton" left-sidebar panel: a `Panel` of section widgets (cluster,
 * runs, jobs, schedules, models, deployments) under a header with a refresh button. Each section
 * follows one model of `LeptonModels`; the models stand by while the panel
 * is hidden and read at once when it is shown.
 *
 * Stable DOM hooks (used by the browser tests):
 *   #lepton-sidebar                  the panel root; data-lepton-status="loading|<cluster status>|unreachable"
 *   .lepton-refresh                  refresh now
 *   sections: cluster.ts (.lepton-cluster), runs.ts (.lepton-runs), jobs.ts (.lepton-jobs, .lepton-schedules),
 *             modelsection.ts (.lepton-models), deploymentsection.ts (.lepton-deployments),
 *             usagesection.ts (.lepton-usage), notifications.ts (.lepton-notifications: failed deliveries,
 *             hidden while there are none)
 */
import { refreshIcon, Toolbar, ToolbarButton } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { IJob, IModelRef, IRun } from './api';
import { ClusterSection } from './cluster';
import { DeploymentsSection } from './deploymentsection';
import { leptonIcon } from './icon';
import { JobsSection, SchedulesSection } from './jobs';
import { LeptonModels } from './models';
import { ModelsSection } from './modelsection';
import {
  FailedNotificationsModel,
  FailedNotificationsSection
} from './notifications';
import { RunsSection } from './runs';
import { el } from './section';
import { UsageModel, UsageSection } from './usagesection';

export const SIDEBAR_ID = 'lepton-sidebar';

export namespace LeptonSidebar {
  export interface IOptions {
    models: LeptonModels;
    /** Open a run's panel. */
    openRun: (run: IRun) => void;
    /** Open a job's log. */
    openJobLog: (job: IJob) => void;
    /** Open the version view of a model (its newest version without one). */
    openModel: (name: string, version?: number) => void;
  }
}

/**
 * The sidebar widget.
 */
export class LeptonSidebar extends Panel {
  constructor(options: LeptonSidebar.IOptions) {
    super();
    const models = (this.models = options.models);
    this.id = SIDEBAR_ID;
    this.addClass('lepton-Sidebar');
    this.title.icon = leptonIcon;
    this.title.caption =
      'Lepton Lab: cluster, runs, jobs, schedules, models, deployments and usage';
    this.node.dataset.leptonStatus = 'loading';

    const header = new Toolbar();
    header.addClass('lepton-Sidebar-header');
    header.addItem(
      'title',
      new Widget({ node: el('h2', 'lepton-Sidebar-title', 'Lepton') })
    );
    header.addItem('spacer', Toolbar.createSpacerItem());
    header.addItem(
      'refresh',
      new ToolbarButton({
        className: 'lepton-refresh',
        icon: refreshIcon,
        tooltip: 'Refresh now',
        onClick: () => void this.refresh()
      })
    );
    this.addWidget(header);

    this.cluster = new ClusterSection(models.cluster);
    this.runs = new RunsSection({
      model: models.runs,
      openRun: options.openRun
    });
    const openRef = (ref: IModelRef) =>
      options.openModel(ref.name, ref.version);
    this.jobs = new JobsSection({
      model: models.jobs,
      openLog: options.openJobLog,
      openModel: openRef
    });
    this.schedules = new SchedulesSection(models.schedules);
    // deliveries that failed: its own (slower) model, standing by while the panel is hidden
    this.failedModel = new FailedNotificationsModel({
      client: models.client,
      standby: () => !this.isVisible
    });
    this.failed = new FailedNotificationsSection({ model: this.failedModel });
    this.registry = new ModelsSection({
      model: models.registry,
      openModel: options.openModel
    });
    this.deployments = new DeploymentsSection({
      model: models.deployments,
      openModel: options.openModel
    });
    // this week's usage: its own model (slower), standing by while the panel is hidden
    this.usageModel = new UsageModel({
      client: models.client,
      standby: () => !this.isVisible
    });
    this.usage = new UsageSection({ model: this.usageModel });
    for (const section of [
      this.cluster,
      this.runs,
      this.jobs,
      this.schedules,
      this.failed,
      this.registry,
      this.deployments,
      this.usage
    ]) {
      this.addWidget(section);
    }
    models.cluster.changed.connect(this._onCluster, this);
  }

  readonly models: LeptonModels;
  readonly cluster: ClusterSection;
  readonly runs: RunsSection;
  readonly jobs: JobsSection;
  readonly schedules: SchedulesSection;
  /** Failed notification deliveries (hidden while there are none). */
  readonly failed: FailedNotificationsSection;
  readonly failedModel: FailedNotificationsModel;
  readonly registry: ModelsSection;
  readonly deployments: DeploymentsSection;
  readonly usage: UsageSection;
  /** This week's usage (owned by the sidebar). */
  readonly usageModel: UsageModel;

  /** Read every section's model now. */
  async refresh(): Promise<void> {
    if (!this.isDisposed) {
      await Promise.all([
        this.models.refresh(),
        this.usageModel.refresh(),
        this.failedModel.refresh()
      ]);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    super.dispose();
    this.usageModel.dispose();
    this.failedModel.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.models.start();
    this.usageModel.start();
    this.failedModel.start();
    if (this.isVisible) {
      void this.refresh();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // read as soon as the panel is opened, rather than at the next tick
    void this.refresh();
  }

  private _onCluster(): void {
    const { data, error } = this.models.cluster;
    if (error) {
      this.node.dataset.leptonStatus = 'unreachable';
    } else if (data) {
      this.node.dataset.leptonStatus = data.status;
      this.node.dataset.leptonMode = data.mode ?? '';
    }
  }
}
