/**
 * A small line chart in plain SVG: one chart per metric family (`loss` with
 * `val_loss`), steps on x, values on y. Redrawn in place on each update; the
 * text comes from `textContent`/attributes only (metric names are user text).
 *
 * Stable DOM hooks: `.lepton-run-chart[data-lepton-metric=<family>]`, one
 * `path.lepton-run-curve[data-lepton-series=<name>][data-lepton-points=<n>]`
 * per metric.
 */
import { formatMetric } from './format';

/** An axis label: 3 significant digits ("0.0056", "1.25", "1.2e+3" stays short). */
export function formatTick(value: number): string {
  if (!isFinite(value)) {
    return String(value);
  }
  if (Math.abs(value) < 1e-12) {
    return '0';
  }
  const text = String(Number(value.toPrecision(3)));
  return text.length > 8 ? value.toExponential(1) : text;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The drawing area, in viewBox units. */
export const CHART_WIDTH = 360;
export const CHART_HEIGHT = 170;
const MARGIN = { left: 50, right: 10, top: 10, bottom: 22 };

/** A curve to draw. */
export interface ICurve {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
}

/** The value range of the curves, padded so flat lines are visible. */
export function extent(curves: ReadonlyArray<ICurve>): {
  x: [number, number];
  y: [number, number];
} {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const curve of curves) {
    for (const [x, y] of curve.points) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (!isFinite(x0)) {
    return { x: [0, 1], y: [0, 1] };
  }
  if (x1 === x0) {
    x1 = x0 + 1;
  }
  if (y1 === y0) {
    const pad = Math.abs(y0) * 0.1 || 1;
    y0 -= pad;
    y1 += pad;
  } else {
    const pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  return { x: [x0, x1], y: [y0, y1] };
}

/** The SVG path (`M x y L ...`) of points in a box. */
export function pathOf(
  points: ReadonlyArray<readonly [number, number]>,
  domain: { x: [number, number]; y: [number, number] },
  box = {
    left: MARGIN.left,
    right: CHART_WIDTH - MARGIN.right,
    top: MARGIN.top,
    bottom: CHART_HEIGHT - MARGIN.bottom
  }
): string {
  const sx = (box.right - box.left) / (domain.x[1] - domain.x[0]);
  const sy = (box.bottom - box.top) / (domain.y[1] - domain.y[0]);
  return points
    .map(([x, y], i) => {
      const px = box.left + (x - domain.x[0]) * sx;
      const py = box.bottom - (y - domain.y[0]) * sy;
      return `${i ? 'L' : 'M'}${px.toFixed(1)} ${py.toFixed(1)}`;
    })
    .join(' ');
}

/** An SVG element with attributes and optional text (the charts of chart.ts and usagesection.ts). */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: { [name: string]: string | number } = {},
  text?: string
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * One chart: a title, a legend and the SVG. `update` redraws it.
 */
export class LineChart {
  constructor(readonly family: string) {
    this.node = document.createElement('figure');
    this.node.className = 'lepton-RunChart lepton-run-chart';
    this.node.dataset.leptonMetric = family;
    const caption = document.createElement('figcaption');
    caption.className = 'lepton-RunChart-caption';
    this._legend = document.createElement('span');
    this._legend.className = 'lepton-RunChart-legend';
    caption.append(this._legend);
    this._svg = svg('svg', {
      viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
      class: 'lepton-RunChart-svg',
      role: 'img'
    });
    this.node.append(caption, this._svg);
  }

  readonly node: HTMLElement;

  update(curves: ReadonlyArray<ICurve>): void {
    const domain = extent(curves);
    const root = this._svg;
    root.replaceChildren();
    root.setAttribute(
      'aria-label',
      `${this.family}: ${curves.map(c => c.name).join(', ')}`
    );
    const left = MARGIN.left;
    const right = CHART_WIDTH - MARGIN.right;
    const top = MARGIN.top;
    const bottom = CHART_HEIGHT - MARGIN.bottom;

    // y grid and labels: bottom, middle, top
    const axes = svg('g', { class: 'lepton-RunChart-axes' });
    for (let i = 0; i <= 2; i++) {
      const value = domain.y[0] + ((domain.y[1] - domain.y[0]) * i) / 2;
      const y = bottom - ((bottom - top) * i) / 2;
      axes.append(
        svg('line', {
          x1: left,
          x2: right,
          y1: y,
          y2: y,
          class: 'lepton-RunChart-grid'
        }),
        svg(
          'text',
          {
            x: left - 4,
            y: y + 3,
            'text-anchor': 'end',
            class: 'lepton-RunChart-tick'
          },
          formatTick(value)
        )
      );
    }
    // x labels: first and last step
    const steps = curves.some(c => c.points.length);
    if (steps) {
      axes.append(
        svg(
          'text',
          {
            x: left,
            y: CHART_HEIGHT - 6,
            'text-anchor': 'start',
            class: 'lepton-RunChart-tick'
          },
          `step ${formatMetric(Math.round(domain.x[0]))}`
        ),
        svg(
          'text',
          {
            x: right,
            y: CHART_HEIGHT - 6,
            'text-anchor': 'end',
            class: 'lepton-RunChart-tick'
          },
          formatMetric(Math.round(domain.x[1]))
        )
      );
    }
    root.appendChild(axes);

    this._legend.replaceChildren();
    curves.forEach((curve, index) => {
      const kind = curve.name.startsWith('val_') ? 'val' : 'train';
      const path = svg('path', {
        d: pathOf(curve.points, domain),
        class: `lepton-RunChart-line lepton-run-curve lepton-mod-${kind} lepton-mod-series${index}`,
        'data-lepton-series': curve.name,
        'data-lepton-points': curve.points.length
      });
      root.appendChild(path);
      const last = curve.points.length
        ? curve.points[curve.points.length - 1][1]
        : null;
      const item = document.createElement('span');
      item.className = `lepton-RunChart-key lepton-mod-${kind} lepton-mod-series${index}`;
      item.textContent = `${curve.name} ${formatMetric(last)}`;
      this._legend.appendChild(item);
    });
  }

  private _svg: SVGSVGElement;
  private _legend: HTMLElement;
}
