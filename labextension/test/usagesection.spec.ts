import { Widget } from '@lumino/widgets';

import { IUsageGroup, IUsageReport } from '../src/api';
import {
  basename,
  formatHours,
  USAGE_REFRESH_MS,
  UsageModel,
  UsageSection,
  usageWeek
} from '../src/usagesection';
import { StubServer } from './stub-server';

const GiB = 1024 ** 3;
/** The section's "today": a Friday afternoon (UTC). */
const NOW = new Date('2026-11-27T15:30:00Z');
const WEEK = 'from=2026-11-21&to=2026-11-27';
const DAYS = [
  '2026-11-21',
  '2026-11-22',
  '2026-11-23',
  '2026-11-24',
  '2026-11-25',
  '2026-11-26',
  '2026-11-27'
];

function group(key: string, figures: Partial<IUsageGroup> = {}): IUsageGroup {
  return {
    key,
    records: 1,
    cpu_hours: 0,
    gpu_hours: 0,
    storage_bytes: 0,
    cost: null,
    ...figures
  };
}

function report(
  groupBy: IUsageReport['group_by'],
  groups: IUsageGroup[],
  total: Partial<IUsageGroup>,
  priced = false
): IUsageReport {
  return {
    start: Date.parse('2026-11-21T00:00:00Z') / 1000,
    end: Date.parse('2026-11-28T00:00:00Z') / 1000,
    group_by: groupBy,
    priced,
    groups,
    total: { records: 0, cpu_hours: 0, gpu_hours: 0, cost: null, ...total }
  };
}

/** A week with usage on three days and six notebooks (and records without one). */
function busyWeek(priced = false) {
  const days = report(
    'day',
    DAYS.map(day =>
      day === '2026-11-22'
        ? group(day, { cpu_hours: 2, gpu_hours: 0.5 })
        : day === '2026-11-25'
          ? group(day, { cpu_hours: 1.25 })
          : day === '2026-11-27'
            ? group(day, { cpu_hours: 0.5, gpu_hours: 1, records: 2 })
            : group(day, { records: 0 })
    ),
    {
      records: 5,
      cpu_hours: 3.75,
      gpu_hours: 1.5,
      storage_bytes: 1.5 * GiB,
      cost: priced ? 12.345 : null
    },
    priced
  );
  const notebooks = report(
    'notebook',
    [
      group('work/train/big.ipynb', { cpu_hours: 2, gpu_hours: 1 }),
      group('(none)', { cpu_hours: 1 }),
      group('eval.ipynb', { cpu_hours: 1.25 }),
      group('a/b/c.ipynb', { cpu_hours: 0.25, gpu_hours: 0.5 }),
      group('d.ipynb', { cpu_hours: 0.2 }),
      group('e.ipynb', { cpu_hours: 0.1 }),
      group('f.ipynb', { cpu_hours: 0.05 })
    ],
    { records: 5, cpu_hours: 3.75, gpu_hours: 1.5 },
    priced
  );
  return { days, notebooks };
}

function setup(answer: {
  days?: IUsageReport;
  notebooks?: IUsageReport;
  status?: number;
  message?: string;
}) {
  const server = new StubServer();
  for (const by of ['day', 'notebook'] as const) {
    const body = by === 'day' ? answer.days : answer.notebooks;
    server.on(`GET usage?${WEEK}&group_by=${by}`, () =>
      answer.status
        ? { status: answer.status, body: { message: answer.message } }
        : { body }
    );
  }
  const model = new UsageModel({ client: server.client(), now: () => NOW });
  const section = new UsageSection({ model });
  Widget.attach(section, document.body);
  return { server, model, section };
}

function q<T extends Element = HTMLElement>(root: Element, selector: string) {
  const node = root.querySelector(selector);
  if (!node) {
    throw new Error(`no ${selector}`);
  }
  return node as unknown as T;
}

function text(root: Element, selector: string): string {
  return q(root, selector).textContent ?? '';
}

afterEach(() => {
  document.body.replaceChildren();
});

describe('usage helpers', () => {
  it('takes the last 7 UTC days, today included', () => {
    expect(usageWeek(NOW)).toEqual({ from: '2026-11-21', to: '2026-11-27' });
    // just after midnight UTC it is the next day, whatever the local zone
    expect(usageWeek(new Date('2026-12-01T00:00:01Z'))).toEqual({
      from: '2026-11-25',
      to: '2026-12-01'
    });
  });

  it('formats hours and basenames', () => {
    expect(formatHours(0)).toBe('0 h');
    expect(formatHours(3.75)).toBe('3.75 h');
    expect(formatHours(12.34)).toBe('12.3 h');
    expect(formatHours(123.4)).toBe('123 h');
    expect(basename('work/train/big.ipynb')).toBe('big.ipynb');
    expect(basename('top.ipynb')).toBe('top.ipynb');
  });
});

describe('usage section', () => {
  it("shows the week's totals, a bar per day and series, and the top five notebooks", async () => {
    const { server, model, section } = setup(busyWeek());
    expect(model.interval).toBe(USAGE_REFRESH_MS);
    await model.refresh();
    const node = section.node;
    // one read per grouping, over this week
    expect(server.calls(`GET usage?${WEEK}&group_by=day`)).toHaveLength(1);
    expect(server.calls(`GET usage?${WEEK}&group_by=notebook`)).toHaveLength(1);
    expect(node.dataset.leptonFrom).toBe('2026-11-21');
    expect(node.dataset.leptonTo).toBe('2026-11-27');

    expect(q(node, '.lepton-no-usage').hidden).toBe(true);
    expect(q(node, '.lepton-usage-totals').hidden).toBe(false);
    expect(text(node, '.lepton-usage-cpu')).toBe('3.75 h');
    expect(text(node, '.lepton-usage-gpu')).toBe('1.50 h');
    expect(text(node, '.lepton-usage-storage')).toBe('1.50 GiB');
    expect(q(node, '.lepton-usage-cost').hidden).toBe(true); // not priced

    const days = node.querySelectorAll('g.lepton-usage-day');
    expect(days).toHaveLength(7);
    expect([...days].map(d => d.getAttribute('data-lepton-day'))).toEqual(DAYS);
    const bars = node.querySelectorAll('rect.lepton-usage-bar');
    expect(bars).toHaveLength(14);
    const height = (day: string, series: string) =>
      Number(
        q(
          node,
          `g[data-lepton-day='${day}'] rect[data-lepton-series='${series}']`
        ).getAttribute('height')
      );
    // the tallest bar is the busiest day's CPU; an empty day has flat bars
    expect(height('2026-11-22', 'cpu')).toBeGreaterThan(
      height('2026-11-25', 'cpu')
    );
    expect(height('2026-11-25', 'cpu')).toBeGreaterThan(
      height('2026-11-27', 'gpu')
    );
    expect(height('2026-11-21', 'cpu')).toBe(0);
    expect(height('2026-11-25', 'gpu')).toBe(0);

    // the first five notebooks in the server's order, without "(none)"
    const rows = [...node.querySelectorAll('li.lepton-usage-notebook')];
    expect(rows.map(r => (r as HTMLElement).dataset.leptonNotebook)).toEqual([
      'work/train/big.ipynb',
      'eval.ipynb',
      'a/b/c.ipynb',
      'd.ipynb',
      'e.ipynb'
    ]);
    const first = q(rows[0], '.lepton-usage-notebook-name');
    expect(first.textContent).toBe('big.ipynb');
    expect(first.title).toBe('work/train/big.ipynb');
    expect(text(rows[0], '.lepton-usage-notebook-hours')).toBe(
      'CPU 2.00 h · GPU 1.00 h'
    );

    // the CSV link: the week by day, under the Jupyter base URL
    const csv = q<HTMLAnchorElement>(node, 'a.lepton-usage-csv');
    const url = new URL(csv.href);
    expect(url.origin + url.pathname).toBe(
      'http://lab.test/lepton-lab/api/usage/csv'
    );
    expect(url.searchParams.get('from')).toBe('2026-11-21');
    expect(url.searchParams.get('to')).toBe('2026-11-27');
    expect(url.searchParams.get('group_by')).toBe('day');
    expect(csv.download).toBe('usage-2026-11-21-2026-11-27.csv');
    model.dispose();
  });

  it('shows the cost when the lab has prices', async () => {
    const { model, section } = setup(busyWeek(true));
    await model.refresh();
    const cost = q(section.node, '.lepton-usage-cost');
    expect(cost.hidden).toBe(false);
    expect(cost.textContent).toBe('12.35');
    model.dispose();
  });

  it('says so when nothing was recorded this week', async () => {
    const empty = report(
      'day',
      DAYS.map(day => group(day, { records: 0 })),
      {}
    );
    const { model, section } = setup({
      days: empty,
      notebooks: report('notebook', [], {})
    });
    await model.refresh();
    const node = section.node;
    const note = q(node, '.lepton-no-usage');
    expect(note.hidden).toBe(false);
    expect(note.textContent).toBe('No usage recorded this week');
    expect(q(node, '.lepton-usage-totals').hidden).toBe(true);
    expect(q<SVGElement>(node, 'svg.lepton-usage-chart').style.display).toBe(
      'none'
    );
    expect(node.querySelectorAll('li.lepton-usage-notebook')).toHaveLength(0);
    expect(q(node, '.lepton-usage-error').hidden).toBe(true);
    model.dispose();
  });

  it("shows the server's message when the report is refused", async () => {
    const { model, section } = setup({
      status: 503,
      message: 'the usage ledger is not ready'
    });
    await model.refresh();
    const error = q(section.node, '.lepton-usage-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain(
      'Cannot read the usage: the usage ledger is not ready'
    );
    model.dispose();
  });
});

describe('sidebar', () => {
  it('has the Usage section last, read by Refresh only while visible', async () => {
    // imported here: the sidebar pulls in the toolbar widgets
    const { LeptonSidebar } = await import('../src/sidebar');
    const { LeptonModels } = await import('../src/models');
    const server = new StubServer();
    const models = new LeptonModels({ client: server.client() });
    const sidebar = new LeptonSidebar({
      models,
      openRun: () => undefined,
      openJobLog: () => undefined,
      openModel: () => undefined
    });
    const sections = sidebar.node.querySelectorAll('section.lepton-Section');
    expect(sections[sections.length - 1].classList).toContain('lepton-usage');
    expect(sidebar.usageModel.interval).toBe(USAGE_REFRESH_MS);
    const week = usageWeek();
    const reads = () =>
      server.calls(`GET usage?from=${week.from}&to=${week.to}&group_by=day`)
        .length;
    // not attached: nobody looks, the model stands by
    await sidebar.refresh();
    expect(reads()).toBe(0);
    Widget.attach(sidebar, document.body);
    await sidebar.refresh();
    expect(reads()).toBeGreaterThanOrEqual(1);
    sidebar.hide();
    const before = reads();
    await sidebar.refresh();
    expect(reads()).toBe(before);
    sidebar.dispose();
    expect(sidebar.usageModel.isDisposed).toBe(true);
    models.dispose();
  });
});
