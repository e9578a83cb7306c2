/**
 * The version view of a registered model (`ModelView`, in a
 * `MainAreaWidget`, one per model name): pick a version, and see its
 * formats (size, digest, how well each matched the original, a Download
 * link), metrics, lineage (the run and job that registered it, the
 * notebook, git, library versions), params and evaluations; edit its
 * aliases and tags; serve it (a deployment, listed in the sidebar) and see
 * its live deployments; delete it. It reads `GET models/{name}` through a
 * `ModelVersionsModel` (registry.ts) and, where it can serve, the model's
 * live deployments through a `LiveDeploymentsModel` (serving.ts), both
 * polled while the panel is visible.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-ModelPanel                 data-lepton-model=<name>, data-lepton-model-version=<n>
 *                                      (the version shown), data-lepton-model-versions="3,2,1"
 *     .lepton-model-panel-name         the model name
 *     select.lepton-model-version-select   option[value=<n>] per version, newest first
 *     .lepton-model-panel-meta         framework · registered <time>
 *     .lepton-model-panel-load-error   a request error; .lepton-model-panel-empty: no version left
 *     table.lepton-model-artifacts     tr.lepton-model-artifact[data-lepton-format]
 *       .lepton-model-artifact-file / -details (under the format) / -size
 *       .lepton-model-artifact-sha256  the digest's first 12 characters (title: all of it)
 *       .lepton-model-artifact-diff    max_abs_diff vs tolerance, "3.1e-7 ≤ 1e-5",
 *                                      data-lepton-verdict=ok|over|unknown
 *       a.lepton-model-download        the artifact route (SavedModel folders as a .zip)
 *     li.lepton-model-failed-format    data-lepton-format: a format asked for and not registered
 *     table.lepton-model-metrics       tr[data-lepton-metric]
 *     .lepton-model-lineage
 *       button.lepton-model-run        data-lepton-run: opens the run panel
 *       button.lepton-model-job        data-lepton-job: opens the job's log
 *       .lepton-model-notebook / .lepton-model-git / .lepton-model-libraries
 *     table.lepton-model-params        tr[data-lepton-param]
 *     table.lepton-model-evaluations   tr.lepton-model-evaluation[data-lepton-evaluation]
 *       button.lepton-model-evaluation-job
 *     .lepton-model-aliases            span.lepton-model-alias per alias
 *     .lepton-model-tags               span.lepton-model-tag per tag
 *     button.lepton-model-edit         shows form.lepton-model-edit-form:
 *       input.lepton-model-aliases-input (comma-separated), textarea.lepton-model-tags-input
 *       (key=value a line), button.lepton-model-save, button.lepton-model-cancel
 *     button.lepton-model-delete       deletes the version after a confirmation dialog
 *     button.lepton-model-serve        POST deployments {model: "<name>:<version>"}; disabled when
 *                                      the version has no servable format (onnx, onnx-int8,
 *                                      torch.export, torchscript, keras), and while it is sent
 *                                      (data-lepton-busy="true"); a refusal shows the server's message
 *     .lepton-model-deployments        next to Serve: the live (starting, ready) deployments of the
 *                                      version shown, newest first (hidden when none, and without Serve)
 *       .lepton-model-deployment       data-lepton-deployment=<id>, data-lepton-status=starting|ready
 *         .lepton-model-deployment-status  badge "starting" / "ready"
 *         a.lepton-model-deployment-url    the model metadata (`v2/models/<name>`) through the lab's
 *                                          proxy, in a new tab; text: its path
 */
import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';

import {
  IArtifact,
  IDeployment,
  IDeploymentRequest,
  IEvaluation,
  IModelVersion
} from './api';
import {
  DASH,
  detailsText,
  diffText,
  formatBytes,
  formatMetric,
  formatTime,
  parseAliases,
  shortHash,
  tagsPatch,
  tagsText,
  valueText,
  versionLabel
} from './format';
import { ModelVersionsModel } from './registry';
import { actionButton, el, FollowingPanel, setBadge } from './section';
import {
  LiveDeploymentsModel,
  SERVABLE_FORMATS,
  servableFormats,
  urlPath
} from './serving';

export namespace ModelView {
  export interface IOptions {
    model: ModelVersionsModel;
    /** The version to show first (the newest when absent or not registered). */
    version?: number | null;
    /** Open a run's panel. */
    openRun: (runId: string) => void;
    /** Open a job's log. */
    openJob: (jobId: string) => void;
    /** Start a deployment (`POST deployments`); without it there is no Serve button. */
    serve?: (request: IDeploymentRequest) => Promise<IDeployment>;
    /** Show the deployments (the sidebar), offered once a deployment is started. */
    showDeployments?: () => void;
  }
}

/** A link-looking button of a panel. */
export function linkButton(
  className: string,
  text: string,
  title = ''
): HTMLButtonElement {
  const node = el('button', `lepton-Link ${className}`, text);
  node.type = 'button';
  node.title = title;
  return node;
}

/** A titled section of a panel, with its body. */
function panelSection(
  title: string,
  className: string
): [HTMLElement, HTMLElement] {
  const section = el('section', `lepton-RunPanel-section ${className}`);
  section.appendChild(el('h3', 'lepton-RunPanel-title', title));
  const body = section.appendChild(el('div', 'lepton-ModelPanel-sectionBody'));
  return [section, body];
}

/** A table with a header row, in a scrolling wrapper. */
function table(
  className: string,
  headers: string[]
): [HTMLElement, HTMLTableSectionElement] {
  const wrapper = el('div', 'lepton-RunPanel-tableWrapper');
  const node = wrapper.appendChild(
    el('table', `lepton-RunPanel-table lepton-ModelPanel-table ${className}`)
  );
  const head = el('tr');
  for (const name of headers) {
    head.appendChild(el('th', undefined, name));
  }
  node.appendChild(el('thead')).appendChild(head);
  return [wrapper, node.appendChild(el('tbody'))];
}

function cell(text: string, className?: string, title?: string) {
  const td = el('td', className, text);
  if (title) {
    td.title = title;
  }
  return td;
}

/**
 * The content of a model's main-area panel.
 */
export class ModelView extends FollowingPanel<ModelVersionsModel> {
  constructor(options: ModelView.IOptions) {
    super(options.model);
    const model = options.model;
    this.modelName = model.name;
    this._selected = options.version ?? null;
    this._openRun = options.openRun;
    this._openJob = options.openJob;
    this.addClass('lepton-RunPanel');
    this.addClass('lepton-ModelPanel');
    this.node.dataset.leptonModel = model.name;
    this.node.tabIndex = -1;

    const header = el('div', 'lepton-RunPanel-header');
    const name = el(
      'h2',
      'lepton-RunPanel-name lepton-model-panel-name',
      model.name
    );
    this._select = el(
      'select',
      'lepton-ModelPanel-select lepton-model-version-select'
    );
    this._select.title = 'The version to show';
    this._select.addEventListener('change', () => {
      this.select(Number(this._select.value));
    });
    this._delete = actionButton(
      'lepton-RunPanel-stop lepton-model-delete',
      'Delete version',
      'Delete this version and its artifacts'
    );
    this._delete.addEventListener('click', () => void this._confirmDelete());
    this._serveAction = options.serve ?? null;
    this._showDeployments = options.showDeployments ?? null;
    this._serve = actionButton(
      'lepton-RunPanel-action lepton-model-serve',
      'Serve',
      ''
    );
    this._serve.hidden = true;
    this._serve.addEventListener('click', () => void this._startServing());
    this._live = el(
      'div',
      'lepton-ModelPanel-deployments lepton-model-deployments'
    );
    this._live.hidden = true;
    // the live deployments of the version shown, where the view can serve
    this._liveModel = this._serveAction
      ? new LiveDeploymentsModel({
          client: model.client,
          model: model.name,
          interval: model.interval,
          standby: () => !this.isVisible
        })
      : null;
    this._liveModel?.changed.connect(() => this._renderLive(), this);
    header.append(name, this._select, this._live, this._serve, this._delete);
    this._meta = el('div', 'lepton-RunPanel-meta lepton-model-panel-meta');
    this._loadError = el(
      'div',
      'lepton-Sidebar-error lepton-model-panel-load-error'
    );
    this._loadError.hidden = true;
    this._empty = el(
      'p',
      'lepton-Sidebar-empty lepton-model-panel-empty',
      'Loading…'
    );

    // aliases and tags, with their edit form
    const [labels, labelsBody] = panelSection(
      'Aliases and tags',
      'lepton-ModelPanel-labels'
    );
    this._aliases = el('div', 'lepton-ModelPanel-chips lepton-model-aliases');
    this._tags = el('div', 'lepton-ModelPanel-chips lepton-model-tags');
    this._edit = actionButton(
      'lepton-model-edit',
      'Edit',
      'Change the aliases and tags of this version'
    );
    this._edit.addEventListener('click', () => this._startEdit());
    this._form = this._editForm();
    labelsBody.append(this._aliases, this._tags, this._edit, this._form);

    const [formats, formatsBody] = panelSection(
      'Formats',
      'lepton-ModelPanel-formats'
    );
    this._formats = formatsBody;
    const [metrics, metricsBody] = panelSection(
      'Metrics',
      'lepton-ModelPanel-metrics'
    );
    this._metrics = metricsBody;
    const [lineage, lineageBody] = panelSection(
      'Lineage',
      'lepton-ModelPanel-lineageSection'
    );
    this._lineage = el('dl', 'lepton-ModelPanel-lineage lepton-model-lineage');
    lineageBody.appendChild(this._lineage);
    const [params, paramsBody] = panelSection(
      'Params',
      'lepton-ModelPanel-params'
    );
    this._params = paramsBody;
    const [evaluations, evaluationsBody] = panelSection(
      'Evaluations',
      'lepton-ModelPanel-evaluations'
    );
    this._evaluations = evaluationsBody;

    this._content = el('div', 'lepton-ModelPanel-content');
    this._content.append(
      labels,
      formats,
      metrics,
      lineage,
      params,
      evaluations
    );
    this.node.append(
      header,
      this._meta,
      this._loadError,
      this._empty,
      this._content
    );
    model.changed.connect(this._render, this);
    this._render();
  }

  readonly modelName: string;

  /** The version shown (null before the first read or when none is left). */
  get selected(): number | null {
    return this._shown?.version ?? this._selected;
  }

  /** The panel's title text. */
  get label(): string {
    const version = this.selected;
    return `Model: ${this.modelName}${version === null ? '' : ` v${version}`}`;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._liveModel?.dispose();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._liveModel?.start();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._liveModel?.refresh();
  }

  /** Show this version (the newest when it is not registered). */
  select(version: number | null): void {
    if (version !== null && !isFinite(version)) {
      return;
    }
    this._selected = version;
    this._stopEdit();
    this._render();
  }

  // ---- rendering

  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const model = this.model;
    const error = model.error;
    this._loadError.hidden = error === null;
    this._loadError.textContent = error
      ? `Cannot read the model: ${error.message}`
      : '';
    this.toggleClass('lepton-mod-stale', error !== null);
    if (model.data === null) {
      return;
    }
    const versions = model.versions;
    this._renderSelect(versions);
    const version =
      (this._selected === null ? undefined : model.version(this._selected)) ??
      versions[0];
    this._shown = version ?? null;
    this.node.dataset.leptonModelVersions = versions
      .map(v => v.version)
      .join(',');
    this._empty.hidden = !!version;
    this._empty.textContent = version
      ? ''
      : `No version of ${this.modelName} is registered.`;
    this._content.hidden = !version;
    this._delete.hidden = !version;
    this._select.hidden = !version;
    this._renderServe(version ?? null);
    this._renderLive();
    this.title.label = this.label;
    if (!version) {
      delete this.node.dataset.leptonModelVersion;
      this._meta.textContent = '';
      this._rendered = '';
      return;
    }
    this.node.dataset.leptonModelVersion = String(version.version);
    this._select.value = String(version.version);
    // redraw only what changed: a link does not vanish under the pointer at each read
    const key = JSON.stringify(version);
    if (key === this._rendered) {
      return;
    }
    this._rendered = key;
    this._meta.textContent = [
      versionLabel(version),
      version.framework,
      `registered ${formatTime(version.created_at)}`
    ].join(' · ');
    this._renderLabels(version);
    this._renderFormats(version);
    this._renderMetrics(version);
    this._renderLineage(version);
    this._renderParams(version);
    this._renderEvaluations(version.evaluations ?? []);
  }

  /** The Serve button: enabled for a version with a servable format. */
  private _renderServe(version: IModelVersion | null): void {
    const serve = this._serve;
    serve.hidden = !version || this._serveAction === null;
    if (!version) {
      return;
    }
    const formats = servableFormats(version);
    serve.disabled = this._serving || !formats.length;
    serve.dataset.leptonFormats = formats.join(',');
    serve.title = formats.length
      ? `Serve ${versionLabel(version)} over the Open Inference Protocol ` +
        `(${formats.includes('onnx') ? 'onnx' : formats[0]}; ` +
        'listed under Deployments in the Lepton sidebar)'
      : `${versionLabel(version)} has no format a deployment can serve ` +
        `(${SERVABLE_FORMATS.join(', ')}): register it with one of them`;
  }

  /** The live deployments of the version shown, next to Serve. */
  private _renderLive(): void {
    if (this.isDisposed) {
      return;
    }
    const live = this._liveModel;
    const version = this._shown;
    const deployments = live && version ? live.ofVersion(version.version) : [];
    // redraw only what changed: a link does not vanish under the pointer at each read
    const key = JSON.stringify(
      deployments.map(d => [d.id, d.status, d.proxy_path, d.url])
    );
    if (key === this._liveKey) {
      return;
    }
    this._liveKey = key;
    this._live.hidden = !deployments.length;
    this._live.replaceChildren(
      ...deployments.map(deployment => {
        const item = el(
          'span',
          'lepton-ModelPanel-deployment lepton-model-deployment'
        );
        item.dataset.leptonDeployment = deployment.id;
        item.dataset.leptonStatus = deployment.status;
        item.title = `Deployment ${deployment.id} (${deployment.format}), ${
          deployment.status
        } since ${formatTime(
          deployment.ready_at ?? deployment.created_at
        )}${deployment.url ? `\non the server's machine: ${deployment.url}` : ''}`;
        const status = el('span');
        setBadge(status, deployment.status, 'lepton-model-deployment-status');
        item.appendChild(status);
        const href = live?.metadataUrl(deployment) ?? null;
        if (href) {
          const link = el(
            'a',
            'lepton-Link lepton-model-deployment-url',
            urlPath(href)
          );
          link.href = href;
          link.target = '_blank';
          link.rel = 'noopener noreferrer';
          link.title =
            "The model's metadata (Open Inference Protocol) through the lab's proxy";
          item.appendChild(link);
        }
        return item;
      })
    );
  }

  private _renderSelect(versions: IModelVersion[]): void {
    const key = versions
      .map(v => `${v.version}:${(v.aliases ?? []).join(',')}`)
      .join(' ');
    if (key === this._selectKey) {
      return;
    }
    this._selectKey = key;
    this._select.replaceChildren(
      ...versions.map(v => {
        const aliases = v.aliases ?? [];
        const option = el(
          'option',
          undefined,
          `v${v.version}${aliases.length ? ` (${aliases.join(', ')})` : ''}`
        );
        option.value = String(v.version);
        return option;
      })
    );
  }

  private _renderLabels(version: IModelVersion): void {
    const aliases = version.aliases ?? [];
    this._aliases.replaceChildren(
      el('span', 'lepton-ModelPanel-label', 'Aliases:'),
      ...(aliases.length
        ? aliases.map(a =>
            el('span', 'lepton-Badge lepton-mod-active lepton-model-alias', a)
          )
        : [el('span', 'lepton-Sidebar-muted', 'none')])
    );
    const tags = version.tags ?? {};
    const keys = Object.keys(tags).sort();
    this._tags.replaceChildren(
      el('span', 'lepton-ModelPanel-label', 'Tags:'),
      ...(keys.length
        ? keys.map(k =>
            el('span', 'lepton-Badge lepton-model-tag', `${k}=${tags[k]}`)
          )
        : [el('span', 'lepton-Sidebar-muted', 'none')])
    );
    if (!this._editing) {
      this._stopEdit();
    }
  }

  private _renderFormats(version: IModelVersion): void {
    const [wrapper, body] = table('lepton-model-artifacts', [
      'Format',
      'Size',
      'sha256',
      'Max abs diff',
      ''
    ]);
    for (const artifact of version.artifacts ?? []) {
      body.appendChild(this._artifactRow(version, artifact));
    }
    const parts: HTMLElement[] = [wrapper];
    if (!(version.artifacts ?? []).length) {
      parts.unshift(
        el('p', 'lepton-Sidebar-empty', 'No format was registered.')
      );
      wrapper.hidden = true;
    }
    const failed = version.failed_formats ?? {};
    if (Object.keys(failed).length) {
      const list = el('ul', 'lepton-ModelPanel-failed');
      for (const format of Object.keys(failed)) {
        const li = el(
          'li',
          'lepton-Section-errorText lepton-model-failed-format',
          `${format}: ${failed[format]}`
        );
        li.dataset.leptonFormat = format;
        li.title = failed[format];
        list.appendChild(li);
      }
      parts.push(list);
    }
    this._formats.replaceChildren(...parts);
  }

  private _artifactRow(
    version: IModelVersion,
    artifact: IArtifact
  ): HTMLTableRowElement {
    const tr = el('tr', 'lepton-model-artifact');
    tr.dataset.leptonFormat = artifact.format;
    const diff = diffText(artifact.max_abs_diff, artifact.tolerance);
    const diffCell = cell(
      diff.text,
      `lepton-model-artifact-diff lepton-mod-${diff.verdict}`,
      diff.verdict === 'unknown'
        ? ''
        : `largest |reloaded - original| output difference on the check input, against the tolerance ${artifact.tolerance}`
    );
    diffCell.dataset.leptonVerdict = diff.verdict;
    const details = detailsText(artifact.details);
    const link = el('a', 'lepton-Link lepton-model-download', 'Download');
    link.href = this.model.artifactUrl(version.version, artifact.format);
    link.download = '';
    link.title = `Download ${artifact.file}${
      /saved_?model/i.test(artifact.format) ? ' (a folder, as a .zip)' : ''
    }`;
    const linkCell = el('td');
    linkCell.appendChild(link);
    // the format, its file, and its details (e.g. onnx-int8's accuracy change) under it
    const format = el('td', 'lepton-model-artifact-format');
    format.append(
      el('span', 'lepton-ModelPanel-format', artifact.format),
      el(
        'span',
        'lepton-Sidebar-muted lepton-model-artifact-file',
        artifact.file
      )
    );
    format.title = artifact.uri;
    const detailsNode = el(
      'div',
      'lepton-Sidebar-muted lepton-model-artifact-details',
      details
    );
    detailsNode.hidden = !details;
    format.appendChild(detailsNode);
    tr.append(
      format,
      cell(
        formatBytes(artifact.size),
        'lepton-model-artifact-size',
        `${artifact.size} bytes`
      ),
      cell(
        shortHash(artifact.sha256),
        'lepton-model-artifact-sha256',
        artifact.sha256
      ),
      diffCell,
      linkCell
    );
    return tr;
  }

  private _renderMetrics(version: IModelVersion): void {
    const metrics = version.metrics ?? {};
    const names = Object.keys(metrics);
    if (!names.length) {
      this._metrics.replaceChildren(
        el('p', 'lepton-Sidebar-empty', 'No metrics.')
      );
      return;
    }
    const [wrapper, body] = table('lepton-model-metrics', ['Metric', 'Value']);
    for (const name of names) {
      const tr = el('tr');
      tr.dataset.leptonMetric = name;
      tr.append(
        cell(name, 'lepton-ModelPanel-key'),
        cell(formatMetric(metrics[name]), undefined, String(metrics[name]))
      );
      body.appendChild(tr);
    }
    this._metrics.replaceChildren(wrapper);
  }

  private _renderLineage(version: IModelVersion): void {
    const dl = this._lineage;
    dl.replaceChildren();
    const add = (term: string, value: Node | string, className: string) => {
      const dd = el('dd', className);
      dd.append(value);
      dl.append(el('dt', undefined, term), dd);
      return dd;
    };
    if (version.run_id) {
      const runId = version.run_id;
      const run = linkButton('lepton-model-run', runId, `Open run ${runId}`);
      run.dataset.leptonRun = runId;
      run.addEventListener('click', () => this._openRun(runId));
      add('Run', run, 'lepton-model-lineage-run');
    } else {
      add('Run', DASH, 'lepton-model-lineage-run');
    }
    if (version.job_id) {
      add('Job', this._jobLink('lepton-model-job', version.job_id), '');
    }
    const notebook = version.notebook
      ? `${version.notebook}${
          version.notebook_sha256
            ? ` (sha256 ${shortHash(version.notebook_sha256)})`
            : ''
        }`
      : DASH;
    add('Notebook', notebook, 'lepton-model-notebook').title =
      version.notebook_sha256 ? `sha256 ${version.notebook_sha256}` : '';
    const git = version.git;
    const gitNode = add(
      'Git',
      git
        ? `${shortHash(git.commit, 10)}${git.dirty ? ' (dirty)' : ''}${
            git.branch ? ` on ${git.branch}` : ''
          }`
        : DASH,
      'lepton-model-git'
    );
    if (git) {
      gitNode.title = `commit ${git.commit}${
        git.dirty ? '\nthe working tree had uncommitted changes' : ''
      }`;
      gitNode.dataset.leptonDirty = String(git.dirty);
    }
    const libraries = version.versions ?? {};
    add(
      'Libraries',
      Object.keys(libraries)
        .map(k => `${k} ${libraries[k]}`)
        .join(' · ') || DASH,
      'lepton-model-libraries'
    );
  }

  private _renderParams(version: IModelVersion): void {
    const params = version.params ?? {};
    const names = Object.keys(params);
    if (!names.length) {
      this._params.replaceChildren(
        el('p', 'lepton-Sidebar-empty', 'No params.')
      );
      return;
    }
    const [wrapper, body] = table('lepton-model-params', ['Param', 'Value']);
    for (const name of names) {
      const tr = el('tr');
      tr.dataset.leptonParam = name;
      const text = valueText(params[name]);
      tr.append(
        cell(name, 'lepton-ModelPanel-key'),
        cell(text, 'lepton-ModelPanel-value', text)
      );
      body.appendChild(tr);
    }
    this._params.replaceChildren(wrapper);
  }

  private _renderEvaluations(evaluations: IEvaluation[]): void {
    if (!evaluations.length) {
      this._evaluations.replaceChildren(
        el('p', 'lepton-Sidebar-empty', 'No evaluations yet.')
      );
      return;
    }
    const [wrapper, body] = table('lepton-model-evaluations', [
      'Time',
      'Dataset',
      'Job',
      'Metrics'
    ]);
    for (const evaluation of evaluations) {
      const tr = el('tr', 'lepton-model-evaluation');
      tr.dataset.leptonEvaluation = String(evaluation.id);
      const job = el('td');
      job.append(
        evaluation.job_id
          ? this._jobLink('lepton-model-evaluation-job', evaluation.job_id)
          : DASH
      );
      const metrics = evaluation.metrics ?? {};
      tr.append(
        cell(formatTime(evaluation.time)),
        cell(evaluation.dataset || DASH, 'lepton-ModelPanel-key'),
        job,
        cell(
          Object.keys(metrics)
            .map(k => `${k} ${formatMetric(metrics[k])}`)
            .join(' · ') || DASH,
          'lepton-ModelPanel-value'
        )
      );
      body.appendChild(tr);
    }
    this._evaluations.replaceChildren(wrapper);
  }

  private _jobLink(className: string, jobId: string): HTMLButtonElement {
    const node = linkButton(className, jobId, `Show the log of job ${jobId}`);
    node.dataset.leptonJob = jobId;
    node.addEventListener('click', () => this._openJob(jobId));
    return node;
  }

  // ---- editing aliases and tags

  private _editForm(): HTMLFormElement {
    const form = el('form', 'lepton-ModelPanel-form lepton-model-edit-form');
    form.hidden = true;
    const aliases = el('label', 'lepton-JobForm-field');
    aliases.append(
      el('span', 'lepton-JobForm-label', 'Aliases'),
      (this._aliasesInput = el(
        'input',
        'jp-mod-styled lepton-model-aliases-input'
      )),
      el(
        'span',
        'lepton-JobForm-hint',
        'Comma-separated, e.g. "production, candidate": an alias another version holds moves here.'
      )
    );
    this._aliasesInput.type = 'text';
    this._aliasesInput.spellcheck = false;
    const tags = el('label', 'lepton-JobForm-field');
    tags.append(
      el('span', 'lepton-JobForm-label', 'Tags'),
      (this._tagsInput = el(
        'textarea',
        'jp-mod-styled lepton-model-tags-input'
      )),
      el(
        'span',
        'lepton-JobForm-hint',
        'One key=value a line; delete a line to remove the tag.'
      )
    );
    this._tagsInput.rows = 3;
    this._tagsInput.spellcheck = false;
    const buttons = el('div', 'lepton-Section-actions');
    this._save = actionButton(
      'lepton-model-save',
      'Save',
      'Save the aliases and tags'
    );
    this._save.type = 'submit';
    const cancel = actionButton(
      'lepton-model-cancel',
      'Cancel',
      'Discard the changes'
    );
    cancel.addEventListener('click', () => this._stopEdit());
    buttons.append(this._save, cancel);
    form.append(aliases, tags, buttons);
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this._saveEdit();
    });
    return form;
  }

  private _startEdit(): void {
    const version = this._shown;
    if (!version) {
      return;
    }
    this._editing = true;
    this._aliasesInput.value = (version.aliases ?? []).join(', ');
    this._tagsInput.value = tagsText(version.tags);
    this._form.hidden = false;
    this._edit.hidden = true;
    this._aliasesInput.focus();
  }

  private _stopEdit(): void {
    this._editing = false;
    this._form.hidden = true;
    this._edit.hidden = false;
  }

  private async _saveEdit(): Promise<void> {
    const version = this._shown;
    if (!version) {
      return;
    }
    const label = versionLabel(version);
    this._save.disabled = true;
    try {
      const tags = tagsPatch(version.tags, this._tagsInput.value);
      await this.model.patch(version.version, {
        aliases: parseAliases(this._aliasesInput.value),
        ...(Object.keys(tags).length ? { tags } : {})
      });
      this._stopEdit();
      this._render();
    } catch (error) {
      await showErrorMessage(`Cannot update ${label}`, error as Error);
    } finally {
      this._save.disabled = false;
    }
  }

  // ---- serving a version

  private async _startServing(): Promise<void> {
    const version = this._shown;
    const serve = this._serveAction;
    if (!version || !serve || this._serving) {
      return;
    }
    const label = versionLabel(version);
    this._serving = true;
    this._serve.disabled = true;
    this._serve.dataset.leptonBusy = 'true';
    let failure: Error | null = null;
    try {
      const deployment = await serve({
        model: `${version.name}:${version.version}`
      });
      void this._liveModel?.refresh();
      const show = this._showDeployments;
      Notification.success(
        `Serving ${label} (${deployment.format}): ${deployment.status}`,
        {
          autoClose: 6000,
          actions: show
            ? [{ label: 'Show deployments', callback: () => show() }]
            : []
        }
      );
    } catch (error) {
      failure = error as Error;
    } finally {
      this._serving = false;
      delete this._serve.dataset.leptonBusy;
      this._renderServe(this._shown);
    }
    if (failure) {
      // the server's message, e.g. "this lab cannot serve models: ... (HTTP 409)"
      await showErrorMessage(`Cannot serve ${label}`, failure);
    }
  }

  // ---- deleting a version

  private async _confirmDelete(): Promise<void> {
    const version = this._shown;
    if (!version) {
      return;
    }
    const label = versionLabel(version);
    const aliases = version.aliases ?? [];
    const result = await showDialog({
      title: 'Delete model version',
      body: `Delete ${label} and its ${
        (version.artifacts ?? []).length
      } artifact file(s)?${
        aliases.length ? ` It holds the alias(es) ${aliases.join(', ')}.` : ''
      } This cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    this._delete.disabled = true;
    try {
      await this.model.remove(version.version);
      if (this._selected === version.version) {
        this._selected = null; // the newest left
      }
      this._render();
    } catch (error) {
      await showErrorMessage(`Cannot delete ${label}`, error as Error);
    } finally {
      this._delete.disabled = false;
    }
  }

  private _openRun: (runId: string) => void;
  private _openJob: (jobId: string) => void;
  private _selected: number | null;
  private _shown: IModelVersion | null = null;
  private _rendered = '';
  private _selectKey = '';
  private _editing = false;
  private _select: HTMLSelectElement;
  private _delete: HTMLButtonElement;
  private _serve: HTMLButtonElement;
  private _serveAction:
    ((request: IDeploymentRequest) => Promise<IDeployment>) | null;
  private _showDeployments: (() => void) | null;
  private _live: HTMLElement;
  private _liveModel: LiveDeploymentsModel | null;
  private _liveKey = '';
  private _serving = false;
  private _meta: HTMLElement;
  private _loadError: HTMLElement;
  private _empty: HTMLElement;
  private _content: HTMLElement;
  private _aliases: HTMLElement;
  private _tags: HTMLElement;
  private _edit: HTMLButtonElement;
  private _form: HTMLFormElement;
  private _aliasesInput!: HTMLInputElement;
  private _tagsInput!: HTMLTextAreaElement;
  private _save!: HTMLButtonElement;
  private _formats: HTMLElement;
  private _metrics: HTMLElement;
  private _lineage: HTMLElement;
  private _params: HTMLElement;
  private _evaluations: HTMLElement;
}
