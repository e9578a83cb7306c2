import {
  firstLine,
  formatBytes,
  formatDuration,
  formatMemory,
  formatMetric,
  formatPercent,
  isActiveStatus,
  jobProgressText,
  metricFamily,
  metricsText,
  runEpochs,
  runFraction,
  runProgressText,
  statusBadge
} from '../src/format';

describe('bytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.50 KiB'],
    [10.5 * 1024 ** 2, '10.5 MiB'],
    [512 * 1024 ** 3, '512 GiB'],
    [null, '–'],
    [undefined, '–'],
    [NaN, '–']
  ])('formatBytes(%p) is %p', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('writes memory in the unit of the limit, once', () => {
    expect(formatMemory(420 * 1024 ** 2, 3.9 * 1024 ** 3)).toBe(
      '0.41 / 3.90 GiB'
    );
    expect(formatMemory(2 * 1024 ** 3, 16 * 1024 ** 3)).toBe('2.00 / 16.0 GiB');
    expect(formatMemory(null, 1024 ** 3)).toBe('– / 1.00 GiB');
    expect(formatMemory(1024, 0)).toBe('1.00 KiB');
    expect(formatMemory(null, null)).toBe('–');
  });
});

describe('durations and percentages', () => {
  it.each([
    [0, '0 s'],
    [42.9, '42 s'],
    [185, '3 min 05 s'],
    [7440, '2 h 04 min'],
    [-5, '0 s'],
    [null, '–']
  ])('formatDuration(%p) is %p', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('formats percentages and metrics', () => {
    expect(formatPercent(3.14159)).toBe('3.1%');
    expect(formatPercent(42.4)).toBe('42%');
    expect(formatPercent(undefined)).toBe('–');
    expect(formatMetric(0.123456)).toBe('0.1235');
    expect(formatMetric(3)).toBe('3');
    expect(formatMetric(12345.6789)).toBe('12345.679');
    expect(formatMetric(Infinity)).toBe('Infinity');
    expect(formatMetric(null)).toBe('–');
  });

  it('keeps the first non-empty line', () => {
    expect(firstLine('\n  Traceback\nmore')).toBe('Traceback');
    expect(firstLine(null)).toBe('');
  });
});

describe('status badges', () => {
  it('colours only what is active or failed; ended items are neutral', () => {
    expect(statusBadge('running').tone).toBe('active');
    expect(statusBadge('queued').tone).toBe('active');
    expect(statusBadge('failed').tone).toBe('error');
    expect(statusBadge('timed_out')).toEqual({
      label: 'timed out',
      tone: 'error',
      className: 'lepton-Badge lepton-mod-error lepton-mod-timed_out'
    });
    for (const status of ['completed', 'stopped', 'paused']) {
      expect(statusBadge(status).tone).toBe('neutral');
    }
    expect(statusBadge(undefined).label).toBe('unknown');
  });

  it('offers Stop only while queued or running', () => {
    expect(isActiveStatus('running')).toBe(true);
    expect(isActiveStatus('queued')).toBe(true);
    for (const status of [
      'completed',
      'failed',
      'stopped',
      'timed_out',
      null
    ]) {
      expect(isActiveStatus(status)).toBe(false);
    }
  });
});

describe('progress texts', () => {
  const now = new Date(2030, 0, 1, 12, 0, 0);
  const at = now.getTime() / 1000;

  it('says where a job is', () => {
    expect(
      jobProgressText({
        status: 'running',
        elapsed: 12,
        progress: { cell: 3, cells: 7 }
      })
    ).toBe('cell 3/7 · 12 s');
    expect(
      jobProgressText({ status: 'running', elapsed: 1, progress: { cells: 7 } })
    ).toBe('0/7 cells · 1 s');
    expect(
      jobProgressText({ status: 'running', elapsed: null, progress: {} })
    ).toBe('starting · –');
    expect(jobProgressText({ status: 'queued', created_at: at }, now)).toMatch(
      /^queued 12:00/
    );
    expect(
      jobProgressText({ status: 'completed', elapsed: 65, ended_at: at }, now)
    ).toMatch(/^1 min 05 s, ended 12:00/);
  });

  it('reads epochs from the params of a Keras fit or of a loop', () => {
    expect(runEpochs({ epochs: 10 })).toBe(10);
    expect(runEpochs({ config: { epochs: 4 } })).toBe(4);
    expect(runEpochs({ config: { epochs: 'many' } })).toBeNull();
    expect(runEpochs(undefined)).toBeNull();
  });

  it('says where a run is', () => {
    const keras = {
      status: 'running' as const,
      framework: 'keras',
      params: { epochs: 10 }
    };
    expect(runProgressText({ ...keras, step: 2 })).toBe('epoch 3/10');
    expect(runProgressText({ ...keras, step: null })).toBe('10 epochs');
    expect(runFraction({ ...keras, step: 4 })).toBeCloseTo(0.5);
    const loop = {
      status: 'running' as const,
      framework: 'torch',
      params: { config: {} }
    };
    expect(runProgressText({ ...loop, step: 120 })).toBe('step 120');
    expect(runProgressText(loop)).toBe('waiting');
    expect(runProgressText({ ...loop, status: 'queued' as const })).toBe(
      'queued'
    );
    expect(runFraction({ ...loop, step: 120 })).toBeNull();
    expect(runFraction({ ...loop, status: 'completed' as const })).toBe(1);
    expect(
      runProgressText({
        status: 'running',
        framework: 'torch',
        params: { config: { epochs: 5 } },
        step: 7
      })
    ).toBe('step 7 · 5 epochs');
  });

  it('lists the last metrics, loss first, train before validation', () => {
    expect(metricsText({ val_loss: 0.25, accuracy: 0.9, loss: 0.125 })).toBe(
      'loss 0.125 · val_loss 0.25'
    );
    expect(metricsText({ val_loss: 0.25, loss: 0.125, accuracy: 0.5 }, 3)).toBe(
      'loss 0.125 · val_loss 0.25 · accuracy 0.5'
    );
    expect(metricsText(null)).toBe('');
    expect(metricFamily('val_accuracy')).toBe('accuracy');
  });
});

describe('chart helpers', () => {
  // imported here to keep the chart's SVG code out of the formatter tests above
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const chart = require('../src/chart') as typeof import('../src/chart');

  it('pads the value range and maps points into the box', () => {
    const curves = [
      {
        name: 'loss',
        points: [
          [0, 1],
          [10, 0]
        ] as [number, number][]
      }
    ];
    const domain = chart.extent(curves);
    expect(domain.x).toEqual([0, 10]);
    expect(domain.y[0]).toBeCloseTo(-0.05);
    expect(domain.y[1]).toBeCloseTo(1.05);
    const box = { left: 0, right: 100, top: 0, bottom: 100 };
    expect(
      chart.pathOf(
        [
          [0, 0],
          [10, 1]
        ],
        { x: [0, 10], y: [0, 1] },
        box
      )
    ).toBe('M0.0 100.0 L100.0 0.0');
    expect(chart.extent([]).x).toEqual([0, 1]);
    expect(chart.extent([{ name: 'a', points: [[3, 2]] }]).y).toEqual([
      1.8, 2.2
    ]);
  });

  it('writes short tick labels', () => {
    expect(chart.formatTick(-0.005626)).toBe('-0.00563');
    expect(chart.formatTick(0.66251)).toBe('0.663');
    expect(chart.formatTick(1e-15)).toBe('0');
    expect(chart.formatTick(123456789)).toBe('1.2e+8');
  });

  it('draws one path per curve, with its point count', () => {
    const line = new chart.LineChart('loss');
    line.update([
      {
        name: 'loss',
        points: [
          [0, 1],
          [1, 0.5]
        ]
      },
      { name: 'val_loss', points: [[0, 1.2]] }
    ]);
    const paths = line.node.querySelectorAll('path.lepton-run-curve');
    expect([...paths].map(p => p.getAttribute('data-lepton-series'))).toEqual([
      'loss',
      'val_loss'
    ]);
    expect(paths[0].getAttribute('data-lepton-points')).toBe('2');
    expect(paths[1].classList.contains('lepton-mod-val')).toBe(true);
    expect(line.node.textContent).toContain('val_loss 1.2');
  });
});
