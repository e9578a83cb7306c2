/**
 * The "Lepton" left-sidebar panel: cluster mode, status, addresses, totals
 * and a table of workers, refreshed by a poll while the panel is visible.
 *
 * Stable DOM hooks (used by the browser tests):
 *   #lepton-sidebar                  the panel root; data-lepton-status="loading|running|starting|error|unreachable"
 *   .lepton-cluster-mode             text: the mode (local | cuda | external)
 *   .lepton-cluster-reason           text: why this mode
 *   .lepton-cluster-status           text: running | starting | error
 *   .lepton-cluster-error            the cluster's own error (status "error")
 *   .lepton-scheduler-address        text: the scheduler address
 *   .lepton-dashboard-link           <a target="_blank"> to the Dask dashboard
 *   .lepton-worker-count             text: just the number of workers
 *   .lepton-thread-count             text: just the total number of threads
 *   .lepton-memory                   text: "used / limit"
 *   .lepton-gpu-count                text: just the number of GPUs
 *   table.lepton-workers             one tbody row per worker (tr.lepton-worker, data-lepton-worker=<name>)
 *   .lepton-sidebar-error            a request error (HTTP status and the server's JSON message)
 *   button.lepton-refresh            refresh now
 *   .lepton-jobs / .lepton-schedules notebook jobs and schedules (jobs.ts)
 */
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import {
  formatBytes,
  formatPercent,
  getCluster,
  ICluster,
  IJob,
  IWorker
} from './api';
import { el, MAX_BACKOFF_MS } from './element';
import { leptonIcon } from './icon';
import { JobsSection } from './jobs';

export const SIDEBAR_ID = 'lepton-sidebar';
export const DEFAULT_REFRESH_MS = 3000;
const MIN_REFRESH_MS = 500;


export namespace ClusterSidebar {
  export interface IOptions {
    /** Refresh interval in milliseconds. */
    refreshInterval?: number;
    /** Fetch the cluster (injectable for tests); defaults to the REST API. */
    fetchCluster?: () => Promise<ICluster>;
    /** Open a job's log (the jobs section's "Log" button). */
    openJobLog?: (job: IJob) => void;
  }
}

/**
 * The sidebar widget.
 */
export class ClusterSidebar extends Widget {
  constructor(options: ClusterSidebar.IOptions = {}) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('lepton-Sidebar');
    this.title.icon = leptonIcon;
    this.title.caption = 'Lepton Lab: cluster, jobs and schedules';
    this._fetch = options.fetchCluster ?? getCluster;
    this.node.dataset.leptonStatus = 'loading';

    const header = el('div', 'lepton-Sidebar-header');
    header.appendChild(el('h2', 'lepton-Sidebar-title', 'Lepton cluster'));
    const refresh = el('button', 'jp-Button jp-mod-minimal lepton-refresh');
    refresh.type = 'button';
    refresh.title = 'Refresh now';
    refresh.textContent = '⟳';
    refresh.addEventListener('click', () => {
      void this.refresh();
    });
    header.appendChild(refresh);
    this.node.appendChild(header);

    this._errorNode = el('div', 'lepton-Sidebar-error lepton-sidebar-error');
    this._errorNode.setAttribute('role', 'alert');
    this._errorNode.hidden = true;
    this.node.appendChild(this._errorNode);

    this._body = el('div', 'lepton-Sidebar-body');
    this._body.appendChild(el('p', 'lepton-Sidebar-empty', 'Loading…'));
    this.node.appendChild(this._body);

    const interval = Private.clampInterval(options.refreshInterval);
    const openJobLog = options.openJobLog;
    this._jobs = new JobsSection({
      interval,
      isVisible: () => this.isVisible,
      openLog: job => openJobLog?.(job)
    });
    this.node.appendChild(this._jobs.node);

    this._poll = new Poll<void, Error>({
      auto: false,
      factory: () => this._tick(),
      frequency: {
        interval,
        backoff: true,
        max: Math.max(interval, MAX_BACKOFF_MS)
      },
      name: 'lepton-lab:cluster',
      // Do not hit the server while the panel is collapsed or the tab hidden.
      standby: () => !this.isVisible || document.visibilityState === 'hidden'
    });
  }

  /** The refresh interval in milliseconds. */
  get refreshInterval(): number {
    return this._poll.frequency.interval;
  }
  set refreshInterval(value: number) {
    const interval = Private.clampInterval(value);
    this._poll.frequency = {
      ...this._poll.frequency,
      interval,
      max: Math.max(interval, MAX_BACKOFF_MS)
    };
    this._jobs.interval = interval;
  }

  /** The jobs and schedules section. */
  get jobs(): JobsSection {
    return this._jobs;
  }

  /** The last cluster answer, if any. */
  get cluster(): ICluster | null {
    return this._cluster;
  }

  /** Fetch and render now (also restarts the poll's schedule). */
  async refresh(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    await Promise.all([
      this._poll.refresh().then(() => this._poll.tick),
      this._jobs.refresh()
    ]);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    this._jobs.dispose();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this._poll.start();
    this._jobs.start();
    if (this.isVisible) {
      void this._poll.refresh();
      void this._jobs.refresh().catch(() => undefined);
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Refresh as soon as the panel is opened, rather than at the next tick.
    void this._poll.refresh();
    void this._jobs.refresh().catch(() => undefined);
  }

  private async _tick(): Promise<void> {
    try {
      const cluster = await this._fetch();
      if (this.isDisposed) {
        return;
      }
      this._cluster = cluster;
      this._showError(null);
      this.removeClass('lepton-mod-stale');
      this._render(cluster);
    } catch (error) {
      if (this.isDisposed) {
        return;
      }
      this.node.dataset.leptonStatus = 'unreachable';
      // Keep the last answer on screen, dimmed, under the error.
      this.addClass('lepton-mod-stale');
      this._showError(error);
      throw error; // let the poll back off
    }
  }

  private _showError(error: unknown): void {
    if (!error) {
      this._errorNode.hidden = true;
      this._errorNode.textContent = '';
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this._errorNode.textContent = `Cannot read the cluster: ${message}`;
    this._errorNode.hidden = false;
  }

  private _render(cluster: ICluster): void {
    this.node.dataset.leptonStatus = cluster.status;
    this.node.dataset.leptonMode = cluster.mode;
    const body = el('div', 'lepton-Sidebar-body');

    // Summary: a definition list of label/value rows.
    const summary = el('dl', 'lepton-Sidebar-summary');
    const row = (label: string, value: Node | string, className: string) => {
      summary.appendChild(el('dt', undefined, label));
      const dd = el('dd', className);
      if (typeof value === 'string') {
        dd.textContent = value;
      } else {
        dd.appendChild(value);
      }
      summary.appendChild(dd);
      return dd;
    };

    const mode = el('span', 'lepton-cluster-mode', cluster.mode);
    const modeBox = el('span');
    modeBox.appendChild(mode);
    if (cluster.reason) {
      modeBox.appendChild(
        el('span', 'lepton-cluster-reason lepton-Sidebar-muted', cluster.reason)
      );
    }
    row('Mode', modeBox, 'lepton-Sidebar-mode');

    const status = el(
      'span',
      `lepton-cluster-status lepton-Sidebar-status lepton-mod-${cluster.status}`,
      cluster.status
    );
    row('Status', status, 'lepton-Sidebar-statusRow');
    if (cluster.error) {
      row('Error', cluster.error, 'lepton-cluster-error lepton-Sidebar-errorText');
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
      row('Dashboard', link, 'lepton-Sidebar-dashboard');
    } else {
      row('Dashboard', '–', 'lepton-Sidebar-dashboard');
    }

    const totals = cluster.totals ?? {
      workers: cluster.workers?.length ?? 0,
      threads: 0,
      memory_limit: 0,
      memory_used: 0,
      gpus: 0
    };
    row('Workers', String(totals.workers), 'lepton-worker-count');
    row('Threads', String(totals.threads), 'lepton-thread-count');
    row(
      'Memory',
      `${formatBytes(totals.memory_used)} / ${formatBytes(totals.memory_limit)}`,
      'lepton-memory'
    );
    row('GPUs', String(totals.gpus), 'lepton-gpu-count');
    body.appendChild(summary);

    body.appendChild(Private.workerTable(cluster.workers ?? []));

    this._body.replaceWith(body);
    this._body = body;
  }

  private _fetch: () => Promise<ICluster>;
  private _poll: Poll<void, Error>;
  private _jobs: JobsSection;
  private _body: HTMLElement;
  private _errorNode: HTMLElement;
  private _cluster: ICluster | null = null;
}

namespace Private {
  export function clampInterval(value: number | undefined): number {
    if (value === undefined || value === null || !isFinite(value)) {
      return DEFAULT_REFRESH_MS;
    }
    return Math.max(MIN_REFRESH_MS, Math.round(value));
  }

  export function workerTable(workers: IWorker[]): HTMLElement {
    const wrapper = el('div', 'lepton-Sidebar-tableWrapper');
    if (!workers.length) {
      wrapper.appendChild(
        el('p', 'lepton-Sidebar-empty lepton-no-workers', 'No workers.')
      );
      return wrapper;
    }
    const hasGpu = workers.some(w => !!w.gpu);
    const table = el('table', 'lepton-Sidebar-table lepton-workers');
    const head = el('thead');
    const headRow = el('tr');
    const columns = ['Worker', 'Threads', 'Memory', 'CPU'];
    if (hasGpu) {
      columns.push('GPU', 'GPU util', 'GPU memory');
    }
    for (const name of columns) {
      headRow.appendChild(el('th', undefined, name));
    }
    head.appendChild(headRow);
    table.appendChild(head);

    const body = el('tbody');
    for (const worker of workers) {
      const tr = el('tr', 'lepton-worker');
      tr.dataset.leptonWorker = worker.name;
      tr.dataset.leptonWorkerStatus = worker.status;
      const nameCell = el('td', 'lepton-worker-name', worker.name);
      nameCell.title = `${worker.address} (${worker.status})`;
      tr.appendChild(nameCell);
      tr.appendChild(
        el('td', 'lepton-worker-threads', String(worker.nthreads))
      );
      const mem = el(
        'td',
        'lepton-worker-memory',
        `${formatBytes(worker.memory_used)} / ${formatBytes(worker.memory_limit)}`
      );
      tr.appendChild(mem);
      tr.appendChild(el('td', 'lepton-worker-cpu', formatPercent(worker.cpu)));
      if (hasGpu) {
        const gpu = worker.gpu;
        tr.appendChild(el('td', 'lepton-worker-gpu', gpu ? gpu.name : '–'));
        tr.appendChild(
          el(
            'td',
            'lepton-worker-gpu-util',
            gpu ? formatPercent(gpu.utilization) : '–'
          )
        );
        tr.appendChild(
          el(
            'td',
            'lepton-worker-gpu-memory',
            gpu && (gpu.memory_used !== null || gpu.memory_total !== null)
              ? `${formatBytes(gpu.memory_used)} / ${formatBytes(gpu.memory_total)}`
              : '–'
          )
        );
      }
      body.appendChild(tr);
    }
    table.appendChild(body);
    wrapper.appendChild(table);
    return wrapper;
  }
}
