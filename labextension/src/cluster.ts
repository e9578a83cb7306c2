/**
 * The sidebar's cluster section: mode, status, addresses, totals and a
 * worker table narrow enough for the default sidebar width (worker, CPU,
 * memory; GPU load when there are GPUs; details in tooltips).
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-cluster                  the section
 *   .lepton-cluster-mode             text: the mode (local | cuda | external)
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
 */
import { ICluster, IWorker } from './api';
import {
  formatBytes,
  formatMemory,
  formatPercent,
  statusBadge
} from './format';
import { ClusterModel } from './models';
import { el, Section } from './section';

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
    this.body.appendChild(this._content);
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
  }

  private _content: HTMLElement;
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
