import { showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { JobsSection } from '../src/jobs';
import { LeptonModels, RunModel } from '../src/models';
import { ModelsSection } from '../src/modelsection';
import { ModelView } from '../src/modelview';
import { RunView } from '../src/runs';
import { version } from './registry-fixtures';
import { settle, StubServer, until } from './stub-server';

jest.mock('@jupyterlab/apputils', () => ({
  ...jest.requireActual('@jupyterlab/apputils'),
  showDialog: jest.fn(),
  showErrorMessage: jest.fn()
}));

const mockDialog = showDialog as jest.Mock;
const mockError = showErrorMessage as jest.Mock;

function q<T extends HTMLElement = HTMLElement>(
  root: HTMLElement,
  selector: string
): T {
  const node = root.querySelector<T>(selector);
  if (!node) {
    throw new Error(`no ${selector}`);
  }
  return node;
}

afterEach(() => {
  mockDialog.mockReset();
  mockError.mockReset();
  document.body.replaceChildren();
});

describe('models section', () => {
  it('lists each model with its newest version, aliases, framework and key metric', async () => {
    const models = [
      {
        name: 'digits-mlp',
        framework: 'torch',
        versions: 3,
        latest_version: 3,
        updated_at: 20,
        aliases: { production: 3, staging: 2 },
        metrics: { loss: 0.1, accuracy: 0.912 }
      },
      {
        name: 'tagger',
        framework: 'keras',
        versions: 1,
        latest_version: 1,
        updated_at: 10,
        aliases: {},
        metrics: { f1: 0.7 }
      }
    ];
    const server = new StubServer().on('GET models', { body: { models } });
    const lepton = new LeptonModels({ client: server.client() });
    const opened: Array<[string, number | undefined]> = [];
    const section = new ModelsSection({
      model: lepton.registry,
      openModel: (name, v) => opened.push([name, v])
    });
    Widget.attach(section, document.body);
    await lepton.registry.refresh();

    expect(q(section.node, '.lepton-no-models').hidden).toBe(true);
    const rows = section.node.querySelectorAll<HTMLElement>('li.lepton-model');
    expect([...rows].map(r => r.dataset.leptonModel)).toEqual([
      'digits-mlp',
      'tagger'
    ]);
    const [mlp, tagger] = rows;
    expect(mlp.dataset.leptonModelLatest).toBe('3');
    expect(q(mlp, '.lepton-model-latest').textContent).toBe('v3');
    expect(q(mlp, '.lepton-model-framework').textContent).toBe('torch');
    expect(q(mlp, '.lepton-model-metric').textContent).toBe('accuracy 0.912');
    expect(q(mlp, '.lepton-model-aliases').textContent).toBe(
      'production → v3 · staging → v2'
    );
    expect(q(tagger, '.lepton-model-metric').textContent).toBe('f1 0.7');
    expect(q(tagger, '.lepton-model-aliases').hidden).toBe(true);
    q<HTMLButtonElement>(mlp, '.lepton-model-name').click();
    expect(opened).toEqual([['digits-mlp', 3]]);

    server.on('GET models', { body: { models: [] } });
    await lepton.registry.refresh();
    expect(section.node.querySelectorAll('li.lepton-model')).toHaveLength(0);
    const empty = q(section.node, '.lepton-no-models');
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toMatch(/^No models yet/);
    section.dispose();
    lepton.dispose();
  });

  it('says when the models cannot be read', async () => {
    const server = new StubServer().on('GET models', {
      status: 500,
      body: { message: 'store locked' }
    });
    const lepton = new LeptonModels({ client: server.client() });
    const section = new ModelsSection({
      model: lepton.registry,
      openModel: () => undefined
    });
    Widget.attach(section, document.body);
    await lepton.registry.refresh();
    const error = q(section.node, '.lepton-models-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toBe(
      'Cannot read the models: store locked (HTTP 500)'
    );
    section.dispose();
    lepton.dispose();
  });
});

describe('model version view', () => {
  function setup(versions = [version(2), version(1)]) {
    const state = { versions };
    const server = new StubServer()
      .on('GET models/digits-mlp', () => ({
        body: { name: 'digits-mlp', aliases: {}, versions: state.versions }
      }))
      .on('GET models', { body: { models: [] } });
    const lepton = new LeptonModels({ client: server.client() });
    const model = lepton.modelVersions('digits-mlp');
    const runs: string[] = [];
    const jobs: string[] = [];
    const view = new ModelView({
      model,
      version: 1,
      openRun: id => runs.push(id),
      openJob: id => jobs.push(id)
    });
    Widget.attach(view, document.body);
    return { server, state, lepton, model, view, runs, jobs };
  }

  it('shows the version asked for: formats, metrics, lineage and params', async () => {
    const { model, view, runs, jobs, lepton } = setup([
      version(2),
      version(1, {
        job_id: 'j7',
        evaluations: [
          {
            id: 4,
            time: 1500,
            dataset: 'holdout',
            job_id: 'j9',
            metrics: { accuracy: 0.88 }
          }
        ]
      })
    ]);
    await model.refresh();
    const node = view.node;
    expect(node.dataset.leptonModelVersion).toBe('1');
    expect(node.dataset.leptonModelVersions).toBe('2,1');
    expect(view.title.label).toBe('Model: digits-mlp v1');
    const select = q<HTMLSelectElement>(node, '.lepton-model-version-select');
    expect([...select.options].map(o => o.value)).toEqual(['2', '1']);
    expect(select.value).toBe('1');

    const rows = node.querySelectorAll<HTMLElement>('tr.lepton-model-artifact');
    expect([...rows].map(r => r.dataset.leptonFormat)).toEqual([
      'safetensors',
      'onnx-int8'
    ]);
    const [safetensors, int8] = rows;
    expect(q(safetensors, '.lepton-model-artifact-size').textContent).toBe(
      '2.00 KiB'
    );
    const sha = q(safetensors, '.lepton-model-artifact-sha256');
    expect(sha.textContent).toBe('0123456789ab');
    expect(sha.title).toBe('0123456789abcdef'.repeat(4));
    const ok = q(safetensors, '.lepton-model-artifact-diff');
    expect(ok.textContent).toBe('0 ≤ 1e-6');
    expect(ok.dataset.leptonVerdict).toBe('ok');
    const over = q(int8, '.lepton-model-artifact-diff');
    expect(over.dataset.leptonVerdict).toBe('over');
    expect(q(safetensors, '.lepton-model-artifact-details').hidden).toBe(true);
    expect(q(int8, '.lepton-model-artifact-details').textContent).toBe(
      'check_rows 4 · accuracy 0.806 · reference_accuracy 0.81 · ' +
        'accuracy_change -0.004 · export 0.34 s, verify 0.02 s'
    );
    expect(q<HTMLAnchorElement>(int8, 'a.lepton-model-download').href).toBe(
      'http://lab.test/lepton-lab/api/models/digits-mlp/versions/1/artifacts/onnx-int8'
    );
    expect(
      q(node, "li.lepton-model-failed-format[data-lepton-format='tflite']")
        .textContent
    ).toBe('tflite: needs tensorflow');

    expect(
      q(node, "table.lepton-model-metrics tr[data-lepton-metric='accuracy']")
        .textContent
    ).toBe('accuracy0.81');
    expect(
      q(node, "table.lepton-model-params tr[data-lepton-param='lr']")
        .textContent
    ).toBe('lr0.01');
    expect(q(node, '.lepton-model-notebook').textContent).toBe(
      'train.ipynb (sha256 abababababab)'
    );
    expect(q(node, '.lepton-model-git').textContent).toBe(
      'c0ffeec0ff (dirty) on main'
    );
    expect(q(node, '.lepton-model-libraries').textContent).toBe(
      'python 3.12.1 · torch 2.3.0'
    );
    q<HTMLButtonElement>(node, 'button.lepton-model-run').click();
    q<HTMLButtonElement>(node, 'button.lepton-model-job').click();
    q<HTMLButtonElement>(node, 'button.lepton-model-evaluation-job').click();
    expect(runs).toEqual(['run-1']);
    expect(jobs).toEqual(['j7', 'j9']);
    expect(
      q(node, "tr.lepton-model-evaluation[data-lepton-evaluation='4']")
        .textContent
    ).toContain('holdout');

    // pick another version
    select.value = '2';
    select.dispatchEvent(new Event('change'));
    expect(node.dataset.leptonModelVersion).toBe('2');
    expect(view.selected).toBe(2);
    expect(
      q<HTMLAnchorElement>(node, 'a.lepton-model-download').href
    ).toContain('/versions/2/artifacts/safetensors');
    view.dispose();
    lepton.dispose();
  });

  it('edits aliases and tags through PATCH', async () => {
    const { server, state, model, view, lepton } = setup([
      version(2, { aliases: ['production'], tags: { owner: 'ana' } }),
      version(1, { tags: { owner: 'bo', stage: 'dev' } })
    ]);
    server.on('PATCH models/digits-mlp/versions/1', request => {
      const patch = request.body as { aliases: string[] };
      state.versions[0] = { ...state.versions[0], aliases: [] };
      state.versions[1] = { ...state.versions[1], aliases: patch.aliases };
      return { body: state.versions[1] };
    });
    await model.refresh();
    const node = view.node;
    const form = q(node, 'form.lepton-model-edit-form');
    expect(form.hidden).toBe(true);
    q<HTMLButtonElement>(node, 'button.lepton-model-edit').click();
    expect(form.hidden).toBe(false);
    const aliases = q<HTMLInputElement>(
      node,
      'input.lepton-model-aliases-input'
    );
    const tags = q<HTMLTextAreaElement>(
      node,
      'textarea.lepton-model-tags-input'
    );
    expect(aliases.value).toBe('');
    expect(tags.value).toBe('owner=bo\nstage=dev');
    aliases.value = 'production, candidate';
    tags.value = 'owner=bo\nnote=moved';
    q<HTMLButtonElement>(node, 'button.lepton-model-save').click();
    await until(
      () =>
        form.hidden && node.querySelectorAll('.lepton-model-alias').length === 2
    );
    expect(server.calls('PATCH models/digits-mlp/versions/1')[0].body).toEqual({
      aliases: ['production', 'candidate'],
      tags: { note: 'moved', stage: null }
    });
    expect(form.hidden).toBe(true);
    expect(
      [...node.querySelectorAll('.lepton-model-alias')].map(n => n.textContent)
    ).toEqual(['production', 'candidate']);
    expect(mockError).not.toHaveBeenCalled();

    // a refused edit: the server's message, and the form stays open
    server.on('PATCH models/digits-mlp/versions/1', {
      status: 400,
      body: { message: "'latest' is reserved for version references" }
    });
    q<HTMLButtonElement>(node, 'button.lepton-model-edit').click();
    aliases.value = 'latest';
    q<HTMLButtonElement>(node, 'button.lepton-model-save').click();
    await until(() => mockError.mock.calls.length > 0);
    expect(mockError).toHaveBeenCalledTimes(1);
    const [title, error] = mockError.mock.calls[0];
    expect(title).toBe('Cannot update digits-mlp v1');
    expect(error.message).toBe(
      "'latest' is reserved for version references (HTTP 400)"
    );
    expect(form.hidden).toBe(false);
    view.dispose();
    lepton.dispose();
  });

  it('deletes a version after a confirmation, and shows the next one', async () => {
    const { server, state, model, view, lepton } = setup();
    let refuse = true;
    server.on('DELETE models/digits-mlp/versions/1', () => {
      if (refuse) {
        return {
          status: 409,
          body: { message: 'v1 is used by deployment api' }
        };
      }
      state.versions = state.versions.filter(v => v.version !== 1);
      return { status: 204 };
    });
    await model.refresh();
    const node = view.node;
    const remove = q<HTMLButtonElement>(node, 'button.lepton-model-delete');

    // cancelled: nothing sent
    mockDialog.mockResolvedValueOnce({ button: { accept: false } });
    remove.click();
    await settle(10);
    expect(server.calls('DELETE models/digits-mlp/versions/1')).toHaveLength(0);
    expect(mockDialog.mock.calls[0][0].body).toMatch(/^Delete digits-mlp v1/);

    // refused: the server's message
    mockDialog.mockResolvedValueOnce({ button: { accept: true } });
    remove.click();
    await until(() => mockError.mock.calls.length > 0);
    expect(mockError).toHaveBeenCalledTimes(1);
    expect(mockError.mock.calls[0][0]).toBe('Cannot delete digits-mlp v1');
    expect(mockError.mock.calls[0][1].message).toBe(
      'v1 is used by deployment api (HTTP 409)'
    );
    expect(node.dataset.leptonModelVersions).toBe('2,1');

    // deleted: the newest left is shown
    refuse = false;
    mockDialog.mockResolvedValueOnce({ button: { accept: true } });
    remove.click();
    await until(() => node.dataset.leptonModelVersions === '2');
    expect(node.dataset.leptonModelVersions).toBe('2');
    expect(node.dataset.leptonModelVersion).toBe('2');
    expect(
      [
        ...q<HTMLSelectElement>(node, '.lepton-model-version-select').options
      ].map(o => o.value)
    ).toEqual(['2']);
    view.dispose();
    lepton.dispose();
  });

  it('says when no version is left', async () => {
    const { model, view, lepton } = setup([]);
    await model.refresh();
    const empty = q(view.node, '.lepton-model-panel-empty');
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toBe('No version of digits-mlp is registered.');
    expect(q(view.node, 'button.lepton-model-delete').hidden).toBe(true);
    view.dispose();
    lepton.dispose();
  });
});

describe('links from runs and jobs', () => {
  it('the run panel links the versions the run registered', async () => {
    const server = new StubServer()
      .on('GET runs/r1', {
        body: {
          id: 'r1',
          name: 'fit',
          framework: 'torch',
          status: 'completed',
          params: {},
          world_size: 1,
          models: [{ name: 'digits-mlp', version: 3 }]
        }
      })
      .on('GET runs/r1/metrics?since=0&limit=10000', {
        body: { metrics: [], next: 0 }
      });
    const model = new RunModel({ client: server.client(), runId: 'r1' });
    const opened: string[] = [];
    const view = new RunView(model, {
      openModel: ref => opened.push(`${ref.name}@${ref.version}`)
    });
    Widget.attach(view, document.body);
    await model.refresh();
    const links = q(view.node, '.lepton-run-panel-models');
    expect(links.hidden).toBe(false);
    const link = q<HTMLButtonElement>(links, 'button.lepton-run-model');
    expect(link.textContent).toBe('digits-mlp v3');
    expect(link.dataset.leptonModel).toBe('digits-mlp');
    expect(link.dataset.leptonVersion).toBe('3');
    link.click();
    expect(opened).toEqual(['digits-mlp@3']);
    view.dispose();
  });

  it('a job row links the versions the job registered', async () => {
    const job = {
      id: 'j1',
      name: 'train.ipynb',
      path: 'train.ipynb',
      status: 'completed',
      kernel: 'lepton-cpu',
      parameters: {},
      attempt: 1,
      models: [
        { name: 'digits-mlp', version: 2 },
        { name: 'tagger', version: 1 }
      ]
    };
    const server = new StubServer().on('GET jobs?limit=10', {
      body: { jobs: [job, { ...job, id: 'j0', models: [] }] }
    });
    const lepton = new LeptonModels({ client: server.client() });
    const opened: string[] = [];
    const section = new JobsSection({
      model: lepton.jobs,
      openLog: () => undefined,
      openModel: ref => opened.push(`${ref.name}@${ref.version}`)
    });
    Widget.attach(section, document.body);
    await lepton.jobs.refresh();
    const row = q(section.node, "li.lepton-job[data-lepton-job='j1']");
    const links = row.querySelectorAll<HTMLButtonElement>(
      'button.lepton-job-model'
    );
    expect([...links].map(l => l.textContent)).toEqual([
      'digits-mlp v2',
      'tagger v1'
    ]);
    links[1].click();
    expect(opened).toEqual(['tagger@1']);
    const other = q(section.node, "li.lepton-job[data-lepton-job='j0']");
    expect(q(other, '.lepton-job-models').hidden).toBe(true);
    section.dispose();
    lepton.dispose();
  });
});
