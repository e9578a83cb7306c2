import {
  aliasesText,
  detailsText,
  diffText,
  formatSmall,
  keyMetric,
  keyMetricText,
  parseAliases,
  secondsText,
  shortHash,
  tagsPatch,
  tagsText,
  versionLabel
} from '../src/format';
import { LeptonModels } from '../src/models';
import { ModelRegistryModel, ModelVersionsModel } from '../src/registry';
import { version } from './registry-fixtures';
import { settle, StubServer } from './stub-server';

function summary(name: string, updated: number, extra: object = {}) {
  return {
    name,
    framework: 'torch',
    versions: 2,
    latest_version: 2,
    updated_at: updated,
    aliases: { production: 2 },
    metrics: { loss: 0.2, accuracy: 0.91 },
    ...extra
  };
}

describe('model registry formatting', () => {
  it('picks accuracy as the key metric, else the first one', () => {
    expect(keyMetric({ loss: 0.2, accuracy: 0.9 })).toEqual(['accuracy', 0.9]);
    expect(keyMetric({ f1: 0.7, loss: 0.2 })).toEqual(['f1', 0.7]);
    expect(keyMetric({})).toBeNull();
    expect(keyMetric(undefined)).toBeNull();
    expect(keyMetricText({ loss: 0.2, accuracy: 0.91234 })).toBe(
      'accuracy 0.9123'
    );
    expect(keyMetricText(null)).toBe('');
  });

  it('writes aliases, versions and digests', () => {
    expect(aliasesText({ staging: 2, production: 3 })).toBe(
      'production → v3 · staging → v2'
    );
    expect(aliasesText({})).toBe('');
    expect(versionLabel({ name: 'digits-mlp', version: 3 })).toBe(
      'digits-mlp v3'
    );
    expect(shortHash('0123456789abcdef')).toBe('0123456789ab');
    expect(shortHash('0123456789abcdef', 7)).toBe('0123456');
    expect(shortHash(null)).toBe('–');
  });

  it('compares a difference with its tolerance', () => {
    expect(diffText(3.1e-7, 1e-5)).toEqual({
      text: '3.1e-7 ≤ 1e-5',
      verdict: 'ok'
    });
    expect(diffText(0.02, 1e-3)).toEqual({
      text: '0.02 > 0.001',
      verdict: 'over'
    });
    expect(diffText(0, 1e-6)).toEqual({ text: '0 ≤ 1e-6', verdict: 'ok' });
    expect(diffText(0.5, null)).toEqual({ text: '0.5', verdict: 'unknown' });
    expect(diffText(null, 1e-6)).toEqual({ text: '–', verdict: 'unknown' });
    expect(formatSmall(0.0123)).toBe('0.0123');
    expect(formatSmall(2.5e-4)).toBe('2.5e-4');
  });

  it('writes format details', () => {
    expect(detailsText({ accuracy_change: -0.0042, opset: 17 })).toBe(
      'accuracy_change -0.0042 · opset 17'
    );
    expect(detailsText({ calibration: { samples: 100 } })).toBe(
      'calibration {"samples":100}'
    );
    expect(detailsText({})).toBe('');
    expect(detailsText(null)).toBe('');
  });

  it('writes export and verify times short, after the other details', () => {
    expect(
      detailsText({
        export_seconds: 0.3412,
        verify_seconds: 0.0213,
        accuracy_change: -0.0042,
        note: 'no evaluation data given'
      })
    ).toBe(
      'accuracy_change -0.0042 · note no evaluation data given · ' +
        'export 0.34 s, verify 0.02 s'
    );
    expect(detailsText({ export_seconds: 12.5 })).toBe('export 12.50 s');
    expect(detailsText({ verify_seconds: 0.0021, accuracy_change: null })).toBe(
      'accuracy_change – · verify 0.002 s'
    );
    // a time that is not a number is shown as it is
    expect(detailsText({ export_seconds: null })).toBe('export_seconds –');
    expect(secondsText(0)).toBe('0');
    expect(secondsText(0.004)).toBe('0.004');
    expect(secondsText(0.34)).toBe('0.34');
    expect(secondsText(135.4)).toBe('135');
  });

  it('reads the aliases typed in the edit box', () => {
    expect(parseAliases(' production, staging ,,production @canary')).toEqual([
      'production',
      'staging',
      'canary'
    ]);
    expect(parseAliases('  ')).toEqual([]);
  });

  it('turns the tags typed into a patch of changes', () => {
    const before = { owner: 'ana', stage: 'dev', note: 'x' };
    expect(tagsText(before)).toBe('note=x\nowner=ana\nstage=dev');
    expect(
      tagsPatch(before, 'owner=ana\nstage = prod\nurl=http://a/?b=c, d\n')
    ).toEqual({ stage: 'prod', url: 'http://a/?b=c, d', note: null });
    expect(tagsPatch(before, tagsText(before))).toEqual({});
    expect(tagsPatch({}, 'flag')).toEqual({ flag: '' });
    expect(() => tagsPatch({}, '=value')).toThrow(/a tag needs a name/);
  });
});

describe('ModelRegistryModel', () => {
  it('lists the models, newest first', async () => {
    const server = new StubServer().on('GET models', {
      body: { models: [summary('old', 10), summary('new', 20)] }
    });
    const model = new ModelRegistryModel({ client: server.client() });
    await model.refresh();
    expect(model.data?.map(m => m.name)).toEqual(['new', 'old']);
    expect(model.find('old')?.updated_at).toBe(10);
    expect(model.error).toBeNull();
    model.dispose();
  });

  it('is one of the sidebar’s polling models, standing by while hidden', async () => {
    let hidden = true;
    const server = new StubServer().on('GET models', {
      body: { models: [summary('m', 1)] }
    });
    const models = new LeptonModels({
      client: server.client(),
      standby: () => hidden,
      interval: 2000
    });
    expect(models.polling).toContain(models.registry);
    await models.registry.refresh();
    expect(server.calls('GET models')).toHaveLength(0);
    hidden = false;
    await models.registry.refresh();
    expect(server.calls('GET models')).toHaveLength(1);
    expect(models.registry.interval).toBe(2000);
    models.interval = 5000;
    expect(models.registry.interval).toBe(5000);
    models.dispose();
  });
});

describe('ModelVersionsModel', () => {
  function serve(versions: ReturnType<typeof version>[]) {
    const state = { versions };
    const aliases = () =>
      Object.fromEntries(
        state.versions.flatMap(v => v.aliases.map(a => [a, v.version]))
      );
    const server = new StubServer()
      .on('GET models/digits-mlp', () =>
        state.versions.length
          ? {
              body: {
                name: 'digits-mlp',
                aliases: aliases(),
                // oldest first: the model sorts them
                versions: [...state.versions].reverse()
              }
            }
          : { status: 404, body: { message: "no model 'digits-mlp'" } }
      )
      .on('GET models', { body: { models: [] } });
    return { server, state };
  }

  it('reads the versions newest first', async () => {
    const { server } = serve([version(2), version(1)]);
    const model = new ModelVersionsModel({
      client: server.client(),
      name: 'digits-mlp'
    });
    await model.refresh();
    expect(model.versions.map(v => v.version)).toEqual([2, 1]);
    expect(model.latest).toBe(2);
    expect(model.version(1)?.run_id).toBe('run-1');
    expect(model.version(7)).toBeUndefined();
    expect(model.poll.name).toBe('lepton-lab:model:digits-mlp');
    model.dispose();
  });

  it('PATCHes aliases and tags, then reads the model and the list again', async () => {
    const { server, state } = serve([
      version(2, { aliases: ['production'] }),
      version(1)
    ]);
    server.on('PATCH models/digits-mlp/versions/1', request => {
      const patch = request.body as { aliases: string[] };
      for (const v of state.versions) {
        v.aliases = v.aliases.filter(a => !patch.aliases.includes(a));
      }
      state.versions[1].aliases = patch.aliases;
      return { body: state.versions[1] };
    });
    const models = new LeptonModels({ client: server.client() });
    const model = models.modelVersions('digits-mlp');
    await model.refresh();
    const answer = await model.patch(1, {
      aliases: ['production'],
      tags: { stage: 'prod' }
    });
    expect(answer.aliases).toEqual(['production']);
    expect(server.calls('PATCH models/digits-mlp/versions/1')[0].body).toEqual({
      aliases: ['production'],
      tags: { stage: 'prod' }
    });
    expect(model.data?.aliases).toEqual({ production: 1 });
    expect(model.version(2)?.aliases).toEqual([]);
    expect(server.calls('GET models')).toHaveLength(1); // the list too
    model.dispose();
    models.dispose();
  });

  it('says what the server refused, and still reads again', async () => {
    const { server } = serve([version(1)]);
    server.on('PATCH models/digits-mlp/versions/1', {
      status: 400,
      body: { message: "invalid alias '1x'" }
    });
    const model = new ModelVersionsModel({
      client: server.client(),
      name: 'digits-mlp'
    });
    const error = await model.patch(1, { aliases: ['1x'] }).catch(e => e);
    expect(error.message).toBe("invalid alias '1x' (HTTP 400)");
    expect(error.status).toBe(400);
    expect(server.calls('GET models/digits-mlp')).toHaveLength(1);
    model.dispose();
  });

  it('DELETEs a version; with none left the model is empty, not an error', async () => {
    const { server, state } = serve([version(2), version(1)]);
    server.on('DELETE models/digits-mlp/versions/1', () => {
      state.versions = state.versions.filter(v => v.version !== 1);
      return { status: 204 };
    });
    server.on('DELETE models/digits-mlp/versions/2', () => {
      state.versions = [];
      return { status: 204 };
    });
    const model = new ModelVersionsModel({
      client: server.client(),
      name: 'digits-mlp'
    });
    await model.refresh();
    await model.remove(1);
    expect(model.versions.map(v => v.version)).toEqual([2]);
    await model.remove(2);
    expect(model.error).toBeNull();
    expect(model.versions).toEqual([]);
    expect(model.latest).toBeNull();
    model.dispose();
  });

  it('links an artifact by URL, under the server’s base URL', () => {
    const { server } = serve([]);
    const model = new ModelVersionsModel({
      client: server.client(),
      name: 'digits-mlp'
    });
    expect(model.artifactUrl(3, 'onnx')).toBe(
      'http://lab.test/lepton-lab/api/models/digits-mlp/versions/3/artifacts/onnx'
    );
    document.cookie = '_xsrf=tok3n';
    expect(model.artifactUrl(3, 'saved model')).toBe(
      'http://lab.test/lepton-lab/api/models/digits-mlp/versions/3/artifacts/saved%20model?_xsrf=tok3n'
    );
    document.cookie = '_xsrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT';
    model.dispose();
  });

  it('escapes names and version references in paths', async () => {
    const server = new StubServer().on(
      'GET models/a.b/versions/%40production',
      { body: version(2) }
    );
    const client = server.client();
    const answer = await client.getModelVersion('a.b', '@production');
    expect(answer.version).toBe(2);
    await settle();
  });
});
