/**
 * A log that grows while whatever writes it runs, read page by page from a
 * byte offset (`GET .../logs?offset=N`, then again with the answer's `next`)
 * until the server says it is complete; and the panel that follows one.
 *
 * `LogModel` takes the function that reads one page, so one model serves a
 * job's log (`JobLogModel`, models.ts) and a model server's
 * (`deploymentLogModel`, serving.ts). `LogView` is the panel: a status line
 * over a scrollable <pre> that keeps to the bottom while the reader is
 * there. The job log panel (`JobLogView`, jobs.ts) and the deployment log
 * dialog (`DeploymentLogView`, deploymentsection.ts) build on it and add
 * their own DOM hooks (see those files).
 *
 * Stable DOM hooks (used by the browser tests), on every log view:
 *   .lepton-LogView                  data-lepton-log-complete="true" once complete
 *     .lepton-LogView-status         what is being followed, or why it cannot be read
 *                                    (lepton-mod-error)
 *     pre.lepton-LogView-text        the log text
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { messageOf } from './format';
import { asError, makePoll } from './polling';
import { el, FollowingPanel } from './section';

/** A log view keeps at most this many characters (the tail). */
export const MAX_LOG_CHARS = 2_000_000;

/** The most pages one poll tick reads while more is written (then the next tick goes on). */
const PAGES_PER_TICK = 20;

/** One page of a log, as the `.../logs?offset=N` routes answer it. */
export interface ILogPage {
  /** The text from the offset asked for. */
  text?: string;
  /** The offset to ask for next. */
  next?: number;
  /** Whatever writes the log has ended and all of it is read: polling stops. */
  complete?: boolean;
  /** The writer's status, where the route says (a job's). */
  status?: string;
  /** More is already written: the model reads on at once, not after its interval. */
  more?: boolean;
}

export namespace LogModel {
  export interface IOptions {
    /** Read the page at a byte offset. */
    fetch: (offset: number) => Promise<ILogPage>;
    /** The writer's status until a page says (default `''`). */
    status?: string;
    /** Poll interval in milliseconds (default 1000). */
    interval?: number;
    standby?: () => boolean;
    /** A name for the poll (debugging). */
    name?: string;
  }
}

/**
 * A log read page by page with `fetch(offset)` while it grows; polling stops
 * once a page says the log is complete.
 */
export class LogModel implements IDisposable {
  constructor(options: LogModel.IOptions) {
    this._fetch = options.fetch;
    this._status = options.status ?? '';
    this._standby = options.standby ?? (() => false);
    this._poll = makePoll(
      () => this._tick(),
      options.interval ?? 1000,
      () => this._standby(),
      options.name ?? 'lepton-lab:log'
    );
  }

  /** Fires with the text appended by each read (empty after a failure). */
  get appended(): ISignal<this, string> {
    return this._appended;
  }

  /** The text read so far (its tail past `MAX_LOG_CHARS`). */
  get text(): string {
    return this._text;
  }

  /** The writer's status, as the last page said (or as given). */
  get status(): string {
    return this._status;
  }

  get error(): Error | null {
    return this._error;
  }

  /** Whether the whole log has been read and its writer has ended. */
  get complete(): boolean {
    return this._complete;
  }

  /** While hidden, the poll stands by. */
  set standby(value: () => boolean) {
    this._standby = value;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** The underlying poll (its state shows whether it still reads). */
  get poll(): Poll<void, Error> {
    return this._poll;
  }

  start(): void {
    if (!this._isDisposed && !this._complete) {
      void this._poll.start();
    }
  }

  async refresh(): Promise<void> {
    if (this._isDisposed || this._complete) {
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
    Signal.clearData(this);
  }

  /**
   * Read pages until one says no more is written yet (at most
   * `PAGES_PER_TICK`): a long log comes in at once, not a page an interval.
   */
  private async _tick(): Promise<void> {
    for (let pages = 1; ; pages++) {
      let page: ILogPage;
      try {
        page = await this._fetch(this._offset);
      } catch (error) {
        if (!this._isDisposed) {
          this._error = asError(error);
          this._appended.emit('');
        }
        throw error;
      }
      if (this._isDisposed) {
        return;
      }
      const offset = this._offset;
      this._read(page);
      if (this._complete) {
        void this._poll.stop();
        return;
      }
      if (!page.more || this._offset <= offset || pages >= PAGES_PER_TICK) {
        return;
      }
    }
  }

  /** Take in one page. */
  private _read(page: ILogPage): void {
    this._error = null;
    const added = page.text ?? '';
    if (added) {
      let text = this._text + added;
      if (text.length > MAX_LOG_CHARS) {
        text = '… (earlier lines cut)\n' + text.slice(-MAX_LOG_CHARS);
      }
      this._text = text;
    }
    this._offset = page.next ?? this._offset;
    this._complete = !!page.complete;
    this._status = page.status ?? this._status;
    this._appended.emit(added);
  }

  private _fetch: (offset: number) => Promise<ILogPage>;
  private _poll: Poll<void, Error>;
  private _appended = new Signal<this, string>(this);
  private _standby: () => boolean;
  private _text = '';
  private _status: string;
  private _offset = 0;
  private _complete = false;
  private _error: Error | null = null;
  private _isDisposed = false;
}

export namespace LogView {
  export interface IOptions {
    /** Classes of the panel, its status line and its <pre> (the subclass's hooks). */
    className: string;
    statusClass: string;
    textClass: string;
  }
}

/**
 * A read-only view of a log that follows it while it grows: the status line
 * says what (`statusText`), the <pre> stays at the bottom while the reader
 * is there.
 */
export abstract class LogView<
  M extends LogModel = LogModel
> extends FollowingPanel<M> {
  constructor(model: M, options: LogView.IOptions) {
    super(model);
    this.addClass('lepton-LogView');
    for (const name of options.className.split(/\s+/).filter(Boolean)) {
      this.addClass(name);
    }
    this._status = el(
      'div',
      `lepton-LogView-status ${options.statusClass}`.trim()
    );
    this._text = el('pre', `lepton-LogView-text ${options.textClass}`.trim());
    this.node.append(this._status, this._text);
    model.standby = () => !this.isVisible;
    model.appended.connect(this._onAppended, this);
  }

  /** Whether the whole log has been read and its writer has ended. */
  get complete(): boolean {
    return this.model.complete;
  }

  /** What the status line says while the log can be read. */
  protected abstract statusText(): string;

  /**
   * Draw the status line and the data attributes (after each read; a
   * subclass calls it at the end of its constructor).
   */
  protected renderStatus(): void {
    const { complete, error } = this.model;
    this.node.dataset.leptonLogComplete = String(complete);
    this._status.classList.toggle('lepton-mod-error', error !== null);
    this._status.textContent = error
      ? `Cannot read the log: ${messageOf(error)}`
      : this.statusText();
  }

  private _onAppended(_: M, added: string): void {
    if (added) {
      const pre = this._text;
      const follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      pre.textContent = this.model.text;
      if (follow) {
        pre.scrollTop = pre.scrollHeight;
      }
    }
    this.renderStatus();
  }

  private _status: HTMLElement;
  private _text: HTMLPreElement;
}
