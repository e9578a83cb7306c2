/**
 * Notebook jobs and schedules in the "Lepton" sidebar, and the job log panel.
 *
 * `JobsSection` is the part of the sidebar below the cluster: the ten newest
 * jobs and every schedule, refreshed by a poll (same interval and backoff as
 * the cluster) while the sidebar is visible. Rows are keyed by id and updated
 * in place, so a button does not vanish under the pointer at each refresh.
 *
 * `JobLogView` follows a job's log with `GET jobs/{id}/logs?offset=N` while
 * the job runs, and stops polling once the server says the log is complete.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-jobs                     the jobs section; .lepton-jobs-error a request error
 *   li.lepton-job                    one per job: data-lepton-job=<id>, data-lepton-job-status=<status>
 *     .lepton-job-name / .lepton-job-id / .lepton-job-status / .lepton-job-attempt
 *     .lepton-job-progress           "cell 3/7 · 12 s" while running; the elapsed time once ended
 *     .lepton-job-error              the first line of a failed job's error
 *     button.lepton-job-stop         (queued and running jobs)
 *     button.lepton-job-log          opens the log panel
 *     a.lepton-job-output            the executed notebook as HTML, in a new tab
 *     a.lepton-job-output-ipynb      the executed notebook, downloaded
 *   .lepton-schedules                the schedules section
 *   li.lepton-schedule               data-lepton-schedule=<id>, data-lepton-schedule-active=true|false
 *     .lepton-schedule-name / .lepton-schedule-cron / .lepton-schedule-timezone / .lepton-schedule-next
 *     button.lepton-schedule-pause   "Pause" or "Resume"
 *     button.lepton-schedule-run     run now
 *     button.lepton-schedule-delete  delete (after a confirmation dialog)
 *   .lepton-JobLog                   the log panel: data-lepton-job, data-lepton-job-status,
 *                                    data-lepton-log-complete="true" once complete
 *     pre.lepton-job-log-text        the log text
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import {
  ACTIVE_JOB_STATUSES,
  deleteSchedule,
  formatDuration,
  formatTime,
  getJobLogs,
  IJob,
  ISchedule,
  jobOutputUrl,
  listJobs,
  listSchedules,
  runScheduleNow,
  setScheduleActive,
  stopJob
} from './api';
import { el, MAX_BACKOFF_MS } from './element';

/** How many of the newest jobs the sidebar lists. */
export const RECENT_JOBS = 10;
/** The log panel keeps at most this many characters (the tail). */
const MAX_LOG_CHARS = 2_000_000;
const LOG_POLL_MS = 1000;


function button(className: string, label: string, title: string) {
  const node = el(
    'button',
    `jp-Button jp-mod-minimal lepton-Jobs-action ${className}`,
    label
  );
  node.type = 'button';
  node.title = title;
  return node;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The first non-empty line of a (multi-line) error. */
export function firstLine(text: string | null | undefined): string {
  if (!text) {
    return '';
  }
  const line = text.split('\n').find(l => l.trim()) ?? '';
  return line.trim();
}

/** "cell 3/7 · 12 s" for a running job, the elapsed time otherwise. */
export function progressText(job: IJob): string {
  const progress = job.progress ?? {};
  if (job.status === 'running') {
    const parts: string[] = [];
    if (progress.cell && progress.cells) {
      parts.push(`cell ${progress.cell}/${progress.cells}`);
    } else if (progress.cells) {
      parts.push(`${progress.completed ?? 0}/${progress.cells} cells`);
    } else {
      parts.push('starting');
    }
    parts.push(formatDuration(job.elapsed));
    return parts.join(' · ');
  }
  if (job.status === 'queued') {
    return `queued ${formatTime(job.created_at)}`;
  }
  return job.elapsed !== null && job.elapsed !== undefined
    ? `${formatDuration(job.elapsed)}, ended ${formatTime(job.ended_at)}`
    : `ended ${formatTime(job.ended_at)}`;
}

export namespace JobsSection {
  export interface IOptions {
    /** Whether the section is on screen (the poll stands by otherwise). */
    isVisible: () => boolean;
    /** Poll interval in milliseconds. */
    interval: number;
    /** Open a job's log. */
    openLog: (job: IJob) => void;
  }
}

/**
 * Jobs and schedules, as a DOM subtree the sidebar appends below the cluster.
 */
export class JobsSection implements IDisposable {
  constructor(options: JobsSection.IOptions) {
    this._openLog = options.openLog;
    this.node = el('div', 'lepton-Jobs');

    const jobs = el('section', 'lepton-Jobs-section lepton-jobs');
    const jobsHeader = el('div', 'lepton-Jobs-header');
    jobsHeader.appendChild(el('h3', 'lepton-Jobs-title', 'Jobs'));
    jobs.appendChild(jobsHeader);
    this._errorNode = el('div', 'lepton-Sidebar-error lepton-jobs-error');
    this._errorNode.setAttribute('role', 'alert');
    this._errorNode.hidden = true;
    jobs.appendChild(this._errorNode);
    this._jobsEmpty = el('p', 'lepton-Sidebar-empty lepton-no-jobs', 'Loading…');
    jobs.appendChild(this._jobsEmpty);
    this._jobList = el('ul', 'lepton-Jobs-list lepton-job-list');
    jobs.appendChild(this._jobList);
    this.node.appendChild(jobs);

    const schedules = el('section', 'lepton-Jobs-section lepton-schedules');
    const schedulesHeader = el('div', 'lepton-Jobs-header');
    schedulesHeader.appendChild(el('h3', 'lepton-Jobs-title', 'Schedules'));
    schedules.appendChild(schedulesHeader);
    this._schedulesEmpty = el(
      'p',
      'lepton-Sidebar-empty lepton-no-schedules',
      'Loading…'
    );
    schedules.appendChild(this._schedulesEmpty);
    this._scheduleList = el('ul', 'lepton-Jobs-list lepton-schedule-list');
    schedules.appendChild(this._scheduleList);
    this.node.appendChild(schedules);

    const interval = options.interval;
    this._poll = new Poll<void, Error>({
      auto: false,
      factory: () => this._tick(),
      frequency: {
        interval,
        backoff: true,
        max: Math.max(interval, MAX_BACKOFF_MS)
      },
      name: 'lepton-lab:jobs',
      standby: () =>
        !options.isVisible() || document.visibilityState === 'hidden'
    });
  }

  readonly node: HTMLElement;

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** The poll interval in milliseconds. */
  set interval(value: number) {
    this._poll.frequency = {
      ...this._poll.frequency,
      interval: value,
      max: Math.max(value, MAX_BACKOFF_MS)
    };
  }

  /** The last answers. */
  get jobs(): IJob[] {
    return this._jobs;
  }
  get schedules(): ISchedule[] {
    return this._schedules;
  }

  /** Start polling (idempotent). */
  start(): void {
    void this._poll.start();
  }

  /** Fetch and render now. */
  async refresh(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    this.node.remove();
  }

  private async _tick(): Promise<void> {
    try {
      const [jobs, schedules] = await Promise.all([
        listJobs(RECENT_JOBS),
        listSchedules()
      ]);
      if (this._isDisposed) {
        return;
      }
      this._jobs = jobs;
      this._schedules = schedules;
      this._showError(null);
      this.node.classList.remove('lepton-mod-stale');
      this._renderJobs(jobs);
      this._renderSchedules(schedules);
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this.node.classList.add('lepton-mod-stale');
      this._showError(error);
      throw error; // let the poll back off
    }
  }

  private _showError(error: unknown): void {
    if (!error) {
      this._errorNode.hidden = true;
      this._errorNode.textContent = '';
      return;
    }
    this._errorNode.textContent = `Cannot read the jobs: ${messageOf(error)}`;
    this._errorNode.hidden = false;
  }

  /** Run an action of a row; a failure is a notification, then refresh. */
  private async _act(
    node: HTMLButtonElement,
    what: string,
    action: () => Promise<unknown>
  ): Promise<void> {
    node.disabled = true;
    try {
      await action();
    } catch (error) {
      Notification.error(`${what} failed: ${messageOf(error)}`, {
        autoClose: 8000
      });
    } finally {
      node.disabled = false;
    }
    await this.refresh().catch(() => undefined);
  }

  private _renderJobs(jobs: IJob[]): void {
    this._jobsEmpty.textContent = jobs.length
      ? ''
      : 'No jobs yet: "Run as job" in a notebook toolbar starts one.';
    this._jobsEmpty.hidden = jobs.length > 0;
    const seen = new Set<string>();
    jobs.forEach((job, index) => {
      seen.add(job.id);
      let row = this._jobRows.get(job.id);
      if (!row) {
        row = new JobRow({
          stop: (node, j) =>
            void this._act(node, `Stopping ${j.name}`, () => stopJob(j.id)),
          openLog: j => this._openLog(j)
        });
        this._jobRows.set(job.id, row);
      }
      row.update(job);
      const at = this._jobList.children[index] ?? null;
      if (at !== row.node) {
        this._jobList.insertBefore(row.node, at);
      }
    });
    for (const [id, row] of this._jobRows) {
      if (!seen.has(id)) {
        row.node.remove();
        this._jobRows.delete(id);
      }
    }
  }

  private _renderSchedules(schedules: ISchedule[]): void {
    this._schedulesEmpty.textContent = schedules.length
      ? ''
      : 'No schedules: "Run as job" with a cron expression makes one.';
    this._schedulesEmpty.hidden = schedules.length > 0;
    const seen = new Set<string>();
    schedules.forEach((schedule, index) => {
      seen.add(schedule.id);
      let row = this._scheduleRows.get(schedule.id);
      if (!row) {
        row = new ScheduleRow({
          toggle: (node, s) =>
            void this._act(
              node,
              `${s.active ? 'Pausing' : 'Resuming'} ${s.name}`,
              () => setScheduleActive(s.id, !s.active)
            ),
          run: (node, s) =>
            void this._act(node, `Running ${s.name}`, async () => {
              const job = await runScheduleNow(s.id);
              Notification.success(`Job ${job.name} queued from its schedule`, {
                autoClose: 4000
              });
            }),
          remove: (node, s) => void this._confirmDelete(node, s)
        });
        this._scheduleRows.set(schedule.id, row);
      }
      row.update(schedule);
      const at = this._scheduleList.children[index] ?? null;
      if (at !== row.node) {
        this._scheduleList.insertBefore(row.node, at);
      }
    });
    for (const [id, row] of this._scheduleRows) {
      if (!seen.has(id)) {
        row.node.remove();
        this._scheduleRows.delete(id);
      }
    }
  }

  private async _confirmDelete(
    node: HTMLButtonElement,
    schedule: ISchedule
  ): Promise<void> {
    const result = await showDialog({
      title: 'Delete schedule',
      body: `Delete the schedule "${schedule.name}" (${schedule.cron})? Its jobs stay.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: 'Delete' })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    await this._act(node, `Deleting ${schedule.name}`, () =>
      deleteSchedule(schedule.id)
    );
  }

  private _openLog: (job: IJob) => void;
  private _poll: Poll<void, Error>;
  private _errorNode: HTMLElement;
  private _jobsEmpty: HTMLElement;
  private _schedulesEmpty: HTMLElement;
  private _jobList: HTMLUListElement;
  private _scheduleList: HTMLUListElement;
  private _jobRows = new Map<string, JobRow>();
  private _scheduleRows = new Map<string, ScheduleRow>();
  private _jobs: IJob[] = [];
  private _schedules: ISchedule[] = [];
  private _isDisposed = false;
}

/** One job in the list; `update` changes only what changed. */
class JobRow {
  constructor(handlers: {
    stop: (node: HTMLButtonElement, job: IJob) => void;
    openLog: (job: IJob) => void;
  }) {
    this.node = el('li', 'lepton-Jobs-item lepton-job');
    const top = el('div', 'lepton-Jobs-itemTop');
    this._name = el('span', 'lepton-Jobs-name lepton-job-name');
    this._status = el('span', 'lepton-Jobs-status lepton-job-status');
    top.append(this._name, this._status);
    const detail = el('div', 'lepton-Jobs-detail lepton-Sidebar-muted');
    this._id = el('span', 'lepton-job-id');
    this._attempt = el('span', 'lepton-job-attempt');
    this._progress = el('span', 'lepton-job-progress');
    detail.append(this._id, this._attempt, this._progress);
    this._error = el('div', 'lepton-Jobs-errorText lepton-job-error');
    this._metrics = el('div', 'lepton-Jobs-metrics lepton-job-metrics');
    this._actions = el('div', 'lepton-Jobs-actions');
    this._stop = button('lepton-job-stop', 'Stop', 'Stop this job');
    this._stop.addEventListener('click', () => {
      if (this._job) {
        handlers.stop(this._stop, this._job);
      }
    });
    this._log = button('lepton-job-log', 'Log', "Show the job's log");
    this._log.addEventListener('click', () => {
      if (this._job) {
        handlers.openLog(this._job);
      }
    });
    this._html = el('a', 'lepton-Jobs-link lepton-job-output', 'Output');
    this._html.target = '_blank';
    this._html.rel = 'noopener noreferrer';
    this._html.title = 'The executed notebook as HTML, in a new tab';
    this._ipynb = el('a', 'lepton-Jobs-link lepton-job-output-ipynb', 'ipynb');
    this._ipynb.title = 'Download the executed notebook';
    this._actions.append(this._stop, this._log, this._html, this._ipynb);
    this.node.append(top, detail, this._error, this._metrics, this._actions);
  }

  readonly node: HTMLLIElement;

  update(job: IJob): void {
    this._job = job;
    this.node.dataset.leptonJob = job.id;
    this.node.dataset.leptonJobStatus = job.status;
    this._name.textContent = job.name || job.path || job.id;
    this._name.title = `${job.path ?? job.notebook}\nid ${job.id}\nkernel ${job.kernel}\nparameters ${JSON.stringify(job.parameters)}`;
    this._status.textContent = job.status.replace('_', ' ');
    this._status.className = `lepton-Jobs-status lepton-job-status lepton-mod-${job.status}`;
    this._id.textContent = job.schedule_id ? `${job.id} (scheduled)` : job.id;
    this._id.title = job.schedule_id
      ? `Job ${job.id}, fired by schedule ${job.schedule_id}`
      : `Job ${job.id}`;
    this._attempt.textContent = `attempt ${Math.max(1, job.attempt || 1)}/${(job.retries ?? 0) + 1}`;
    this._progress.textContent = progressText(job);
    const source = job.progress?.source;
    this._progress.title =
      job.status === 'running' && source
        ? `Running:\n${source}\n(this cell: ${formatDuration(job.progress?.cell_elapsed)})`
        : '';

    const error = job.status === 'completed' ? '' : firstLine(job.error);
    this._error.textContent =
      error && job.error_cell && !/^cell \d+/.test(error)
        ? `cell ${job.error_cell}: ${error}`
        : error;
    this._error.title = job.error ?? '';
    this._error.hidden = !error;

    const metrics = job.metrics ?? [];
    const last = new Map<string, number>();
    for (const metric of metrics) {
      last.set(metric.name, metric.value);
    }
    this._metrics.textContent = [...last]
      .slice(0, 4)
      .map(([name, value]) => `${name} ${formatMetric(value)}`)
      .join(' · ');
    this._metrics.hidden = last.size === 0;

    const active = ACTIVE_JOB_STATUSES.includes(job.status);
    this._stop.hidden = !active;
    this._stop.disabled = !!job.stop_requested && job.status === 'running';
    const formats = job.outputs ?? job.output_formats ?? [];
    this._html.hidden = active || !formats.includes('html');
    this._ipynb.hidden = active || !formats.includes('ipynb');
    if (!this._html.hidden && !this._html.href) {
      this._html.href = jobOutputUrl(job.id, 'html');
    }
    if (!this._ipynb.hidden && !this._ipynb.href) {
      this._ipynb.href = jobOutputUrl(job.id, 'ipynb');
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
  private _actions: HTMLElement;
  private _stop: HTMLButtonElement;
  private _log: HTMLButtonElement;
  private _html: HTMLAnchorElement;
  private _ipynb: HTMLAnchorElement;
}

function formatMetric(value: number): string {
  if (!isFinite(value)) {
    return String(value);
  }
  return Math.abs(value) >= 1000 || Number.isInteger(value)
    ? String(Math.round(value * 1000) / 1000)
    : value.toPrecision(4);
}

/** One schedule in the list. */
class ScheduleRow {
  constructor(handlers: {
    toggle: (node: HTMLButtonElement, schedule: ISchedule) => void;
    run: (node: HTMLButtonElement, schedule: ISchedule) => void;
    remove: (node: HTMLButtonElement, schedule: ISchedule) => void;
  }) {
    this.node = el('li', 'lepton-Jobs-item lepton-schedule');
    const top = el('div', 'lepton-Jobs-itemTop');
    this._name = el('span', 'lepton-Jobs-name lepton-schedule-name');
    this._state = el('span', 'lepton-Jobs-status lepton-schedule-state');
    top.append(this._name, this._state);
    const when = el('div', 'lepton-Jobs-detail');
    this._cron = el('code', 'lepton-schedule-cron');
    this._timezone = el('span', 'lepton-Sidebar-muted lepton-schedule-timezone');
    when.append(this._cron, this._timezone);
    const next = el('div', 'lepton-Jobs-detail lepton-Sidebar-muted');
    next.appendChild(document.createTextNode('next: '));
    this._next = el('span', 'lepton-schedule-next');
    next.appendChild(this._next);
    this._error = el('div', 'lepton-Jobs-errorText lepton-schedule-error');
    const actions = el('div', 'lepton-Jobs-actions');
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
      button('lepton-schedule-pause', 'Pause', 'Pause this schedule'),
      handlers.toggle
    );
    const run = bind(
      button('lepton-schedule-run', 'Run now', 'Run the notebook now, once'),
      handlers.run
    );
    const remove = bind(
      button('lepton-schedule-delete', 'Delete', 'Delete this schedule (its jobs stay)'),
      handlers.remove
    );
    actions.append(this._toggle, run, remove);
    this.node.append(top, when, next, this._error, actions);
  }

  readonly node: HTMLLIElement;

  update(schedule: ISchedule): void {
    this._schedule = schedule;
    this.node.dataset.leptonSchedule = schedule.id;
    this.node.dataset.leptonScheduleActive = String(schedule.active);
    this._name.textContent = schedule.name || schedule.path || schedule.id;
    this._name.title = `${schedule.path ?? schedule.notebook}\nid ${schedule.id}\nparameters ${JSON.stringify(schedule.parameters)}`;
    this._state.textContent = schedule.active ? 'active' : 'paused';
    this._state.className = `lepton-Jobs-status lepton-schedule-state lepton-mod-${schedule.active ? 'active' : 'paused'}`;
    this._cron.textContent = schedule.cron;
    this._timezone.textContent = ` ${schedule.timezone}`;
    this._next.textContent = schedule.active
      ? formatTime(schedule.next_fire_at)
      : '– (paused)';
    this._next.title = schedule.next_fire_at
      ? new Date(schedule.next_fire_at * 1000).toString()
      : '';
    const fired = schedule.fired ?? 0;
    this._next.parentElement!.title = `fired ${fired} time${fired === 1 ? '' : 's'}, last ${formatTime(schedule.last_fired_at)}`;
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
  private _next: HTMLElement;
  private _error: HTMLElement;
  private _toggle: HTMLButtonElement;
}

/**
 * A read-only view of a job's log that follows it while the job runs.
 */
export class JobLogView extends Widget {
  constructor(job: IJob) {
    super();
    this.addClass('lepton-JobLog');
    this.jobId = job.id;
    this.node.dataset.leptonJob = job.id;
    this.node.dataset.leptonJobStatus = job.status;
    this._status = el('div', 'lepton-JobLog-status lepton-job-log-status');
    this._text = el('pre', 'lepton-JobLog-text lepton-job-log-text');
    this.node.append(this._status, this._text);
    this._setStatus(job.status, false);
    this._poll = new Poll<void, Error>({
      auto: false,
      factory: () => this._tick(),
      frequency: {
        interval: LOG_POLL_MS,
        backoff: true,
        max: MAX_BACKOFF_MS
      },
      name: `lepton-lab:job-log:${job.id}`,
      standby: () => !this.isVisible || document.visibilityState === 'hidden'
    });
    void this._poll.start();
  }

  readonly jobId: string;

  /** Whether the whole log has been read and the job has ended. */
  get complete(): boolean {
    return this._complete;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    super.dispose();
  }

  protected onAfterShow(): void {
    if (!this._complete) {
      void this._poll.refresh();
    }
  }

  private async _tick(): Promise<void> {
    let page;
    try {
      page = await getJobLogs(this.jobId, this._offset);
    } catch (error) {
      if (!this.isDisposed) {
        this._status.textContent = `Cannot read the log: ${messageOf(error)}`;
        this._status.classList.add('lepton-mod-error');
      }
      throw error;
    }
    if (this.isDisposed) {
      return;
    }
    this._status.classList.remove('lepton-mod-error');
    if (page.text) {
      const pre = this._text;
      const follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      let text = (pre.textContent ?? '') + page.text;
      if (text.length > MAX_LOG_CHARS) {
        text = '… (earlier lines cut)\n' + text.slice(-MAX_LOG_CHARS);
      }
      pre.textContent = text;
      if (follow) {
        pre.scrollTop = pre.scrollHeight;
      }
    }
    this._offset = page.next;
    this._complete = page.complete;
    this._setStatus(page.status, page.complete);
    if (page.complete) {
      void this._poll.stop();
    } else if (page.next < page.size) {
      // More is already there: read on at once rather than after the interval.
      void this._poll.refresh();
    }
  }

  private _setStatus(status: string, complete: boolean): void {
    this.node.dataset.leptonJobStatus = status;
    this.node.dataset.leptonLogComplete = String(complete);
    this._status.textContent = complete
      ? `Job ${this.jobId}: ${status.replace('_', ' ')}. End of log.`
      : `Job ${this.jobId}: ${status}. Following the log…`;
  }

  private _poll: Poll<void, Error>;
  private _status: HTMLElement;
  private _text: HTMLPreElement;
  private _offset = 0;
  private _complete = false;
}
