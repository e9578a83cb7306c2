/**
 * Formatters shared by the sidebar sections and the run panel: plain
 * functions of plain values, unit-tested in `test/format.spec.ts`.
 */
import type { IJob, IRun } from './api';

/** What a missing value reads as. */
export const DASH = '–';

function known(value: number | null | undefined): value is number {
  return value !== null && value !== undefined && isFinite(value);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function byteUnit(bytes: number): number {
  let unit = 0;
  let value = Math.max(0, bytes);
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit;
}

function digitsFor(value: number, unit: number): number {
  return unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
}

/** Human-readable bytes: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!known(bytes)) {
    return DASH;
  }
  const unit = byteUnit(bytes);
  const value = Math.max(0, bytes) / 1024 ** unit;
  return `${value.toFixed(digitsFor(value, unit))} ${BYTE_UNITS[unit]}`;
}

/**
 * "used / limit" in the limit's unit, written once: "0.41 / 3.9 GiB". Short
 * enough for a narrow sidebar column.
 */
export function formatMemory(
  used: number | null | undefined,
  limit: number | null | undefined
): string {
  if (!known(limit) || limit <= 0) {
    return known(used) ? formatBytes(used) : DASH;
  }
  const unit = byteUnit(limit);
  const scale = 1024 ** unit;
  const total = limit / scale;
  const limitText = total.toFixed(digitsFor(total, unit));
  if (!known(used)) {
    return `${DASH} / ${limitText} ${BYTE_UNITS[unit]}`;
  }
  const part = Math.max(0, used) / scale;
  return `${part.toFixed(digitsFor(part, unit))} / ${limitText} ${BYTE_UNITS[unit]}`;
}

/** "12%" or "3.5%"; a dash when unknown. */
export function formatPercent(value: number | null | undefined): string {
  if (!known(value)) {
    return DASH;
  }
  return `${value.toFixed(value >= 10 ? 0 : 1)}%`;
}

/** "42 s", "3 min 05 s", "2 h 04 min"; a dash when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (!known(seconds)) {
    return DASH;
  }
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  }
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

/** Seconds of CPU or GPU time: "0.4 s", "12.5 s", then as a duration. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (!known(seconds)) {
    return DASH;
  }
  return seconds < 60
    ? `${Math.max(0, seconds).toFixed(1)} s`
    : formatDuration(seconds);
}

/** A Unix time (seconds) as a short local date and time; a dash when unknown. */
export function formatTime(
  seconds: number | null | undefined,
  now: Date = new Date()
): string {
  if (!known(seconds)) {
    return DASH;
  }
  const date = new Date(seconds * 1000);
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleString([], {
        year: date.getFullYear() === now.getFullYear() ? undefined : 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit'
      });
}

/** A metric value in at most 4 significant digits: 0.1234, 12.35, 1234. */
export function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return DASH;
  }
  if (!isFinite(value)) {
    return String(value);
  }
  return Math.abs(value) >= 1000 || Number.isInteger(value)
    ? String(Math.round(value * 1000) / 1000)
    : String(Number(value.toPrecision(4)));
}

/** The first non-empty line of a (multi-line) text. */
export function firstLine(text: string | null | undefined): string {
  if (!text) {
    return '';
  }
  const line = text.split('\n').find(l => l.trim()) ?? '';
  return line.trim();
}

/** Something thrown, as a message a person can read. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---- status badges ---------------------------------------------------------

/**
 * How a status badge reads: `active` (queued, running, a deployment starting
 * or ready: the item can still be stopped), `error` (failed, timed out), or `neutral` for every other ended
 * or idle state (completed, stopped, paused). Ended items are never shown in
 * an alarming colour, and only active ones get a Stop button.
 */
export type BadgeTone = 'active' | 'error' | 'neutral';

export interface IBadge {
  /** The text: the status with underscores as spaces ("timed out"). */
  label: string;
  tone: BadgeTone;
  /** Classes for the badge node: `lepton-Badge lepton-mod-<tone> lepton-mod-<status>`. */
  className: string;
}

const ACTIVE = new Set(['queued', 'running', 'starting', 'active', 'ready']);
const ERROR = new Set(['failed', 'timed_out', 'error', 'unreachable']);

/** Whether a run or job in this status can still be stopped. */
export function isActiveStatus(status: string | null | undefined): boolean {
  return status === 'queued' || status === 'running';
}

/** The badge of a run, job, schedule or cluster status. */
export function statusBadge(status: string | null | undefined): IBadge {
  const value = status || 'unknown';
  const tone: BadgeTone = ACTIVE.has(value)
    ? 'active'
    : ERROR.has(value)
      ? 'error'
      : 'neutral';
  return {
    label: value.replace(/_/g, ' '),
    tone,
    className: `lepton-Badge lepton-mod-${tone} lepton-mod-${value}`
  };
}

// ---- progress texts --------------------------------------------------------

/** The parts of a job (`IJob`) that its progress text reads. */
export type JobProgressInput = Pick<IJob, 'status'> &
  Partial<Pick<IJob, 'created_at' | 'ended_at' | 'elapsed' | 'progress'>>;

/** A whole number of a free-form record (`Job.progress`), or 0. */
function count(
  record: { [key: string]: unknown } | null | undefined,
  key: string
): number {
  const value = record?.[key];
  return typeof value === 'number' && isFinite(value) ? value : 0;
}

/** "cell 3/7 · 12 s" for a running job, the elapsed time otherwise. */
export function jobProgressText(job: JobProgressInput, now?: Date): string {
  if (job.status === 'running') {
    const parts: string[] = [];
    const cell = count(job.progress, 'cell');
    const cells = count(job.progress, 'cells');
    if (cell && cells) {
      parts.push(`cell ${cell}/${cells}`);
    } else if (cells) {
      parts.push(`${count(job.progress, 'completed')}/${cells} cells`);
    } else {
      parts.push('starting');
    }
    parts.push(formatDuration(job.elapsed));
    return parts.join(' · ');
  }
  if (job.status === 'queued') {
    return `queued ${formatTime(job.created_at, now)}`;
  }
  return known(job.elapsed)
    ? `${formatDuration(job.elapsed)}, ended ${formatTime(job.ended_at, now)}`
    : `ended ${formatTime(job.ended_at, now)}`;
}

/**
 * The parts of a run (`IRun`) that its progress text reads; `step` is the
 * list's, or the highest the metrics read so far say.
 */
export type RunProgressInput = Pick<IRun, 'status'> &
  Partial<Pick<IRun, 'framework' | 'params' | 'step'>>;

function positiveInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value > 0
    ? value
    : null;
}

/**
 * How many epochs a run was asked for: `params.epochs` (Keras fits), else
 * `params.config.epochs` (a per-worker loop's config), else null.
 */
export function runEpochs(params: RunProgressInput['params']): number | null {
  if (!params) {
    return null;
  }
  const direct = positiveInt(params['epochs']);
  if (direct) {
    return direct;
  }
  const config = params['config'];
  if (config && typeof config === 'object' && !Array.isArray(config)) {
    return positiveInt((config as { [key: string]: unknown })['epochs']);
  }
  return null;
}

/**
 * "epoch 3/10" (Keras fits report one step per epoch, 0-based), "step 120",
 * "step 120 · 10 epochs", "10 epochs" before the first report, "queued" or
 * "waiting" when nothing is known.
 */
export function runProgressText(run: RunProgressInput): string {
  const epochs = runEpochs(run.params);
  const step = known(run.step) ? run.step : null;
  if (step === null) {
    if (epochs) {
      return `${epochs} epoch${epochs === 1 ? '' : 's'}`;
    }
    return run.status === 'queued'
      ? 'queued'
      : run.status === 'running'
        ? 'waiting'
        : '';
  }
  if (epochs && run.framework === 'keras') {
    return `epoch ${Math.min(step + 1, epochs)}/${epochs}`;
  }
  return epochs ? `step ${step} · ${epochs} epochs` : `step ${step}`;
}

/**
 * The fraction of a run done, when the run says how far it goes (Keras
 * epochs); null otherwise.
 */
export function runFraction(run: RunProgressInput): number | null {
  const epochs = runEpochs(run.params);
  if (run.status === 'completed') {
    return 1;
  }
  if (!epochs || run.framework !== 'keras' || !known(run.step)) {
    return null;
  }
  return Math.max(0, Math.min(1, (run.step + 1) / epochs));
}

/**
 * The last values of a run's metrics, train before validation, as
 * "loss 0.1234 · val_loss 0.2345" (at most `max` of them).
 */
export function metricsText(
  metrics: { [name: string]: number } | null | undefined,
  max = 2
): string {
  if (!metrics) {
    return '';
  }
  return Object.keys(metrics)
    .sort(compareMetrics)
    .slice(0, max)
    .map(name => `${name} ${formatMetric(metrics[name])}`)
    .join(' · ');
}

/** Train and validation values share a chart: `val_loss` belongs with `loss`. */
export function metricFamily(name: string): string {
  return name.startsWith('val_') ? name.slice(4) : name;
}

/**
 * The order metrics are shown in: the `loss` family first, then by family
 * name; in a family the training value before the validation one.
 */
export function compareMetrics(a: string, b: string): number {
  const fa = metricFamily(a);
  const fb = metricFamily(b);
  if (fa !== fb) {
    if (fa === 'loss' || fb === 'loss') {
      return fa === 'loss' ? -1 : 1;
    }
    return fa < fb ? -1 : 1;
  }
  const va = a.startsWith('val_');
  const vb = b.startsWith('val_');
  return va === vb ? (a < b ? -1 : a > b ? 1 : 0) : va ? 1 : -1;
}

// ---- the model registry ----------------------------------------------------

/** A version as people write it: "digits-mlp v3". */
export function versionLabel(ref: { name: string; version: number }): string {
  return `${ref.name} v${ref.version}`;
}

/**
 * The metric a model is known by: `accuracy` if it has one, else its first
 * metric; null without metrics.
 */
export function keyMetric(
  metrics: { [name: string]: number } | null | undefined
): [string, number] | null {
  if (!metrics) {
    return null;
  }
  if (typeof metrics['accuracy'] === 'number') {
    return ['accuracy', metrics['accuracy']];
  }
  const first = Object.keys(metrics).find(n => typeof metrics[n] === 'number');
  return first === undefined ? null : [first, metrics[first]];
}

/** "accuracy 0.9" for a model's key metric; empty without metrics. */
export function keyMetricText(
  metrics: { [name: string]: number } | null | undefined
): string {
  const key = keyMetric(metrics);
  return key ? `${key[0]} ${formatMetric(key[1])}` : '';
}

/**
 * Where a model's aliases point, by alias: "production → v3 · staging → v2".
 */
export function aliasesText(
  aliases: { [alias: string]: number } | null | undefined
): string {
  if (!aliases) {
    return '';
  }
  return Object.keys(aliases)
    .sort()
    .map(alias => `${alias} → v${aliases[alias]}`)
    .join(' · ');
}

/** The first `length` characters of a digest (commit, sha256). */
export function shortHash(
  hash: string | null | undefined,
  length = 12
): string {
  return hash ? hash.slice(0, length) : DASH;
}

/** Whether an exported format matched its original within the tolerance. */
export type DiffVerdict = 'ok' | 'over' | 'unknown';

/**
 * An artifact's check: "3.1e-7 ≤ 1e-5" (ok), "0.02 > 1e-5" (over), the
 * difference alone without a tolerance, a dash when not checked.
 */
export function diffText(
  maxAbsDiff: number | null | undefined,
  tolerance: number | null | undefined
): { text: string; verdict: DiffVerdict } {
  if (!known(maxAbsDiff)) {
    return { text: DASH, verdict: 'unknown' };
  }
  const diff = formatSmall(maxAbsDiff);
  if (!known(tolerance)) {
    return { text: diff, verdict: 'unknown' };
  }
  const ok = maxAbsDiff <= tolerance;
  return {
    text: `${diff} ${ok ? '≤' : '>'} ${formatSmall(tolerance)}`,
    verdict: ok ? 'ok' : 'over'
  };
}

/** A number that may be tiny (a difference, a tolerance): 0, 3.1e-7, 0.0123. */
export function formatSmall(value: number): string {
  if (value === 0 || !isFinite(value)) {
    return String(value);
  }
  return Math.abs(value) < 1e-3
    ? value.toExponential(1).replace('.0e', 'e')
    : formatMetric(value);
}

/** A free-form value of params or details, short: numbers as metrics, the rest as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === 'number') {
    return formatMetric(value);
  }
  if (typeof value === 'string') {
    return value;
  }
  if (value === null || value === undefined) {
    return DASH;
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** A duration in seconds, short: "0.34", "0.002", "12.50", "135". */
export function secondsText(seconds: number): string {
  const size = Math.abs(seconds);
  if (size === 0 || !isFinite(seconds)) {
    return String(seconds);
  }
  if (size >= 100) {
    return String(Math.round(seconds));
  }
  return size >= 0.01
    ? seconds.toFixed(2)
    : String(Number(seconds.toPrecision(1)));
}

/** The timings of a format's details, shown together at their end. */
const DETAIL_TIMINGS: ReadonlyArray<[string, string]> = [
  ['export_seconds', 'export'],
  ['verify_seconds', 'verify']
];

/**
 * A format's details ("accuracy_change -0.002 · calibration 100"), with
 * its export and verify times last and short ("export 0.34 s, verify
 * 0.02 s"); a time that is not a number is shown as any other detail.
 */
export function detailsText(
  details: { [key: string]: unknown } | null | undefined
): string {
  if (!details) {
    return '';
  }
  const timings: string[] = [];
  const timed = new Set<string>();
  for (const [key, label] of DETAIL_TIMINGS) {
    const value = details[key];
    if (typeof value === 'number') {
      timings.push(`${label} ${secondsText(value)} s`);
      timed.add(key);
    }
  }
  const parts = Object.keys(details)
    .filter(key => !timed.has(key))
    .map(key => `${key} ${valueText(details[key])}`);
  if (timings.length) {
    parts.push(timings.join(', '));
  }
  return parts.join(' · ');
}

/**
 * The aliases typed in a comma- (or space-) separated input, each once, in
 * order: "production, staging" -> ["production", "staging"].
 */
export function parseAliases(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(/[\s,]+/)) {
    const alias = part.trim().replace(/^@/, '');
    if (alias && !out.includes(alias)) {
      out.push(alias);
    }
  }
  return out;
}

/** Tags as the edit box shows them: one `key=value` a line. */
export function tagsText(
  tags: { [key: string]: string } | null | undefined
): string {
  return Object.keys(tags ?? {})
    .sort()
    .map(key => `${key}=${tags![key]}`)
    .join('\n');
}

/**
 * The tags patch of an edit: the `key=value` lines typed (a value may hold
 * "=" and commas), and null for each tag that was there and is no more. Only
 * changes are sent. Throws on a line with no key.
 */
export function tagsPatch(
  before: { [key: string]: string } | null | undefined,
  text: string
): { [key: string]: string | null } {
  const after: { [key: string]: string } = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const at = line.indexOf('=');
    const key = (at < 0 ? line : line.slice(0, at)).trim();
    if (!key) {
      throw new Error(`a tag needs a name: "${line}"`);
    }
    after[key] = at < 0 ? '' : line.slice(at + 1).trim();
  }
  const patch: { [key: string]: string | null } = {};
  const old = before ?? {};
  for (const key of Object.keys(after)) {
    if (old[key] !== after[key]) {
      patch[key] = after[key];
    }
  }
  for (const key of Object.keys(old)) {
    if (!(key in after)) {
      patch[key] = null;
    }
  }
  return patch;
}
