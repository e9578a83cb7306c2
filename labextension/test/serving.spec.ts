import { Notification, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IDeployment } from '../src/api';
import { DeploymentsSection } from '../src/deploymentsection';
import { LeptonModels } from '../src/models';
import { ModelView } from '../src/modelview';
import {
  deploymentAlias,
  deploymentMetadataUrl,
  isServableFormat,
  recentDeployments,
  SERVABLE_FORMATS,
  servableFormats
} from '../src/serving';
import { version } from './registry-fixtures';
import { StubServer, until } from './stub-server';

jest.mock('@jupyterlab/apputils', () => {
  const actual = jest.requireActual('@jupyterlab/apputils');
  return {
    ...actual,
    showErrorMessage: jest.fn(),
    Notification: {
      ...actual.Notification,
      success: jest.fn(),
      error: jest.fn()
    }
  };
});

const mockError = showErrorMessage as jest.Mock;
const mockSuccess = Notification.success as jest.Mock;
const mockNotifyError = Notification.error as jest.Mock;

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

/** A deployment as `GET deployments` lists it. */
function deployment(id: string, extra: Partial<IDeployment> = {}): IDeployment {
  return {
    id,
    model: 'digits',
    version: 3,
    ref: 'digits:3',
    format: 'onnx',
    status: 'ready',
    error: null,
    host: '127.0.0.1',
    port: 8500,
    url: 'http://127.0.0.1:8500',
    proxy_path: 'proxy/8500/',
    workers: 0,
    max_batch_size: 32,
    max_batch_delay_ms: 5,
    max_request_bytes: 16 << 20,
    restarts: 0,
    max_restarts: 3,
    owner: 'server',
    pid: 4242,
    created_at: 1000,
    ready_at: 1003,
    ended_at: null,
    stop_requested: false,
    ...extra
  };
}

afterEach(() => {
  mockError.mockReset();
  mockSuccess.mockReset();
  mockNotifyError.mockReset();
  document.body.replaceChildren();
});

describe('serving helpers', () => {
  it('knows the servable formats of a version', () => {
    expect(SERVABLE_FORMATS).toEqual([
      'onnx',
      'onnx-int8',
      'torch.export',
      'torchscript',
      'keras'
    ]);
    expect(isServableFormat('onnx')).toBe(true);
    expect(isServableFormat('safetensors')).toBe(false);
    expect(isServableFormat('toString')).toBe(false);
    // the fixture has safetensors and onnx-int8
    expect(servableFormats(version(1))).toEqual(['onnx-int8']);
    expect(
      servableFormats(
        version(1, { artifacts: [{ ...version(1).artifacts[0] }] })
      )
    ).toEqual([]);
  });

  it('reads the alias of a reference and the proxied metadata URL', () => {
    expect(deploymentAlias({ ref: 'digits@production' })).toBe('production');
    expect(deploymentAlias({ ref: 'digits:3' })).toBeNull();
    expect(deploymentAlias({ ref: 'digits' })).toBeNull();
    expect(
      deploymentMetadataUrl(
        { proxy_path: 'proxy/8500/', model: 'digits mlp' },
        'http://lab.test/user/ana/'
      )
    ).toBe('http://lab.test/user/ana/proxy/8500/v2/models/digits%20mlp');
    expect(
      deploymentMetadataUrl({ proxy_path: null, model: 'digits' }, '/')
    ).toBeNull();
  });

  it('keeps every live deployment and fills up with the newest ended ones', () => {
    const list = [
      deployment('a', { status: 'stopped' }),
      deployment('b', { status: 'failed' }),
      deployment('c', { status: 'ready' }),
      deployment('d', { status: 'stopped' }),
      deployment('e', { status: 'starting' })
    ];
    expect(recentDeployments(list, 3).map(d => d.id)).toEqual(['a', 'c', 'e']);
    expect(recentDeployments(list, 1).map(d => d.id)).toEqual(['c', 'e']);
    expect(recentDeployments(list, 10)).toHaveLength(5);
  });
});

describe('deployments section', () => {
  function setup(deployments: IDeployment[]) {
    const state = { deployments };
    const server = new StubServer().on('GET deployments?limit=50', () => ({
      body: { deployments: state.deployments }
    }));
    const lepton = new LeptonModels({ client: server.client() });
    const opened: Array<[string, number | undefined]> = [];
    const section = new DeploymentsSection({
      model: lepton.deployments,
      openModel: (name, v) => opened.push([name, v])
    });
    Widget.attach(section, document.body);
    return { server, state, lepton, section, opened };
  }

  it('lists each deployment with its status, endpoint, restarts and error', async () => {
    const failed =
      "cannot load the onnx artifact\nTraceback (most recent call last):\n  File 'x.py'";
    const { lepton, section, opened } = setup([
      deployment('d1', { created_at: 1000 }),
      deployment('d3', {
        created_at: 3000,
        ref: 'digits@production',
        status: 'starting',
        restarts: 1,
        port: 8501,
        url: 'http://127.0.0.1:8501',
        proxy_path: 'proxy/8501/',
        ready_at: null
      }),
      deployment('d2', {
        created_at: 2000,
        status: 'failed',
        error: failed,
        url: null,
        proxy_path: null,
        pid: null,
        ended_at: 2005
      })
    ]);
    await lepton.deployments.refresh();
    const node = section.node;
    expect(node.classList).toContain('lepton-deployments');
    expect(q(node, '.lepton-no-deployments').hidden).toBe(true);
    const rows = node.querySelectorAll<HTMLElement>('li.lepton-deployment');
    // newest first
    expect([...rows].map(r => r.dataset.leptonDeployment)).toEqual([
      'd3',
      'd2',
      'd1'
    ]);
    const [starting, broken, ready] = rows;
    expect(starting.dataset.leptonStatus).toBe('starting');
    expect(q(starting, '.lepton-deployment-name').textContent).toBe(
      'digits v3'
    );
    const ref = q(starting, '.lepton-deployment-ref');
    expect(ref.hidden).toBe(false);
    expect(ref.textContent).toBe('@production');
    expect(q(ready, '.lepton-deployment-ref').hidden).toBe(true);
    expect(q(starting, '.lepton-deployment-status').className).toContain(
      'lepton-mod-active'
    );
    expect(q(ready, '.lepton-deployment-status').textContent).toBe('ready');
    expect(q(ready, '.lepton-deployment-status').className).toContain(
      'lepton-mod-active'
    );
    expect(q(broken, '.lepton-deployment-status').className).toContain(
      'lepton-mod-error'
    );
    expect(q(starting, '.lepton-deployment-restarts').textContent).toBe(
      'restarts 1/3'
    );
    expect(q(ready, '.lepton-deployment-format').textContent).toBe('onnx');

    // the endpoint: the metadata through the lab's proxy, and the local URL
    const link = q<HTMLAnchorElement>(ready, 'a.lepton-deployment-url');
    expect(link.hidden).toBe(false);
    expect(link.href).toBe('http://lab.test/proxy/8500/v2/models/digits');
    expect(link.textContent).toBe('/proxy/8500/v2/models/digits');
    expect(link.target).toBe('_blank');
    expect(q(ready, '.lepton-deployment-local').textContent).toBe(
      'http://127.0.0.1:8500'
    );
    expect(q<HTMLAnchorElement>(starting, 'a.lepton-deployment-url').href).toBe(
      'http://lab.test/proxy/8501/v2/models/digits'
    );

    // a failed one: the error's first line, all of it when expanded; no endpoint, no Stop
    const error = q<HTMLDetailsElement>(broken, '.lepton-deployment-error');
    expect(error.hidden).toBe(false);
    expect(q(error, 'summary').textContent).toBe(
      'cannot load the onnx artifact'
    );
    expect(error.title).toBe(failed);
    expect(q(error, '.lepton-deployment-error-full').textContent).toBe(failed);
    expect(error.classList).not.toContain('lepton-mod-single');
    expect(q(broken, 'a.lepton-deployment-url').hidden).toBe(true);
    expect(q(broken, '.lepton-deployment-local').hidden).toBe(true);
    expect(q(broken, 'button.lepton-deployment-stop').hidden).toBe(true);
    expect(q(ready, '.lepton-deployment-error').hidden).toBe(true);
    expect(q(ready, 'button.lepton-deployment-stop').hidden).toBe(false);
    expect(q(starting, 'button.lepton-deployment-stop').hidden).toBe(false);

    q<HTMLButtonElement>(ready, '.lepton-deployment-name').click();
    expect(opened).toEqual([['digits', 3]]);
    section.dispose();
    lepton.dispose();
  });

  it('stops a live deployment with DELETE and follows it to stopped', async () => {
    const { server, state, lepton, section } = setup([deployment('d1')]);
    server.on('DELETE deployments/d1', () => {
      state.deployments = [
        deployment('d1', {
          status: 'stopped',
          url: null,
          proxy_path: null,
          pid: null,
          ended_at: 1100,
          stop_requested: true
        })
      ];
      return { status: 202, body: { id: 'd1', status: 'stopping' } };
    });
    await lepton.deployments.refresh();
    const row = q(
      section.node,
      "li.lepton-deployment[data-lepton-deployment='d1']"
    );
    const stop = q<HTMLButtonElement>(row, 'button.lepton-deployment-stop');
    expect(stop.hidden).toBe(false);
    stop.click();
    await until(() => row.dataset.leptonStatus === 'stopped');
    expect(server.calls('DELETE deployments/d1')).toHaveLength(1);
    expect(row.dataset.leptonStatus).toBe('stopped');
    expect(stop.hidden).toBe(true);
    expect(q(row, '.lepton-deployment-status').className).toContain(
      'lepton-mod-neutral'
    );
    expect(q(row, '.lepton-Deployment-endpoint').hidden).toBe(true);
    expect(mockNotifyError).not.toHaveBeenCalled();

    // a refused stop is a notification with the server's message
    state.deployments = [deployment('d2')];
    server.on('DELETE deployments/d2', {
      status: 409,
      body: { message: 'deployment d2 is owned by a kernel' }
    });
    await lepton.deployments.refresh();
    q<HTMLButtonElement>(
      section.node,
      "li[data-lepton-deployment='d2'] button.lepton-deployment-stop"
    ).click();
    await until(() => mockNotifyError.mock.calls.length > 0);
    expect(mockNotifyError.mock.calls[0][0]).toBe(
      'Stopping digits v3 failed: deployment d2 is owned by a kernel (HTTP 409)'
    );
    section.dispose();
    lepton.dispose();
  });

  it('says how to start one, and when the list cannot be read', async () => {
    const { server, lepton, section } = setup([]);
    await lepton.deployments.refresh();
    const empty = q(section.node, '.lepton-no-deployments');
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toContain('lepton-lab serve name@alias');
    expect(empty.textContent).toContain('Serve');
    server.on('GET deployments?limit=50', {
      status: 500,
      body: { message: 'store locked' }
    });
    await lepton.deployments.refresh();
    const error = q(section.node, '.lepton-deployments-error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toBe(
      'Cannot read the deployments: store locked (HTTP 500)'
    );
    section.dispose();
    lepton.dispose();
  });
});

describe('Serve in the version view', () => {
  function setup(versions = [version(2), version(1)], withServe = true) {
    const server = new StubServer()
      .on('GET models/digits-mlp', () => ({
        body: { name: 'digits-mlp', aliases: {}, versions }
      }))
      .on('GET models', { body: { models: [] } })
      .on('GET deployments?limit=50', { body: { deployments: [] } });
    const lepton = new LeptonModels({ client: server.client() });
    const model = lepton.modelVersions('digits-mlp');
    const shown: string[] = [];
    const view = new ModelView({
      model,
      version: 2,
      openRun: () => undefined,
      openJob: () => undefined,
      ...(withServe
        ? {
            serve: request => lepton.deployments.serve(request),
            showDeployments: () => shown.push('deployments')
          }
        : {})
    });
    Widget.attach(view, document.body);
    return { server, lepton, model, view, shown };
  }

  it('posts the version to deployments, and shows the server’s refusal', async () => {
    const { server, lepton, model, view, shown } = setup();
    let refuse = true;
    server.on('POST deployments', request => {
      if (refuse) {
        return {
          status: 409,
          body: {
            message:
              "this lab cannot serve models: MLServer is not installed (pip install 'lepton-lab[serving]')"
          }
        };
      }
      const body = request.body as { model: string };
      return {
        status: 201,
        body: deployment('d9', {
          model: 'digits-mlp',
          version: 2,
          ref: body.model,
          format: 'onnx-int8',
          status: 'starting'
        })
      };
    });
    await model.refresh();
    const serve = q<HTMLButtonElement>(view.node, 'button.lepton-model-serve');
    expect(serve.hidden).toBe(false);
    expect(serve.disabled).toBe(false);
    expect(serve.dataset.leptonFormats).toBe('onnx-int8');

    serve.click();
    expect(serve.disabled).toBe(true);
    expect(serve.dataset.leptonBusy).toBe('true');
    await until(() => mockError.mock.calls.length > 0);
    expect(server.calls('POST deployments')[0].body).toEqual({
      model: 'digits-mlp:2'
    });
    const [title, error] = mockError.mock.calls[0];
    expect(title).toBe('Cannot serve digits-mlp v2');
    expect(error.message).toBe(
      "this lab cannot serve models: MLServer is not installed (pip install 'lepton-lab[serving]') (HTTP 409)"
    );
    expect(serve.disabled).toBe(false);
    expect(serve.dataset.leptonBusy).toBeUndefined();

    refuse = false;
    serve.click();
    await until(() => mockSuccess.mock.calls.length > 0);
    expect(mockSuccess.mock.calls[0][0]).toBe(
      'Serving digits-mlp v2 (onnx-int8): starting'
    );
    // its action shows the deployments; the list was read again
    mockSuccess.mock.calls[0][1].actions[0].callback();
    expect(shown).toEqual(['deployments']);
    await until(() => server.calls('GET deployments?limit=50').length > 0);
    expect(server.calls('GET deployments?limit=50').length).toBeGreaterThan(0);
    view.dispose();
    lepton.dispose();
  });

  it('is disabled for a version with no servable format, and absent without serving', async () => {
    const onlySafetensors = version(2, {
      artifacts: [{ ...version(2).artifacts[0] }]
    });
    const { model, view, lepton } = setup([onlySafetensors]);
    await model.refresh();
    const serve = q<HTMLButtonElement>(view.node, 'button.lepton-model-serve');
    expect(serve.hidden).toBe(false);
    expect(serve.disabled).toBe(true);
    expect(serve.title).toMatch(/has no format a deployment can serve/);
    view.dispose();
    lepton.dispose();

    const other = setup([version(2)], false);
    await other.model.refresh();
    expect(
      q<HTMLButtonElement>(other.view.node, 'button.lepton-model-serve').hidden
    ).toBe(true);
    other.view.dispose();
    other.lepton.dispose();
  });
});
