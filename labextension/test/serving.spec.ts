import { Dialog, Notification, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IDeployment, IDeploymentLogs } from '../src/api';
import { DeploymentsSection } from '../src/deploymentsection';
import { LogModel } from '../src/logview';
import { LeptonModels } from '../src/models';
import { ModelView } from '../src/modelview';
import {
  deploymentAlias,
  deploymentLogModel,
  deploymentMetadataUrl,
  fetchLiveDeployments,
  isServableFormat,
  LIVE_LIMIT,
  mergeDeployments,
  recentDeployments,
  RECENT_DEPLOYMENTS,
  SERVABLE_FORMATS,
  servableFormats
} from '../src/serving';
import { version } from './registry-fixtures';
import { IRecorded, StubServer, until } from './stub-server';

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

/**
 * `GET deployments?limit=N[&status=S]` as the server answers it: newest
 * first, filtered by status, at most `limit`.
 */
function listing(all: () => IDeployment[]) {
  return (request: IRecorded) => {
    const query = new URLSearchParams(request.path.split('?')[1] ?? '');
    const status = query.get('status');
    const limit = Number(query.get('limit') ?? 100);
    const deployments = all()
      .filter(d => !status || d.status === status)
      .sort((a, b) => b.created_at - a.created_at)
      .slice(0, limit);
    return { body: { deployments } };
  };
}

/** The reads of the deployments list, as `limit=N[&status=S]`. */
function listReads(server: StubServer): string[] {
  return server.requests
    .filter(r => r.method === 'GET' && /^deployments(\?|$)/.test(r.path))
    .map(r => r.path.split('?')[1] ?? '');
}

afterEach(() => {
  mockError.mockReset();
  mockSuccess.mockReset();
  mockNotifyError.mockReset();
  Dialog.flush();
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

  it('merges answers once per id, newest first, the state further along winning', () => {
    const merged = mergeDeployments(
      [
        deployment('old', { created_at: 100, status: 'stopped' }),
        deployment('x', { created_at: 500, status: 'stopped' })
      ],
      [
        // read later but stale: `x` had already stopped
        deployment('x', { created_at: 500, status: 'ready' }),
        deployment('y', { created_at: 700, status: 'starting' })
      ],
      [
        deployment('y', { created_at: 700, status: 'ready', restarts: 1 }),
        deployment('z', { created_at: 700, status: 'ready' })
      ]
    );
    expect(merged.map(d => [d.id, d.status])).toEqual([
      ['z', 'ready'],
      ['y', 'ready'],
      ['x', 'stopped'],
      ['old', 'stopped']
    ]);
    expect(merged[1].restarts).toBe(1);

    // a crash and a restart: back to starting, one restart more, which is newer than ready
    const restarted = mergeDeployments(
      [deployment('r', { status: 'starting', restarts: 1 })],
      [deployment('r', { status: 'ready', restarts: 0 })]
    );
    expect(restarted.map(d => [d.status, d.restarts])).toEqual([
      ['starting', 1]
    ]);
    const ended = mergeDeployments(
      [deployment('r', { status: 'failed', restarts: 3 })],
      [deployment('r', { status: 'ready', restarts: 2 })]
    );
    expect(ended.map(d => d.status)).toEqual(['failed']);
  });

  it('reads the live deployments by status, starting before ready', async () => {
    const order: string[] = [];
    let state = 'starting';
    const server = new StubServer().on('GET deployments', request => {
      order.push(request.path);
      const live = deployment('d1', { status: state as 'starting' });
      // it becomes ready between the two reads: the second one has it
      state = 'ready';
      return listing(() => [live])(request);
    });
    const live = await fetchLiveDeployments(server.client());
    expect(order).toEqual([
      `deployments?limit=${LIVE_LIMIT}&status=starting`,
      `deployments?limit=${LIVE_LIMIT}&status=ready`
    ]);
    expect(live.map(d => [d.id, d.status])).toEqual([['d1', 'ready']]);
  });
});

describe('deployments section', () => {
  function setup(deployments: IDeployment[]) {
    const state = { deployments };
    const server = new StubServer().on(
      'GET deployments',
      listing(() => state.deployments)
    );
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
    server.on('GET deployments', {
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

  it('lists a live deployment older than the newest ones, and the newest ended ones', async () => {
    // one ready deployment, then 30 newer ones that ended
    const ended = Array.from({ length: 30 }, (_, i) =>
      deployment(`e${i + 10}`, {
        created_at: 2000 + i,
        status: i % 2 ? 'stopped' : 'failed',
        url: null,
        proxy_path: null
      })
    );
    const { server, lepton, section } = setup([
      deployment('old', { created_at: 1000 }),
      ...ended
    ]);
    await lepton.deployments.refresh();
    const ids = [
      ...section.node.querySelectorAll<HTMLElement>('li.lepton-deployment')
    ].map(r => r.dataset.leptonDeployment);
    // the newest ended ones fill the list up to RECENT_DEPLOYMENTS rows, the live one kept
    expect(ids).toHaveLength(RECENT_DEPLOYMENTS);
    expect(ids.slice(0, RECENT_DEPLOYMENTS - 1)).toEqual(
      ['39', '38', '37', '36', '35', '34', '33', '32', '31'].map(n => `e${n}`)
    );
    expect(ids[RECENT_DEPLOYMENTS - 1]).toBe('old');
    expect(listReads(server).sort()).toEqual(
      [
        `limit=${RECENT_DEPLOYMENTS}`,
        `limit=${LIVE_LIMIT}&status=starting`,
        `limit=${LIVE_LIMIT}&status=ready`
      ].sort()
    );
    section.dispose();
    lepton.dispose();
  });
});

describe("a deployment's log", () => {
  /**
   * `GET deployments/{id}/logs?offset=N` of a log written so far as `written()`
   * (ASCII: a character a byte); complete once `ended()` and all of it is read.
   */
  function logServer(
    written: () => string,
    ended: () => boolean,
    page = 256 << 10
  ) {
    return (request: IRecorded) => {
      const offset = Number(
        new URLSearchParams(request.path.split('?')[1]).get('offset')
      );
      const text = written().slice(offset, offset + page);
      const next = offset + text.length;
      const body: IDeploymentLogs = {
        id: 'd1',
        offset,
        next,
        text,
        complete: ended() && next >= written().length
      };
      return { body };
    };
  }

  it('reads on at once after a large page, not after its interval', async () => {
    const first = 'y'.repeat(64 << 10);
    const server = new StubServer().on(
      'GET deployments/d1/logs',
      logServer(
        () => first + 'ready\n',
        () => false,
        first.length
      )
    );
    // an interval no test waits for: the second page comes from the read-on
    const model = deploymentLogModel(server.client(), 'd1', 600_000);
    model.start();
    await until(() => model.text.endsWith('ready\n'));
    expect(model.text).toBe(first + 'ready\n');
    expect(server.requests.map(r => r.path)).toEqual([
      'deployments/d1/logs?offset=0',
      `deployments/d1/logs?offset=${first.length}`
    ]);
    expect(model.complete).toBe(false);
    model.dispose();
  });

  it('opens in a dialog from the row, reads on while live, and stops once complete', async () => {
    const big = 'x'.repeat(70 << 10) + '\n';
    const first = 'lepton-lab: starting the model server\n' + big;
    const second =
      'lepton-lab: serving digits v3 (onnx) on http://127.0.0.1:8500\n';
    const third = 'lepton-lab: stopped\n';
    let ended = false;
    const server = new StubServer()
      .on(
        'GET deployments',
        listing(() => [deployment('d1')])
      )
      .on(
        'GET deployments/d1/logs',
        logServer(
          () => first + second + (ended ? third : ''),
          () => ended
        )
      );
    const lepton = new LeptonModels({ client: server.client() });
    const logs: LogModel[] = [];
    const log = lepton.deployments.log.bind(lepton.deployments);
    jest.spyOn(lepton.deployments, 'log').mockImplementation(d => {
      const model = log(d);
      logs.push(model);
      return model;
    });
    const section = new DeploymentsSection({ model: lepton.deployments });
    Widget.attach(section, document.body);
    await lepton.deployments.refresh();
    const row = q(section.node, "li[data-lepton-deployment='d1']");
    const button = q<HTMLButtonElement>(row, 'button.lepton-deployment-log');
    expect(button.hidden).toBe(false);
    button.click();

    await until(() => !!document.querySelector('.lepton-DeploymentLogDialog'));
    const dialog = q(document.body, '.lepton-DeploymentLogDialog');
    // the title is React's, drawn when the page is idle
    const header = q(dialog, '.jp-Dialog-header');
    await until(() => !!header.textContent);
    expect(header.textContent).toContain('Log: digits v3 (d1)');
    const view = q(dialog, '.lepton-DeploymentLog');
    expect(view.classList).toContain('lepton-LogView');
    expect(view.dataset.leptonDeployment).toBe('d1');
    const pre = q<HTMLPreElement>(view, 'pre.lepton-deployment-log-text');
    // a large page: the next one is read at once, not after the interval
    await until(() => (pre.textContent ?? '').includes('serving digits v3'));
    expect(pre.textContent).toBe(first + second);
    expect(server.calls('GET deployments/d1/logs?offset=0')).toHaveLength(1);
    expect(view.dataset.leptonLogComplete).toBe('false');
    expect(q(view, '.lepton-deployment-log-status').textContent).toBe(
      "Deployment d1 (digits v3): following the model server's log…"
    );
    const model = logs[0];
    expect(model.poll.state.phase).not.toBe('stopped');

    // the deployment ends: the rest is read, and the polling stops
    ended = true;
    await model.refresh();
    expect(pre.textContent).toBe(first + second + third);
    expect(view.dataset.leptonLogComplete).toBe('true');
    expect(q(view, '.lepton-deployment-log-status').textContent).toBe(
      'Deployment d1 (digits v3) has ended. End of log.'
    );
    expect(model.poll.state.phase).toBe('stopped');

    // Close: the dialog goes, and its log model with it
    const close = [
      ...dialog.querySelectorAll<HTMLButtonElement>('button.jp-Dialog-button')
    ].find(b => b.textContent?.includes('Close'));
    close!.click();
    await until(() => !document.querySelector('.lepton-DeploymentLogDialog'));
    expect(document.querySelector('.lepton-DeploymentLog')).toBeNull();
    expect(model.isDisposed).toBe(true);
    section.dispose();
    lepton.dispose();
  });

  it('says why the log cannot be read, and an ended deployment has a Log button too', async () => {
    const server = new StubServer()
      .on(
        'GET deployments',
        listing(() => [
          deployment('d2', {
            status: 'failed',
            error: 'cannot load',
            url: null,
            proxy_path: null
          })
        ])
      )
      .on('GET deployments/d2/logs', {
        status: 404,
        body: { message: 'no deployment d2' }
      });
    const lepton = new LeptonModels({ client: server.client() });
    const section = new DeploymentsSection({ model: lepton.deployments });
    Widget.attach(section, document.body);
    await lepton.deployments.refresh();
    q<HTMLButtonElement>(
      section.node,
      "li[data-lepton-deployment='d2'] button.lepton-deployment-log"
    ).click();
    await until(
      () =>
        !!document
          .querySelector('.lepton-deployment-log-status')
          ?.classList.contains('lepton-mod-error')
    );
    expect(q(document.body, '.lepton-deployment-log-status').textContent).toBe(
      'Cannot read the log: no deployment d2 (HTTP 404)'
    );
    section.dispose();
    lepton.dispose();
  });

  it('goes to openLog where the sidebar gives one', async () => {
    const server = new StubServer().on(
      'GET deployments',
      listing(() => [deployment('d1')])
    );
    const lepton = new LeptonModels({ client: server.client() });
    const opened: string[] = [];
    const section = new DeploymentsSection({
      model: lepton.deployments,
      openLog: d => opened.push(d.id)
    });
    Widget.attach(section, document.body);
    await lepton.deployments.refresh();
    q<HTMLButtonElement>(section.node, 'button.lepton-deployment-log').click();
    expect(opened).toEqual(['d1']);
    expect(document.querySelector('.lepton-DeploymentLogDialog')).toBeNull();
    section.dispose();
    lepton.dispose();
  });
});

describe('Serve in the version view', () => {
  function setup(
    versions = [version(2), version(1)],
    withServe = true,
    deployments: IDeployment[] = []
  ) {
    const state = { deployments };
    const server = new StubServer()
      .on('GET models/digits-mlp', () => ({
        body: { name: 'digits-mlp', aliases: {}, versions }
      }))
      .on('GET models', { body: { models: [] } })
      .on(
        'GET deployments',
        listing(() => state.deployments)
      );
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
    return { server, state, lepton, model, view, shown };
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
    const recent = `GET deployments?limit=${RECENT_DEPLOYMENTS}`;
    await until(() => server.calls(recent).length > 0);
    expect(server.calls(recent).length).toBeGreaterThan(0);
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

  it('lists the live deployments of the version shown, and reads them again after Serve', async () => {
    const live = (id: string, v: number, extra: Partial<IDeployment> = {}) =>
      deployment(id, { model: 'digits-mlp', version: v, ...extra });
    const { server, state, model, view, lepton } = setup(
      [version(2), version(1)],
      true,
      [
        live('a', 2, { created_at: 1000 }),
        live('b', 2, {
          created_at: 2000,
          status: 'starting',
          port: 8501,
          url: 'http://127.0.0.1:8501',
          proxy_path: 'proxy/8501/',
          ready_at: null
        }),
        live('c', 1, { created_at: 1500, port: 8502 }),
        live('gone', 2, {
          created_at: 3000,
          status: 'stopped',
          url: null,
          proxy_path: null
        }),
        deployment('other', { version: 2, created_at: 4000 })
      ]
    );
    await model.refresh();
    const node = view.node;
    const list = q(node, '.lepton-model-deployments');
    await until(
      () => list.querySelectorAll('.lepton-model-deployment').length > 0
    );
    // next to Serve, in the header
    expect(list.nextElementSibling).toBe(q(node, 'button.lepton-model-serve'));
    const items = () =>
      [...list.querySelectorAll<HTMLElement>('.lepton-model-deployment')].map(
        i => [i.dataset.leptonDeployment, i.dataset.leptonStatus]
      );
    // v2's live ones, newest first: not the stopped one, nor another model's
    expect(list.hidden).toBe(false);
    expect(items()).toEqual([
      ['b', 'starting'],
      ['a', 'ready']
    ]);
    const ready = q(list, "[data-lepton-deployment='a']");
    expect(q(ready, '.lepton-model-deployment-status').textContent).toBe(
      'ready'
    );
    expect(q(ready, '.lepton-model-deployment-status').className).toContain(
      'lepton-mod-active'
    );
    const link = q<HTMLAnchorElement>(ready, 'a.lepton-model-deployment-url');
    expect(link.href).toBe('http://lab.test/proxy/8500/v2/models/digits-mlp');
    expect(link.textContent).toBe('/proxy/8500/v2/models/digits-mlp');
    expect(link.target).toBe('_blank');
    expect(ready.title).toContain('http://127.0.0.1:8500');
    // only the live statuses were asked for
    expect(new Set(listReads(server))).toEqual(
      new Set([
        `limit=${LIVE_LIMIT}&status=starting`,
        `limit=${LIVE_LIMIT}&status=ready`
      ])
    );

    // another version: its own
    view.select(1);
    expect(items()).toEqual([['c', 'ready']]);

    // Serve v1 again: the list is read again at once and shows the new one
    server.on('POST deployments', () => {
      const created = live('d', 1, {
        created_at: 5000,
        status: 'starting',
        port: 8503,
        proxy_path: 'proxy/8503/'
      });
      state.deployments = [...state.deployments, created];
      return { status: 201, body: created };
    });
    q<HTMLButtonElement>(node, 'button.lepton-model-serve').click();
    await until(() => items().length === 2);
    expect(items()).toEqual([
      ['d', 'starting'],
      ['c', 'ready']
    ]);

    // none left live: the list hides
    state.deployments = [];
    await (
      view as unknown as { _liveModel: { refresh(): Promise<void> } }
    )._liveModel.refresh();
    expect(list.hidden).toBe(true);
    expect(items()).toEqual([]);
    view.dispose();
    lepton.dispose();
  });

  it('reads no deployments without serving', async () => {
    const { server, model, view, lepton } = setup([version(2)], false, [
      deployment('a', { model: 'digits-mlp', version: 2 })
    ]);
    await model.refresh();
    expect(q(view.node, '.lepton-model-deployments').hidden).toBe(true);
    expect(listReads(server)).toEqual([]);
    view.dispose();
    lepton.dispose();
  });
});
