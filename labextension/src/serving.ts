/**
 * Serving: `DeploymentsModel`, the deployments the sidebar lists (`GET
 * deployments`), polled like the other sidebar models (registry.ts,
 * models.ts), which starts one (`POST deployments`, the version view's
 * Serve) and stops one (`DELETE deployments/{id}`), refreshing after each;
 * and what the views need to know about a version's formats and a
 * deployment's endpoint.
 */
import { URLExt } from '@jupyterlab/coreutils';

import {
  IDeployment,
  IDeploymentRequest,
  IModelVersion,
  ServableFormat
} from './api';
import { PollingModel } from './polling';

/** How many deployments the sidebar lists: every live one, and ended ones up to this many rows. */
export const RECENT_DEPLOYMENTS = 10;

/** How many the model asks for (the newest first): enough to keep the live ones listed. */
const LIST_LIMIT = 50;

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

  protected async fetch(): Promise<IDeployment[]> {
    const deployments = await this.client.listDeployments(LIST_LIMIT);
    // the newest first, whatever order the server lists them in
    return recentDeployments(
      [...deployments].sort(
        (a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)
      )
    );
  }
}
