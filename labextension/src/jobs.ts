/**
 * Notebook jobs and schedules in the "Lepton" sidebar, and the job log panel.
 *
 * `JobsSection` lists the newest jobs and `SchedulesSection` every schedule;
 * each follows its model (polled while the sidebar is visible) and acts
 * through it. `JobLogView` follows a job's log through a `JobLogModel` (the
 * log panel and model of logview.ts, with the job's hooks).
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-jobs                     the jobs section; .lepton-jobs-error a request error
 *   li.lepton-job                    one per job: data-lepton-job=<id>, data-lepton-job-status=<status>
 *     .lepton-job-name / .lepton-job-id / .lepton-job-status / .lepton-job-attempt
 *     .lepton-job-progress           "cell 3/7 · 12 s" while running; the elapsed time once ended
 *     .lepton-job-error              the first line of a failed job's error
 *     .lepton-job-secrets            "Secrets: API_TOKEN, DB_PASSWORD" (names only; hidden when none)
 *     button.lepton-job-stop         (queued and running jobs)
 *     button.lepton-job-log          opens the log panel
 *     a.lepton-job-output            the executed notebook as HTML, in a new tab
 *     a.lepton-job-output-ipynb      the executed notebook, downloaded
 *     .lepton-job-models             the model versions the job registered:
 *       button.lepton-job-model      data-lepton-model, data-lepton-version ("digits-mlp v3"),
 *                                    opens the version view
 *   .lepton-schedules                the schedules section; .lepton-schedules-error a request error
 *   li.lepton-schedule               data-lepton-schedule=<id>, data-lepton-schedule-active=true|false
 *     .lepton-schedule-name / .lepton-schedule-cron / .lepton-schedule-timezone / .lepton-schedule-next
 *     .lepton-schedule-secrets       "Secrets: API_TOKEN" (names only; hidden when none)
 *     button.lepton-schedule-pause   "Pause" or "Resume"
 *     button.lepton-schedule-run     run now
 *     button.lepton-schedule-delete  delete (after a confirmation dialog)
 *   .lepton-JobLog                   the log panel (a .lepton-LogView): data-lepton-job,
 *                                    data-lepton-job-status, data-lepton-log-complete="true" once complete
 *     .lepton-job-log-status         the job and its status, or why the log cannot be read
 *     pre.lepton-job-log-text        the log text
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';

import { IJob, IModelRef, ISchedule } from './api';
import {
  firstLine,
  formatDuration,
  formatMetric,
  formatTime,
  isActiveStatus,
  jobProgressText
} from './format';
import { LogView } from './logview';
import { JobLogModel, JobsModel, SchedulesModel } from './models';
import {
  act,
  actionButton,
  el,
  KeyedList,
  ModelLinks,
  Section,
  setBadge
} from './section';

/**
 * The line that names a job's or schedule's secrets ("Secrets: A, B"), or
 * `''` when it has none. The API gives names only, never values.
 */
export function secretNamesText(
  names: ReadonlyArray<string> | undefined
): string {
  return names && names.length ? `Secrets: ${names.join(', ')}` : '';
}

/** Show `names` on `node` (hidden when there are none). */
function showSecretNames(
  node: HTMLElement,
  names: ReadonlyArray<string> | undefined
): void {
  const text = secretNamesText(names);
  node.textContent = text;
  node.title = text
    ? "Environment variables of the job's kernel, stored encrypted (values are never shown)"
    : '';
  node.hidden = !text;
}

export namespace JobsSection {
  export interface IOptions {
    model: JobsModel;
    /** Open a job's log. */
    openLog: (job: IJob) => void;
    /** Open the version view of a model version the job registered. */
    openModel?: (ref: IModelRef) => void;
  }
}

/** The newest jobs. */
export class JobsSection extends Section<IJob[]> {
  constructor(options: JobsSection.IOptions) {
    super({
      model: options.model,
      title: 'Jobs',
      className: 'lepton-JobsSection lepton-jobs',
      errorClass: 'lepton-jobs-error',
      errorPrefix: 'Cannot read the jobs'
    });
    const model = options.model;
    this._empty = el('p', 'lepton-Sidebar-empty lepton-no-jobs', 'Loading…');
    const list = el('ul', 'lepton-Section-list lepton-job-list');
    this.body.append(this._empty, list);
    this._rows = new KeyedList(
      list,
      job => job.id,
      () =>
        new JobRow(model, {
          stop: (node, job) =>
            void act(node, `Stopping ${job.name}`, () => model.stop(job.id)),
          openLog: job => options.openLog(job),
          openModel: ref => options.openModel?.(ref)
        })
    );
  }

  protected render(jobs: IJob[]): void {
    this._empty.textContent = jobs.length
      ? ''
      : 'No jobs yet: "Run as job" in a notebook toolbar starts one.';
    this._empty.hidden = jobs.length > 0;
    this._rows.update(jobs);
  }

  private _empty: HTMLElement;
  private _rows: KeyedList<IJob, JobRow>;
}

/** One job in the list; `update` changes only what changed. */
class JobRow {
  constructor(
    private readonly _model: JobsModel,
    handlers: {
      stop: (node: HTMLButtonElement, job: IJob) => void;
      openLog: (job: IJob) => void;
      openModel: (ref: IModelRef) => void;
    }
  ) {
    this.node = el('li', 'lepton-Section-item lepton-job');
    const top = el('div', 'lepton-Section-itemTop');
    this._name = el('span', 'lepton-Section-name lepton-job-name');
    this._status = el('span', 'lepton-job-status');
    top.append(this._name, this._status);
    const detail = el('div', 'lepton-Section-detail lepton-Sidebar-muted');
    this._id = el('span', 'lepton-job-id');
    this._attempt = el('span', 'lepton-job-attempt');
    this._progress = el('span', 'lepton-job-progress');
    detail.append(this._id, this._attempt, this._progress);
    this._error = el('div', 'lepton-Section-errorText lepton-job-error');
    this._metrics = el('div', 'lepton-Section-metrics lepton-job-metrics');
    this._secrets = el(
      'div',
      'lepton-Section-detail lepton-Sidebar-muted lepton-job-secrets'
    );
    this._secrets.hidden = true;
    const actions = el('div', 'lepton-Section-actions');
    this._stop = actionButton('lepton-job-stop', 'Stop', 'Stop this job');
    this._stop.addEventListener('click', () => {
      if (this._job) {
        handlers.stop(this._stop, this._job);
      }
    });
    const log = actionButton('lepton-job-log', 'Log', "Show the job's log");
    log.addEventListener('click', () => {
      if (this._job) {
        handlers.openLog(this._job);
      }
    });
    this._html = el('a', 'lepton-Section-link lepton-job-output', 'Output');
    this._html.target = '_blank';
    this._html.rel = 'noopener noreferrer';
    this._html.title = 'The executed notebook as HTML, in a new tab';
    this._ipynb = el(
      'a',
      'lepton-Section-link lepton-job-output-ipynb',
      'ipynb'
    );
    this._ipynb.title = 'Download the executed notebook';
    actions.append(this._stop, log, this._html, this._ipynb);
    this._models = new ModelLinks(
      'lepton-Section-detail lepton-job-models',
      'lepton-job-model',
      handlers.openModel
    );
    this.node.append(
      top,
      detail,
      this._error,
      this._metrics,
      this._secrets,
      this._models.node,
      actions
    );
  }

  readonly node: HTMLLIElement;

  update(job: IJob): void {
    this._job = job;
    this.node.dataset.leptonJob = job.id;
    this.node.dataset.leptonJobStatus = job.status;
    this._name.textContent = job.name || job.path || job.id;
    this._name.title = `${job.path ?? job.notebook}\nid ${job.id}\nkernel ${job.kernel}\nparameters ${JSON.stringify(job.parameters)}`;
    setBadge(this._status, job.status, 'lepton-job-status');
    this._id.textContent = job.schedule_id ? `${job.id} (scheduled)` : job.id;
    this._id.title = job.schedule_id
      ? `Job ${job.id}, fired by schedule ${job.schedule_id}`
      : `Job ${job.id}`;
    this._attempt.textContent = `attempt ${Math.max(1, job.attempt || 1)}/${(job.retries ?? 0) + 1}`;
    this._progress.textContent = jobProgressText(job);
    // `progress` is free-form: read the running cell's source and time by key
    const source = job.progress?.['source'];
    const cellElapsed = job.progress?.['cell_elapsed'];
    this._progress.title =
      job.status === 'running' && typeof source === 'string' && source
        ? `Running:\n${source}\n(this cell: ${formatDuration(
            typeof cellElapsed === 'number' ? cellElapsed : null
          )})`
        : '';

    const error = job.status === 'completed' ? '' : firstLine(job.error);
    this._error.textContent =
      error && job.error_cell && !/^cell \d+/.test(error)
        ? `cell ${job.error_cell}: ${error}`
        : error;
    this._error.title = job.error ?? '';
    this._error.hidden = !error;

    const last = new Map<string, number>();
    for (const metric of job.metrics ?? []) {
      if (metric.name !== undefined && metric.value !== undefined) {
        last.set(metric.name, metric.value);
      }
    }
    this._metrics.textContent = [...last]
      .slice(0, 4)
      .map(([name, value]) => `${name} ${formatMetric(value)}`)
      .join(' · ');
    this._metrics.hidden = last.size === 0;
    showSecretNames(this._secrets, job.secret_names);
    this._models.update(job.models);

    const active = isActiveStatus(job.status);
    this._stop.hidden = !active;
    this._stop.disabled = !!job.stop_requested && job.status === 'running';
    const formats: string[] = job.outputs ?? job.output_formats ?? [];
    this._html.hidden = active || !formats.includes('html');
    this._ipynb.hidden = active || !formats.includes('ipynb');
    if (!this._html.hidden && !this._html.href) {
      this._html.href = this._model.outputUrl(job.id, 'html');
    }
    if (!this._ipynb.hidden && !this._ipynb.href) {
      this._ipynb.href = this._model.outputUrl(job.id, 'ipynb');
      const stem = (job.name || 'notebook').replace(/\.ipynb$/, '');
      this._ipynb.download = `${stem}-${job.id}.ipynb`;
    }
  }

  private _job: IJob | null = null;
  private _name: HTMLElement;
  private _status: HTMLElement;
  private _id: HTMLElement;
  private _attempt: HTMLElement;
  private _progress: HTMLElement;
  private _error: HTMLElement;
  private _metrics: HTMLElement;
  private _secrets: HTMLElement;
  private _models: ModelLinks;
  private _stop: HTMLButtonElement;
  private _html: HTMLAnchorElement;
  private _ipynb: HTMLAnchorElement;
}

/** Every schedule. */
export class SchedulesSection extends Section<ISchedule[]> {
  constructor(model: SchedulesModel) {
    super({
      model,
      title: 'Schedules',
      className: 'lepton-SchedulesSection lepton-schedules',
      errorClass: 'lepton-schedules-error',
      errorPrefix: 'Cannot read the schedules'
    });
    this._empty = el(
      'p',
      'lepton-Sidebar-empty lepton-no-schedules',
      'Loading…'
    );
    const list = el('ul', 'lepton-Section-list lepton-schedule-list');
    this.body.append(this._empty, list);
    this._rows = new KeyedList(
      list,
      schedule => schedule.id,
      () =>
        new ScheduleRow({
          toggle: (node, s) =>
            void act(
              node,
              `${s.active ? 'Pausing' : 'Resuming'} ${s.name}`,
              () => model.setActive(s.id, !s.active)
            ),
          run: (node, s) =>
            void act(node, `Running ${s.name}`, async () => {
              const job = await model.runNow(s.id);
              Notification.success(`Job ${job.name} queued from its schedule`, {
                autoClose: 4000
              });
            }),
          remove: (node, s) => void this._confirmDelete(node, s)
        })
    );
  }

  protected render(schedules: ISchedule[]): void {
    this._empty.textContent = schedules.length
      ? ''
      : 'No schedules: "Run as job" with a cron expression makes one.';
    this._empty.hidden = schedules.length > 0;
    this._rows.update(schedules);
  }

  private async _confirmDelete(
    node: HTMLButtonElement,
    schedule: ISchedule
  ): Promise<void> {
    const result = await showDialog({
      title: 'Delete schedule',
      body: `Delete the schedule "${schedule.name}" (${schedule.cron})? Its jobs stay.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    const model = this.model as SchedulesModel;
    await act(node, `Deleting ${schedule.name}`, () =>
      model.remove(schedule.id)
    );
  }

  private _empty: HTMLElement;
  private _rows: KeyedList<ISchedule, ScheduleRow>;
}

/** One schedule in the list. */
class ScheduleRow {
  constructor(handlers: {
    toggle: (node: HTMLButtonElement, schedule: ISchedule) => void;
    run: (node: HTMLButtonElement, schedule: ISchedule) => void;
    remove: (node: HTMLButtonElement, schedule: ISchedule) => void;
  }) {
    this.node = el('li', 'lepton-Section-item lepton-schedule');
    const top = el('div', 'lepton-Section-itemTop');
    this._name = el('span', 'lepton-Section-name lepton-schedule-name');
    this._state = el('span', 'lepton-schedule-state');
    top.append(this._name, this._state);
    const when = el('div', 'lepton-Section-detail');
    this._cron = el('code', 'lepton-schedule-cron');
    this._timezone = el(
      'span',
      'lepton-Sidebar-muted lepton-schedule-timezone'
    );
    when.append(this._cron, this._timezone);
    this._nextRow = el('div', 'lepton-Section-detail lepton-Sidebar-muted');
    this._nextRow.appendChild(document.createTextNode('next: '));
    this._next = el('span', 'lepton-schedule-next');
    this._nextRow.appendChild(this._next);
    this._secrets = el(
      'div',
      'lepton-Section-detail lepton-Sidebar-muted lepton-schedule-secrets'
    );
    this._secrets.hidden = true;
    this._error = el('div', 'lepton-Section-errorText lepton-schedule-error');
    const actions = el('div', 'lepton-Section-actions');
    const bind = (
      node: HTMLButtonElement,
      handler: (n: HTMLButtonElement, s: ISchedule) => void
    ) => {
      node.addEventListener('click', () => {
        if (this._schedule) {
          handler(node, this._schedule);
        }
      });
      return node;
    };
    this._toggle = bind(
      actionButton('lepton-schedule-pause', 'Pause', 'Pause this schedule'),
      handlers.toggle
    );
    const run = bind(
      actionButton(
        'lepton-schedule-run',
        'Run now',
        'Run the notebook now, once'
      ),
      handlers.run
    );
    const remove = bind(
      actionButton(
        'lepton-schedule-delete',
        'Delete',
        'Delete this schedule (its jobs stay)'
      ),
      handlers.remove
    );
    actions.append(this._toggle, run, remove);
    this.node.append(
      top,
      when,
      this._nextRow,
      this._secrets,
      this._error,
      actions
    );
  }

  readonly node: HTMLLIElement;

  update(schedule: ISchedule): void {
    this._schedule = schedule;
    this.node.dataset.leptonSchedule = schedule.id;
    this.node.dataset.leptonScheduleActive = String(schedule.active);
    this._name.textContent = schedule.name || schedule.path || schedule.id;
    this._name.title = `${schedule.path ?? schedule.notebook}\nid ${schedule.id}\nparameters ${JSON.stringify(schedule.parameters)}`;
    setBadge(
      this._state,
      schedule.active ? 'active' : 'paused',
      'lepton-schedule-state'
    );
    this._cron.textContent = schedule.cron;
    this._timezone.textContent = ` ${schedule.timezone}`;
    this._next.textContent = schedule.active
      ? formatTime(schedule.next_fire_at)
      : '– (paused)';
    this._next.title = schedule.next_fire_at
      ? new Date(schedule.next_fire_at * 1000).toString()
      : '';
    const fired = schedule.fired ?? 0;
    this._nextRow.title = `fired ${fired} time${fired === 1 ? '' : 's'}, last ${formatTime(schedule.last_fired_at)}`;
    showSecretNames(this._secrets, schedule.secret_names);
    this._error.textContent = firstLine(schedule.last_error);
    this._error.title = schedule.last_error ?? '';
    this._error.hidden = !schedule.last_error;
    this._toggle.textContent = schedule.active ? 'Pause' : 'Resume';
    this._toggle.title = schedule.active
      ? 'Pause this schedule'
      : 'Resume this schedule';
  }

  private _schedule: ISchedule | null = null;
  private _name: HTMLElement;
  private _state: HTMLElement;
  private _cron: HTMLElement;
  private _timezone: HTMLElement;
  private _nextRow: HTMLElement;
  private _next: HTMLElement;
  private _secrets: HTMLElement;
  private _error: HTMLElement;
  private _toggle: HTMLButtonElement;
}

/**
 * A read-only view of a job's log that follows it while the job runs (a
 * `LogView`, logview.ts, with the job's hooks).
 */
export class JobLogView extends LogView<JobLogModel> {
  constructor(model: JobLogModel) {
    super(model, {
      className: 'lepton-JobLog',
      statusClass: 'lepton-JobLog-status lepton-job-log-status',
      textClass: 'lepton-JobLog-text lepton-job-log-text'
    });
    this.jobId = model.jobId;
    this.node.dataset.leptonJob = model.jobId;
    this.renderStatus();
  }

  readonly jobId: string;

  protected renderStatus(): void {
    this.node.dataset.leptonJobStatus = this.model.status;
    super.renderStatus();
  }

  protected statusText(): string {
    const { status, complete } = this.model;
    return complete
      ? `Job ${this.jobId}: ${status.replace('_', ' ')}. End of log.`
      : `Job ${this.jobId}: ${status}. Following the log…`;
  }
}
