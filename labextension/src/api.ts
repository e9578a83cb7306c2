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
