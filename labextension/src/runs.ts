/**
 * Runs in the UI: the sidebar's Runs section (the newest runs with status,
 * progress, the last metrics and Stop) and the run panel (`RunView`, in a
 * `MainAreaWidget`): curves per metric family, progress, ranks and their
 * usage, events, the error with its rank, and Stop. Both read REST through
 * their models only, so a panel keeps working after the notebook that started
 * the run is closed, and for runs started by jobs.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-runs                       the sidebar section; .lepton-runs-error a request error
 *   li.lepton-run                      data-lepton-run=<id>, data-lepton-run-status=<status>
 *     .lepton-run-name                 opens the panel (as does button.lepton-run-open)
 *     .lepton-run-status               the status badge
 *     .lepton-run-progress             "epoch 3/10", "step 120", ...
 *     .lepton-run-metrics              the last metrics ("loss 0.12 · val_loss 0.15")
 *     .lepton-run-error                the first line of the error, with its rank
 *     button.lepton-run-stop           queued and running runs only
 *   .lepton-RunPanel                   the panel: data-lepton-run, data-lepton-run-status,
 *                                      data-lepton-run-complete="true" once all is read
 *     .lepton-run-panel-status / .lepton-run-panel-progress / .lepton-run-panel-error
 *     .lepton-run-chart[data-lepton-metric]  path.lepton-run-curve[data-lepton-series][data-lepton-points]
 *     table.lepton-run-ranks           tr.lepton-run-rank[data-lepton-rank]
 *     ul.lepton-run-events             li.lepton-run-event[data-kind]
 *     button.lepton-run-panel-stop     while the run is active
 *     .lepton-run-panel-models         the model versions the run registered:
 *       button.lepton-run-model        data-lepton-model, data-lepton-version ("digits-mlp v3"),
 *                                      opens the version view
 */
import { IModelRef, IRun, IRunEvent, IRunUsage } from './api';
import { LineChart } from './chart';
import {
  firstLine,
  formatBytes,
  formatDuration,
  formatSeconds,
  formatTime,
  isActiveStatus,
  messageOf,
  metricsText,
  runFraction,
  runProgressText
} from './format';
import { RunModel, RunsModel } from './models';
import {
  act,
  actionButton,
  el,
  FollowingPanel,
  KeyedList,
  ModelLinks,
  Section,
  setBadge
} from './section';

/** "rank 1: ValueError: bad batch" from a run's error. */
export function runErrorText(run: Pick<IRun, 'error' | 'error_rank'>): string {
  const line = firstLine(run.error);
  if (!line) {
    return '';
  }
  return typeof run.error_rank === 'number'
    ? `rank ${run.error_rank}: ${line}`
    : line;
}

export namespace RunsSection {
  export interface IOptions {
    model: RunsModel;
    /** Open a run's panel. */
    openRun: (run: IRun) => void;
  }
}

/** The sidebar's Runs section. */
export class RunsSection extends Section<IRun[]> {
  constructor(options: RunsSection.IOptions) {
    super({
      model: options.model,
      title: 'Runs',
      className: 'lepton-RunsSection lepton-runs',
      errorClass: 'lepton-runs-error',
      errorPrefix: 'Cannot read the runs'
    });
    const model = options.model;
    this._empty = el('p', 'lepton-Sidebar-empty lepton-no-runs', 'Loading…');
    const list = el('ul', 'lepton-Section-list lepton-run-list');
    this.body.append(this._empty, list);
    this._rows = new KeyedList(
      list,
      run => run.id,
      () =>
        new RunRow({
          open: run => options.openRun(run),
          stop: (node, run) =>
            void act(node, `Stopping ${run.name || run.id}`, () =>
              model.stop(run.id)
            )
        })
    );
  }

  protected render(runs: IRun[]): void {
    this._empty.textContent = runs.length
      ? ''
      : 'No runs yet: ll.fit(...) in a notebook starts one.';
    this._empty.hidden = runs.length > 0;
    this._rows.update(runs);
  }

  private _empty: HTMLElement;
  private _rows: KeyedList<IRun, RunRow>;
}

/** One run in the list. */
class RunRow {
  constructor(handlers: {
    open: (run: IRun) => void;
    stop: (node: HTMLButtonElement, run: IRun) => void;
  }) {
    this.node = el('li', 'lepton-Section-item lepton-run');
    const top = el('div', 'lepton-Section-itemTop');
    this._name = el(
      'button',
      'lepton-Section-name lepton-Section-link lepton-run-name'
    );
    this._name.type = 'button';
    this._status = el('span', 'lepton-run-status');
    top.append(this._name, this._status);
    const detail = el('div', 'lepton-Section-detail lepton-Sidebar-muted');
    this._id = el('span', 'lepton-run-id');
    this._progress = el('span', 'lepton-run-progress');
    detail.append(this._id, this._progress);
    this._metrics = el('div', 'lepton-Section-metrics lepton-run-metrics');
    this._error = el('div', 'lepton-Section-errorText lepton-run-error');
    const actions = el('div', 'lepton-Section-actions');
    const open = actionButton(
      'lepton-run-open',
      'Open',
      'Show the run’s curves, ranks and events'
    );
    this._stop = actionButton('lepton-run-stop', 'Stop', 'Stop this run');
    actions.append(open, this._stop);
    this.node.append(top, detail, this._metrics, this._error, actions);
    const onOpen = () => this._run && handlers.open(this._run);
    this._name.addEventListener('click', onOpen);
    open.addEventListener('click', onOpen);
    this._stop.addEventListener('click', () => {
      if (this._run) {
        handlers.stop(this._stop, this._run);
      }
    });
  }

  readonly node: HTMLLIElement;

  update(run: IRun): void {
    this._run = run;
    this.node.dataset.leptonRun = run.id;
    this.node.dataset.leptonRunStatus = run.status;
    this._name.textContent = run.name || run.id;
    this._name.title = `Open run ${run.id} (${run.framework}, ${run.world_size} rank${
      run.world_size === 1 ? '' : 's'
    })`;
    setBadge(this._status, run.status, 'lepton-run-status');
    this._id.textContent = run.id;
    const progress = runProgressText(run);
    this._progress.textContent = progress;
    this._progress.hidden = !progress;
    const metrics = metricsText(run.last_metrics);
    this._metrics.textContent = metrics;
    this._metrics.hidden = !metrics;
    const error = run.status === 'failed' ? runErrorText(run) : '';
    this._error.textContent = error;
    this._error.title = run.error ?? '';
    this._error.hidden = !error;
    this._stop.hidden = !isActiveStatus(run.status);
  }

  private _run: IRun | null = null;
  private _name: HTMLButtonElement;
  private _status: HTMLElement;
  private _id: HTMLElement;
  private _progress: HTMLElement;
  private _metrics: HTMLElement;
  private _error: HTMLElement;
  private _stop: HTMLButtonElement;
}

// ---- the run panel ----------------------------------------------------------------------

function numberOf(value: unknown): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

/** The workers of the latest `start` event, by rank. */
function startWorkers(events: ReadonlyArray<IRunEvent>): string[] {
  for (let i = events.length - 1; i >= 0; i--) {
    const { kind, data } = events[i];
    const workers = data?.['workers'];
    if (kind === 'start' && Array.isArray(workers)) {
      return workers.map(String);
    }
  }
  return [];
}

/** The usage rows of the latest attempt, by rank. */
function usageByRank(usage: ReadonlyArray<IRunUsage>): Map<number, IRunUsage> {
  const out = new Map<number, IRunUsage>();
  for (const row of usage) {
    const previous = out.get(row.rank);
    if (!previous || row.attempt >= previous.attempt) {
      out.set(row.rank, row);
    }
  }
  return out;
}

export namespace RunView {
  export interface IOptions {
    /** Open the version view of a model version the run registered. */
    openModel?: (ref: IModelRef) => void;
  }
}

/**
 * The content of a run's main-area panel.
 */
export class RunView extends FollowingPanel<RunModel> {
  constructor(model: RunModel, options: RunView.IOptions = {}) {
    super(model);
    this.runId = model.runId;
    this.addClass('lepton-RunPanel');
    this.node.dataset.leptonRun = model.runId;
    this.node.tabIndex = -1;

    const header = el('div', 'lepton-RunPanel-header');
    this._name = el(
      'h2',
      'lepton-RunPanel-name lepton-run-panel-name',
      model.runId
    );
    this._status = el('span', 'lepton-run-panel-status');
    this._stop = actionButton(
      'lepton-RunPanel-stop lepton-run-panel-stop',
      'Stop',
      'Stop this run'
    );
    this._stop.addEventListener('click', () => {
      this._stopping = true;
      this._render();
      void act(this._stop, `Stopping run ${model.runId}`, async () => {
        try {
          await model.stop();
        } catch (error) {
          this._stopping = false; // offer Stop again
          throw error;
        }
      }).then(() => this._render());
    });
    header.append(this._name, this._status, this._stop);
    this._meta = el('div', 'lepton-RunPanel-meta lepton-Sidebar-muted');
    const openModel = options.openModel ?? (() => undefined);
    this._models = new ModelLinks(
      'lepton-RunPanel-models lepton-run-panel-models',
      'lepton-run-model',
      openModel
    );

    const progress = el('div', 'lepton-RunPanel-progress');
    this._bar = el('div', 'lepton-RunPanel-bar');
    this._barFill = el('div', 'lepton-RunPanel-barFill');
    this._bar.appendChild(this._barFill);
    this._progress = el('span', 'lepton-run-panel-progress');
    progress.append(this._bar, this._progress);

    this._loadError = el(
      'div',
      'lepton-Sidebar-error lepton-run-panel-load-error'
    );
    this._loadError.hidden = true;
    this._error = el('pre', 'lepton-RunPanel-error lepton-run-panel-error');
    this._error.hidden = true;

    this._charts = el('div', 'lepton-RunPanel-charts lepton-run-charts');
    this._noMetrics = el(
      'p',
      'lepton-Sidebar-empty lepton-run-no-metrics',
      'No metrics reported yet.'
    );

    const ranks = el('section', 'lepton-RunPanel-section');
    ranks.appendChild(el('h3', 'lepton-RunPanel-title', 'Ranks'));
    this._ranks = el('table', 'lepton-RunPanel-table lepton-run-ranks');
    ranks
      .appendChild(el('div', 'lepton-RunPanel-tableWrapper'))
      .appendChild(this._ranks);

    const events = el('section', 'lepton-RunPanel-section');
    events.appendChild(el('h3', 'lepton-RunPanel-title', 'Events'));
    this._events = el('ul', 'lepton-RunPanel-events lepton-run-events');
    events.appendChild(this._events);

    this.node.append(
      header,
      this._meta,
      this._models.node,
      progress,
      this._loadError,
      this._error,
      this._noMetrics,
      this._charts,
      ranks,
      events
    );
    model.changed.connect(this._render, this);
    this._render();
  }

  readonly runId: string;

  /** The panel's title text (the run's name once known). */
  get label(): string {
    return `Run: ${this.model.run?.name || this.runId}`;
  }

  /** A run that has ended and been read in full is not read again. */
  protected refreshOnShow(): boolean {
    return !this.model.complete;
  }

  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const model = this.model;
    const error = model.error;
    this._loadError.hidden = error === null;
    this._loadError.textContent = error
      ? `Cannot read the run: ${messageOf(error)}`
      : '';
    this.toggleClass('lepton-mod-stale', error !== null);
    const run = model.run;
    if (!run) {
      this._status.textContent = 'loading';
      this._stop.hidden = true;
      return;
    }
    this.title.label = this.label;
    this.node.dataset.leptonRunStatus = run.status;
    this.node.dataset.leptonRunComplete = String(model.complete);
    this._name.textContent = run.name || run.id;
    setBadge(this._status, run.status, 'lepton-run-panel-status');

    const active = isActiveStatus(run.status);
    if (!active) {
      this._stopping = false;
    }
    this._stop.hidden = !active;
    this._stop.disabled = this._stopping;
    this._stop.textContent = this._stopping ? 'Stopping…' : 'Stop';

    const started = numberOf(run.started_at);
    const ended = numberOf(run.ended_at);
    const elapsed =
      started === null ? null : (ended ?? Date.now() / 1000) - started;
    this._meta.textContent = [
      run.id,
      run.framework,
      `${run.world_size} rank${run.world_size === 1 ? '' : 's'}`,
      run.attempts && run.attempts > 1 ? `attempt ${run.attempts}` : '',
      started === null
        ? `created ${formatTime(run.created_at)}`
        : `started ${formatTime(started)}`,
      elapsed === null
        ? ''
        : `${ended === null ? 'running for' : 'took'} ${formatDuration(elapsed)}`
    ]
      .filter(Boolean)
      .join(' · ');

    const progressInput = { ...run, step: model.step ?? run.step };
    const fraction = runFraction(progressInput);
    this._bar.hidden = fraction === null;
    this._barFill.style.width = `${Math.round((fraction ?? 0) * 100)}%`;
    const metrics = metricsText(model.lastMetrics(), 4);
    this._progress.textContent = [runProgressText(progressInput), metrics]
      .filter(Boolean)
      .join(' · ');

    const errorText = run.error
      ? typeof run.error_rank === 'number'
        ? `rank ${run.error_rank}: ${run.error}`
        : run.error
      : '';
    this._error.textContent = errorText;
    this._error.hidden = !errorText;

    this._models.update(run.models);
    this._renderCharts();
    this._renderRanks(run);
    this._renderEvents(run.events ?? []);
  }

  private _renderCharts(): void {
    const families = this.model.families();
    this._noMetrics.hidden = families.size > 0;
    for (const [family, series] of families) {
      let chart = this._chartsByFamily.get(family);
      if (!chart) {
        chart = new LineChart(family);
        this._chartsByFamily.set(family, chart);
        this._charts.appendChild(chart.node);
      }
      chart.update(series.map(s => ({ name: s.name, points: s.points() })));
    }
  }

  private _renderRanks(run: IRun): void {
    const usage = usageByRank(run.usage ?? []);
    const workers = startWorkers(run.events ?? []);
    const reports = this.model.ranks;
    const now = Date.now() / 1000;
    const active = isActiveStatus(run.status);
    const table = this._ranks;
    table.replaceChildren();
    const head = el('tr');
    for (const name of [
      'Rank',
      'Worker',
      'Step',
      'Last report',
      'CPU time',
      'GPU time',
      'Peak memory'
    ]) {
      head.appendChild(el('th', undefined, name));
    }
    table.appendChild(el('thead')).appendChild(head);
    const body = table.appendChild(el('tbody'));
    for (let rank = 0; rank < Math.max(1, run.world_size); rank++) {
      const row = usage.get(rank);
      const report = reports.get(rank);
      const tr = el('tr', 'lepton-run-rank');
      tr.dataset.leptonRank = String(rank);
      const worker = row?.worker || workers[rank] || '–';
      const cpu = row ? row.cpu_seconds : null;
      const gpu = row ? row.gpu_seconds : null;
      const memory = row ? row.peak_memory : null;
      const cells = [
        String(rank),
        worker,
        report ? String(report.step) : '–',
        report
          ? active
            ? `${formatDuration(now - report.time)} ago`
            : formatTime(report.time)
          : '–',
        formatSeconds(cpu),
        formatSeconds(gpu),
        memory === null || memory === 0 ? '–' : formatBytes(memory)
      ];
      cells.forEach((text, i) => {
        const td = el('td', undefined, text);
        if (i === 1) {
          td.className = 'lepton-run-rank-worker';
          td.title = worker;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }

  private _renderEvents(events: ReadonlyArray<IRunEvent>): void {
    if (events.length === this._eventCount) {
      return;
    }
    this._eventCount = events.length;
    this._events.replaceChildren();
    if (!events.length) {
      this._events.appendChild(
        el('li', 'lepton-Sidebar-empty', 'No events yet.')
      );
      return;
    }
    // newest first
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i];
      const kind = event.kind;
      const li = el(
        'li',
        `lepton-RunPanel-event lepton-run-event lepton-mod-${kind}`
      );
      li.dataset.kind = kind;
      const rank = event.rank ?? null;
      li.append(
        el('span', 'lepton-RunPanel-eventTime', formatTime(event.time)),
        el('span', 'lepton-RunPanel-eventKind', kind),
        el(
          'span',
          'lepton-RunPanel-eventRank',
          rank === null ? '' : `rank ${rank}`
        ),
        el('span', 'lepton-RunPanel-eventMessage', event.message ?? '')
      );
      this._events.appendChild(li);
    }
  }

  private _name: HTMLElement;
  private _status: HTMLElement;
  private _stop: HTMLButtonElement;
  private _meta: HTMLElement;
  private _models: ModelLinks;
  private _bar: HTMLElement;
  private _barFill: HTMLElement;
  private _progress: HTMLElement;
  private _loadError: HTMLElement;
  private _error: HTMLElement;
  private _charts: HTMLElement;
  private _noMetrics: HTMLElement;
  private _ranks: HTMLTableElement;
  private _events: HTMLUListElement;
  private _chartsByFamily = new Map<string, LineChart>();
  private _eventCount = -1;
  private _stopping = false;
}
