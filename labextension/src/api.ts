/**
 * REST client for the Lepton Lab server extension, plus the types of the
 * JSON it serves. All requests go through `ServerConnection.makeRequest`, so
 * the base URL, token and XSRF cookie are handled like any Jupyter API call.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** URL namespace of the server extension, relative to the server base URL. */
export const API_NAMESPACE = 'lepton-lab/api';

/** Kernelspec names installed by the Python package. */
export const CPU_KERNEL = 'lepton-cpu';
export const GPU_KERNEL = 'lepton-gpu';

export type ClusterMode = 'local' | 'cuda' | 'external';
export type ClusterStatus = 'running' | 'starting' | 'error';

export interface IWorkerGpu {
  name: string;
  utilization: number | null;
  memory_used: number | null;
  memory_total: number | null;
}

export interface IWorker {
  name: string;
  address: string;
  nthreads: number;
  memory_limit: number;
  memory_used: number;
  cpu: number;
  status: string;
  gpu: IWorkerGpu | null;
}

export interface IClusterTotals {
  workers: number;
  threads: number;
  memory_limit: number;
  memory_used: number;
  gpus: number;
}

export interface ICluster {
  mode: ClusterMode;
  reason: string;
  status: ClusterStatus;
  error: string | null;
  scheduler_address: string | null;
  dashboard_link: string | null;
  workers: IWorker[];
  totals: IClusterTotals;
}

export interface IKernelInfo {
  name: string;
  display_name: string;
  device: 'cpu' | 'gpu';
  installed: boolean;
}

export interface IKernels {
  gpu_available: boolean;
  gpu_names: string[];
  kernels: IKernelInfo[];
}

/**
 * An error answered by the server extension (or a network failure), with a
 * message a person can read.
 */
export class LeptonApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null = null,
    readonly endpoint = ''
  ) {
    super(message);
    this.name = 'LeptonApiError';
  }
}

/**
 * Turn a non-2xx response into a readable message: the JSON `message` (Jupyter
 * API handlers) or `error`/`reason`, else the response text, else the status.
 */
async function errorFromResponse(
  response: Response,
  endpoint: string
): Promise<LeptonApiError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // ignore: fall back to the status line
  }
  let message = '';
  if (text) {
    try {
      const data = JSON.parse(text);
      if (data && typeof data === 'object') {
        message = String(data.message || data.error || data.reason || '');
      }
    } catch {
      // Not JSON (e.g. an HTML error page): keep a short plain-text excerpt.
      if (!/^\s*</.test(text)) {
        message = text.trim().slice(0, 500);
      }
    }
  }
  const status = `${response.status} ${response.statusText || ''}`.trim();
  return new LeptonApiError(
    message ? `${message} (HTTP ${status})` : `HTTP ${status}`,
    response.status,
    endpoint
  );
}

/**
 * Call `lepton-lab/api/<endpoint>` and parse the JSON answer.
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new LeptonApiError(
      `Cannot reach the Jupyter server: ${reason}`,
      null,
      endpoint
    );
  }
  if (!response.ok) {
    throw await errorFromResponse(response, endpoint);
  }
  const text = await response.text();
  if (!text) {
    return undefined as unknown as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new LeptonApiError(
      `The server answered ${endpoint} with invalid JSON`,
      response.status,
      endpoint
    );
  }
}

/** `GET lepton-lab/api/cluster` */
export function getCluster(): Promise<ICluster> {
  return requestAPI<ICluster>('cluster');
}

/** `GET lepton-lab/api/kernels` */
export function getKernels(): Promise<IKernels> {
  return requestAPI<IKernels>('kernels');
}

let kernelsPromise: Promise<IKernels | null> | null = null;

/**
 * The kernels answer, fetched once per page and shared (it only changes when
 * kernelspecs are installed). Resolves to `null` if the server cannot say.
 */
export function getKernelsCached(): Promise<IKernels | null> {
  if (!kernelsPromise) {
    kernelsPromise = getKernels().catch(error => {
      console.warn('lepton-lab: cannot read kernels', error);
      kernelsPromise = null; // try again next time
      return null;
    });
  }
  return kernelsPromise;
}

/** Human-readable bytes: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes)) {
    return '–';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** "12.3 %" or a dash when unknown. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return '–';
  }
  return `${value.toFixed(value >= 10 ? 0 : 1)}%`;
}

// ---- Notebook jobs and schedules ------------------------------------------

export type JobStatus =
  | 'queued'
  | 'running'
  | 'completed'
  | 'failed'
  | 'stopped'
  | 'timed_out';

/** Statuses of a job that has not ended. */
export const ACTIVE_JOB_STATUSES: ReadonlyArray<JobStatus> = [
  'queued',
  'running'
];

export interface IJobProgress {
  /** 1-based index of the running cell. */
  cell?: number | null;
  cells?: number | null;
  completed?: number | null;
  /** The head of the running cell's source. */
  source?: string | null;
  started_at?: number | null;
  cell_started_at?: number | null;
  /** Seconds the running cell has run (computed by the server). */
  cell_elapsed?: number | null;
}

export interface IJobMetric {
  name: string;
  value: number;
  time?: number;
  attempt?: number;
}

export interface IJob {
  id: string;
  name: string;
  /** The notebook relative to the server root (null when outside it). */
  path: string | null;
  notebook: string;
  kernel: string;
  parameters: Record<string, unknown>;
  status: JobStatus;
  attempt: number;
  retries: number;
  timeout: number | null;
  output_formats: string[];
  /** the outputs written so far (a stopped or failed job may lack some) */
  outputs?: string[];
  schedule_id?: string | null;
  stop_requested?: boolean;
  progress?: IJobProgress | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  /** Seconds of the current (or last) attempt. */
  elapsed: number | null;
  error: string | null;
  error_cell: number | null;
  warnings?: string[];
  metrics?: IJobMetric[];
}

export interface IJobLogs {
  id: string;
  status: JobStatus;
  offset: number;
  next: number;
  size: number;
  text: string;
  complete: boolean;
}

export interface ISchedule {
  id: string;
  name: string;
  path: string | null;
  notebook: string;
  cron: string;
  timezone: string;
  active: boolean;
  parameters: Record<string, unknown>;
  next_fire_at: number | null;
  last_fired_at: number | null;
  last_job_id: string | null;
  fired?: number;
  skipped?: number;
  last_error: string | null;
  created_at: number;
  upcoming?: number[];
}

/** The body of `POST jobs`. */
export interface IJobRequest {
  path: string;
  parameters?: Record<string, unknown>;
  name?: string;
  kernel?: string;
  timeout?: number | null;
  retries?: number;
  output_formats?: Array<'ipynb' | 'html'>;
  executor?: 'local' | 'dask';
}

/** The body of `POST schedules`. */
export interface IScheduleRequest extends IJobRequest {
  cron: string;
  timezone?: string;
  active?: boolean;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** `GET lepton-lab/api/jobs?limit=N` (newest first). */
export async function listJobs(limit = 10): Promise<IJob[]> {
  const answer = await requestAPI<{ jobs: IJob[] }>(
    `jobs?limit=${encodeURIComponent(String(limit))}`
  );
  return answer?.jobs ?? [];
}

/** `POST lepton-lab/api/jobs` */
export function submitJob(request: IJobRequest): Promise<IJob> {
  return requestAPI<IJob>('jobs', {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(request)
  });
}

/** `POST lepton-lab/api/jobs/{id}/stop` */
export function stopJob(id: string): Promise<unknown> {
  return requestAPI<unknown>(`jobs/${encodeURIComponent(id)}/stop`, {
    method: 'POST'
  });
}

/** `GET lepton-lab/api/jobs/{id}/logs?offset=N` */
export function getJobLogs(id: string, offset: number): Promise<IJobLogs> {
  return requestAPI<IJobLogs>(
    `jobs/${encodeURIComponent(id)}/logs?offset=${Math.max(0, Math.floor(offset))}`
  );
}

/**
 * The absolute URL of a job's output (`format=html|ipynb`), to open in a
 * browser tab. A plain GET with the session cookie; like JupyterLab's own
 * download URLs it carries the `_xsrf` cookie's value, so it keeps working if
 * the server checks XSRF on GETs.
 */
export function jobOutputUrl(
  id: string,
  format: 'html' | 'ipynb',
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  const url = new URL(
    URLExt.join(
      settings.baseUrl,
      API_NAMESPACE,
      'jobs',
      encodeURIComponent(id),
      'output'
    ),
    window.location.href
  );
  url.searchParams.set('format', format);
  const xsrf = document.cookie.match('\\b_xsrf=([^;]*)\\b');
  if (xsrf) {
    url.searchParams.set('_xsrf', xsrf[1]);
  }
  return url.toString();
}

/** `GET lepton-lab/api/schedules` (oldest first). */
export async function listSchedules(): Promise<ISchedule[]> {
  const answer = await requestAPI<{ schedules: ISchedule[] }>('schedules');
  return answer?.schedules ?? [];
}

/** `POST lepton-lab/api/schedules` */
export function createSchedule(request: IScheduleRequest): Promise<ISchedule> {
  return requestAPI<ISchedule>('schedules', {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(request)
  });
}

/** `PATCH lepton-lab/api/schedules/{id}` with `{active}`: pause or resume. */
export function setScheduleActive(
  id: string,
  active: boolean
): Promise<ISchedule> {
  return requestAPI<ISchedule>(`schedules/${encodeURIComponent(id)}`, {
    method: 'PATCH',
    headers: JSON_HEADERS,
    body: JSON.stringify({ active })
  });
}

/** `POST lepton-lab/api/schedules/{id}/run`: a job now, outside the cron times. */
export function runScheduleNow(id: string): Promise<IJob> {
  return requestAPI<IJob>(`schedules/${encodeURIComponent(id)}/run`, {
    method: 'POST'
  });
}

/** `DELETE lepton-lab/api/schedules/{id}` (its jobs stay). */
export function deleteSchedule(id: string): Promise<void> {
  return requestAPI<void>(`schedules/${encodeURIComponent(id)}`, {
    method: 'DELETE'
  });
}

/** "42 s", "3 min 05 s", "2 h 04 min"; a dash when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '–';
  }
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  }
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

/** A Unix time (seconds) as a short local date and time; a dash when unknown. */
export function formatTime(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '–';
  }
  const date = new Date(seconds * 1000);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleString([], {
        year: date.getFullYear() === now.getFullYear() ? undefined : 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit'
      });
}
