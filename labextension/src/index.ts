/**
 * Lepton Lab JupyterLab extension: plugin wiring.
 *
 * - "Lepton" left sidebar with the cluster status (sidebar.ts)
 * - CPU/GPU kernel switch in every notebook toolbar (kernelswitch.ts)
 * - "CPU notebook" / "GPU notebook" launcher cards and palette entries (launcher.ts)
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { KernelSwitchExtension } from './kernelswitch';
import { addNotebookCommands, CATEGORY, CommandIDs } from './launcher';
import { ClusterSidebar, DEFAULT_REFRESH_MS } from './sidebar';

/** The plugin id; its settings schema is schema/plugin.json. */
export const PLUGIN_ID = 'lepton-lab:plugin';

/** Rank of the sidebar among the left panels (file browser is 100). */
const SIDEBAR_RANK = 600;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Lepton Lab: cluster sidebar, CPU/GPU kernel switch and launcher items.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const { commands, shell } = app;

    // 1. Sidebar.
    const sidebar = new ClusterSidebar({ refreshInterval: DEFAULT_REFRESH_MS });
    shell.add(sidebar, 'left', { rank: SIDEBAR_RANK, type: 'Lepton Lab' });
    restorer?.add(sidebar, sidebar.id);

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show the Lepton cluster panel',
      execute: () => shell.activateById(sidebar.id)
    });
    commands.addCommand(CommandIDs.refreshCluster, {
      label: 'Refresh the Lepton cluster panel',
      execute: () => sidebar.refresh()
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: CATEGORY });
    palette?.addItem({ command: CommandIDs.refreshCluster, category: CATEGORY });

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const value = settings.get('refreshInterval').composite;
        sidebar.refreshInterval =
          typeof value === 'number' ? value : DEFAULT_REFRESH_MS;
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.warn('lepton-lab: cannot load settings', reason);
        });
    }

    // 2. Kernel switch in the notebook toolbar.
    app.docRegistry.addWidgetExtension('Notebook', new KernelSwitchExtension());

    // 3. Launcher and palette items.
    addNotebookCommands(commands, launcher, palette);
  }
};

export default plugin;
