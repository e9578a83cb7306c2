/**
 * The frontend's model layer: one model per REST resource (cluster, runs,
 * jobs, schedules, config, kernels; the model registry's are in registry.ts,
 * the deployments' in serving.ts),
 * plus one per open run monitor and job log. Each polling model owns a Lumino `Poll` (backing off after errors,
 * standing by while nobody looks) and emits `changed` after every answer or
 * error; views subscribe and render `data` / `error`. Views never call REST:
 * actions go through a model, which refreshes after the mutation.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  FALLBACK_CONFIG,
  ICluster,
  IJob,
  IJobLogs,
  IJobRequest,
  IKernels,
  ILabConfig,
  IMetricRow,
  IRun,
  ISchedule,
  IScheduleRequest,
  LeptonApiError,
  LeptonClient
} from './api';
import { compareMetrics, isActiveStatus, metricFamily } from './format';
import { LogModel } from './logview';
import { asError, makePoll, PollingModel } from './polling';
import { ModelRegistryModel, ModelVersionsModel } from './registry';
import { DeploymentsModel } from './serving';

// the polling base lives in polling.ts (registry.ts builds on it too)
export {
  clampInterval,
  DEFAULT_REFRESH_MS,
  MAX_BACKOFF_MS,
  MIN_REFRESH_MS,
  PollingModel
} from './polling';

/** How many of the newest runs and jobs the sidebar lists. */
export const RECENT_RUNS = 10;
export const RECENT_JOBS = 10;

// ---- one model per resource ---------------------------------------------------------

/** `GET cluster` */
export class ClusterModel extends PollingModel<ICluster> {
  protected fetch(): Promise<ICluster> {
    return this.client.getCluster();
  }

  /** Scale the lab's cluster; the answer is the new status. */
  async scale(workers: number): Promise<ICluster> {
    const cluster = await this.client.scaleCluster(workers);
    this.setData(cluster);
    return cluster;
  }

  /** Turn adaptive scaling on between the bounds; the answer is the new status. */
  async adapt(minimum: number, maximum: number): Promise<ICluster> {
    const cluster = await this.client.adaptCluster(minimum, maximum);
    this.setData(cluster);
    return cluster;
  }
}

/** The newest runs (`GET runs?limit=N`). */
export class RunsModel extends PollingModel<IRun[]> {
  constructor(options: PollingModel.IOptions & { limit?: number }) {
    super(options);
    this.limit = options.limit ?? RECENT_RUNS;
  }

  readonly limit: number;

  /** The run of this id among the last answer's, if listed. */
  find(id: string): IRun | undefined {
    return this.data?.find(run => run.id === id);
  }

  /** Ask a run to stop, then refresh the list. */
  async stop(id: string): Promise<void> {
    try {
      await this.client.stopRun(id);
    } finally {
      await this.refresh();
    }
  }

  protected fetch(): Promise<IRun[]> {
    return this.client.listRuns(this.limit);
  }
}

/** The newest jobs (`GET jobs?limit=N`). */
export class JobsModel extends PollingModel<IJob[]> {
  constructor(options: PollingModel.IOptions & { limit?: number }) {
    super(options);
    this.limit = options.limit ?? RECENT_JOBS;
  }

  readonly limit: number;

  /** Queue a job; the list refreshes to show it. */
  async submit(request: IJobRequest): Promise<IJob> {
    const job = await this.client.submitJob(request);
    void this.refresh();
    return job;
  }

  /** Ask a job to stop, then refresh the list. */
  async stop(id: string): Promise<void> {
    try {
      await this.client.stopJob(id);
    } finally {
      await this.refresh();
    }
  }

  /** One job: from the last list if it is there, else `GET jobs/{id}`. */
  async get(id: string): Promise<IJob> {
    return this.data?.find(job => job.id === id) ?? this.client.getJob(id);
  }

  /** A URL of the job's executed notebook. */
  outputUrl(id: string, format: 'html' | 'ipynb'): string {
    return this.client.jobOutputUrl(id, format);
  }

  /** A model that follows one job's log. */
  log(job: IJob): JobLogModel {
    return new JobLogModel({
      client: this.client,
      jobId: job.id,
      status: job.status
    });
  }

  protected fetch(): Promise<IJob[]> {
    return this.client.listJobs(this.limit);
  }
}

/** Every schedule (`GET schedules`). */
export class SchedulesModel extends PollingModel<ISchedule[]> {
  constructor(options: PollingModel.IOptions & { jobs?: JobsModel }) {
    super(options);
    this._jobs = options.jobs ?? null;
  }

  /** Create a schedule; the list refreshes to show it. */
  async create(request: IScheduleRequest): Promise<ISchedule> {
    const schedule = await this.client.createSchedule(request);
    void this.refresh();
    return schedule;
  }

  /** Pause (`false`) or resume (`true`). */
  async setActive(id: string, active: boolean): Promise<void> {
    try {
      await this.client.patchSchedule(id, { active });
    } finally {
      await this.refresh();
    }
  }

  /** A job of the schedule now; the jobs list refreshes to show it. */
  async runNow(id: string): Promise<IJob> {
    try {
      return await this.client.runScheduleNow(id);
    } finally {
      await Promise.all([this.refresh(), this._jobs?.refresh()]);
    }
  }

  /** Delete the schedule (its jobs stay). */
  async remove(id: string): Promise<void> {
    try {
      await this.client.deleteSchedule(id);
    } finally {
      await this.refresh();
    }
  }

  protected fetch(): Promise<ISchedule[]> {
    return this.client.listSchedules();
  }

  private _jobs: JobsModel | null;
}

/**
 * A server fact read once per page and shared (`GET config`, `GET kernels`):
 * `value()` resolves to it, and retries after a failure.
 */
abstract class OnceModel<T> {
  constructor(readonly client: LeptonClient) {}

  /** The value, read on the first call. */
  value(): Promise<T> {
    if (!this._promise) {
      this._promise = this.fetch().catch(error => {
        this._promise = null; // try again next time
        return this.fallback(error);
      });
    }
    return this._promise;
  }

  protected abstract fetch(): Promise<T>;
  protected abstract fallback(error: unknown): T;

  private _promise: Promise<T> | null = null;
}

/**
 * `GET config`: the executors a job can run on, and the server's features.
 * A server without the route (404) gets `FALLBACK_CONFIG` (only "local").
 */
export class ConfigModel extends OnceModel<ILabConfig> {
  protected async fetch(): Promise<ILabConfig> {
    try {
      const config = await this.client.getConfig();
      const executors = (config?.executors ?? []).filter(e => e && e.name);
      if (!executors.length) {
        return FALLBACK_CONFIG;
      }
      return {
        version: config.version ?? '',
        default_executor: executors.some(
          e => e.name === config.default_executor
        )
          ? config.default_executor
          : executors[0].name,
        executors,
        features: config.features ?? {},
        channels: config.channels ?? []
      };
    } catch (error) {
      if (error instanceof LeptonApiError && error.status === 404) {
        return FALLBACK_CONFIG; // an older server: cache the fallback
      }
      throw error;
    }
  }

  protected fallback(error: unknown): ILabConfig {
    console.warn('lepton-lab: cannot read the server config', error);
    return FALLBACK_CONFIG;
  }
}

/** `GET kernels`; null when the server cannot say. */
export class KernelsModel extends OnceModel<IKernels | null> {
  protected fetch(): Promise<IKernels | null> {
    return this.client.getKernels();
  }

  protected fallback(error: unknown): IKernels | null {
    console.warn('lepton-lab: cannot read kernels', error);
    return null;
  }
}

// ---- one open run ---------------------------------------------------------------------

/** Points kept per curve; past this, neighbouring buckets merge. */
export const MAX_POINTS = 1000;

/**
 * One metric's curve: the mean over ranks per step, bucketed so a panel left
 * open on a long run holds at most `maxPoints` points (as the Python monitor
 * does).
 */
export class Series {
  constructor(
    readonly name: string,
    readonly maxPoints = MAX_POINTS
  ) {}

  /** Steps per bucket (doubles when the buckets merge). */
  get stride(): number {
    return this._stride;
  }

  get size(): number {
    return this._buckets.size;
  }

  add(step: number, value: number): void {
    if (!isFinite(value)) {
      return;
    }
    const key = Math.floor(step / this._stride);
    let bucket = this._buckets.get(key);
    if (!bucket) {
      bucket = [0, 0, 0];
      this._buckets.set(key, bucket);
    }
    bucket[0] += step;
    bucket[1] += value;
    bucket[2] += 1;
    if (this._buckets.size > this.maxPoints) {
      this._merge();
    }
  }

  /** The points, by step. */
  points(): Array<[number, number]> {
    return [...this._buckets.keys()]
      .sort((a, b) => a - b)
      .map(key => {
        const [steps, values, count] = this._buckets.get(key)!;
        return [steps / count, values / count];
      });
  }

  /** The value of the last bucket. */
  last(): number | null {
    if (!this._buckets.size) {
      return null;
    }
    const [, values, count] = this._buckets.get(
      Math.max(...this._buckets.keys())
    )!;
    return values / count;
  }

  private _merge(): void {
    this._stride *= 2;
    const merged = new Map<number, [number, number, number]>();
    for (const [key, [s, v, n]] of this._buckets) {
      const into = merged.get(Math.floor(key / 2)) ?? [0, 0, 0];
      into[0] += s;
      into[1] += v;
      into[2] += n;
      merged.set(Math.floor(key / 2), into);
    }
    this._buckets = merged;
  }

  private _stride = 1;
  private _buckets = new Map<number, [number, number, number]>();
}

/** Where one rank stands, from its reports. */
export interface IRankReport {
  rank: number;
  step: number;
  time: number;
}

export namespace RunModel {
  export interface IOptions {
    client: LeptonClient;
    runId: string;
    /** Poll interval in milliseconds (default 1000). */
    interval?: number;
    /** True while the panel is hidden. */
    standby?: () => boolean;
    /** Metric rows read per request (the server caps it too). */
    pageSize?: number;
    /** The runs list, refreshed after a stop. */
    runs?: RunsModel;
  }
}

/**
 * One run, followed from REST: its record (status, usage per rank, events)
 * and its metrics, read incrementally with `?since=<cursor>` so the curves
 * grow while it runs. Polling stops once the run has ended and every value
 * is read. Works for any run in the store: one started by a notebook that is
 * closed now, or by a job.
 */
export class RunModel implements IDisposable {
  constructor(options: RunModel.IOptions) {
    this.client = options.client;
    this.runId = options.runId;
    this._pageSize = options.pageSize ?? 10000;
    this._runs = options.runs ?? null;
    const standby = options.standby ?? (() => false);
    const interval = Math.max(200, options.interval ?? 1000);
    this._poll = makePoll(
      () => this._tick(),
      interval,
      standby,
      `lepton-lab:run:${options.runId}`
    );
  }

  readonly client: LeptonClient;
  readonly runId: string;

  /** Fires after each read, failed or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The run's record (with `usage` and `events`), once read. */
  get run(): IRun | null {
    return this._run;
  }

  get error(): Error | null {
    return this._error;
  }

  /** The curves, by metric name. */
  get series(): ReadonlyMap<string, Series> {
    return this._series;
  }

  /** The metric names grouped by chart: `loss` with `val_loss`. */
  families(): Map<string, Series[]> {
    const out = new Map<string, Series[]>();
    const names = [...this._series.keys()].sort(compareMetrics);
    for (const name of names) {
      const family = metricFamily(name);
      const list = out.get(family) ?? [];
      list.push(this._series.get(name)!);
      out.set(family, list);
    }
    return out;
  }

  /** The last value of each metric. */
  lastMetrics(): { [name: string]: number } {
    const out: { [name: string]: number } = {};
    for (const [name, series] of this._series) {
      const last = series.last();
      if (last !== null) {
        out[name] = last;
      }
    }
    return out;
  }

  /** The last report of each rank. */
  get ranks(): ReadonlyMap<number, IRankReport> {
    return this._ranks;
  }

  /** The highest step reported so far (null before the first report). */
  get step(): number | null {
    return this._step;
  }

  /** How many metric rows were read. */
  get rows(): number {
    return this._rows;
  }

  /** The cursor the next metrics read starts after. */
  get cursor(): number {
    return this._cursor;
  }

  /** The run has ended and all its values are read: no more polling. */
  get complete(): boolean {
    return this._complete;
  }

  /** The underlying poll. */
  get poll(): Poll<void, Error> {
    return this._poll;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Start following the run. */
  start(): void {
    if (!this._isDisposed && !this._complete) {
      void this._poll.start();
    }
  }

  /** Read now and resolve once the answer is in. */
  async refresh(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    await this._poll.refresh();
    await this._poll.tick.catch(() => undefined);
  }

  /** Ask the run to stop; the model follows it until it has. */
  async stop(): Promise<void> {
    try {
      await this.client.stopRun(this.runId);
    } finally {
      this._complete = false;
      void this._poll.start();
      await Promise.all([this.refresh(), this._runs?.refresh()]);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _tick(): Promise<void> {
    try {
      // the record first: a run that has ended has all its values in the store already
      const run = await this.client.getRun(this.runId);
      let more = true;
      let pages = 0;
      while (more && pages < 20) {
        const page = await this.client.runMetrics(
          this.runId,
          this._cursor,
          this._pageSize
        );
        const metrics = page.metrics ?? [];
        this._add(metrics);
        if (typeof page.next === 'number') {
          this._cursor = Math.max(this._cursor, page.next);
        }
        more = metrics.length >= this._pageSize;
        pages += 1;
      }
      if (this._isDisposed) {
        return;
      }
      this._run = run;
      this._error = null;
      this._complete = !isActiveStatus(run.status) && !more;
      this._changed.emit();
    } catch (error) {
      if (this._isDisposed) {
        return;
      }
      this._error = asError(error);
      this._changed.emit();
      throw error;
    }
    if (this._complete) {
      void this._poll.stop();
    }
  }

  private _add(rows: IMetricRow[]): void {
    for (const row of rows) {
      const { name, value, step, rank, time } = row;
      if (typeof name !== 'string' || typeof value !== 'number') {
        continue;
      }
      const at = typeof step === 'number' ? step : this._rows;
      let series = this._series.get(name);
      if (!series) {
        series = new Series(name);
        this._series.set(name, series);
      }
      series.add(at, value);
      this._rows += 1;
      this._step = this._step === null ? at : Math.max(this._step, at);
      if (typeof rank === 'number') {
        const previous = this._ranks.get(rank);
        if (!previous || at >= previous.step) {
          this._ranks.set(rank, { rank, step: at, time: time ?? 0 });
        }
      }
    }
  }

  private _poll: Poll<void, Error>;
  private _changed = new Signal<this, void>(this);
  private _run: IRun | null = null;
  private _error: Error | null = null;
  private _series = new Map<string, Series>();
  private _ranks = new Map<number, IRankReport>();
  private _step: number | null = null;
  private _rows = 0;
  private _cursor = 0;
  private _complete = false;
  private _isDisposed = false;
  private _pageSize: number;
  private _runs: RunsModel | null;
}

// ---- one job's log ----------------------------------------------------------------------

// the log model and its text limit live in logview.ts (a deployment's log uses them too)
export { MAX_LOG_CHARS } from './logview';

export namespace JobLogModel {
  export interface IOptions {
    client: LeptonClient;
    jobId: string;
    status?: string;
    interval?: number;
    standby?: () => boolean;
  }
}

/**
 * A job's log, read page by page with `GET jobs/{id}/logs?offset=N` while
 * the job runs; polling stops once the server says the log is complete.
 */
export class JobLogModel extends LogModel {
  constructor(options: JobLogModel.IOptions) {
    const { client, jobId } = options;
    super({
      fetch: async offset => {
        const page: IJobLogs = await client.jobLogs(jobId, offset);
        // the route says how much is written: read on at once while behind
        return { ...page, more: (page.next ?? 0) < (page.size ?? 0) };
      },
      status: options.status ?? 'queued',
      interval: options.interval,
      standby: options.standby,
      name: `lepton-lab:job-log:${jobId}`
    });
    this.client = client;
    this.jobId = jobId;
  }

  readonly client: LeptonClient;
  readonly jobId: string;
}

// ---- all of them ------------------------------------------------------------------------

export namespace LeptonModels {
  export interface IOptions {
    client?: LeptonClient;
    /** Poll interval of the sidebar's models, in milliseconds. */
    interval?: number;
    /** True while the sidebar is hidden: its models stand by. */
    standby?: () => boolean;
  }
}

/**
 * The models of one page, shared by the sidebar, the panels, the dialogs and
 * the commands.
 */
export class LeptonModels implements IDisposable {
  constructor(options: LeptonModels.IOptions = {}) {
    const client = (this.client = options.client ?? new LeptonClient());
    const base = {
      client,
      interval: options.interval,
      standby: options.standby
    };
    this.cluster = new ClusterModel({ ...base, name: 'lepton-lab:cluster' });
    this.runs = new RunsModel({ ...base, name: 'lepton-lab:runs' });
    this.jobs = new JobsModel({ ...base, name: 'lepton-lab:jobs' });
    this.schedules = new SchedulesModel({
      ...base,
      name: 'lepton-lab:schedules',
      jobs: this.jobs
    });
    this.registry = new ModelRegistryModel({
      ...base,
      name: 'lepton-lab:models'
    });
    this.deployments = new DeploymentsModel({
      ...base,
      name: 'lepton-lab:deployments'
    });
    this.config = new ConfigModel(client);
    this.kernels = new KernelsModel(client);
  }

  readonly client: LeptonClient;
  readonly cluster: ClusterModel;
  readonly runs: RunsModel;
  readonly jobs: JobsModel;
  readonly schedules: SchedulesModel;
  /** The model registry's names (`GET models`). */
  readonly registry: ModelRegistryModel;
  /** Served model versions (`GET deployments`). */
  readonly deployments: DeploymentsModel;
  readonly config: ConfigModel;
  readonly kernels: KernelsModel;

  /** The polling models (cluster, runs, jobs, schedules, registry, deployments). */
  get polling(): PollingModel<unknown>[] {
    return [
      this.cluster,
      this.runs,
      this.jobs,
      this.schedules,
      this.registry,
      this.deployments
    ];
  }

  /** The poll interval of the polling models. */
  get interval(): number {
    return this.cluster.interval;
  }
  set interval(value: number) {
    for (const model of this.polling) {
      model.interval = value;
    }
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  start(): void {
    for (const model of this.polling) {
      model.start();
    }
  }

  /** Read everything now. */
  async refresh(): Promise<void> {
    await Promise.all(this.polling.map(model => model.refresh()));
  }

  /** A model that follows one run (its owner disposes of it). */
  run(runId: string, standby?: () => boolean): RunModel {
    return new RunModel({
      client: this.client,
      runId,
      standby,
      runs: this.runs
    });
  }

  /** Ask a run to stop; the runs list refreshes. */
  stopRun(runId: string): Promise<void> {
    return this.runs.stop(runId);
  }

  /** A model that follows one model name's versions (its owner disposes of it). */
  modelVersions(
    name: string,
    standby?: () => boolean,
    interval?: number
  ): ModelVersionsModel {
    return new ModelVersionsModel({
      client: this.client,
      name,
      standby,
      interval: interval ?? this.interval,
      registry: this.registry
    });
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    for (const model of this.polling) {
      model.dispose();
    }
  }

  private _isDisposed = false;
}
