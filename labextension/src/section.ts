/**
 * Building blocks of the sidebar's sections: a section widget (a header, an
 * error line, an empty text and a body) that follows one polling model, and
 * a list whose rows are keyed by id and updated in place, so a button does
 * not vanish under the pointer at each refresh; the base of the main-area
 * panels that follow one model; and the links to the model versions a run
 * or job registered.
 */
import { Notification } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IModelRef } from './api';
import { IBadge, messageOf, statusBadge, versionLabel } from './format';
import { PollingModel } from './models';

/** Create an element with a class and optional text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A small text button of a row ("Stop", "Log"...). */
export function actionButton(
  className: string,
  label: string,
  title: string
): HTMLButtonElement {
  const node = el(
    'button',
    `jp-Button jp-mod-minimal lepton-Section-action ${className}`,
    label
  );
  node.type = 'button';
  node.title = title;
  return node;
}

/** Show a status as a badge on `node` (extra classes kept in `base`). */
export function setBadge(
  node: HTMLElement,
  status: string,
  base: string
): IBadge {
  const badge = statusBadge(status);
  node.textContent = badge.label;
  node.className = `${base} ${badge.className}`;
  return badge;
}

/**
 * Run a row's action: the button is disabled meanwhile, and a failure is a
 * notification. The model refreshes itself after a mutation.
 */
export async function act(
  node: HTMLButtonElement,
  what: string,
  action: () => Promise<unknown>
): Promise<void> {
  node.disabled = true;
  try {
    await action();
  } catch (error) {
    Notification.error(`${what} failed: ${messageOf(error)}`, {
      autoClose: 8000
    });
  } finally {
    node.disabled = false;
  }
}

export namespace Section {
  export interface IOptions<T> {
    model: PollingModel<T>;
    /** The heading. */
    title: string;
    /** Classes of the section (stable hooks, e.g. `lepton-jobs`). */
    className: string;
    /** Classes of the error line (e.g. `lepton-jobs-error`). */
    errorClass: string;
    /** What the error line says before the message ("Cannot read the jobs"). */
    errorPrefix: string;
  }
}

/**
 * A sidebar section that renders its model's data after each read. While
 * reads fail it keeps the last data on screen, dimmed, under the error.
 */
export abstract class Section<T> extends Widget {
  constructor(options: Section.IOptions<T>) {
    super({ node: el('section') });
    this.model = options.model;
    this.addClass('lepton-Section');
    for (const name of options.className.split(/\s+/).filter(Boolean)) {
      this.addClass(name);
    }
    this._errorPrefix = options.errorPrefix;
    const header = el('div', 'lepton-Section-header');
    header.appendChild(el('h3', 'lepton-Section-title', options.title));
    this.headerActions = el('div', 'lepton-Section-headerActions');
    header.appendChild(this.headerActions);
    this.errorNode = el(
      'div',
      `lepton-Section-error lepton-Sidebar-error ${options.errorClass}`
    );
    this.errorNode.setAttribute('role', 'alert');
    this.errorNode.hidden = true;
    this.body = el('div', 'lepton-Section-body');
    this.node.append(header, this.errorNode, this.body);
    this.model.changed.connect(this._onChanged, this);
  }

  readonly model: PollingModel<T>;
  /** Where a section puts buttons of its header. */
  protected readonly headerActions: HTMLElement;
  protected readonly errorNode: HTMLElement;
  protected readonly body: HTMLElement;

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._onChanged();
  }

  /** Draw the model's data. */
  protected abstract render(data: T): void;

  private _onChanged(): void {
    if (this.isDisposed) {
      return;
    }
    const error = this.model.error;
    this.toggleClass('lepton-mod-stale', error !== null);
    this.errorNode.hidden = error === null;
    this.errorNode.textContent = error
      ? `${this._errorPrefix}: ${messageOf(error)}`
      : '';
    const data = this.model.data;
    if (data !== null) {
      this.render(data);
    }
  }

  private _errorPrefix: string;
}

/** What a main-area panel follows: a model it starts, refreshes and disposes. */
export interface IFollowedModel {
  /** Begin polling (called each time the panel is attached). */
  start(): void;
  /** Read now. */
  refresh(): Promise<void>;
  dispose(): void;
}

/**
 * A main-area panel that follows one model (a run, a job's log, a model's
 * versions): the model starts when the panel is attached, reads at once
 * when the panel is shown again (unless `refreshOnShow` says not), and is
 * disposed with the panel.
 */
export abstract class FollowingPanel<M extends IFollowedModel> extends Widget {
  constructor(model: M, options?: Widget.IOptions) {
    super(options);
    this.model = model;
  }

  readonly model: M;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }

  /** Whether showing the panel again reads at once (true by default). */
  protected refreshOnShow(): boolean {
    return true;
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.start();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this.refreshOnShow()) {
      void this.model.refresh();
    }
  }
}

/** A row of a keyed list. */
export interface IRow<T> {
  readonly node: HTMLElement;
  update(item: T): void;
  dispose?(): void;
}

/**
 * A list of rows keyed by id, in the order of the last `update`; rows are
 * kept and updated in place.
 */
export class KeyedList<T, R extends IRow<T>> {
  constructor(
    readonly node: HTMLElement,
    private readonly _key: (item: T) => string,
    private readonly _create: (item: T) => R
  ) {}

  /** The row of an id, if listed. */
  get(key: string): R | undefined {
    return this._rows.get(key);
  }

  get size(): number {
    return this._rows.size;
  }

  update(items: ReadonlyArray<T>): void {
    const seen = new Set<string>();
    items.forEach((item, index) => {
      const key = this._key(item);
      seen.add(key);
      let row = this._rows.get(key);
      if (!row) {
        row = this._create(item);
        this._rows.set(key, row);
      }
      row.update(item);
      const at = this.node.children[index] ?? null;
      if (at !== row.node) {
        this.node.insertBefore(row.node, at);
      }
    });
    for (const [key, row] of this._rows) {
      if (!seen.has(key)) {
        row.node.remove();
        row.dispose?.();
        this._rows.delete(key);
      }
    }
  }

  private _rows = new Map<string, R>();
}

/**
 * Links to the model versions a run or job registered ("digits-mlp v3"),
 * each opening the version view; redrawn only when the list changes.
 */
export class ModelLinks {
  constructor(
    className: string,
    private readonly _linkClass: string,
    private readonly _open: (ref: IModelRef) => void
  ) {
    this.node = el('div', `lepton-ModelLinks ${className}`);
    this.node.hidden = true;
  }

  readonly node: HTMLElement;

  update(refs: ReadonlyArray<IModelRef> | null | undefined): void {
    const list = refs ?? [];
    const key = list.map(versionLabel).join('\n');
    if (key === this._key) {
      return;
    }
    this._key = key;
    this.node.hidden = !list.length;
    this.node.replaceChildren(
      el('span', 'lepton-ModelLinks-label', 'Registered:'),
      ...list.map(ref => {
        const link = el(
          'button',
          `lepton-Link lepton-Section-link ${this._linkClass}`,
          versionLabel(ref)
        );
        link.type = 'button';
        link.title = `Open ${versionLabel(ref)} in the model registry`;
        link.dataset.leptonModel = ref.name;
        link.dataset.leptonVersion = String(ref.version);
        link.addEventListener('click', () => this._open(ref));
        return link;
      })
    );
  }

  private _key: string | null = null;
}
