/**
 * The sidebar's Deployments section: the model versions served over the Open
 * Inference Protocol (every live deployment, then the newest ended ones),
 * each with its status, format, endpoint (a link to its model metadata
 * through the lab's proxy, and the URL on the server's machine), restarts
 * and a Stop button while it is live. It follows `DeploymentsModel`
 * (serving.ts), polled while the sidebar is visible.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-deployments              the section; .lepton-deployments-error a request error
 *   .lepton-no-deployments           the empty text (hidden while deployments are listed)
 *   li.lepton-deployment             data-lepton-deployment=<id>, data-lepton-status=<status>
 *                                    (starting|ready|failed|stopped), data-lepton-model=<name>,
 *                                    data-lepton-version=<n>
 *     .lepton-deployment-name        "digits v3"; opens the version view
 *     .lepton-deployment-ref         "@production" when it was asked for by alias (hidden otherwise)
 *     .lepton-deployment-status      badge: lepton-mod-active (starting, ready) / -error / -neutral
 *     .lepton-deployment-format      "onnx"
 *     .lepton-deployment-id          the deployment id
 *     .lepton-deployment-restarts    "restarts 1/3"
 *     a.lepton-deployment-url        the model metadata (`v2/models/<name>`) through the lab's
 *                                    proxy, in a new tab; text: its path; hidden once ended
 *     .lepton-deployment-local       the endpoint on the server's machine, "http://127.0.0.1:8500"
 *     .lepton-deployment-error       a failed deployment's error: <details> whose summary is the
 *                                    first line (title: all of it) and pre.lepton-deployment-error-full
 *     button.lepton-deployment-stop  (starting and ready deployments; disabled once asked to stop)
 *     button.lepton-deployment-log   opens the log dialog (every deployment: a failed one's log
 *                                    says why)
 *   .lepton-DeploymentLogDialog      the log dialog (a jp-Dialog); its body:
 *     .lepton-DeploymentLog          a .lepton-LogView: data-lepton-deployment=<id>,
 *                                    data-lepton-log-complete="true" once the deployment has ended
 *                                    and all of its log is read
 *       .lepton-deployment-log-status  what is followed, or why the log cannot be read
 *       pre.lepton-deployment-log-text the model server's output (scrolls; follows the end)
 */
import { Dialog } from '@jupyterlab/apputils';

import { IDeployment } from './api';
import { firstLine, formatTime } from './format';
import { LogModel, LogView } from './logview';
import {
  deploymentAlias,
  DeploymentsModel,
  isLiveDeployment,
  urlPath
} from './serving';
import { act, actionButton, el, KeyedList, Section, setBadge } from './section';

export namespace DeploymentsSection {
  export interface IOptions {
    model: DeploymentsModel;
    /** Open the version view of a served version. */
    openModel?: (name: string, version?: number) => void;
    /** Show a deployment's log (default: `showDeploymentLog`, a dialog). */
    openLog?: (deployment: IDeployment) => void;
  }
}

/** The served model versions. */
export class DeploymentsSection extends Section<IDeployment[]> {
  constructor(options: DeploymentsSection.IOptions) {
    super({
      model: options.model,
      title: 'Deployments',
      className: 'lepton-DeploymentsSection lepton-deployments',
      errorClass: 'lepton-deployments-error',
      errorPrefix: 'Cannot read the deployments'
    });
    const model = options.model;
    const openLog =
      options.openLog ?? ((d: IDeployment) => void showDeploymentLog(model, d));
    this._empty = el(
      'p',
      'lepton-Sidebar-empty lepton-no-deployments',
      'Loading…'
    );
    const list = el('ul', 'lepton-Section-list lepton-deployment-list');
    this.body.append(this._empty, list);
    this._rows = new KeyedList(
      list,
      deployment => deployment.id,
      () =>
        new DeploymentRow(model, {
          stop: (node, d) =>
            void act(node, `Stopping ${d.model} v${d.version}`, () =>
              model.stop(d.id)
            ),
          open: d => options.openModel?.(d.model, d.version),
          log: openLog
        })
    );
  }

  protected render(deployments: IDeployment[]): void {
    this._empty.hidden = deployments.length > 0;
    if (deployments.length) {
      this._empty.replaceChildren();
    } else {
      this._empty.replaceChildren(
        'No deployments: Serve in a model version view starts one, or ',
        el('code', undefined, 'lepton-lab serve name@alias'),
        ' in a terminal.'
      );
    }
    this._rows.update(deployments);
  }

  private _empty: HTMLElement;
  private _rows: KeyedList<IDeployment, DeploymentRow>;
}

/** One deployment in the list; `update` changes only what changed. */
class DeploymentRow {
  constructor(
    private readonly _model: DeploymentsModel,
    handlers: {
      stop: (node: HTMLButtonElement, deployment: IDeployment) => void;
      open: (deployment: IDeployment) => void;
      log: (deployment: IDeployment) => void;
    }
  ) {
    this.node = el('li', 'lepton-Section-item lepton-deployment');
    const top = el('div', 'lepton-Section-itemTop');
    const title = el('span', 'lepton-Deployment-title');
    this._name = el(
      'button',
      'lepton-Section-name lepton-Section-link lepton-deployment-name'
    );
    this._name.type = 'button';
    this._name.addEventListener('click', () => {
      if (this._deployment) {
        handlers.open(this._deployment);
      }
    });
    this._ref = el(
      'span',
      'lepton-Badge lepton-mod-neutral lepton-deployment-ref'
    );
    title.append(this._name, this._ref);
    this._status = el('span', 'lepton-deployment-status');
    top.append(title, this._status);

    const detail = el('div', 'lepton-Section-detail lepton-Sidebar-muted');
    this._format = el('span', 'lepton-deployment-format');
    this._id = el('span', 'lepton-deployment-id');
    this._restarts = el('span', 'lepton-deployment-restarts');
    detail.append(this._format, this._id, this._restarts);

    this._endpoint = el('div', 'lepton-Deployment-endpoint');
    this._url = el('a', 'lepton-Section-link lepton-deployment-url');
    this._url.target = '_blank';
    this._url.rel = 'noopener noreferrer';
    this._local = el('code', 'lepton-Sidebar-muted lepton-deployment-local');
    this._endpoint.append(this._url, this._local);

    this._error = el(
      'details',
      'lepton-Deployment-error lepton-deployment-error'
    );
    this._errorLine = el('summary', 'lepton-Section-errorText');
    this._errorFull = el(
      'pre',
      'lepton-Sidebar-errorText lepton-deployment-error-full'
    );
    this._error.append(this._errorLine, this._errorFull);

    const actions = el('div', 'lepton-Section-actions');
    this._stop = actionButton(
      'lepton-deployment-stop',
      'Stop',
      'Stop serving this version (its endpoint goes away)'
    );
    this._stop.addEventListener('click', () => {
      if (this._deployment) {
        handlers.stop(this._stop, this._deployment);
      }
    });
    const log = actionButton(
      'lepton-deployment-log',
      'Log',
      "Show the model server's log"
    );
    log.addEventListener('click', () => {
      if (this._deployment) {
        handlers.log(this._deployment);
      }
    });
    actions.append(this._stop, log);
    this.node.append(top, detail, this._endpoint, this._error, actions);
  }

  readonly node: HTMLLIElement;

  update(deployment: IDeployment): void {
    this._deployment = deployment;
    const { id, model, version, status } = deployment;
    this.node.dataset.leptonDeployment = id;
    this.node.dataset.leptonStatus = status;
    this.node.dataset.leptonModel = model;
    this.node.dataset.leptonVersion = String(version);

    this._name.textContent = `${model} v${version}`;
    this._name.title = `Open ${model} v${version} in the model registry\nasked for as ${deployment.ref}`;
    const alias = deploymentAlias(deployment);
    this._ref.textContent = alias ? `@${alias}` : '';
    this._ref.title = alias ? `served as ${deployment.ref}` : '';
    this._ref.hidden = !alias;
    setBadge(this._status, status, 'lepton-deployment-status');
    this._status.title = statusTitle(deployment);

    this._format.textContent = deployment.format;
    this._format.title = `the ${deployment.format} artifact of ${model} v${version}`;
    this._id.textContent = id;
    this._id.title = `Deployment ${id}, supervised by the ${deployment.owner}${
      deployment.pid ? `; model server pid ${deployment.pid}` : ''
    }\nworkers ${deployment.workers} · batches of up to ${
      deployment.max_batch_size
    } within ${deployment.max_batch_delay_ms} ms`;
    const restarts = deployment.restarts ?? 0;
    this._restarts.textContent = `restarts ${restarts}/${deployment.max_restarts}`;
    this._restarts.title =
      'Times the model server was restarted after a crash, of the most allowed';
    this._restarts.classList.toggle('lepton-mod-warn', restarts > 0);

    const href = this._model.metadataUrl(deployment);
    this._endpoint.hidden = !href && !deployment.url;
    this._url.hidden = !href;
    if (href) {
      if (this._url.getAttribute('href') !== href) {
        this._url.href = href;
      }
      this._url.textContent = urlPath(href);
      this._url.title =
        "The model's metadata (Open Inference Protocol) through the lab's proxy; " +
        'it needs your Jupyter session, like the lab';
    } else {
      this._url.removeAttribute('href');
    }
    this._local.hidden = !deployment.url;
    this._local.textContent = deployment.url ?? '';
    this._local.title = deployment.url
      ? `The endpoint on the server's machine: POST ${deployment.url}/v2/models/${model}/infer`
      : '';

    const error = status === 'failed' ? (deployment.error ?? '') : '';
    const line = firstLine(error);
    this._error.hidden = !line;
    this._errorLine.textContent = line;
    this._error.title = error;
    this._errorFull.textContent = error;
    // a one-line error has nothing more to show
    const more = error.trim() !== line;
    this._error.classList.toggle('lepton-mod-single', !more);
    if (!more) {
      this._error.open = false;
    }

    const live = isLiveDeployment(deployment);
    this._stop.hidden = !live;
    this._stop.disabled = !!deployment.stop_requested;
    this._stop.title = deployment.stop_requested
      ? 'Stopping…'
      : 'Stop serving this version (its endpoint goes away)';
  }

  private _deployment: IDeployment | null = null;
  private _name: HTMLButtonElement;
  private _ref: HTMLElement;
  private _status: HTMLElement;
  private _format: HTMLElement;
  private _id: HTMLElement;
  private _restarts: HTMLElement;
  private _endpoint: HTMLElement;
  private _url: HTMLAnchorElement;
  private _local: HTMLElement;
  private _error: HTMLDetailsElement;
  private _errorLine: HTMLElement;
  private _errorFull: HTMLElement;
  private _stop: HTMLButtonElement;
}

/**
 * A deployment's log (the model server's output), followed while the
 * deployment is live: a `LogView` with the deployment's hooks.
 */
export class DeploymentLogView extends LogView {
  constructor(model: LogModel, deployment: IDeployment) {
    super(model, {
      className: 'lepton-DeploymentLog',
      statusClass: 'lepton-deployment-log-status',
      textClass: 'lepton-deployment-log-text'
    });
    this.deploymentId = deployment.id;
    this._label = `${deployment.model} v${deployment.version}`;
    this.node.dataset.leptonDeployment = deployment.id;
    this.renderStatus();
  }

  readonly deploymentId: string;

  protected statusText(): string {
    const what = `Deployment ${this.deploymentId} (${this._label})`;
    return this.model.complete
      ? `${what} has ended. End of log.`
      : `${what}: following the model server's log…`;
  }

  private _label: string;
}

/**
 * Show a deployment's log in a dialog; resolves once it is closed (the
 * dialog disposes the view, and the view its model: the polling stops).
 */
export async function showDeploymentLog(
  model: DeploymentsModel,
  deployment: IDeployment
): Promise<void> {
  const dialog = new Dialog({
    title: `Log: ${deployment.model} v${deployment.version} (${deployment.id})`,
    body: new DeploymentLogView(model.log(deployment), deployment),
    buttons: [Dialog.okButton({ label: 'Close' })],
    hasClose: true
  });
  dialog.addClass('lepton-DeploymentLogDialog');
  // rejected only when something disposes of the dialog before it is closed
  await dialog.launch().catch(() => undefined);
}

/** The status badge's tooltip: since when. */
function statusTitle(deployment: IDeployment): string {
  switch (deployment.status) {
    case 'starting':
      return `starting since ${formatTime(deployment.created_at)}`;
    case 'ready':
      return `ready since ${formatTime(deployment.ready_at ?? deployment.created_at)}`;
    default:
      return deployment.ended_at
        ? `${deployment.status} ${formatTime(deployment.ended_at)}`
        : deployment.status;
  }
}
