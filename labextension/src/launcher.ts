/**
 * Commands, launcher cards and palette entries that create a notebook on the
 * Lepton CPU or GPU kernel.
 */
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { CommandRegistry } from '@lumino/commands';

import { CPU_KERNEL, GPU_KERNEL } from './api';
import { leptonIcon } from './icon';

export namespace CommandIDs {
  export const newCpuNotebook = 'lepton-lab:new-cpu-notebook';
  export const newGpuNotebook = 'lepton-lab:new-gpu-notebook';
  export const openSidebar = 'lepton-lab:open-sidebar';
  export const refreshCluster = 'lepton-lab:refresh-cluster';
}

/** Launcher / palette category. */
export const CATEGORY = 'Lepton Lab';

/**
 * Create an untitled notebook in `cwd` and open it on kernel `kernelName`.
 *
 * Uses JupyterLab's own `notebook:create-new` (which also picks the file
 * browser's current directory) and falls back to the underlying
 * `docmanager:new-untitled` + `docmanager:open` idiom.
 */
export async function createNotebook(
  commands: CommandRegistry,
  kernelName: string,
  cwd?: string
): Promise<unknown> {
  if (commands.hasCommand('notebook:create-new')) {
    return commands.execute('notebook:create-new', {
      kernelName,
      ...(cwd ? { cwd } : {})
    });
  }
  const model = (await commands.execute('docmanager:new-untitled', {
    path: cwd ?? '',
    type: 'notebook'
  })) as { path: string } | undefined;
  if (!model) {
    return undefined;
  }
  return commands.execute('docmanager:open', {
    path: model.path,
    factory: 'Notebook',
    kernel: { name: kernelName }
  });
}

/**
 * Register the two "new notebook" commands and add them to the launcher and
 * the command palette (either may be absent).
 */
export function addNotebookCommands(
  commands: CommandRegistry,
  launcher: ILauncher | null,
  palette: ICommandPalette | null
): void {
  const specs = [
    {
      id: CommandIDs.newCpuNotebook,
      kernel: CPU_KERNEL,
      short: 'CPU notebook',
      long: 'New Notebook on the Lepton CPU kernel',
      rank: 1
    },
    {
      id: CommandIDs.newGpuNotebook,
      kernel: GPU_KERNEL,
      short: 'GPU notebook',
      long: 'New Notebook on the Lepton GPU kernel',
      rank: 2
    }
  ];
  for (const spec of specs) {
    commands.addCommand(spec.id, {
      label: args => (args['isPalette'] ? spec.long : spec.short),
      caption: `${spec.long} (${spec.kernel})`,
      icon: args => (args['isPalette'] ? undefined : leptonIcon),
      execute: args =>
        createNotebook(
          commands,
          spec.kernel,
          typeof args['cwd'] === 'string' ? args['cwd'] : undefined
        ),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            cwd: {
              type: 'string',
              description: 'Directory to create the notebook in'
            }
          }
        }
      }
    });
    launcher?.add({
      command: spec.id,
      category: CATEGORY,
      rank: spec.rank
    });
    palette?.addItem({
      command: spec.id,
      category: CATEGORY,
      args: { isPalette: true }
    });
  }
}
