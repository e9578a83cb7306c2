/**
 * The sidebar's cluster section: mode, status, addresses, totals and a
 * worker table narrow enough for the default sidebar width (worker, CPU,
 * memory; GPU load when there are GPUs; details in tooltips).
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-cluster                  the section
 *   .lepton-cluster-mode             text: the mode (local | cuda | factory | external)
 *   .lepton-cluster-class            text: the Dask cluster class (e.g. distributed.LocalCluster)
 *   .lepton-cluster-scaling          text: "adaptive 0–8" or "fixed size"; data-lepton-adaptive="true|false"
 *   .lepton-cluster-adapt-waiting    text: "a run is waiting for N workers" (only while one is)
 *   .lepton-cluster-reason           text: why this mode
 *   .lepton-cluster-status           text: the status (a badge)
 *   .lepton-cluster-error            the cluster's own error (status "error")
 *   .lepton-scheduler-address        text: the scheduler address
 *   .lepton-dashboard-link           <a target="_blank"> to the Dask dashboard
 *   .lepton-worker-count             text: just the number of workers
 *   .lepton-thread-count             text: just the total number of threads
 *   .lepton-memory                   text: "used / limit"
 *   .lepton-gpu-count                text: just the number of GPUs
 *   table.lepton-workers             one tbody row per worker (tr.lepton-worker, data-lepton-worker=<name>)
 *   .lepton-sidebar-error            a request error (HTTP status and the server's JSON message)
 *   .lepton-cluster-controls         the scaling controls (disabled unless the lab owns a running cluster)
 *   input.lepton-cluster-workers-input, button.lepton-cluster-scale
 *                                    a fixed size and Scale (turns adaptive scaling off)
 *   input.lepton-cluster-adapt-toggle, input.lepton-cluster-adapt-min, input.lepton-cluster-adapt-max,
 *   button.lepton-cluster-adapt-apply
 *                                    Adaptive on/off with its bounds, and Apply
 *   .lepton-cluster-control-error    the server's answer to a refused change (a 400's message)
 */
import { ICluster, IWorker } from './api';
import {
  formatBytes,
  formatMemory,
  formatPercent,
  messageOf,
  statusBadge
} from './format';
import { ClusterModel } from './models';
import { el, Section } from './section';

/** "adaptive 0–8", or "fixed size" when Dask's adaptive scaling is off. */
export function scalingLabel(cluster: ICluster): string {
  const adapt = cluster.adapt;
  return adapt ? `adaptive ${adapt.minimum}–${adapt.maximum}` : 'fixed size';
}

/**
 * "a run is waiting for N workers" while runs (`ll.fit`) ask an adaptive
 * cluster for more workers than it has, else null.
 */
export function waitingLabel(cluster: ICluster): string | null {
  const requested = cluster.adapt?.requested ?? 0;
  const current = cluster.totals?.workers ?? cluster.workers?.length ?? 0;
  if (requested <= current) {
    return null;
  }
  return `a run is waiting for ${requested} worker${requested === 1 ? '' : 's'}`;
}

export class ClusterSection extends Section<ICluster> {
  constructor(model: ClusterModel) {
    super({
      model,
      title: 'Cluster',
      className: 'lepton-ClusterSection lepton-cluster',
      errorClass: 'lepton-sidebar-error',
      errorPrefix: 'Cannot read the cluster'
    });
    this._content = el('p', 'lepton-Sidebar-empty', 'Loading…');
    this._controls = new ScaleControls(model);
    this._controls.node.hidden = true;
    this.body.append(this._content, this._controls.node);
  }

  /** The scaling controls (kept across refreshes, so typing is not lost). */
  get controls(): ScaleControls {
    return this._controls;
  }

  protected render(cluster: ICluster): void {
    const body = el('div', 'lepton-Cluster');
    const summary = el('dl', 'lepton-Cluster-summary');
    const row = (label: string, value: Node | string, className: string) => {
      summary.appendChild(el('dt', undefined, label));
      const dd = el('dd', className);
      if (typeof value === 'string') {
        dd.textContent = value;
      } else {
        dd.appendChild(value);
      }
      summary.appendChild(dd);
    };

    const modeBox = el('span');
    modeBox.appendChild(el('span', 'lepton-cluster-mode', cluster.mode ?? '–'));
    if (cluster.reason) {
      modeBox.appendChild(
        el('span', 'lepton-cluster-reason lepton-Sidebar-muted', cluster.reason)
      );
    }
    row('Mode', modeBox, 'lepton-Cluster-mode');

    row('Class', cluster.cluster_class ?? '–', 'lepton-cluster-class');
    const scaling = el('span');
    const scalingText = el(
      'span',
      'lepton-cluster-scaling',
      scalingLabel(cluster)
    );
    scalingText.dataset.leptonAdaptive = String(!!cluster.adapt);
    scaling.appendChild(scalingText);
    const waiting = waitingLabel(cluster);
    if (waiting) {
      scaling.appendChild(
        el('span', 'lepton-cluster-adapt-waiting lepton-Sidebar-muted', waiting)
      );
    }
    row('Scaling', scaling, 'lepton-Cluster-scaling');

    const badge = statusBadge(cluster.status);
    row(
      'Status',
      el('span', `lepton-cluster-status ${badge.className}`, cluster.status),
      'lepton-Cluster-statusRow'
    );
    if (cluster.error) {
      row(
        'Error',
        cluster.error,
        'lepton-cluster-error lepton-Sidebar-errorText'
      );
    }
    row(
      'Scheduler',
      cluster.scheduler_address ?? '–',
      'lepton-scheduler-address'
    );
    if (cluster.dashboard_link) {
      const link = el('a', 'lepton-dashboard-link', 'Open dashboard');
      link.href = cluster.dashboard_link;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      link.title = cluster.dashboard_link;
      row('Dashboard', link, 'lepton-Cluster-dashboard');
    } else {
      row('Dashboard', '–', 'lepton-Cluster-dashboard');
    }

    const workers = cluster.workers ?? [];
    const totals = cluster.totals ?? {};
    row(
      'Workers',
      String(totals.workers ?? workers.length),
      'lepton-worker-count'
    );
    row('Threads', String(totals.threads ?? 0), 'lepton-thread-count');
    row(
      'Memory',
      `${formatBytes(totals.memory_used)} / ${formatBytes(totals.memory_limit)}`,
      'lepton-memory'
    );
    row('GPUs', String(totals.gpus ?? 0), 'lepton-gpu-count');
    body.appendChild(summary);
    body.appendChild(workerTable(workers));

    this._content.replaceWith(body);
    this._content = body;
    this._controls.node.hidden = false;
    this._controls.update(cluster);
  }

  private _content: HTMLElement;
  private _controls: ScaleControls;
}

/** A labelled number input of the controls. */
function numberInput(className: string, label: string, title: string) {
  const input = el('input', `lepton-Cluster-number ${className}`);
  input.type = 'number';
  input.min = '0';
  input.step = '1';
  input.title = title;
  input.setAttribute('aria-label', label);
  return input;
}

/** A whole number typed into `input`, or null. */
function wholeNumber(input: HTMLInputElement): number | null {
  const text = input.value.trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}

/**
 * The cluster's scaling controls: a fixed size with Scale (which also turns
 * adaptive scaling off), and Adaptive on/off with minimum and maximum and
 * Apply. Values follow the status until the user edits one; a refused change
 * shows the server's message and keeps what was typed.
 */
export class ScaleControls {
  constructor(private readonly _model: ClusterModel) {
    this.node = el('div', 'lepton-Cluster-controls lepton-cluster-controls');

    const fixed = el('div', 'lepton-Cluster-controlRow');
    this.workersInput = numberInput(
      'lepton-cluster-workers-input',
      'Workers',
      'A fixed number of workers'
    );
    this.scaleButton = el(
      'button',
      'jp-Button jp-mod-minimal lepton-Section-action lepton-cluster-scale',
      'Scale'
    );
    this.scaleButton.type = 'button';
    this.scaleButton.title =
      'Scale to this many workers (adaptive scaling off)';
    fixed.append(
      el('span', 'lepton-Cluster-controlLabel', 'Workers'),
      this.workersInput,
      this.scaleButton
    );

    const adaptive = el('div', 'lepton-Cluster-controlRow');
    const toggleLabel = el('label', 'lepton-Cluster-controlLabel');
    this.adaptToggle = el('input', 'lepton-cluster-adapt-toggle');
    this.adaptToggle.type = 'checkbox';
    this.adaptToggle.title = 'Dask’s adaptive scaling between min and max';
    toggleLabel.append(this.adaptToggle, document.createTextNode(' Adaptive'));
    this.minInput = numberInput(
      'lepton-cluster-adapt-min',
      'Minimum workers',
      'Workers kept when idle'
    );
    this.maxInput = numberInput(
      'lepton-cluster-adapt-max',
      'Maximum workers',
      'Workers at most'
    );
    this.applyButton = el(
      'button',
      'jp-Button jp-mod-minimal lepton-Section-action lepton-cluster-adapt-apply',
      'Apply'
    );
    this.applyButton.type = 'button';
    this.applyButton.title =
      'Turn adaptive scaling on with these bounds (or off, at the fixed size)';
    adaptive.append(
      toggleLabel,
      this.minInput,
      el('span', 'lepton-Sidebar-muted', '–'),
      this.maxInput,
      this.applyButton
    );

    this.errorNode = el(
      'div',
      'lepton-Sidebar-error lepton-cluster-control-error'
    );
    this.errorNode.setAttribute('role', 'alert');
    this.errorNode.hidden = true;
    this.node.append(fixed, adaptive, this.errorNode);

    for (const input of [
      this.workersInput,
      this.minInput,
      this.maxInput,
      this.adaptToggle
    ]) {
      input.addEventListener('input', () => {
        this._edited = true;
        this._syncEnabled();
      });
    }
    this.adaptToggle.addEventListener('change', () => {
      this._edited = true;
      this._syncEnabled();
    });
    this.scaleButton.addEventListener('click', () => void this.scale());
    this.applyButton.addEventListener('click', () => void this.apply());
  }

  readonly node: HTMLElement;
  readonly workersInput: HTMLInputElement;
  readonly scaleButton: HTMLButtonElement;
  readonly adaptToggle: HTMLInputElement;
  readonly minInput: HTMLInputElement;
  readonly maxInput: HTMLInputElement;
  readonly applyButton: HTMLButtonElement;
  readonly errorNode: HTMLElement;

  /** Follow a new status: limits, what may be changed, and (unless edited) the values. */
  update(cluster: ICluster): void {
    this._cluster = cluster;
    const limit = String(Math.max(cluster.max_workers, 0));
    for (const input of [this.workersInput, this.minInput, this.maxInput]) {
      input.max = limit;
    }
    if (!this._edited && !this._busy) {
      const workers = cluster.totals?.workers ?? cluster.workers?.length ?? 0;
      this.workersInput.value = String(workers);
      this.adaptToggle.checked = !!cluster.adapt;
      this.minInput.value = String(cluster.adapt?.minimum ?? 0);
      this.maxInput.value = String(
        cluster.adapt?.maximum ?? Math.max(cluster.max_workers, 1)
      );
    }
    this._syncEnabled();
  }

  /** Scale to the fixed size (adaptive scaling goes off). */
  async scale(): Promise<void> {
    const workers = wholeNumber(this.workersInput);
    if (workers === null) {
      this._showError('Workers must be a whole number of 0 or more.');
      return;
    }
    await this._run(() => this._model.scale(workers));
  }

  /** Adaptive on with min/max, or (toggle off) a fixed size. */
  async apply(): Promise<void> {
    if (!this.adaptToggle.checked) {
      return this.scale();
    }
    const minimum = wholeNumber(this.minInput);
    const maximum = wholeNumber(this.maxInput);
    if (minimum === null || maximum === null) {
      this._showError(
        'Minimum and maximum must be whole numbers of 0 or more.'
      );
      return;
    }
    await this._run(() => this._model.adapt(minimum, maximum));
  }

  private async _run(action: () => Promise<unknown>): Promise<void> {
    this._busy = true;
    this._showError(null);
    this._syncEnabled();
    try {
      await action();
      this._edited = false;
    } catch (error) {
      this._showError(messageOf(error));
    } finally {
      this._busy = false;
      if (this._cluster) {
        this.update(this._model.data ?? this._cluster);
      }
    }
  }

  private _showError(message: string | null): void {
    this.errorNode.hidden = message === null;
    this.errorNode.textContent = message ?? '';
  }

  /** Controls work only on a running cluster the lab owns, one change at a time. */
  private _syncEnabled(): void {
    const cluster = this._cluster;
    const owned = !!cluster?.owned && cluster.status === 'running';
    const why = !cluster
      ? 'Loading…'
      : !cluster.owned
        ? 'Not the lab’s own cluster: scale it with the tool that started it'
        : cluster.status !== 'running'
          ? `The cluster is ${cluster.status}`
          : '';
    this.node.title = why;
    this.node.classList.toggle('lepton-mod-disabled', !owned);
    const off = !owned || this._busy;
    this.workersInput.disabled = off;
    this.scaleButton.disabled = off;
    this.adaptToggle.disabled = off;
    this.minInput.disabled = off || !this.adaptToggle.checked;
    this.maxInput.disabled = off || !this.adaptToggle.checked;
    this.applyButton.disabled = off;
  }

  private _cluster: ICluster | null = null;
  private _edited = false;
  private _busy = false;
}

/** The worker table: Worker, CPU, Memory (and GPU when any worker has one). */
export function workerTable(workers: IWorker[]): HTMLElement {
  const wrapper = el('div', 'lepton-Cluster-tableWrapper');
  if (!workers.length) {
    wrapper.appendChild(
      el('p', 'lepton-Sidebar-empty lepton-no-workers', 'No workers.')
    );
    return wrapper;
  }
  const hasGpu = workers.some(w => !!w.gpu);
  const table = el('table', 'lepton-Cluster-table lepton-workers');
  const head = el('thead');
  const headRow = el('tr');
  const columns: Array<[string, string]> = [
    ['Worker', 'Worker name (hover for its address, status and threads)'],
    ['CPU', 'CPU load of the worker process'],
    ['Memory', 'Memory used / the worker’s limit']
  ];
  if (hasGpu) {
    columns.push(['GPU', 'GPU utilization (hover for the GPU and its memory)']);
  }
  for (const [name, title] of columns) {
    const th = el('th', undefined, name);
    th.title = title;
    headRow.appendChild(th);
  }
  head.appendChild(headRow);
  table.appendChild(head);

  const body = el('tbody');
  for (const worker of workers) {
    const tr = el('tr', 'lepton-worker');
    tr.dataset.leptonWorker = worker.name;
    tr.dataset.leptonWorkerStatus = worker.status;
    const name = el('td', 'lepton-worker-name', worker.name);
    name.title = `${worker.name}\n${worker.address}\nstatus: ${worker.status}\nthreads: ${worker.nthreads}`;
    tr.appendChild(name);
    tr.appendChild(el('td', 'lepton-worker-cpu', formatPercent(worker.cpu)));
    const memory = el(
      'td',
      'lepton-worker-memory',
      formatMemory(worker.memory_used, worker.memory_limit)
    );
    memory.title = `${formatBytes(worker.memory_used)} of ${formatBytes(worker.memory_limit)}`;
    tr.appendChild(memory);
    if (hasGpu) {
      const gpu = worker.gpu;
      const cell = el(
        'td',
        'lepton-worker-gpu',
        gpu ? formatPercent(gpu.utilization) : '–'
      );
      if (gpu) {
        cell.title = `${gpu.name ?? 'GPU'}\nmemory ${formatMemory(gpu.memory_used, gpu.memory_total)}`;
      }
      tr.appendChild(cell);
    }
    body.appendChild(tr);
  }
  table.appendChild(body);
  wrapper.appendChild(table);
  return wrapper;
}
