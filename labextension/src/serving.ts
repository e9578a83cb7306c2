/**
 * Serving: `DeploymentsModel`, the deployments the sidebar lists (`GET
 * deployments`: every live one and the newest ended ones), polled like the
 * other sidebar models (registry.ts, models.ts), which starts one (`POST
 * deployments`, the version view's Serve) and stops one (`DELETE
 * deployments/{id}`), refreshing after each, and reads one's log (`GET
 * deployments/{id}/logs`, a `LogModel` of logview.ts);
 * `LiveDeploymentsModel`, the live deployments of one model (the version
 * view's); and what the views need to know about a version's formats and a
 * deployment's endpoint.
 */
import { URLExt } from '@jupyterlab/coreutils';

import {
  IDeployment,
  IDeploymentRequest,
  IModelVersion,
  LeptonClient,
  ServableFormat
} from './api';
import { LogModel } from './logview';
import { PollingModel } from './polling';

/** How many deployments the sidebar lists: every live one, and ended ones up to this many rows. */
export const RECENT_DEPLOYMENTS = 10;

/**
 * How many deployments of one live status a read asks for: the most the
 * server answers (`limit` ≤ 1000). Each is a model server process with its
 * own port on this machine, so there are a handful, never near that many.
 */
export const LIVE_LIMIT = 1000;

/**
 * A page of a model server's log at least this large (bytes) is likely
 * followed by more (the server answers at most 256 KiB a page): the log
 * model reads on at once rather than after its interval. The route does not
 * say how much is written, as the job log's does.
 */
const READ_ON_BYTES = 64 << 10;

/**
 * The formats a deployment can serve, as the server's `DeploymentRequest`
 * declares them (a record, so a format added there fails the type check
 * here until it is listed).
 */
const SERVABLE: Record<ServableFormat, true> = {
  onnx: true,
  'onnx-int8': true,
  'torch.export': true,
  torchscript: true,
  keras: true
};
export const SERVABLE_FORMATS = Object.keys(SERVABLE) as ServableFormat[];

/** Whether a deployment of this format can serve it. */
export function isServableFormat(format: string): format is ServableFormat {
  return Object.prototype.hasOwnProperty.call(SERVABLE, format);
}

/** The formats of a version that a deployment can serve, in the version's order. */
export function servableFormats(
  version: Pick<IModelVersion, 'artifacts'>
): ServableFormat[] {
  return (version.artifacts ?? [])
    .map(artifact => artifact.format)
    .filter(isServableFormat);
}

/** Whether a deployment is still (or about to be) serving: it can be stopped. */
export function isLiveDeployment(
  deployment: Pick<IDeployment, 'status'>
): boolean {
  return deployment.status === 'starting' || deployment.status === 'ready';
}

/**
 * The alias of a deployment's reference (`digits@production` → `production`),
 * or null when it named a version or the latest.
 */
export function deploymentAlias(
  deployment: Pick<IDeployment, 'ref'>
): string | null {
  const at = deployment.ref.lastIndexOf('@');
  return at >= 0 && at < deployment.ref.length - 1
    ? deployment.ref.slice(at + 1)
    : null;
}

/**
 * The URL of a deployment's model metadata (`GET v2/models/{name}` of the
 * Open Inference Protocol) through the lab's proxy, under `baseUrl` (the
 * Jupyter server's), or null once it has ended. It needs the Jupyter
 * session, like any lab URL.
 */
export function deploymentMetadataUrl(
  deployment: Pick<IDeployment, 'proxy_path' | 'model'>,
  baseUrl: string
): string | null {
  if (!deployment.proxy_path) {
    return null;
  }
  return URLExt.join(
    baseUrl,
    deployment.proxy_path,
    'v2/models',
    encodeURIComponent(deployment.model)
  );
}

/** The path of a URL (what a proxied link shows), or the URL itself. */
export function urlPath(url: string): string {
  try {
    return new URL(url, window.location.href).pathname;
  } catch {
    return url;
  }
}

/**
 * How far a deployment is along: `starting` → `ready`, back to `starting`
 * with one more restart after a crash, ..., then `failed` or `stopped`. It
 * only moves forward, so of two reads the one further along is the newer.
 */
function progress(deployment: IDeployment): [number, number, number] {
  const ended = !isLiveDeployment(deployment);
  return [
    ended ? 1 : 0,
    ended ? 0 : (deployment.restarts ?? 0),
    deployment.status === 'ready' ? 1 : 0
  ];
}

/** Whether `a` is at least as far along as `b` (see `progress`). */
function notBehind(a: IDeployment, b: IDeployment): boolean {
  const [pa, pb] = [progress(a), progress(b)];
  const at = pa.findIndex((value, i) => value !== pb[i]);
  return at < 0 || pa[at] > pb[at];
}

/**
 * The deployments of several answers, each once and newest first. Where two
 * answers differ (a deployment changed between the reads), the one further
 * along wins (see `progress`), else the later list's.
 */
export function mergeDeployments(
  ...lists: ReadonlyArray<ReadonlyArray<IDeployment>>
): IDeployment[] {
  const byId = new Map<string, IDeployment>();
  for (const list of lists) {
    for (const deployment of list) {
      const seen = byId.get(deployment.id);
      if (!seen || notBehind(deployment, seen)) {
        byId.set(deployment.id, deployment);
      }
    }
  }
  return [...byId.values()].sort(
    (a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)
  );
}

/**
 * Every live deployment, newest first: `GET deployments?status=starting`,
 * then `?status=ready`. In that order: one that becomes ready between the
 * two reads (every deployment does once) is in the second answer; read
 * together or the other way round, it could be in neither, and be missing
 * from the list until the next read.
 */
export async function fetchLiveDeployments(
  client: LeptonClient
): Promise<IDeployment[]> {
  const starting = await client.listDeployments(LIVE_LIMIT, 'starting');
  const ready = await client.listDeployments(LIVE_LIMIT, 'ready');
  return mergeDeployments(starting, ready);
}

/** The sidebar's list: every live deployment, then ended ones, newest first, up to `max` rows. */
export function recentDeployments(
  deployments: ReadonlyArray<IDeployment>,
  max = RECENT_DEPLOYMENTS
): IDeployment[] {
  const live = deployments.filter(isLiveDeployment).length;
  let ended = Math.max(0, max - live);
  return deployments.filter(d => isLiveDeployment(d) || ended-- > 0);
}

/** The deployments (`GET deployments`): every live one and the newest ended ones. */
export class DeploymentsModel extends PollingModel<IDeployment[]> {
  /** The deployment of this id among the last answer's, if listed. */
  find(id: string): IDeployment | undefined {
    return this.data?.find(deployment => deployment.id === id);
  }

  /** Serve a version (`{model: "digits:3"}`); the list refreshes to show it. */
  async serve(request: IDeploymentRequest): Promise<IDeployment> {
    const deployment = await this.client.createDeployment(request);
    void this.refresh();
    return deployment;
  }

  /** Stop a deployment, then refresh the list. */
  async stop(id: string): Promise<void> {
    try {
      await this.client.stopDeployment(id);
    } finally {
      await this.refresh();
    }
  }

  /** The URL of a deployment's model metadata through the lab's proxy (see `deploymentMetadataUrl`). */
  metadataUrl(deployment: IDeployment): string | null {
    return deploymentMetadataUrl(deployment, this.client.settings.baseUrl);
  }

  /** A model that follows a deployment's log (the model server's output) until it has ended. */
  log(deployment: Pick<IDeployment, 'id'>): LogModel {
    return deploymentLogModel(this.client, deployment.id);
  }

  /**
   * The newest `RECENT_DEPLOYMENTS` and, apart, every live one. The newest
   * few hold the ended ones the list shows (with L live ones listed it shows
   * up to RECENT - L ended ones, and at most L of the newest RECENT are
   * live), but a live one can be older than any number of newer ones: it is
   * read by status (`?status=starting`, `?status=ready`), which the server
   * filters, rather than with a larger limit, which would send every ended
   * deployment's row at each tick and still miss one past the limit.
   */
  protected async fetch(): Promise<IDeployment[]> {
    const [recent, live] = await Promise.all([
      this.client.listDeployments(RECENT_DEPLOYMENTS),
      fetchLiveDeployments(this.client)
    ]);
    // newest first, whatever order the server lists them in
    return recentDeployments(mergeDeployments(recent, live));
  }
}

/** A deployment's log (`GET deployments/{id}/logs?offset=N`), followed until the deployment has ended. */
export function deploymentLogModel(
  client: LeptonClient,
  deploymentId: string,
  interval?: number
): LogModel {
  return new LogModel({
    interval,
    fetch: async offset => {
      const page = await client.deploymentLogs(deploymentId, offset);
      return { ...page, more: page.next - page.offset >= READ_ON_BYTES };
    },
    name: `lepton-lab:deployment-log:${deploymentId}`
  });
}

export namespace LiveDeploymentsModel {
  export interface IOptions extends PollingModel.IOptions {
    /** Only the deployments of this model name. */
    model: string;
  }
}

/**
 * The live deployments (`starting`, `ready`) of one model, newest first:
 * the version view's, read while it is shown.
 */
export class LiveDeploymentsModel extends PollingModel<IDeployment[]> {
  constructor(options: LiveDeploymentsModel.IOptions) {
    super({
      ...options,
      name: options.name ?? `lepton-lab:deployments:${options.model}`
    });
    this.model = options.model;
  }

  /** The model name. */
  readonly model: string;

  /** The live deployments of a version, newest first (none before the first read). */
  ofVersion(version: number): IDeployment[] {
    return (this.data ?? []).filter(d => d.version === version);
  }

  /** The URL of a deployment's model metadata through the lab's proxy (see `deploymentMetadataUrl`). */
  metadataUrl(deployment: IDeployment): string | null {
    return deploymentMetadataUrl(deployment, this.client.settings.baseUrl);
  }

  protected async fetch(): Promise<IDeployment[]> {
    const live = await fetchLiveDeployments(this.client);
    return live.filter(d => d.model === this.model);
  }
}
