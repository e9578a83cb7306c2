/**
 * The base of the polling models: a Lumino `Poll` that backs off after
 * errors (up to `MAX_BACKOFF_MS`) and stands by while nobody looks, and
 * `PollingModel`, a value read from the server by such a poll. The models
 * of each resource (models.ts, registry.ts) build on it.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { LeptonClient } from './api';

/** The sidebar's default refresh interval (the `refreshInterval` setting). */
export const DEFAULT_REFRESH_MS = 3000;
/** The smallest refresh interval the models accept. */
export const MIN_REFRESH_MS = 500;
/** After errors a poll backs off, up to this interval. */
export const MAX_BACKOFF_MS = 15000;
/** A refresh interval clamped to what the models accept. */
export function clampInterval(value: number | null | undefined): number {
  if (value === undefined || value === null || !isFinite(value)) {
    return DEFAULT_REFRESH_MS;
  }
  return Math.max(MIN_REFRESH_MS, Math.round(value));
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * A poll of `factory` every `interval` ms that backs off after failures up to
 * `MAX_BACKOFF_MS`, and stands by while `standby()` says so or the browser
 * tab is hidden. Started by its owner.
 */
export function makePoll(
  factory: () => Promise<void>,
  interval: number,
  standby: () => boolean,
  name: string
): Poll<void, Error> {
  const poll = new Poll<void, Error>({
    auto: false,
    factory,
    name,
    standby: () => (standby() ? true : 'when-hidden')
  });
  // set after construction: the constructor raises `max` to at least 30 s
  poll.frequency = {
    interval,
    backoff: true,
    max: Math.max(interval, MAX_BACKOFF_MS)
  };
  return poll;
}

export namespace PollingModel {
  export interface IOptions {
    client: LeptonClient;
    /** Poll interval in milliseconds (default `DEFAULT_REFRESH_MS`). */
    interval?: number;
    /** True while nobody looks: the poll then skips its ticks. */
    standby?: () => boolean;
    /** A name for the poll (debugging). */
    name?: string;
  }
}

/**
 * A value read from the server by a `Poll`. `refresh()` reads it now;
 * `changed` fires after each read, failed or not.
 */
export abstract class PollingModel<T> implements IDisposable {
  constructor(options: PollingModel.IOptions) {
    this.client = options.client;
    const standby = options.standby ?? (() => false);
    const interval = clampInterval(options.interval);
    this._poll = makePoll(
      () => this._tick(),
      interval,
      standby,
      options.name ?? 'lepton-lab'
    );
  }

  readonly client: LeptonClient;

  /** Fires after each answer or failure. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The last answer (kept on screen while later reads fail). */
  get data(): T | null {
    return this._data;
  }

  /** The error of the last read, or null when it succeeded. */
  get error(): Error | null {
    return this._error;
  }

  /** Whether the poll is in a streak of failures. */
  get isStale(): boolean {
    return this._error !== null;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** The poll interval in milliseconds. */
  get interval(): number {
    return this._poll.frequency.interval;
  }
  set interval(value: number) {
    const interval = clampInterval(value);
    this._poll.frequency = {
      ...this._poll.frequency,
      interval,
      max: Math.max(interval, MAX_BACKOFF_MS)
    };
  }

  /** The underlying poll (its state shows the backoff). */
  get poll(): Poll<void, Error> {
    return this._poll;
  }

  /** Start polling (idempotent). */
  start(): void {
    if (!this._isDisposed) {
      void this._poll.start();
    }
  }

  /** Stop polling until `start()` or `refresh()`. */
  pause(): void {
    if (!this._isDisposed) {
      void this._poll.stop();
    }
  }

  /**
   * Read now (unless standing by) and resolve after the answer is in
   * `data`/`error`; also restarts the poll's schedule.
   */
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
    Signal.clearData(this);
  }

  /** One read from the server. */
  protected abstract fetch(): Promise<T>;

  /** Replace the data from outside a tick (after a mutation that returns it). */
  protected setData(data: T): void {
    this._data = data;
    this._error = null;
    this._changed.emit();
  }

  private async _tick(): Promise<void> {
    try {
      const data = await this.fetch();
      if (this._isDisposed) {
        return;
      }
      this._data = data;
      this._error = null;
      this._changed.emit();
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = asError(error);
      this._changed.emit();
      throw error; // the poll backs off
    }
  }

  private _poll: Poll<void, Error>;
  private _data: T | null = null;
  private _error: Error | null = null;
  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
}
