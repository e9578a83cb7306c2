import { FALLBACK_CONFIG, LeptonApiError } from '../src/api';
import {
  clampInterval,
  ConfigModel,
  JobLogModel,
  LeptonModels,
  MAX_BACKOFF_MS,
  RunModel,
  Series
} from '../src/models';
import { ILogPage, LogModel, MAX_LOG_CHARS } from '../src/logview';
import { settle, StubServer, until } from './stub-server';

const CLUSTER = {
  mode: 'local',
  status: 'running',
  workers: [],
  totals: { workers: 0, threads: 0, memory_limit: 0, memory_used: 0, gpus: 0 }
};

function run(id: string, status = 'running', extra: object = {}) {
  return {
    id,
    name: `run ${id}`,
    framework: 'torch',
    status,
    params: {},
    world_size: 2,
    ...extra
  };
}

function metric(
  id: number,
  name: string,
  step: number,
  value: number,
  rank = 0
) {
  return { id, rank, step, name, value, time: 1000 + id };
}

describe('LeptonClient', () => {
  it('sends the token, JSON bodies, and reads the server’s error message', async () => {
    const server = new StubServer().on('POST jobs', {
      status: 400,
      body: { message: "'n' must be an int" }
    });
    const client = server.client();
    const error = await client.submitJob({ path: 'a.ipynb' }).catch(e => e);
    expect(error).toBeInstanceOf(LeptonApiError);
    expect(error.status).toBe(400);
    expect(error.message).toBe("'n' must be an int (HTTP 400)");
    expect(server.calls('POST jobs')[0].body).toEqual({ path: 'a.ipynb' });
  });

  it('says when the server cannot be reached', async () => {
    const server = new StubServer().on('GET cluster', () => {
      throw new TypeError('Failed to fetch');
    });
    const error = await server
      .client()
      .getCluster()
      .catch(e => e);
    expect(error).toBeInstanceOf(LeptonApiError);
    expect(error.status).toBeNull();
    expect(error.message).toMatch(/^Cannot reach the Jupyter server/);
  });

  it('escapes ids in paths', async () => {
    const server = new StubServer().on('POST runs/a%2Fb/stop', {
      status: 202,
      body: {}
    });
    await server.client().stopRun('a/b');
    expect(server.requests.map(r => r.path)).toEqual(['runs/a%2Fb/stop']);
  });
});

describe('polling models', () => {
  let models: LeptonModels;
  afterEach(() => models?.dispose());

  it('read on refresh and tell their subscribers', async () => {
    const server = new StubServer()
      .on('GET cluster', { body: CLUSTER })
      .on('GET runs?limit=10', { body: { runs: [run('r1')] } })
      .on('GET jobs?limit=10', { body: { jobs: [] } })
      .on('GET schedules', { body: { schedules: [] } });
    models = new LeptonModels({ client: server.client() });
    const seen: string[] = [];
    models.cluster.changed.connect(() => seen.push('cluster'));
    models.runs.changed.connect(() => seen.push('runs'));
    await models.refresh();
    expect(models.cluster.data?.status).toBe('running');
    expect(models.runs.data?.map(r => r.id)).toEqual(['r1']);
    expect(models.runs.find('r1')?.name).toBe('run r1');
    expect(seen.sort()).toEqual(['cluster', 'runs']);
    expect(models.jobs.data).toEqual([]);
  });

  it('keep the last data on an error, and back off', async () => {
    let fail = false;
    const server = new StubServer().on('GET cluster', () =>
      fail ? { status: 500, body: { message: 'boom' } } : { body: CLUSTER }
    );
    models = new LeptonModels({ client: server.client(), interval: 1000 });
    await models.cluster.refresh();
    expect(models.cluster.error).toBeNull();
    fail = true;
    await models.cluster.refresh();
    expect(models.cluster.data?.status).toBe('running');
    expect(models.cluster.error?.message).toBe('boom (HTTP 500)');
    expect(models.cluster.isStale).toBe(true);
    const poll = models.cluster.poll;
    expect(poll.state.phase).toBe('rejected');
    expect(poll.state.interval).toBeLessThanOrEqual(MAX_BACKOFF_MS);
    expect(poll.frequency).toEqual({
      backoff: true,
      interval: 1000,
      max: MAX_BACKOFF_MS
    });
    fail = false;
    await models.cluster.refresh();
    expect(models.cluster.error).toBeNull();
  });

  it('stand by while nobody looks', async () => {
    let hidden = true;
    const server = new StubServer().on('GET cluster', { body: CLUSTER });
    models = new LeptonModels({
      client: server.client(),
      standby: () => hidden
    });
    await models.cluster.refresh();
    expect(server.requests).toHaveLength(0);
    hidden = false;
    await models.cluster.refresh();
    expect(server.calls('GET cluster')).toHaveLength(1);
  });

  it('refresh after a mutation', async () => {
    let status = 'running';
    const server = new StubServer()
      .on('GET runs?limit=10', () => ({ body: { runs: [run('r1', status)] } }))
      .on('POST runs/r1/stop', () => {
        status = 'stopped';
        return { status: 202, body: { id: 'r1', stop_requested: true } };
      })
      .on('GET jobs?limit=10', { body: { jobs: [] } })
      .on('POST jobs', { status: 201, body: { id: 'j1', name: 'a' } })
      .on('POST schedules/s1/run', { body: { id: 'j2', name: 'a' } })
      .on('GET schedules', { body: { schedules: [] } });
    models = new LeptonModels({ client: server.client() });
    await models.stopRun('r1');
    expect(models.runs.data?.[0].status).toBe('stopped');

    // running a schedule now refreshes the schedules and the jobs
    await models.schedules.runNow('s1');
    expect(server.calls('GET jobs?limit=10')).toHaveLength(1);
    expect(server.calls('GET schedules')).toHaveLength(1);

    const job = await models.jobs.submit({ path: 'a.ipynb' });
    expect(job.id).toBe('j1');
    await settle(50);
    expect(server.calls('GET jobs?limit=10')).toHaveLength(2);
  });

  it('share one interval, clamped', () => {
    models = new LeptonModels({
      client: new StubServer().client(),
      interval: 10
    });
    expect(models.interval).toBe(500);
    models.interval = 2000;
    expect(models.polling.map(m => m.interval)).toEqual([
      2000, 2000, 2000, 2000, 2000, 2000
    ]);
    expect(clampInterval(undefined)).toBe(3000);
  });
});

describe('ConfigModel', () => {
  it('lists the server’s executors', async () => {
    const server = new StubServer().on('GET config', {
      body: {
        version: '0.2.0',
        default_executor: 'dask',
        executors: [
          { name: 'local', description: 'a subprocess' },
          { name: 'dask', description: 'a worker' }
        ],
        features: { schedules: true }
      }
    });
    const config = await new ConfigModel(server.client()).value();
    expect(config.executors.map(e => e.name)).toEqual(['local', 'dask']);
    expect(config.default_executor).toBe('dask');
  });

  it('falls back to "local" on a server without the route, and asks once', async () => {
    const server = new StubServer(); // every route answers 404
    const model = new ConfigModel(server.client());
    expect(await model.value()).toEqual(FALLBACK_CONFIG);
    expect(await model.value()).toEqual(FALLBACK_CONFIG);
    expect(server.requests).toHaveLength(1);
  });

  it('asks again after another failure', async () => {
    const warn = jest
      .spyOn(console, 'warn')
      .mockImplementation(() => undefined);
    const server = new StubServer().on('GET config', { status: 500, body: {} });
    const model = new ConfigModel(server.client());
    expect((await model.value()).executors.map(e => e.name)).toEqual(['local']);
    await model.value();
    expect(server.requests).toHaveLength(2);
    warn.mockRestore();
  });
});

describe('Series', () => {
  it('averages ranks per step and merges buckets past its size', () => {
    const series = new Series('loss', 4);
    series.add(0, 1);
    series.add(0, 3); // the other rank
    expect(series.points()).toEqual([[0, 2]]);
    for (let step = 1; step < 8; step++) {
      series.add(step, step);
    }
    expect(series.size).toBeLessThanOrEqual(4);
    expect(series.stride).toBe(2);
    expect(series.points()[0]).toEqual([1 / 3, 5 / 3]); // steps 0, 0, 1
    expect(series.last()).toBe(6.5);
  });
});

describe('RunModel', () => {
  it('reads metrics incrementally and stops once the run has ended', async () => {
    let status = 'running';
    const pages: Record<number, object[]> = {
      0: [
        metric(1, 'loss', 0, 1.0),
        metric(2, 'val_loss', 0, 1.2),
        metric(3, 'loss', 0, 0.8, 1)
      ],
      3: [metric(4, 'loss', 1, 0.5), metric(5, 'acc', 1, 0.7, 1)],
      5: []
    };
    const server = new StubServer()
      .on('GET runs/r1', () => ({
        body: run('r1', status, {
          usage: [],
          events: [{ kind: 'start', data: {} }]
        })
      }))
      .on('GET runs/r1/metrics', request => {
        const since = Number(
          new URLSearchParams(request.path.split('?')[1]).get('since')
        );
        return {
          body: {
            run_id: 'r1',
            since,
            next: since + (pages[since]?.length ?? 0),
            metrics: pages[since] ?? []
          }
        };
      });
    const model = new RunModel({ client: server.client(), runId: 'r1' });
    const changes = jest.fn();
    model.changed.connect(changes);
    await model.refresh();
    expect(model.run?.status).toBe('running');
    expect(model.cursor).toBe(3);
    expect(model.series.get('loss')?.points()).toEqual([[0, 0.9]]);
    expect([...model.families().keys()]).toEqual(['loss']);
    expect(
      model
        .families()
        .get('loss')
        ?.map(s => s.name)
    ).toEqual(['loss', 'val_loss']);

    await model.refresh();
    expect(model.cursor).toBe(5);
    expect(model.step).toBe(1);
    expect([...model.families().keys()]).toEqual(['loss', 'acc']);
    expect(model.ranks.get(1)).toEqual({ rank: 1, step: 1, time: 1005 });
    expect(model.lastMetrics()).toEqual({ loss: 0.5, val_loss: 1.2, acc: 0.7 });
    expect(model.complete).toBe(false);

    status = 'completed';
    await model.refresh();
    expect(model.complete).toBe(true);
    expect(model.poll.state.phase).toBe('stopped');
    expect(changes).toHaveBeenCalledTimes(3);
    const sinces = server.requests
      .filter(r => r.path.includes('/metrics'))
      .map(r => r.path);
    expect(sinces).toEqual([
      'runs/r1/metrics?since=0&limit=10000',
      'runs/r1/metrics?since=3&limit=10000',
      'runs/r1/metrics?since=5&limit=10000'
    ]);
    model.dispose();
  });

  it('reads on at once while pages are full', async () => {
    const server = new StubServer()
      .on('GET runs/r1', { body: run('r1', 'completed') })
      .on('GET runs/r1/metrics', request => {
        const since = Number(
          new URLSearchParams(request.path.split('?')[1]).get('since')
        );
        const rows =
          since < 4
            ? [
                metric(since + 1, 'loss', since, 1),
                metric(since + 2, 'loss', since + 1, 1)
              ]
            : [];
        return { body: { since, next: since + rows.length, metrics: rows } };
      });
    const model = new RunModel({
      client: server.client(),
      runId: 'r1',
      pageSize: 2
    });
    await model.refresh();
    expect(model.rows).toBe(4);
    expect(model.complete).toBe(true);
    model.dispose();
  });

  it('stops the run and follows it', async () => {
    let status = 'running';
    const server = new StubServer()
      .on('GET runs/r1', () => ({ body: run('r1', status) }))
      .on('GET runs/r1/metrics', { body: { next: 0, metrics: [] } })
      .on('POST runs/r1/stop', () => {
        status = 'stopped';
        return { status: 202, body: {} };
      })
      .on('GET runs?limit=10', () => ({ body: { runs: [run('r1', status)] } }));
    const models = new LeptonModels({ client: server.client() });
    const model = models.run('r1');
    await model.refresh();
    await model.stop();
    expect(model.run?.status).toBe('stopped');
    expect(models.runs.data?.[0].status).toBe('stopped'); // the list followed
    model.dispose();
    models.dispose();
  });

  it('keeps what it read when a read fails', async () => {
    let fail = false;
    const server = new StubServer()
      .on('GET runs/r1', () =>
        fail ? { status: 503, body: { message: 'down' } } : { body: run('r1') }
      )
      .on('GET runs/r1/metrics', {
        body: { next: 1, metrics: [metric(1, 'loss', 0, 1)] }
      });
    const model = new RunModel({ client: server.client(), runId: 'r1' });
    await model.refresh();
    fail = true;
    await model.refresh();
    expect(model.error?.message).toBe('down (HTTP 503)');
    expect(model.run?.id).toBe('r1');
    expect(model.series.get('loss')?.size).toBe(1);
    model.dispose();
  });
});

describe('JobLogModel', () => {
  it('appends pages until the log is complete', async () => {
    const pages: Record<number, object> = {
      0: {
        status: 'running',
        offset: 0,
        next: 6,
        size: 6,
        text: 'hello\n',
        complete: false
      },
      6: {
        status: 'completed',
        offset: 6,
        next: 12,
        size: 12,
        text: 'done!\n',
        complete: true
      }
    };
    const server = new StubServer().on('GET jobs/j1/logs', request => {
      const offset = Number(
        new URLSearchParams(request.path.split('?')[1]).get('offset')
      );
      return { body: pages[offset] };
    });
    const model = new JobLogModel({ client: server.client(), jobId: 'j1' });
    const added: string[] = [];
    model.appended.connect((_, text) => added.push(text));
    await model.refresh();
    expect(model.text).toBe('hello\n');
    expect(model.complete).toBe(false);
    await model.refresh();
    expect(model.text).toBe('hello\ndone!\n');
    expect(model.status).toBe('completed');
    expect(model.complete).toBe(true);
    expect(added).toEqual(['hello\n', 'done!\n']);
    model.dispose();
  });

  it('reads on at once while the log is longer than read, and stops once complete', async () => {
    const text = 'a'.repeat(10);
    const server = new StubServer().on('GET jobs/j2/logs', request => {
      const offset = Number(
        new URLSearchParams(request.path.split('?')[1]).get('offset')
      );
      const page = text.slice(offset, offset + 4);
      const next = offset + page.length;
      return {
        body: {
          id: 'j2',
          status: 'completed',
          offset,
          next,
          size: text.length,
          text: page,
          complete: next >= text.length
        }
      };
    });
    // an interval no test waits for: the pages after the first come from the read-on
    const model = new JobLogModel({
      client: server.client(),
      jobId: 'j2',
      interval: 600_000
    });
    expect(model.status).toBe('queued');
    model.start();
    await until(() => model.complete);
    expect(model.text).toBe(text);
    expect(model.status).toBe('completed');
    expect(server.requests.map(r => r.path)).toEqual([
      'jobs/j2/logs?offset=0',
      'jobs/j2/logs?offset=4',
      'jobs/j2/logs?offset=8'
    ]);
    expect(model.poll.state.phase).toBe('stopped');
    await model.refresh(); // complete: nothing more is read
    expect(server.requests).toHaveLength(3);
    model.dispose();
  });
});

describe('LogModel', () => {
  it('reads pages through its fetch function, and keeps the text after a failure', async () => {
    const pages: Array<ILogPage | Error> = [
      { text: 'one\n', next: 4, complete: false },
      new Error('gone'),
      { text: 'two\n', next: 8, complete: false, status: 'ready' }
    ];
    const offsets: number[] = [];
    const model = new LogModel({
      fetch: async offset => {
        offsets.push(offset);
        const page = pages.shift()!;
        if (page instanceof Error) {
          throw page;
        }
        return page;
      },
      status: 'starting'
    });
    const added: string[] = [];
    model.appended.connect((_, text) => added.push(text));
    await model.refresh();
    expect(model.text).toBe('one\n');
    await model.refresh();
    expect(model.error?.message).toBe('gone');
    expect(model.text).toBe('one\n');
    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.text).toBe('one\ntwo\n');
    expect(model.status).toBe('ready');
    expect(model.complete).toBe(false);
    // the failed read is asked again from the same offset
    expect(offsets).toEqual([0, 4, 4]);
    expect(added).toEqual(['one\n', '', 'two\n']);
    model.dispose();
    expect(model.isDisposed).toBe(true);
  });

  it('keeps the tail of a log past MAX_LOG_CHARS', async () => {
    const big = 'z'.repeat(MAX_LOG_CHARS);
    const pages = [
      { text: big, next: big.length },
      { text: 'end\n', next: big.length + 4, complete: true }
    ];
    const model = new LogModel({ fetch: async () => pages.shift()! });
    await model.refresh();
    await model.refresh();
    expect(model.text.startsWith('… (earlier lines cut)\n')).toBe(true);
    expect(model.text.endsWith('zend\n')).toBe(true);
    expect(model.text.length).toBe(
      '… (earlier lines cut)\n'.length + MAX_LOG_CHARS
    );
    expect(model.complete).toBe(true);
    model.dispose();
  });
});
