/**
 * The sidebar's Models section: each registered model with its newest
 * version, framework, key metric (the newest version's `accuracy`, else its
 * first metric) and where its aliases point. A click opens the version view
 * (modelview.ts). It follows `ModelRegistryModel` (registry.ts), polled
 * while the sidebar is visible.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-models                   the section; .lepton-models-error a request error
 *   .lepton-no-models                the empty text (hidden while models are listed)
 *   li.lepton-model                  data-lepton-model=<name>, data-lepton-model-latest=<n>
 *     .lepton-model-name             opens the version view at the newest version
 *     .lepton-model-latest           "v3"
 *     .lepton-model-framework        "torch"
 *     .lepton-model-metric           "accuracy 0.9"
 *     .lepton-model-aliases          "production → v3 · staging → v2"
 */
import { IModelSummary } from './api';
import { aliasesText, keyMetricText, formatTime } from './format';
import { ModelRegistryModel } from './registry';
import { el, KeyedList, Section } from './section';

export namespace ModelsSection {
  export interface IOptions {
    model: ModelRegistryModel;
    /** Open the version view of a model (its newest version without one). */
    openModel: (name: string, version?: number) => void;
  }
}

/** The registered models. */
export class ModelsSection extends Section<IModelSummary[]> {
  constructor(options: ModelsSection.IOptions) {
    super({
      model: options.model,
      title: 'Models',
      className: 'lepton-ModelsSection lepton-models',
      errorClass: 'lepton-models-error',
      errorPrefix: 'Cannot read the models'
    });
    this._empty = el('p', 'lepton-Sidebar-empty lepton-no-models', 'Loading…');
    const list = el('ul', 'lepton-Section-list lepton-model-list');
    this.body.append(this._empty, list);
    this._rows = new KeyedList(
      list,
      model => model.name,
      () => new ModelRow(options.openModel)
    );
  }

  protected render(models: IModelSummary[]): void {
    this._empty.textContent = models.length
      ? ''
      : 'No models yet: ll.models.register(model, "name") in a notebook adds one.';
    this._empty.hidden = models.length > 0;
    this._rows.update(models);
  }

  private _empty: HTMLElement;
  private _rows: KeyedList<IModelSummary, ModelRow>;
}

/** One model name in the list. */
class ModelRow {
  constructor(open: (name: string, version?: number) => void) {
    this.node = el('li', 'lepton-Section-item lepton-model');
    const top = el('div', 'lepton-Section-itemTop');
    this._name = el(
      'button',
      'lepton-Section-name lepton-Section-link lepton-model-name'
    );
    this._name.type = 'button';
    this._latest = el(
      'span',
      'lepton-Badge lepton-mod-neutral lepton-model-latest'
    );
    top.append(this._name, this._latest);
    const detail = el('div', 'lepton-Section-detail lepton-Sidebar-muted');
    this._framework = el('span', 'lepton-model-framework');
    this._versions = el('span', 'lepton-model-versions');
    detail.append(this._framework, this._versions);
    this._metric = el('div', 'lepton-Section-metrics lepton-model-metric');
    this._aliases = el('div', 'lepton-Section-detail lepton-model-aliases');
    this.node.append(top, detail, this._metric, this._aliases);
    this._name.addEventListener('click', () => {
      if (this._model) {
        open(this._model.name, this._model.latest_version);
      }
    });
  }

  readonly node: HTMLLIElement;

  update(model: IModelSummary): void {
    this._model = model;
    this.node.dataset.leptonModel = model.name;
    this.node.dataset.leptonModelLatest = String(model.latest_version);
    this._name.textContent = model.name;
    this._name.title = `Open ${model.name}: its versions, formats, lineage and evaluations`;
    this._latest.textContent = `v${model.latest_version}`;
    this._latest.title = `the newest version, registered ${formatTime(model.updated_at)}`;
    this._framework.textContent = model.framework;
    this._versions.textContent = `${model.versions} version${
      model.versions === 1 ? '' : 's'
    }`;
    const metric = keyMetricText(model.metrics);
    this._metric.textContent = metric;
    this._metric.hidden = !metric;
    this._metric.title = metric ? `v${model.latest_version}'s ${metric}` : '';
    const aliases = aliasesText(model.aliases);
    this._aliases.textContent = aliases;
    this._aliases.hidden = !aliases;
  }

  private _model: IModelSummary | null = null;
  private _name: HTMLButtonElement;
  private _latest: HTMLElement;
  private _framework: HTMLElement;
  private _versions: HTMLElement;
  private _metric: HTMLElement;
  private _aliases: HTMLElement;
}
