/**
 * The sidebar's Usage section: what this week used (the last 7 days, today
 * included, in UTC): CPU hours, GPU hours, storage and, when the lab has
 * prices, the cost; a bar chart of CPU and GPU hours per day; the five
 * notebooks that used the most; and a CSV download of the days. It follows
 * `UsageModel` (`GET usage?from=&to=&group_by=day` and `group_by=notebook`),
 * polled while the sidebar is visible, at a slower pace than the other
 * sections (usage changes when a run, job or deployment reports it).
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-usage                    the section; data-lepton-from / data-lepton-to = the window
 *                                    (YYYY-MM-DD, UTC); .lepton-usage-error a request error
 *   .lepton-no-usage                 the empty text (hidden while the week has records)
 *   a.lepton-usage-csv               `GET usage/csv?from=&to=&group_by=day` (download)
 *   .lepton-usage-window             "2026-11-21 – 2026-11-27"
 *   .lepton-usage-totals             the week's totals (hidden while empty):
 *     .lepton-usage-cpu              "12.5 h"
 *     .lepton-usage-gpu              "0.25 h"
 *     .lepton-usage-storage          "1.50 GiB" (what is stored at the window's end)
 *     .lepton-usage-cost             "3.75" (hidden unless the lab has prices)
 *   svg.lepton-usage-chart           the bars (hidden while empty): one
 *     g.lepton-usage-day             per day, data-lepton-day=YYYY-MM-DD, oldest first, with
 *       rect.lepton-usage-bar        data-lepton-series=cpu|gpu, data-lepton-hours=<hours>
 *   li.lepton-usage-notebook         the top five notebooks, largest first;
 *                                    data-lepton-notebook=<path>
 *     .lepton-usage-notebook-name    the basename (title: the full path)
 *     .lepton-usage-notebook-hours   "CPU 1.50 h · GPU 0.25 h"
 */
import { IUsageFigures, IUsageGroup, IUsageQuery, IUsageReport } from './api';
import { formatTick, svg } from './chart';
import { formatBytes } from './format';
import { PollingModel } from './polling';
import { el, KeyedList, Section } from './section';

/** How often the Usage section reads (ms): usage changes slowly. */
export const USAGE_REFRESH_MS = 30000;
/** How many days the section shows: this one and the six before it. */
export const USAGE_DAYS = 7;
/** How many notebooks the section lists. */
export const TOP_NOTEBOOKS = 5;
/** The key of the records without a notebook (`group_by=notebook`). */
export const NO_NOTEBOOK = '(none)';

const DAY_MS = 86400000;

/** A UTC date, YYYY-MM-DD. */
export function utcDay(moment: Date): string {
  return moment.toISOString().slice(0, 10);
}

/** The week that ends today (UTC): `from` six days ago, `to` today (inclusive). */
export function usageWeek(now: Date = new Date()): {
  from: string;
  to: string;
} {
  return {
    from: utcDay(new Date(now.getTime() - (USAGE_DAYS - 1) * DAY_MS)),
    to: utcDay(now)
  };
}

/** Hours, short: "0 h", "0.25 h", "12.5 h", "135 h". */
export function formatHours(hours: number | null | undefined): string {
  const value = hours ?? 0;
  if (!isFinite(value) || value <= 0) {
    return '0 h';
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} h`;
}

/** A cost in the lab's price units: "3.75". */
export function formatCost(cost: number | null | undefined): string {
  return (cost ?? 0).toFixed(2);
}

/** The last part of a notebook's path. */
export function basename(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/** The week's reports: by day (every day of the window) and by notebook. */
export interface IUsageWeek {
  from: string;
  to: string;
  days: IUsageReport;
  notebooks: IUsageReport;
}

export namespace UsageModel {
  export interface IOptions extends PollingModel.IOptions {
    /** The current time (tests fix it). */
    now?: () => Date;
  }
}

/** This week's usage (`GET usage`, by day and by notebook). */
export class UsageModel extends PollingModel<IUsageWeek> {
  constructor(options: UsageModel.IOptions) {
    super({
      ...options,
      interval: options.interval ?? USAGE_REFRESH_MS,
      name: options.name ?? 'lepton-lab:usage'
    });
    this._now = options.now ?? (() => new Date());
  }

  /** The window of the next read. */
  week(): { from: string; to: string } {
    return usageWeek(this._now());
  }

  /** The URL of the week's CSV, a line per day and the total (with the last read's window). */
  csvUrl(): string {
    const week = this.data ?? this.week();
    return this.client.usageCsvUrl(query(week, 'day'));
  }

  protected async fetch(): Promise<IUsageWeek> {
    const week = this.week();
    const [days, notebooks] = await Promise.all([
      this.client.getUsage(query(week, 'day')),
      this.client.getUsage(query(week, 'notebook'))
    ]);
    return { ...week, days, notebooks };
  }

  private _now: () => Date;
}

function query(
  week: { from: string; to: string },
  groupBy: IUsageQuery['group_by']
): IUsageQuery {
  return { from: week.from, to: week.to, group_by: groupBy };
}

/** The notebooks to list: the first `TOP_NOTEBOOKS` (the server's order), without "(none)". */
export function topNotebooks(report: IUsageReport): IUsageGroup[] {
  return report.groups
    .filter(group => group.key !== NO_NOTEBOOK)
    .slice(0, TOP_NOTEBOOKS);
}

// ---- the bar chart -----------------------------------------------------------------------

export const BAR_CHART_WIDTH = 280;
export const BAR_CHART_HEIGHT = 110;
const BAR_MARGIN = { left: 34, right: 4, top: 8, bottom: 18 };

/** CPU and GPU hours per day as grouped bars (two per day), redrawn by `update`. */
export class UsageBarChart {
  constructor() {
    this.node = svg('svg', {
      viewBox: `0 0 ${BAR_CHART_WIDTH} ${BAR_CHART_HEIGHT}`,
      class: 'lepton-UsageChart lepton-usage-chart',
      role: 'img'
    });
  }

  readonly node: SVGSVGElement;

  update(days: ReadonlyArray<IUsageGroup>): void {
    const root = this.node;
    root.replaceChildren();
    const left = BAR_MARGIN.left;
    const right = BAR_CHART_WIDTH - BAR_MARGIN.right;
    const top = BAR_MARGIN.top;
    const bottom = BAR_CHART_HEIGHT - BAR_MARGIN.bottom;
    const highest = Math.max(
      0,
      ...days.map(d => Math.max(d.cpu_hours ?? 0, d.gpu_hours ?? 0))
    );
    const max = highest > 0 ? highest : 1;
    root.setAttribute(
      'aria-label',
      `CPU and GPU hours per day, ${days.length} days, at most ${formatHours(highest)}`
    );

    const axes = svg('g', { class: 'lepton-UsageChart-axes' });
    for (const [value, y] of [
      [0, bottom],
      [max, top]
    ]) {
      axes.append(
        svg('line', {
          x1: left,
          x2: right,
          y1: y,
          y2: y,
          class: 'lepton-UsageChart-grid'
        }),
        svg(
          'text',
          {
            x: left - 3,
            y: y + 3,
            'text-anchor': 'end',
            class: 'lepton-UsageChart-tick'
          },
          `${formatTick(value)} h`
        )
      );
    }
    root.appendChild(axes);

    const slot = (right - left) / Math.max(1, days.length);
    const bar = Math.max(1, (slot - 4) / 2);
    days.forEach((day, index) => {
      const x = left + index * slot + 2;
      const group = svg('g', {
        class: 'lepton-UsageChart-day lepton-usage-day',
        'data-lepton-day': day.key
      });
      const title = svg(
        'title',
        {},
        `${day.key}: CPU ${formatHours(day.cpu_hours)} · GPU ${formatHours(day.gpu_hours)}`
      );
      group.appendChild(title);
      (
        [
          ['cpu', day.cpu_hours ?? 0],
          ['gpu', day.gpu_hours ?? 0]
        ] as const
      ).forEach(([series, hours], i) => {
        const height = ((bottom - top) * Math.max(0, hours)) / max;
        group.appendChild(
          svg('rect', {
            x: (x + i * bar).toFixed(1),
            y: (bottom - height).toFixed(1),
            width: bar.toFixed(1),
            height: height.toFixed(1),
            class: `lepton-UsageChart-bar lepton-usage-bar lepton-mod-${series}`,
            'data-lepton-series': series,
            'data-lepton-hours': String(hours)
          })
        );
      });
      // the weekday's initial under its bars (the date is in the tooltip)
      const weekday = new Date(`${day.key}T00:00:00Z`).toLocaleDateString(
        'en',
        { weekday: 'narrow', timeZone: 'UTC' }
      );
      group.appendChild(
        svg(
          'text',
          {
            x: (x + bar).toFixed(1),
            y: BAR_CHART_HEIGHT - 5,
            'text-anchor': 'middle',
            class: 'lepton-UsageChart-tick'
          },
          weekday
        )
      );
      root.appendChild(group);
    });
  }
}

// ---- the section -------------------------------------------------------------------------

export namespace UsageSection {
  export interface IOptions {
    model: UsageModel;
  }
}

/** This week's usage in the sidebar. */
export class UsageSection extends Section<IUsageWeek> {
  constructor(options: UsageSection.IOptions) {
    super({
      model: options.model,
      title: 'Usage',
      className: 'lepton-UsageSection lepton-usage',
      errorClass: 'lepton-usage-error',
      errorPrefix: 'Cannot read the usage'
    });
    this.usage = options.model;
    this._csv = el('a', 'lepton-Section-link lepton-usage-csv', 'CSV');
    this._csv.title =
      "Download this week's usage as CSV: a line per day and the total";
    this._csv.href = this.usage.csvUrl();
    this._csv.download = 'usage.csv';
    // refresh the link (the window moves at midnight; the XSRF token) when used
    this._csv.addEventListener('mousedown', () => this._updateCsv());
    this._csv.addEventListener('focus', () => this._updateCsv());
    this.headerActions.appendChild(this._csv);

    this._window = el('div', 'lepton-Sidebar-muted lepton-usage-window');
    this._empty = el('p', 'lepton-Sidebar-empty lepton-no-usage', 'Loading…');
    this._totals = el('dl', 'lepton-UsageTotals lepton-usage-totals');
    this._cpu = this._total(
      'CPU',
      'lepton-usage-cpu',
      'CPU hours this week'
    )[1];
    this._gpu = this._total(
      'GPU',
      'lepton-usage-gpu',
      'GPU hours this week'
    )[1];
    this._storage = this._total(
      'Storage',
      'lepton-usage-storage',
      'Checkpoints, job outputs and model artifacts stored now'
    )[1];
    [this._costTerm, this._cost] = this._total(
      'Cost',
      'lepton-usage-cost',
      "This week's cost, in the lab's price units"
    );
    this._chart = new UsageBarChart();
    this._legend = el('div', 'lepton-UsageChart-legend lepton-Sidebar-muted');
    this._legend.append(
      el('span', 'lepton-UsageChart-key lepton-mod-cpu', 'CPU h'),
      el('span', 'lepton-UsageChart-key lepton-mod-gpu', 'GPU h')
    );
    this._top = el('div', 'lepton-UsageTop');
    this._top.append(el('h4', 'lepton-UsageTop-title', 'Top notebooks'));
    const list = el('ol', 'lepton-Section-list lepton-usage-notebooks');
    this._top.appendChild(list);
    this._rows = new KeyedList(
      list,
      group => group.key,
      () => new NotebookRow()
    );
    this.body.append(
      this._window,
      this._empty,
      this._totals,
      this._chart.node,
      this._legend,
      this._top
    );
    this._setEmpty(true);
  }

  readonly usage: UsageModel;

  protected render(week: IUsageWeek): void {
    this.node.dataset.leptonFrom = week.from;
    this.node.dataset.leptonTo = week.to;
    this._window.textContent = `${week.from} – ${week.to} (UTC)`;
    this._updateCsv();
    const total: IUsageFigures = week.days.total;
    const empty = !(total.records ?? 0);
    this._setEmpty(empty);
    this._empty.textContent = empty ? 'No usage recorded this week' : '';
    this._cpu.textContent = formatHours(total.cpu_hours);
    this._gpu.textContent = formatHours(total.gpu_hours);
    this._storage.textContent = formatBytes(total.storage_bytes ?? 0);
    const priced = week.days.priced;
    this._cost.textContent = priced ? formatCost(total.cost) : '';
    this._costTerm.hidden = this._cost.hidden = !priced;
    this._chart.update(week.days.groups);
    const top = topNotebooks(week.notebooks);
    this._top.hidden = empty || !top.length;
    this._rows.update(top);
  }

  /** A label and its value in the totals. */
  private _total(
    label: string,
    className: string,
    title: string
  ): [HTMLElement, HTMLElement] {
    const term = el('dt', 'lepton-UsageTotals-label', label);
    const value = el('dd', `lepton-UsageTotals-value ${className}`);
    term.title = value.title = title;
    this._totals.append(term, value);
    return [term, value];
  }

  private _setEmpty(empty: boolean): void {
    this._empty.hidden = !empty;
    this._totals.hidden = empty;
    this._chart.node.style.display = empty ? 'none' : '';
    this._legend.hidden = empty;
    if (empty) {
      this._top.hidden = true;
    }
  }

  private _updateCsv(): void {
    const href = this.usage.csvUrl();
    if (this._csv.getAttribute('href') !== href) {
      this._csv.href = href;
    }
    const week = this.usage.data ?? this.usage.week();
    this._csv.download = `usage-${week.from}-${week.to}.csv`;
  }

  private _csv: HTMLAnchorElement;
  private _window: HTMLElement;
  private _empty: HTMLElement;
  private _totals: HTMLElement;
  private _cpu: HTMLElement;
  private _gpu: HTMLElement;
  private _storage: HTMLElement;
  private _cost: HTMLElement;
  private _costTerm: HTMLElement;
  private _chart: UsageBarChart;
  private _legend: HTMLElement;
  private _top: HTMLElement;
  private _rows: KeyedList<IUsageGroup, NotebookRow>;
}

/** One of the top notebooks. */
class NotebookRow {
  constructor() {
    this.node = el('li', 'lepton-Section-item lepton-usage-notebook');
    this._name = el('span', 'lepton-Section-name lepton-usage-notebook-name');
    this._hours = el(
      'span',
      'lepton-Sidebar-muted lepton-usage-notebook-hours'
    );
    this.node.append(this._name, this._hours);
  }

  readonly node: HTMLLIElement;

  update(group: IUsageGroup): void {
    this.node.dataset.leptonNotebook = group.key;
    this._name.textContent = basename(group.key);
    this._name.title = group.key;
    this._hours.textContent = `CPU ${formatHours(group.cpu_hours)} · GPU ${formatHours(group.gpu_hours)}`;
    this._hours.title = `${formatHours((group.cpu_hours ?? 0) + (group.gpu_hours ?? 0))} of CPU and GPU time this week, ${group.records ?? 0} records`;
  }

  private _name: HTMLElement;
  private _hours: HTMLElement;
}
