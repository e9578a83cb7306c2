/**
 * Notebook toolbar button that shows which Lepton kernel the notebook runs
 * (CPU / GPU / Other) and switches between `lepton-cpu` and `lepton-gpu` in
 * one click.
 *
 * Click behaviour: CPU -> GPU, GPU -> CPU, Other (any non-Lepton kernel, or no
 * kernel) -> CPU. CPU is the target from "Other" because the CPU kernel works
 * on every machine; a second click then moves to the GPU.
 *
 * It is a JupyterLab `ToolbarButton` whose label and tooltip follow the
 * session: `render()` gives the button component the current ones.
 *
 * Stable DOM hooks (used by the browser tests): the toolbar item node has the
 * class `lepton-kernel-switch`, the attribute
 * `data-lepton-device="cpu|gpu|other"`, a `title` tooltip, and contains one
 * button (`.jp-ToolbarButtonComponent`) whose label text is "CPU", "GPU" or
 * "Other". While a switch is in progress the node also has
 * `data-lepton-busy="true"`.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import {
  ToolbarButton,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import * as React from 'react';

import { CPU_KERNEL, GPU_KERNEL, IKernels } from './api';
import { messageOf } from './format';
import { KernelsModel } from './models';

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

/** The tooltip: what runs now, what a click does, and what the server says of GPUs. */
export function switchTooltip(
  device: LeptonDevice,
  kernelName: string | null,
  kernels: IKernels | null,
  busy = false,
  error = ''
): string {
  const target = targetKernel(device);
  const targetDevice = deviceOf(target);
  const current =
    device === 'other'
      ? `a non-Lepton kernel (${kernelName ?? 'no kernel'})`
      : `the Lepton ${LABELS[device]} kernel (${kernelName})`;
  const lines = [
    `This notebook runs ${current}.`,
    `Click to switch to the Lepton ${LABELS[targetDevice]} kernel (${target}).`
  ];
  if (kernels) {
    const info = (kernels.kernels ?? []).find(k => k.name === target);
    if (info && info.installed === false) {
      lines.push(`The ${target} kernelspec is not installed.`);
    }
    const names = kernels.gpu_names ?? [];
    if (targetDevice === 'gpu' && !kernels.gpu_available) {
      lines.push('No GPU was detected: the GPU kernel will run on CPU.');
    } else if (targetDevice === 'gpu' && names.length) {
      lines.push(`GPUs: ${names.join(', ')}.`);
    }
  }
  if (busy) {
    lines.push('Switching…');
  }
  if (error) {
    lines.push(`Last switch failed: ${error}`);
  }
  return lines.join('\n');
}

/**
 * The toolbar button for one notebook's session context.
 */
export class KernelSwitch extends ToolbarButton {
  constructor(sessionContext: ISessionContext, kernels?: KernelsModel) {
    super({ className: 'lepton-KernelSwitch-button' });
    this._sessionContext = sessionContext;
    this.addClass('lepton-KernelSwitch');
    this.addClass('lepton-kernel-switch');
    this.onClick = () => {
      this._error = '';
      void this.toggle();
    };

    sessionContext.kernelChanged.connect(this._changed, this);
    sessionContext.sessionChanged.connect(this._changed, this);
    sessionContext.statusChanged.connect(this._changed, this);
    void sessionContext.ready.then(() => this._changed());
    void kernels?.value().then(value => {
      this._kernels = value;
      this._changed();
    });
    this._changed();
  }

  /** The device of the current (or pending) kernel. */
  get device(): LeptonDevice {
    return deviceOf(this._kernelName());
  }

  /** Switch to the other Lepton kernel. */
  async toggle(): Promise<void> {
    if (this._busy || this.isDisposed) {
      return;
    }
    const name = targetKernel(this.device);
    this._busy = true;
    this._changed();
    try {
      await this._sessionContext.changeKernel({ name });
    } catch (error) {
      console.error(`lepton-lab: cannot switch the kernel to ${name}`, error);
      this._error = messageOf(error);
    } finally {
      this._busy = false;
      this._changed();
    }
  }

  render(): React.JSX.Element {
    const device = this.device;
    const target = deviceOf(targetKernel(device));
    return React.createElement(ToolbarButtonComponent, {
      className: `lepton-KernelSwitch-button lepton-mod-${device}`,
      label: LABELS[device],
      tooltip: this._tooltip(),
      enabled: !this._busy,
      onClick: this.onClick,
      'aria-label': `Kernel: ${LABELS[device]}. Switch to ${LABELS[target]}`
    } as ToolbarButtonComponent.IProps);
  }

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

  private _tooltip(): string {
    return switchTooltip(
      this.device,
      this._kernelName(),
      this._kernels,
      this._busy,
      this._error
    );
  }

  /** Mirror the state on the item node (hooks, tooltip) and re-render. */
  private _changed(): void {
    if (this.isDisposed) {
      return;
    }
    const device = this.device;
    this.node.dataset.leptonDevice = device;
    if (this._busy) {
      this.node.dataset.leptonBusy = 'true';
    } else {
      delete this.node.dataset.leptonBusy;
    }
    this.toggleClass('lepton-mod-gpu', device === 'gpu');
    this.toggleClass('lepton-mod-cpu', device === 'cpu');
    this.node.title = this._tooltip();
    this.update();
  }

  private _sessionContext: ISessionContext;
  private _busy = false;
  private _error = '';
  private _kernels: IKernels | null = null;
}

/**
 * Adds a `KernelSwitch` to every notebook panel's toolbar, next to the kernel
 * name item.
 */
export class KernelSwitchExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private readonly _kernels?: KernelsModel) {}

  createNew(
    panel: NotebookPanel,
    _context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const item = new KernelSwitch(panel.sessionContext, this._kernels);
    const toolbar = panel.toolbar;
    if (!toolbar.insertBefore('kernelName', KERNEL_SWITCH_ITEM, item)) {
      toolbar.insertItem(10, KERNEL_SWITCH_ITEM, item);
    }
    return item;
  }
}
