/**
 * The model registry's models: `ModelRegistryModel` (every model name, for
 * the sidebar's Models section) and `ModelVersionsModel` (the versions of one
 * name, for its version view). Like the models of models.ts they poll with a
 * Lumino `Poll` that stands by while nobody looks, emit `changed` after each
 * read, and refresh after a mutation (PATCH, DELETE).
 */
import {
  IModel,
  IModelSummary,
  IModelVersion,
  IVersionPatch,
  LeptonApiError
} from './api';
import { PollingModel } from './polling';

/** `GET models`: every model name with its newest version, newest first. */
export class ModelRegistryModel extends PollingModel<IModelSummary[]> {
  /** The model of this name among the last answer's, if listed. */
  find(name: string): IModelSummary | undefined {
    return this.data?.find(model => model.name === name);
  }

  protected async fetch(): Promise<IModelSummary[]> {
    const models = await this.client.listModels();
    // the newest first, whatever order the server lists them in
    return [...models].sort(
      (a, b) => b.updated_at - a.updated_at || (a.name < b.name ? -1 : 1)
    );
  }
}

export namespace ModelVersionsModel {
  export interface IOptions extends Omit<PollingModel.IOptions, 'name'> {
    /** The model name. */
    name: string;
    /** The registry list, refreshed after a change (aliases, a deleted version). */
    registry?: ModelRegistryModel;
  }
}

/**
 * `GET models/{name}`: the versions of one model, newest first, with their
 * lineage, artifacts and evaluations. A name with no version left (all
 * deleted) reads as an empty model rather than an error.
 */
export class ModelVersionsModel extends PollingModel<IModel> {
  constructor(options: ModelVersionsModel.IOptions) {
    super({ ...options, name: `lepton-lab:model:${options.name}` });
    this.name = options.name;
    this._registry = options.registry ?? null;
  }

  readonly name: string;

  /** The versions, newest first (empty before the first read). */
  get versions(): IModelVersion[] {
    return this.data?.versions ?? [];
  }

  /** The newest version's number, or null when there is none. */
  get latest(): number | null {
    const versions = this.versions;
    return versions.length ? Math.max(...versions.map(v => v.version)) : null;
  }

  /** The version of this number, if read. */
  version(version: number): IModelVersion | undefined {
    return this.versions.find(v => v.version === version);
  }

  /**
   * Set a version's aliases (an alias held by another version moves here)
   * and tags (null removes one); then read the model and the list again.
   */
  async patch(version: number, patch: IVersionPatch): Promise<IModelVersion> {
    try {
      return await this.client.patchModelVersion(this.name, version, patch);
    } finally {
      await this._refreshAll();
    }
  }

  /** Delete a version (and its artifacts); then read the model and the list again. */
  async remove(version: number): Promise<void> {
    try {
      await this.client.deleteModelVersion(this.name, version);
    } finally {
      await this._refreshAll();
    }
  }

  /** The URL of one of a version's artifacts (an `<a href>` downloads it). */
  artifactUrl(version: number, format: string): string {
    return this.client.modelArtifactUrl(this.name, version, format);
  }

  protected async fetch(): Promise<IModel> {
    try {
      const model = await this.client.getModel(this.name);
      const versions = [...(model.versions ?? [])].sort(
        (a, b) => b.version - a.version
      );
      return { ...model, versions };
    } catch (error) {
      if (error instanceof LeptonApiError && error.status === 404) {
        return { name: this.name, aliases: {}, versions: [] };
      }
      throw error;
    }
  }

  private async _refreshAll(): Promise<void> {
    await Promise.all([this.refresh(), this._registry?.refresh()]);
  }

  private _registry: ModelRegistryModel | null;
}
