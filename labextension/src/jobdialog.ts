/**
 * "Run as job": a notebook toolbar button and two commands that save the
 * notebook and open a dialog to run it once as a job (`POST jobs`) or on a
 * cron schedule (`POST schedules`).
 *
 * The dialog stays open while the request is in flight and when the server
 * refuses it (a 400 with a JSON message, e.g. a parameter of the wrong type):
 * the message is shown in the dialog and the user can correct the form.
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
  ISchedule,
  IScheduleRequest
} from './api';
import { messageOf } from './format';
import { leptonIcon } from './icon';
import { KERNEL_SWITCH_ITEM } from './kernelswitch';
import { LeptonModels } from './models';

/** The toolbar item name. */
export const RUN_AS_JOB_ITEM = 'leptonRunAsJob';

/** What a submitted dialog made. */
export type JobDialogResult =
  { kind: 'job'; job: IJob } | { kind: 'schedule'; schedule: ISchedule };

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

  /** Whether the form makes a schedule (rather than one job). */
  get isSchedule(): boolean {
    return this._schedule.checked;
  }

  getValue(): JobDialogResult | null {
    return this._result;
  }

  /**
   * Validate and send the request. Resolves `true` when the server accepted
   * it (the dialog may close), `false` after showing why not.
   */
  async submit(): Promise<boolean> {
    let request;
    try {
      request = parseJobForm(this._path, {
        parameters: this._parameters.value,
        timeout: this._timeout.value,
        retries: this._retries.value,
        schedule: this._schedule.checked,
        cron: this._cron.value,
        timezone: this._timezone.value,
        executor: this._executor.value
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
      return true;
    } catch (error) {
      this.showError(error);
      return false;
    } finally {
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
  private _result: JobDialogResult | null = null;
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
