/**
 * Notifications in the lab (#18):
 *
 * - `NotificationToasts`: while the lab's window is visible, reads the
 *   user's in-lab messages (`GET notifications?channel=jupyterlab&mine=true&since=N`)
 *   and shows each new one as a JupyterLab `Notification` toast (success for
 *   completed, error for failed / timed out, warning for late) with an
 *   **Open** action (the job's log, the run's panel). Its cursor starts at the
 *   log's `last_id` when the page loads: older messages are never shown.
 * - `subjectFromUrl`: the `?lepton-job=<id>` / `?lepton-run=<id>` of the links
 *   in emails and webhooks (`<lab_url>/lab?lepton-job=<id>`).
 * - `FailedNotificationsModel` / `FailedNotificationsSection`: the sidebar's
 *   list of deliveries that failed (`GET notifications?status=failed`),
 *   hidden while there are none.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-notifications              the sidebar section (hidden while no delivery failed);
 *                                      data-lepton-count = rows shown
 *     .lepton-notifications-error      a request error
 *     li.lepton-notification           one failed delivery; data-lepton-notification-id=<id>
 *       .lepton-notification-title     its title ("[Lepton Lab] job a.ipynb failed")
 *       .lepton-notification-channel   "webhook → hooks.example.com" (channel and target)
 *       .lepton-notification-error     the error's first line (all of it as tooltip)
 *       .lepton-notification-time      when it was queued; "3/3 attempts" in .lepton-notification-attempts
 */
import { Notification } from '@jupyterlab/apputils';
import { Poll } from '@lumino/polling';
import { IDisposable } from '@lumino/disposable';

import { INotification, LeptonClient } from './api';
import { firstLine, formatTime } from './format';
import { asError, DEFAULT_REFRESH_MS, makePoll, PollingModel } from './polling';
import { el, KeyedList, Section } from './section';

/** The channel of the lab's own toasts. */
export const LAB_CHANNEL = 'jupyterlab';
/** At most this many messages per read of the toast poller. */
export const TOAST_PAGE = 50;
/** How long a success toast stays (ms); errors and warnings stay until dismissed. */
export const SUCCESS_AUTOCLOSE_MS = 15000;
/** How many failed deliveries the sidebar lists. */
export const FAILED_LIMIT = 20;
/** How often the failed list is read (ms): deliveries fail after minutes of retries. */
export const FAILED_REFRESH_MS = 10000;

/** What a message is about, as the lab can open it. */
export interface ISubject {
  kind: 'job' | 'run' | 'schedule';
  id: string;
}

/** A toast: its kind, its text and what its Open action opens. */
export interface IToast {
  kind: 'success' | 'error' | 'warning' | 'info';
  text: string;
  subject: ISubject | null;
}

/** The kind of toast for an event. */
export function toastKind(event: string): IToast['kind'] {
  switch (event) {
    case 'completed':
      return 'success';
    case 'failed':
    case 'timed_out':
      return 'error';
    case 'late':
      return 'warning';
    default:
      return 'info';
  }
}

const TITLE_PREFIX = /^\[Lepton Lab\]\s*/;

/**
 * The toast of a message: the first line of its text ("Job a.ipynb (j1)
 * completed."), else its title without the "[Lepton Lab]" prefix.
 */
export function toastOf(row: INotification): IToast {
  const message = (row.message ?? {}) as { text?: unknown; event?: unknown };
  const event =
    row.event || (typeof message.event === 'string' ? message.event : '');
  const line =
    typeof message.text === 'string' ? firstLine(message.text).trim() : '';
  const text =
    line ||
    row.title.replace(TITLE_PREFIX, '') ||
    `${row.subject_kind} ${row.subject_id} ${event}`;
  const kind = row.subject_kind;
  const subject: ISubject | null =
    (kind === 'job' || kind === 'run' || kind === 'schedule') && row.subject_id
      ? { kind, id: row.subject_id }
      : null;
  return { kind: toastKind(event), text, subject };
}

/** Show a toast with JupyterLab's `Notification`; returns its id. */
export function showToast(
  toast: IToast,
  open: ((subject: ISubject) => void) | null
): string {
  const actions =
    toast.subject && open
      ? [
          {
            label: 'Open',
            caption: `Open ${toast.subject.kind} ${toast.subject.id}`,
            callback: () => open(toast.subject as ISubject)
          }
        ]
      : [];
  const autoClose =
    toast.kind === 'success' || toast.kind === 'info'
      ? SUCCESS_AUTOCLOSE_MS
      : false;
  const options = { autoClose, actions } as const;
  switch (toast.kind) {
    case 'success':
      return Notification.success(toast.text, options);
    case 'error':
      return Notification.error(toast.text, options);
    case 'warning':
      return Notification.warning(toast.text, options);
    default:
      return Notification.info(toast.text, options);
  }
}

/**
 * The subject of a link to the lab (`?lepton-job=<id>` or `?lepton-run=<id>`),
 * or null.
 */
export function subjectFromUrl(search: string): ISubject | null {
  const params = new URLSearchParams(search);
  const job = params.get('lepton-job');
  if (job) {
    return { kind: 'job', id: job };
  }
  const run = params.get('lepton-run');
  if (run) {
    return { kind: 'run', id: run };
  }
  return null;
}

export namespace NotificationToasts {
  export interface IOptions {
    client: LeptonClient;
    /** Open what a message is about (the toast's Open action). */
    open: (subject: ISubject) => void;
    /** Poll interval in ms (default `DEFAULT_REFRESH_MS`). */
    interval?: number;
    /** Show a toast (default `showToast`, JupyterLab's `Notification`). */
    show?: (toast: IToast, open: (subject: ISubject) => void) => void;
  }
}

/**
 * The toast poller. Its first read takes the log's `last_id` as the cursor;
 * each later read asks for the user's in-lab messages after the cursor
 * (oldest first), shows each once and moves the cursor past them. It polls
 * only while the browser tab is visible (a hidden tab catches up when shown).
 */
export class NotificationToasts implements IDisposable {
  constructor(options: NotificationToasts.IOptions) {
    this._client = options.client;
    this._open = options.open;
    this._show = options.show ?? showToast;
    this._poll = makePoll(
      () => this._tick(),
      options.interval ?? DEFAULT_REFRESH_MS,
      () => false,
      'lepton-lab:notifications'
    );
  }

  /** The id of the newest message seen (null before the first read). */
  get cursor(): number | null {
    return this._cursor;
  }

  /** The error of the last read, or null. */
  get error(): Error | null {
    return this._error;
  }

  get poll(): Poll<void, Error> {
    return this._poll;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Start polling (idempotent). */
  start(): void {
    if (!this._isDisposed) {
      void this._poll.start();
    }
  }

  /** Read now; resolves after the answer is handled. */
  async refresh(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick.catch(() => undefined);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
  }

  private async _tick(): Promise<void> {
    try {
      if (this._cursor === null) {
        const first = await this._client.listNotifications({
          channel: LAB_CHANNEL,
          mine: true,
          limit: 1
        });
        if (!this._isDisposed && this._cursor === null) {
          this._cursor = first.last_id;
        }
      } else {
        const since = this._cursor;
        const page = await this._client.listNotifications({
          channel: LAB_CHANNEL,
          mine: true,
          since,
          limit: TOAST_PAGE
        });
        if (this._isDisposed || this._cursor !== since) {
          return; // a concurrent read handled this page
        }
        for (const row of page.notifications) {
          if (row.id <= (this._cursor ?? 0)) {
            continue;
          }
          this._cursor = row.id;
          if (row.channel !== LAB_CHANNEL) {
            continue;
          }
          try {
            this._show(toastOf(row), this._open);
          } catch (error) {
            console.warn('lepton-lab: cannot show a notification', error);
          }
        }
      }
      this._error = null;
    } catch (error) {
      this._error = asError(error);
      throw error; // the poll backs off
    }
  }

  private _client: LeptonClient;
  private _open: (subject: ISubject) => void;
  private _show: (toast: IToast, open: (subject: ISubject) => void) => void;
  private _poll: Poll<void, Error>;
  private _cursor: number | null = null;
  private _error: Error | null = null;
  private _isDisposed = false;
}

// ---- the sidebar's failed deliveries ------------------------------------------------------

/** The deliveries that failed (`GET notifications?status=failed`), newest first. */
export class FailedNotificationsModel extends PollingModel<INotification[]> {
  constructor(options: PollingModel.IOptions) {
    super({
      ...options,
      interval: options.interval ?? FAILED_REFRESH_MS,
      name: options.name ?? 'lepton-lab:failed-notifications'
    });
  }

  protected async fetch(): Promise<INotification[]> {
    const answer = await this.client.listNotifications({
      status: 'failed',
      limit: FAILED_LIMIT
    });
    return answer.notifications;
  }
}

/** "webhook → hooks.example.com", or the channel alone. */
export function channelText(
  row: Pick<INotification, 'channel' | 'display'>
): string {
  return row.display ? `${row.channel} → ${row.display}` : row.channel;
}

/** The sidebar section of failed deliveries; hidden while there are none. */
export class FailedNotificationsSection extends Section<INotification[]> {
  constructor(options: { model: FailedNotificationsModel }) {
    super({
      model: options.model,
      title: 'Failed notifications',
      className: 'lepton-NotificationsSection lepton-notifications',
      errorClass: 'lepton-notifications-error',
      errorPrefix: 'Cannot read the notifications'
    });
    const list = el('ul', 'lepton-Section-list lepton-notification-list');
    this.body.append(list);
    this._rows = new KeyedList(
      list,
      row => String(row.id),
      () => new FailedRow()
    );
    this.node.dataset.leptonCount = '0';
    this.hide();
  }

  protected render(rows: INotification[]): void {
    this._rows.update(rows);
    this.node.dataset.leptonCount = String(rows.length);
    this.setHidden(rows.length === 0);
  }

  private _rows: KeyedList<INotification, FailedRow>;
}

class FailedRow {
  constructor() {
    this.node = el('li', 'lepton-Notification lepton-notification');
    const head = el('div', 'lepton-Notification-head');
    this._title = el(
      'span',
      'lepton-Notification-title lepton-notification-title'
    );
    this._time = el(
      'span',
      'lepton-Notification-time lepton-notification-time'
    );
    head.append(this._title, this._time);
    const meta = el('div', 'lepton-Notification-meta');
    this._channel = el(
      'span',
      'lepton-Notification-channel lepton-notification-channel'
    );
    this._attempts = el(
      'span',
      'lepton-Notification-attempts lepton-notification-attempts'
    );
    meta.append(this._channel, this._attempts);
    this._error = el(
      'div',
      'lepton-Notification-error lepton-notification-error'
    );
    this.node.append(head, meta, this._error);
  }

  readonly node: HTMLElement;

  update(row: INotification): void {
    this.node.dataset.leptonNotificationId = String(row.id);
    this._title.textContent = row.title.replace(TITLE_PREFIX, '') || row.event;
    this._title.title = row.title;
    this._time.textContent = formatTime(row.created_at);
    this._time.title = new Date(row.created_at * 1000).toLocaleString();
    this._channel.textContent = channelText(row);
    this._attempts.textContent = `${row.attempts}/${row.max_attempts} attempts`;
    const error = row.error ?? '';
    this._error.textContent = firstLine(error) || 'failed';
    this._error.title = error;
  }

  private _title: HTMLElement;
  private _time: HTMLElement;
  private _channel: HTMLElement;
  private _attempts: HTMLElement;
  private _error: HTMLElement;
}
