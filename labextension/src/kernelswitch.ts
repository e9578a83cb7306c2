/**
 * Notebook toolbar button that shows which Lepton kernel the notebook runs
 * (CPU / GPU / Other) and switches between `lepton-cpu` and `lepton-gpu` in
 * one click.
 *
 * Click behaviour: CPU -> GPU, GPU -> CPU, Other (any non-Lepton kernel, or no
 * kernel) -> CPU. CPU is the target from "Other" because the CPU kernel works
 * on every machine; a second click then moves to the GPU.
 *
 * Stable DOM hooks (used by the browser tests): the toolbar item node has the
 * class `lepton-kernel-switch`, the attribute
 * `data-lepton-device="cpu|gpu|other"`, a `title` tooltip, and contains one
 * `<button>` whose label text is "CPU", "GPU" or "Other". While a switch is in
 * progress the node also has `data-lepton-busy="true"`.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { CPU_KERNEL, getKernelsCached, GPU_KERNEL, IKernels } from './api';

export type LeptonDevice = 'cpu' | 'gpu' | 'other';

/** The toolbar item name (as used by `Toolbar.insertItem`). */
export const KERNEL_SWITCH_ITEM = 'leptonKernelSwitch';

/** Which device a kernel name stands for. */
export function deviceOf(kernelName: string | null | undefined): LeptonDevice {
  if (kernelName === CPU_KERNEL) {
    return 'cpu';
  }
  if (kernelName === GPU_KERNEL) {
    return 'gpu';
  }
  return 'other';
}

/** The kernel a click switches to. */
export function targetKernel(device: LeptonDevice): string {
  return device === 'cpu' ? GPU_KERNEL : CPU_KERNEL;
}

const LABELS: Record<LeptonDevice, string> = {
  cpu: 'CPU',
  gpu: 'GPU',
  other: 'Other'
};

/**
 * The toolbar widget for one notebook's session context.
 */
export class KernelSwitch extends Widget {
  constructor(sessionContext: ISessionContext) {
    super();
    this._sessionContext = sessionContext;
    this.addClass('jp-ToolbarButton');
    this.addClass('lepton-KernelSwitch');
    this.addClass('lepton-kernel-switch');

    const button = document.createElement('button');
    button.type = 'button';
    button.className =
      'jp-ToolbarButtonComponent jp-Button jp-mod-minimal lepton-KernelSwitch-button';
    const label = document.createElement('span');
    label.className =
      'jp-ToolbarButtonComponent-label lepton-KernelSwitch-label';
    button.appendChild(label);
    button.addEventListener('click', this._onClick);
    this.node.appendChild(button);
    this._button = button;
    this._label = label;

    sessionContext.kernelChanged.connect(this._update, this);
    sessionContext.sessionChanged.connect(this._update, this);
    sessionContext.statusChanged.connect(this._update, this);
    void sessionContext.ready.then(() => this._update());
    void getKernelsCached().then(kernels => {
      this._kernels = kernels;
      this._update();
    });
    this._update();
  }

  /** The device of the current (or pending) kernel. */
  get device(): LeptonDevice {
    return deviceOf(this._kernelName());
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._button.removeEventListener('click', this._onClick);
    super.dispose(); // also disconnects the signals connected with `this`
  }

  /** Switch to the other Lepton kernel. */
  async toggle(): Promise<void> {
    if (this._busy || this.isDisposed) {
      return;
    }
    const name = targetKernel(this.device);
    this._busy = true;
    this._update();
    try {
      await this._sessionContext.changeKernel({ name });
    } catch (error) {
      console.error(`lepton-lab: cannot switch the kernel to ${name}`, error);
      this._error = error instanceof Error ? error.message : String(error);
    } finally {
      this._busy = false;
      this._update();
    }
  }

  private _onClick = (event: MouseEvent): void => {
    event.preventDefault();
    this._error = '';
    void this.toggle();
  };

  private _kernelName(): string | null {
    const ctx = this._sessionContext;
    if (ctx.isDisposed) {
      return null;
    }
    const kernel = ctx.session?.kernel;
    if (kernel) {
      return kernel.name;
    }
    // Before the session starts, show the kernel it is about to start.
    if (!ctx.isReady && ctx.kernelPreference.shouldStart !== false) {
      return ctx.kernelPreference.name ?? null;
    }
    return null;
  }

  private _update(): void {
    if (this.isDisposed) {
      return;
    }
    const device = this.device;
    const target = targetKernel(device);
    const targetDevice = deviceOf(target);
    this.node.dataset.leptonDevice = device;
    if (this._busy) {
      this.node.dataset.leptonBusy = 'true';
    } else {
      delete this.node.dataset.leptonBusy;
    }
    this._label.textContent = LABELS[device];
    this._button.disabled = this._busy;
    this.toggleClass('lepton-mod-gpu', device === 'gpu');
    this.toggleClass('lepton-mod-cpu', device === 'cpu');

    const current =
      device === 'other'
        ? `a non-Lepton kernel (${this._kernelName() ?? 'no kernel'})`
        : `the Lepton ${LABELS[device]} kernel (${this._kernelName()})`;
    const lines = [
      `This notebook runs ${current}.`,
      `Click to switch to the Lepton ${LABELS[targetDevice]} kernel (${target}).`
    ];
    const kernels = this._kernels;
    if (kernels) {
      const info = kernels.kernels.find(k => k.name === target);
      if (info && !info.installed) {
        lines.push(`The ${target} kernelspec is not installed.`);
      }
      if (targetDevice === 'gpu' && !kernels.gpu_available) {
        lines.push('No GPU was detected: the GPU kernel will run on CPU.');
      } else if (targetDevice === 'gpu' && kernels.gpu_names.length) {
        lines.push(`GPUs: ${kernels.gpu_names.join(', ')}.`);
      }
    }
    if (this._busy) {
      lines.push('Switching…');
    }
    if (this._error) {
      lines.push(`Last switch failed: ${this._error}`);
    }
    const title = lines.join('\n');
    this.node.title = title;
    this._button.title = title;
    this._button.setAttribute(
      'aria-label',
      `Kernel: ${LABELS[device]}. Switch to ${LABELS[targetDevice]}`
    );
  }

  private _sessionContext: ISessionContext;
  private _button: HTMLButtonElement;
  private _label: HTMLSpanElement;
  private _busy = false;
  private _error = '';
  private _kernels: IKernels | null = null;
}

/**
 * Adds a `KernelSwitch` to every notebook panel's toolbar, next to the kernel
 * name item.
 */
export class KernelSwitchExtension
  implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel>
{
  createNew(
    panel: NotebookPanel,
    _context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const item = new KernelSwitch(panel.sessionContext);
    const toolbar = panel.toolbar;
    if (!toolbar.insertBefore('kernelName', KERNEL_SWITCH_ITEM, item)) {
      toolbar.insertItem(10, KERNEL_SWITCH_ITEM, item);
    }
    return item;
  }
}
