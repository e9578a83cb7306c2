/**
 * "Run as job": a notebook toolbar button and two commands that save the
 * notebook and open a dialog to run it once as a job (`POST jobs`) or on a
 * cron schedule (`POST schedules`).
 *
 * The dialog stays open while the request is in flight and when the server
 * refuses it (a 400 with a JSON message, e.g. a parameter of the wrong type):
 * the message is shown in the dialog and the user can correct the form.
 *
 * Secrets (environment variables for the job's kernel) are typed into
 * password fields and sent once, in the request's body (`secrets`); the server
 * stores them encrypted and shows only their names afterwards. Their values
 * are never logged, never put in a URL and never part of an error message,
 * and the form forgets them once the request has been answered with success
 * or the dialog is closed.
 *
 * Stable DOM hooks (used by the browser tests):
 *   .lepton-run-as-job                 the toolbar item (its <button> says "Run as job")
 *   .lepton-JobForm                    the dialog body, data-lepton-busy="true" while submitting
 *     textarea.lepton-job-parameters   parameters as a JSON object
 *     input.lepton-job-timeout         seconds per attempt (empty: none)
 *     input.lepton-job-retries         retries after a failure
 *     select.lepton-job-executor       where the job runs (the server's executors, `GET config`)
 *     input.lepton-job-schedule        checkbox: repeat on a schedule
 *     input.lepton-job-cron            cron expression
 *     input.lepton-job-timezone        IANA timezone
 *     .lepton-job-secrets              the Secrets section (rows of name + value)
 *       .lepton-job-secret             one row:
 *         input.lepton-job-secret-name     environment variable name
 *         input.lepton-job-secret-value    the value (type=password, autocomplete=off)
 *         button.lepton-job-secret-remove  removes the row
 *         .lepton-job-secret-error         why the name is refused (hidden when fine)
 *       button.lepton-job-secret-add   adds a row
 *     .lepton-job-notify               the Notify section (hidden when the server has no channels):
 *       input.lepton-job-notify-event    checkboxes, value=failed|timed_out|completed|late
 *       input.lepton-job-notify-after    how long before "late" (e.g. 2h; shown while late is checked)
 *       select.lepton-job-notify-channel the channels of `GET config` (email, webhook; not jupyterlab)
 *       input.lepton-job-notify-target   email: addresses, comma-separated; webhook: the URL
 *     .lepton-job-form-error           the error of the last submission
 *   .jp-Dialog-button.jp-mod-accept    "Run" or "Schedule"
 */
import { Dialog, Notification } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ToolbarButton } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import {
  FALLBACK_CONFIG,
  IExecutorInfo,
  IJob,
  IJobRequest,
  INotifyRule,
  NotifyEvent,
  ISchedule,
  IScheduleRequest
} from './api';
import { messageOf } from './format';
import { leptonIcon } from './icon';
import { KERNEL_SWITCH_ITEM } from './kernelswitch';
import { LeptonModels } from './models';
import { actionButton, el } from './section';

/** The toolbar item name. */
export const RUN_AS_JOB_ITEM = 'leptonRunAsJob';

/** What a submitted dialog made. */
export type JobDialogResult =
  { kind: 'job'; job: IJob } | { kind: 'schedule'; schedule: ISchedule };

/** A secret's name: an environment variable name (the server's pattern). */
export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** At most this many secrets per job or schedule (the server's limit). */
export const MAX_SECRETS = 50;
const MAX_SECRET_NAME = 128;
/** Bytes of one value in UTF-8, and of all names and values together. */
const MAX_SECRET_BYTES = 64 * 1024;
const MAX_SECRETS_TOTAL_BYTES = 256 * 1024;
/** Names the server keeps for its own variables of the job's process. */
const RESERVED_SECRET_PREFIX = 'LEPTON_LAB_';

/** The length of `text` in UTF-8. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** One row of the Secrets section, as typed. */
export interface ISecretField {
  name: string;
  value: string;
}

/**
 * Why a secret's name is refused, or `''` when it is fine. Messages never
 * repeat the name (it might be a value pasted into the wrong box).
 */
export function secretNameError(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) {
    return 'A secret needs a name';
  }
  if (trimmed.length > MAX_SECRET_NAME) {
    return `A name has at most ${MAX_SECRET_NAME} characters`;
  }
  if (!SECRET_NAME_PATTERN.test(trimmed)) {
    return 'An environment variable name: letters, digits and _, not starting with a digit (e.g. API_TOKEN)';
  }
  if (trimmed.toUpperCase().startsWith(RESERVED_SECRET_PREFIX)) {
    return `${RESERVED_SECRET_PREFIX}* names are Lepton Lab's own`;
  }
  return '';
}

/** A refusal of the Secrets rows (its message names no value). */
export class SecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsError';
  }
}

/**
 * The Secrets rows as the request's `secrets` (`undefined` when there are
 * none). Rows with neither a name nor a value are skipped; names are trimmed,
 * values sent as typed. Throws an Error that names the row (by its number or
 * its valid name), never a value: a `SecretsError`.
 */
export function parseSecrets(
  rows: ReadonlyArray<ISecretField>
): Record<string, string> | undefined {
  const secrets = new Map<string, string>();
  let total = 0;
  rows.forEach((row, index) => {
    const name = row.name.trim();
    if (!name && !row.value) {
      return;
    }
    const refused = secretNameError(name);
    if (refused) {
      throw new SecretsError(`Secret ${index + 1}: ${refused}`);
    }
    if (secrets.has(name)) {
      throw new SecretsError(`Secret ${name} is given twice`);
    }
    if (!row.value) {
      throw new SecretsError(`Secret ${name} has no value`);
    }
    if (row.value.includes('\0')) {
      throw new SecretsError(
        `Secret ${name} contains a NUL character, which an environment variable cannot hold`
      );
    }
    const bytes = utf8Length(row.value);
    if (bytes > MAX_SECRET_BYTES) {
      throw new SecretsError(
        `Secret ${name} is too long (at most ${MAX_SECRET_BYTES} bytes in UTF-8)`
      );
    }
    total += bytes + name.length;
    secrets.set(name, row.value);
  });
  if (secrets.size > MAX_SECRETS) {
    throw new SecretsError(`At most ${MAX_SECRETS} secrets per job`);
  }
  if (total > MAX_SECRETS_TOTAL_BYTES) {
    throw new SecretsError(
      `The secrets are too long together (at most ${MAX_SECRETS_TOTAL_BYTES} bytes in a kernel's environment)`
    );
  }
  if (!secrets.size) {
    return undefined;
  }
  const body: Record<string, string> = {};
  for (const [name, value] of secrets) {
    // defined, not assigned: a name such as `__proto__` stays an own key
    Object.defineProperty(body, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true
    });
  }
  return body;
}

/** The events a rule can be on, in the form's order, with their labels. */
export const NOTIFY_EVENTS: ReadonlyArray<{
  event: NotifyEvent;
  label: string;
}> = [
  { event: 'failed', label: 'Failed' },
  { event: 'timed_out', label: 'Timed out' },
  { event: 'completed', label: 'Completed' },
  { event: 'late', label: 'Late' }
];

/** The channels the dialog offers: all but the lab's own toasts (those come anyway). */
export function notifyChannels(
  channels: ReadonlyArray<IExecutorInfo> | null | undefined
): IExecutorInfo[] {
  return (channels ?? []).filter(c => c && c.name && c.name !== 'jupyterlab');
}

/** The Notify part of the form, as typed. */
export interface INotifyFields {
  /** The checked events. */
  events: ReadonlyArray<NotifyEvent>;
  /** "late": how long (e.g. `2h`). */
  after: string;
  /** The chosen channel (`email`, `webhook`, ...). */
  channel: string;
  /** Email: addresses, comma-separated; webhook: the URL. */
  target: string;
}

const EMAIL = /^[^\s@,;<>]+@[^\s@,;<>]+$/;
const HTTP_URL = /^https?:\/\/[^\s/]+/i;

/** Refused Notify fields (the message says which and why). */
export class NotifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotifyError';
  }
}

/**
 * The Notify part as the request's `notify` (`undefined` when no event is
 * checked and no target typed). Throws a `NotifyError` when the fields do not
 * make a rule: no event, no channel, no target, a bad address or URL, "late"
 * without a duration. The server checks the rule again (a 400 otherwise).
 */
export function parseNotify(fields: INotifyFields): INotifyRule[] | undefined {
  const events = NOTIFY_EVENTS.map(e => e.event).filter(e =>
    fields.events.includes(e)
  );
  const target = fields.target.trim();
  if (!events.length) {
    if (target) {
      throw new NotifyError(
        'Notify: choose when (failed, timed out, completed or late)'
      );
    }
    return undefined;
  }
  const channel = fields.channel.trim();
  if (!channel) {
    throw new NotifyError('Notify: choose a channel');
  }
  const rule: INotifyRule = { on: events, channel };
  if (events.includes('late')) {
    const after = fields.after.trim();
    if (!after) {
      throw new NotifyError(
        'Notify: "late" needs a duration after which it is late, e.g. 30m, 2h or 1d'
      );
    }
    rule.after = after;
  }
  if (channel === 'email') {
    const addresses = target.split(/[,;\s]+/).filter(Boolean);
    if (!addresses.length) {
      throw new NotifyError('Notify: email needs at least one address');
    }
    const bad = addresses.find(a => !EMAIL.test(a));
    if (bad !== undefined) {
      throw new NotifyError(`Notify: not an email address: ${bad}`);
    }
    rule.to = addresses;
  } else if (channel === 'webhook') {
    if (!target) {
      throw new NotifyError('Notify: a webhook needs its URL');
    }
    if (!HTTP_URL.test(target)) {
      throw new NotifyError(
        'Notify: a webhook URL starts with http:// or https://'
      );
    }
    rule.url = target;
  } else if (target) {
    // another channel's plug-in: a URL or addresses, as it takes them
    if (HTTP_URL.test(target)) {
      rule.url = target;
    } else {
      rule.to = target.split(/[,;\s]+/).filter(Boolean);
    }
  }
  return [rule];
}

/** The form's fields, parsed; throws an Error with a readable message. */
export function parseJobForm(
  path: string,
  fields: {
    parameters: string;
    timeout: string;
    retries: string;
    schedule: boolean;
    cron: string;
    timezone: string;
    /** The chosen executor; empty: the server's default. */
    executor?: string;
    /** The Secrets rows; blank rows are skipped. */
    secrets?: ReadonlyArray<ISecretField>;
    /** The Notify part; nothing checked: no rule. */
    notify?: INotifyFields;
  }
):
  | { kind: 'job'; body: IJobRequest }
  | { kind: 'schedule'; body: IScheduleRequest } {
  let parameters: unknown;
  const text = fields.parameters.trim() || '{}';
  try {
    parameters = JSON.parse(text);
  } catch (error) {
    throw new Error(`Parameters are not valid JSON: ${messageOf(error)}`);
  }
  if (
    !parameters ||
    typeof parameters !== 'object' ||
    Array.isArray(parameters)
  ) {
    throw new Error('Parameters must be a JSON object, e.g. {"epochs": 5}');
  }
  const body: IJobRequest = {
    path,
    parameters: parameters as Record<string, unknown>,
    output_formats: ['ipynb', 'html']
  };
  if (fields.executor) {
    body.executor = fields.executor as IJobRequest['executor'];
  }
  const timeout = fields.timeout.trim();
  if (timeout) {
    const value = Number(timeout);
    if (!isFinite(value) || value <= 0) {
      throw new Error(
        'Timeout must be a positive number of seconds (or empty)'
      );
    }
    body.timeout = value;
  }
  const retries = fields.retries.trim();
  if (retries) {
    const value = Number(retries);
    if (!Number.isInteger(value) || value < 0) {
      throw new Error('Retries must be a whole number, 0 or more');
    }
    body.retries = value;
  }
  const secrets = parseSecrets(fields.secrets ?? []);
  if (secrets) {
    body.secrets = secrets;
  }
  const notify = fields.notify ? parseNotify(fields.notify) : undefined;
  if (notify) {
    body.notify = notify;
  }
  if (!fields.schedule) {
    return { kind: 'job', body };
  }
  const cron = fields.cron.trim();
  if (!cron) {
    throw new Error('A schedule needs a cron expression, e.g. "0 6 * * *"');
  }
  const schedule: IScheduleRequest = { ...body, cron };
  const timezone = fields.timezone.trim();
  if (timezone) {
    schedule.timezone = timezone;
  }
  return { kind: 'schedule', body: schedule };
}

function browserTimezone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function field(
  form: HTMLElement,
  label: string,
  control: HTMLElement,
  hint?: string
): HTMLLabelElement {
  const row = document.createElement('label');
  row.className = 'lepton-JobForm-field';
  const name = document.createElement('span');
  name.className = 'lepton-JobForm-label';
  name.textContent = label;
  row.append(name, control);
  if (hint) {
    const small = document.createElement('span');
    small.className = 'lepton-JobForm-hint';
    small.textContent = hint;
    row.appendChild(small);
  }
  form.appendChild(row);
  return row;
}

/**
 * The dialog body: the form, and the submission it makes.
 */
export class JobForm
  extends Widget
  implements Dialog.IBodyWidget<JobDialogResult | null>
{
  constructor(path: string, schedule: boolean, models: LeptonModels) {
    super();
    this._path = path;
    this._models = models;
    this.addClass('lepton-JobForm');
    const node = this.node;

    const where = document.createElement('p');
    where.className = 'lepton-JobForm-path';
    where.textContent = path;
    node.appendChild(where);

    this._parameters = document.createElement('textarea');
    this._parameters.className = 'jp-mod-styled lepton-job-parameters';
    this._parameters.rows = 4;
    this._parameters.spellcheck = false;
    this._parameters.value = '{}';
    field(
      node,
      'Parameters (JSON)',
      this._parameters,
      "Values for the notebook's `parameters` cell, checked against its defaults' types"
    );

    const numbers = document.createElement('div');
    numbers.className = 'lepton-JobForm-row';
    node.appendChild(numbers);
    this._timeout = document.createElement('input');
    this._timeout.className = 'jp-mod-styled lepton-job-timeout';
    this._timeout.type = 'number';
    this._timeout.min = '1';
    this._timeout.placeholder = 'none';
    field(numbers, 'Timeout (s)', this._timeout);
    this._retries = document.createElement('input');
    this._retries.className = 'jp-mod-styled lepton-job-retries';
    this._retries.type = 'number';
    this._retries.min = '0';
    this._retries.step = '1';
    this._retries.value = '0';
    field(numbers, 'Retries', this._retries);
    this._executor = document.createElement('select');
    this._executor.className = 'jp-mod-styled lepton-job-executor';
    this._executorField = field(numbers, 'Runs on', this._executor);
    this._setExecutors(
      FALLBACK_CONFIG.executors,
      FALLBACK_CONFIG.default_executor
    );
    void models.config.value().then(config => {
      if (!this.isDisposed) {
        this._setExecutors(config.executors, config.default_executor);
      }
    });

    const secrets = el('div', 'lepton-JobForm-secrets lepton-job-secrets');
    const secretsHead = el('div', 'lepton-JobForm-secretsHead');
    secretsHead.append(
      el('span', 'lepton-JobForm-label', 'Secrets'),
      el(
        'span',
        'lepton-JobForm-hint',
        "Environment variables for the job's kernel: stored encrypted, shown afterwards by name only"
      )
    );
    this._secretList = el('div', 'lepton-JobForm-secretList');
    this._addSecret = actionButton(
      'lepton-JobForm-addSecret lepton-job-secret-add',
      'Add secret',
      "Add an environment variable for the job's kernel (e.g. API_TOKEN)"
    );
    this._addSecret.addEventListener('click', () => {
      this.addSecret().name.focus();
    });
    secrets.append(secretsHead, this._secretList, this._addSecret);
    node.appendChild(secrets);

    // Notify: when, where and whom (the server's channels, `GET config`)
    this._notify = el('div', 'lepton-JobForm-notify lepton-job-notify');
    const notifyHead = el('div', 'lepton-JobForm-secretsHead');
    notifyHead.append(
      el('span', 'lepton-JobForm-label', 'Notify'),
      el(
        'span',
        'lepton-JobForm-hint',
        'A message when the job ends this way (a toast in this lab comes anyway)'
      )
    );
    const events = el('div', 'lepton-JobForm-row lepton-JobForm-notifyEvents');
    for (const { event, label } of NOTIFY_EVENTS) {
      const box = el('label', 'lepton-JobForm-check');
      const input = el('input', 'lepton-job-notify-event');
      input.type = 'checkbox';
      input.value = event;
      input.addEventListener('change', () => this._syncNotify());
      box.append(input, document.createTextNode(` ${label}`));
      events.appendChild(box);
      this._notifyEvents.push(input);
    }
    const notifyRow = el('div', 'lepton-JobForm-row');
    this._notifyAfter = el('input', 'jp-mod-styled lepton-job-notify-after');
    this._notifyAfter.type = 'text';
    this._notifyAfter.placeholder = '2h';
    this._notifyAfter.spellcheck = false;
    this._notifyAfterField = field(
      notifyRow,
      'Late after',
      this._notifyAfter,
      '30m, 2h, 1d'
    );
    this._notifyChannel = el(
      'select',
      'jp-mod-styled lepton-job-notify-channel'
    );
    this._notifyChannel.addEventListener('change', () => this._syncNotify());
    field(notifyRow, 'Channel', this._notifyChannel);
    this._notifyTarget = el('input', 'jp-mod-styled lepton-job-notify-target');
    this._notifyTarget.type = 'text';
    this._notifyTarget.spellcheck = false;
    this._notifyTarget.autocomplete = 'off';
    this._notifyTargetField = field(notifyRow, 'To', this._notifyTarget);
    this._notify.append(notifyHead, events, notifyRow);
    this._notify.hidden = true;
    node.appendChild(this._notify);
    void models.client
      .getConfig()
      .then(config => {
        if (!this.isDisposed) {
          this.setChannels(config?.channels ?? []);
        }
      })
      .catch(() => {
        // an older server without channels: no Notify part
      });

    const toggle = document.createElement('label');
    toggle.className = 'lepton-JobForm-check';
    this._schedule = document.createElement('input');
    this._schedule.type = 'checkbox';
    this._schedule.className = 'lepton-job-schedule';
    this._schedule.checked = schedule;
    toggle.append(
      this._schedule,
      document.createTextNode(' Repeat on a schedule')
    );
    node.appendChild(toggle);

    this._scheduleBox = document.createElement('div');
    this._scheduleBox.className = 'lepton-JobForm-row lepton-JobForm-schedule';
    node.appendChild(this._scheduleBox);
    this._cron = document.createElement('input');
    this._cron.className = 'jp-mod-styled lepton-job-cron';
    this._cron.type = 'text';
    this._cron.placeholder = '0 6 * * 1-5';
    this._cron.spellcheck = false;
    field(
      this._scheduleBox,
      'Cron',
      this._cron,
      '5 fields (min hour day month weekday), or 6 with seconds last'
    );
    this._timezone = document.createElement('input');
    this._timezone.className = 'jp-mod-styled lepton-job-timezone';
    this._timezone.type = 'text';
    this._timezone.value = browserTimezone();
    field(this._scheduleBox, 'Timezone', this._timezone);

    this._error = document.createElement('div');
    this._error.className = 'lepton-JobForm-error lepton-job-form-error';
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    node.appendChild(this._error);

    this._schedule.addEventListener('change', () => this._sync());
    this._sync();
  }

  /** The channels offered in the Notify part (`jupyterlab` left out); none hides it. */
  setChannels(channels: ReadonlyArray<IExecutorInfo>): void {
    const offered = notifyChannels(channels);
    const previous = this._notifyChannel.value;
    this._notifyChannel.replaceChildren();
    for (const channel of offered) {
      const option = document.createElement('option');
      option.value = channel.name;
      option.textContent = channel.name;
      option.title = channel.description;
      this._notifyChannel.appendChild(option);
    }
    if (offered.some(c => c.name === previous)) {
      this._notifyChannel.value = previous;
    }
    this._notify.hidden = offered.length === 0;
    this._syncNotify();
  }

  /** The Notify part as typed (empty while it is hidden). */
  get notifyFields(): INotifyFields {
    if (this._notify.hidden) {
      return { events: [], after: '', channel: '', target: '' };
    }
    return {
      events: this._notifyEvents
        .filter(input => input.checked)
        .map(input => input.value as NotifyEvent),
      after: this._notifyAfter.value,
      channel: this._notifyChannel.value,
      target: this._notifyTarget.value
    };
  }

  /** Whether the form makes a schedule (rather than one job). */
  get isSchedule(): boolean {
    return this._schedule.checked;
  }

  getValue(): JobDialogResult | null {
    return this._result;
  }

  /** The Secrets rows' inputs, in order. */
  get secretRows(): ReadonlyArray<{
    name: HTMLInputElement;
    value: HTMLInputElement;
  }> {
    return this._secretRows.map(({ name, value }) => ({ name, value }));
  }

  /**
   * Add a row to the Secrets section (the add button does this); returns its
   * inputs. No more than `MAX_SECRETS` rows.
   */
  addSecret(): { name: HTMLInputElement; value: HTMLInputElement } {
    if (this._secretRows.length >= MAX_SECRETS) {
      const last = this._secretRows[this._secretRows.length - 1];
      return { name: last.name, value: last.value };
    }
    const node = el('div', 'lepton-JobForm-secret lepton-job-secret');
    const line = el('div', 'lepton-JobForm-secretLine');
    const name = el('input', 'jp-mod-styled lepton-job-secret-name');
    name.type = 'text';
    name.placeholder = 'NAME';
    name.autocomplete = 'off';
    name.spellcheck = false;
    name.setAttribute('autocapitalize', 'off');
    name.setAttribute('aria-label', 'Secret name');
    name.maxLength = MAX_SECRET_NAME;
    const value = el('input', 'jp-mod-styled lepton-job-secret-value');
    value.type = 'password';
    value.placeholder = 'value';
    value.autocomplete = 'off';
    value.spellcheck = false;
    value.setAttribute('aria-label', 'Secret value');
    const remove = actionButton(
      'lepton-JobForm-removeSecret lepton-job-secret-remove',
      'Remove',
      'Remove this secret'
    );
    const error = el(
      'div',
      'lepton-JobForm-secretError lepton-job-secret-error'
    );
    error.hidden = true;
    line.append(name, value, remove);
    node.append(line, error);
    const row: ISecretRow = { node, name, value, error };
    // a name is checked as it is typed; an empty one only once submitted
    name.addEventListener('input', () => this._checkSecrets(false));
    value.addEventListener('input', () => this._checkSecrets(false));
    remove.addEventListener('click', () => this._removeSecret(row));
    this._secretRows.push(row);
    this._secretList.appendChild(node);
    this._syncSecrets();
    return { name, value };
  }

  /**
   * Forget every secret value: the rows go, and their inputs are emptied
   * first (a detached input keeps its value while something refers to it).
   */
  clearSecrets(): void {
    for (const row of this._secretRows) {
      row.value.value = '';
      row.node.remove();
    }
    this._secretRows = [];
    this._syncSecrets();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.clearSecrets();
    super.dispose();
  }

  /**
   * Validate and send the request. Resolves `true` when the server accepted
   * it (the dialog may close), `false` after showing why not.
   */
  async submit(): Promise<boolean> {
    let request;
    try {
      this._checkSecrets(true);
      request = parseJobForm(this._path, {
        parameters: this._parameters.value,
        timeout: this._timeout.value,
        retries: this._retries.value,
        schedule: this._schedule.checked,
        cron: this._cron.value,
        timezone: this._timezone.value,
        executor: this._executor.value,
        secrets: this._secretRows.map(secretField),
        notify: this.notifyFields
      });
    } catch (error) {
      this.showError(error);
      return false;
    }
    this._setBusy(true);
    try {
      if (request.kind === 'job') {
        this._result = {
          kind: 'job',
          job: await this._models.jobs.submit(request.body)
        };
      } else {
        this._result = {
          kind: 'schedule',
          schedule: await this._models.schedules.create(request.body)
        };
      }
      // sent and stored: the dialog closes, and keeps no copy of a value
      this.clearSecrets();
      return true;
    } catch (error) {
      // refused: the rows stay for a correction (the message has no values)
      this.showError(error);
      return false;
    } finally {
      delete request.body.secrets;
      this._setBusy(false);
    }
  }

  /** The executors offered (the server's, or "local" only). */
  get executors(): string[] {
    return [...this._executor.options].map(o => o.value);
  }

  showError(error: unknown): void {
    const message = messageOf(error);
    this._error.textContent = message;
    this._error.hidden = !message;
    this._secretsRefused = error instanceof SecretsError;
  }

  protected onAfterAttach(): void {
    this._sync();
  }

  /** The dialog's accept button (the body does not own it; may be absent). */
  private _acceptButton(): HTMLButtonElement | null {
    return (
      this.node
        .closest('.jp-Dialog')
        ?.querySelector<HTMLButtonElement>('.jp-Dialog-button.jp-mod-accept') ??
      null
    );
  }

  private _sync(): void {
    const schedule = this._schedule.checked;
    this._scheduleBox.hidden = !schedule;
    this._cron.disabled = !schedule;
    this._timezone.disabled = !schedule;
    const label = this._acceptButton()?.querySelector('.jp-Dialog-buttonLabel');
    if (label) {
      label.textContent = schedule ? 'Schedule' : 'Run';
    }
  }

  /**
   * Show under each row why its name is refused (an empty name only when
   * `submitting`, or when the row has a value), and duplicates.
   */
  private _checkSecrets(submitting: boolean): void {
    const seen = new Set<string>();
    for (const row of this._secretRows) {
      const name = row.name.value.trim();
      let message = '';
      if (name || row.value.value || submitting) {
        message = secretNameError(name);
      }
      if (!name && !row.value.value) {
        message = ''; // a blank row is skipped
      }
      if (!message && name) {
        if (seen.has(name)) {
          message = 'This name is given twice';
        }
        seen.add(name);
      }
      row.error.textContent = message;
      row.error.hidden = !message;
      row.name.classList.toggle('lepton-mod-invalid', !!message);
      if (message) {
        row.name.setAttribute('aria-invalid', 'true');
      } else {
        row.name.removeAttribute('aria-invalid');
      }
    }
    // the form's message about the secrets goes once they read well
    if (!submitting && this._secretsRefused) {
      try {
        parseSecrets(this._secretRows.map(secretField));
        this.showError('');
      } catch {
        // still refused: the message stays until the next submission
      }
    }
  }

  /** Show "Late after" only while late is checked; the target's hint follows the channel. */
  private _syncNotify(): void {
    const late = this._notifyEvents.some(
      input => input.value === 'late' && input.checked
    );
    this._notifyAfterField.hidden = !late;
    const channel = this._notifyChannel.value;
    const label = this._notifyTargetField.querySelector(
      '.lepton-JobForm-label'
    );
    if (channel === 'webhook') {
      this._notifyTarget.placeholder = 'https://hooks.slack.com/services/...';
      this._notifyTarget.type = 'url';
      if (label) {
        label.textContent = 'URL';
      }
    } else {
      this._notifyTarget.placeholder =
        channel === 'email' ? 'ann@example.com, bob@example.com' : '';
      this._notifyTarget.type = 'text';
      if (label) {
        label.textContent = channel === 'email' ? 'To (comma-separated)' : 'To';
      }
    }
  }

  private _removeSecret(row: ISecretRow): void {
    row.value.value = '';
    row.node.remove();
    this._secretRows = this._secretRows.filter(r => r !== row);
    this._checkSecrets(false);
    this._syncSecrets();
    this._addSecret.focus();
  }

  private _syncSecrets(): void {
    const full = this._secretRows.length >= MAX_SECRETS;
    this._addSecret.disabled = full;
    this._addSecret.title = full
      ? `At most ${MAX_SECRETS} secrets`
      : "Add an environment variable for the job's kernel (e.g. API_TOKEN)";
    this._secretList.hidden = this._secretRows.length === 0;
  }

  private _setExecutors(executors: IExecutorInfo[], chosen: string): void {
    const previous = this._executor.value;
    this._executor.replaceChildren();
    for (const executor of executors) {
      const option = document.createElement('option');
      option.value = executor.name;
      option.textContent = executor.name;
      option.title = executor.description;
      this._executor.appendChild(option);
    }
    const names = executors.map(e => e.name);
    this._executor.value =
      names.includes(previous) && this._touched ? previous : chosen;
    this._executor.onchange = () => (this._touched = true);
    const current = executors.find(e => e.name === this._executor.value);
    this._executor.title = current?.description ?? '';
    // one choice is no choice: keep the form short
    this._executorField.hidden = executors.length < 2;
  }

  private _setBusy(busy: boolean): void {
    if (busy) {
      this.node.dataset.leptonBusy = 'true';
    } else {
      delete this.node.dataset.leptonBusy;
    }
    const accept = this._acceptButton();
    if (accept) {
      accept.disabled = busy;
    }
  }

  private _path: string;
  private _models: LeptonModels;
  private _executor: HTMLSelectElement;
  private _executorField: HTMLElement;
  private _touched = false;
  private _parameters: HTMLTextAreaElement;
  private _timeout: HTMLInputElement;
  private _retries: HTMLInputElement;
  private _schedule: HTMLInputElement;
  private _scheduleBox: HTMLElement;
  private _cron: HTMLInputElement;
  private _timezone: HTMLInputElement;
  private _error: HTMLElement;
  private _secretList: HTMLElement;
  private _addSecret: HTMLButtonElement;
  private _secretRows: ISecretRow[] = [];
  private _secretsRefused = false;
  private _notify: HTMLElement;
  private _notifyEvents: HTMLInputElement[] = [];
  private _notifyAfter: HTMLInputElement;
  private _notifyAfterField: HTMLElement;
  private _notifyChannel: HTMLSelectElement;
  private _notifyTarget: HTMLInputElement;
  private _notifyTargetField: HTMLElement;
  private _result: JobDialogResult | null = null;
}

/** One row of the Secrets section. */
interface ISecretRow {
  node: HTMLElement;
  name: HTMLInputElement;
  value: HTMLInputElement;
  error: HTMLElement;
}

/** What a row holds, as `parseSecrets` takes it. */
function secretField(row: ISecretRow): ISecretField {
  return { name: row.name.value, value: row.value.value };
}

/**
 * A dialog whose accept button submits the form first and closes only when
 * the submission succeeded.
 */
class SubmitDialog extends Dialog<JobDialogResult | null> {
  constructor(
    options: Partial<Dialog.IOptions<JobDialogResult | null>>,
    private readonly _form: JobForm,
    private readonly _buttons2: ReadonlyArray<Dialog.IButton>,
    private readonly _defaultIndex: number
  ) {
    super(options);
  }

  resolve(index?: number): void {
    const i = index ?? this._defaultIndex;
    const chosen = this._buttons2[i];
    if (!chosen || !chosen.accept || this._accepted) {
      super.resolve(index);
      return;
    }
    if (this._submitting) {
      return;
    }
    this._submitting = true;
    void this._form.submit().then(ok => {
      this._submitting = false;
      if (ok && !this.isDisposed) {
        this._accepted = true;
        super.resolve(i);
      }
    });
  }

  reject(): void {
    // Escape or the close button while the request is in flight would hide
    // its answer: the job may be queued with nobody told. Wait for it.
    if (this._submitting) {
      return;
    }
    super.reject();
  }

  private _submitting = false;
  private _accepted = false;
}

/**
 * Open the dialog for the notebook at `path` (relative to the server root).
 * Resolves with what the server made, or `null` when cancelled.
 */
export async function showJobDialog(
  path: string,
  schedule: boolean,
  models: LeptonModels
): Promise<JobDialogResult | null> {
  const form = new JobForm(path, schedule, models);
  const name = path.split('/').pop() ?? path;
  const buttons = [
    Dialog.cancelButton(),
    Dialog.okButton({ label: schedule ? 'Schedule' : 'Run' })
  ];
  const dialog = new SubmitDialog(
    {
      title: `Run ${name} as a job`,
      body: form,
      buttons,
      defaultButton: 1,
      focusNodeSelector: '.lepton-job-parameters',
      hasClose: true
    },
    form,
    buttons,
    1
  );
  dialog.addClass('lepton-JobDialog');
  const result = await dialog.launch();
  return result.button.accept ? result.value : null;
}

/**
 * Save the notebook (when it has unsaved changes), then open the dialog for
 * it. `done` is called with what the server made.
 */
export async function runNotebookAsJob(
  panel: NotebookPanel,
  schedule: boolean,
  models: LeptonModels,
  done: (result: JobDialogResult) => void
): Promise<JobDialogResult | null> {
  const context = panel.context;
  await context.ready;
  if (context.model.dirty && !context.model.readOnly) {
    try {
      await context.save();
    } catch (error) {
      // The job runs the file on disk: do not submit what the user does not see.
      Notification.error(
        `Cannot save ${context.localPath}, so it was not run as a job: ${messageOf(error)}`,
        { autoClose: 8000 }
      );
      return null;
    }
  }
  const result = await showJobDialog(context.localPath, schedule, models);
  if (result) {
    done(result);
  }
  return result;
}

/**
 * Adds a "Run as job" button to every notebook toolbar, left of the kernel
 * switch.
 */
export class RunAsJobExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly _models: LeptonModels,
    private readonly _done: (result: JobDialogResult) => void
  ) {}

  createNew(
    panel: NotebookPanel,
    _context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const item = new ToolbarButton({
      className: 'lepton-RunAsJob lepton-run-as-job',
      icon: leptonIcon,
      label: 'Run as job',
      tooltip:
        'Save the notebook and run it as a job (papermill, with parameters, retries and a timeout), once or on a cron schedule',
      onClick: () => {
        void runNotebookAsJob(panel, false, this._models, this._done).catch(
          error => {
            console.error('lepton-lab: run as job failed', error);
          }
        );
      }
    });
    const toolbar = panel.toolbar;
    if (
      !toolbar.insertBefore(KERNEL_SWITCH_ITEM, RUN_AS_JOB_ITEM, item) &&
      !toolbar.insertBefore('kernelName', RUN_AS_JOB_ITEM, item)
    ) {
      toolbar.insertItem(10, RUN_AS_JOB_ITEM, item);
    }
    return item;
  }
}
