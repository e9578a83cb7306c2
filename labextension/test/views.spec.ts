import { Widget } from '@lumino/widgets';

import { workerTable } from '../src/cluster';
import { JobLogView } from '../src/jobs';
import { JobLogModel, LeptonModels } from '../src/models';
import { RunsSection } from '../src/runs';
import { FollowingPanel } from '../src/section';
import { StubServer, until } from './stub-server';

const GiB = 1024 ** 3;

describe('worker table', () => {
  it('has three short columns, and a GPU column only with GPUs', () => {
    const worker = {
      name: '0',
      address: 'tcp://127.0.0.1:1',
      nthreads: 2,
      memory_limit: 4 * GiB,
      memory_used: GiB,
      cpu: 12.5,
      status: 'running',
      gpu: null
    };
    const table = workerTable([worker]);
    expect([...table.querySelectorAll('th')].map(th => th.textContent)).toEqual(
      ['Worker', 'CPU', 'Memory']
    );
    const row = table.querySelector('tr.lepton-worker') as HTMLElement;
    expect(row.dataset.leptonWorker).toBe('0');
    expect(row.querySelector('.lepton-worker-memory')?.textContent).toBe(
      '1.00 / 4.00 GiB'
    );
    expect(
      row.querySelector('.lepton-worker-name')?.getAttribute('title')
    ).toContain('threads: 2');

    const gpu = {
      name: 'A100',
      utilization: 50,
      memory_used: GiB,
      memory_total: 40 * GiB
    };
    const withGpu = workerTable([{ ...worker, gpu }]);
    expect(withGpu.querySelectorAll('th')).toHaveLength(4);
    expect(withGpu.querySelector('.lepton-worker-gpu')?.textContent).toBe(
      '50%'
    );
    expect(workerTable([]).querySelector('.lepton-no-workers')).not.toBeNull();
  });
});

describe('runs section', () => {
  it('lists runs with their badge, progress and metrics; Stop only while active', async () => {
    const runs = [
      {
        id: 'r2',
        name: 'fit',
        framework: 'torch',
        status: 'running',
        params: {},
        world_size: 2,
        created_at: 2,
        step: 41,
        last_metrics: { val_loss: 0.5, loss: 0.25 }
      },
      {
        id: 'r1',
        name: 'old',
        framework: 'keras',
        status: 'failed',
        params: { epochs: 5 },
        world_size: 2,
        created_at: 1,
        step: 1,
        error: '\nValueError: bad batch\nmore',
        error_rank: 1
      }
    ];
    const server = new StubServer().on('GET runs?limit=10', { body: { runs } });
    const models = new LeptonModels({ client: server.client() });
    const opened: string[] = [];
    const section = new RunsSection({
      model: models.runs,
      openRun: run => opened.push(run.id)
    });
    Widget.attach(section, document.body);
    await models.runs.refresh();

    const rows = section.node.querySelectorAll<HTMLElement>('li.lepton-run');
    expect([...rows].map(r => r.dataset.leptonRun)).toEqual(['r2', 'r1']);
    const [running, failed] = rows;
    expect(running.querySelector('.lepton-run-progress')?.textContent).toBe(
      'step 41'
    );
    expect(running.querySelector('.lepton-run-metrics')?.textContent).toBe(
      'loss 0.25 · val_loss 0.5'
    );
    expect(running.querySelector<HTMLElement>('.lepton-run-stop')?.hidden).toBe(
      false
    );
    expect(running.querySelector('.lepton-run-status')?.className).toContain(
      'lepton-mod-active'
    );
    expect(failed.querySelector('.lepton-run-progress')?.textContent).toBe(
      'epoch 2/5'
    );
    expect(failed.querySelector<HTMLElement>('.lepton-run-stop')?.hidden).toBe(
      true
    );
    expect(failed.querySelector('.lepton-run-error')?.textContent).toBe(
      'rank 1: ValueError: bad batch'
    );
    failed.querySelector<HTMLButtonElement>('.lepton-run-name')?.click();
    expect(opened).toEqual(['r1']);

    // an ended run: a neutral badge, no Stop; the row is the same node, updated in place
    server.on('GET runs?limit=10', {
      body: { runs: [{ ...runs[0], status: 'completed' }, runs[1]] }
    });
    await models.runs.refresh();
    const again = section.node.querySelector<HTMLElement>(
      "li.lepton-run[data-lepton-run='r2']"
    );
    expect(again).toBe(running);
    expect(again?.querySelector('.lepton-run-status')?.className).toContain(
      'lepton-mod-neutral'
    );
    expect(again?.querySelector<HTMLElement>('.lepton-run-stop')?.hidden).toBe(
      true
    );
    Widget.detach(section);
    section.dispose();
    models.dispose();
  });
});

describe('following panel', () => {
  class FakeModel {
    calls: string[] = [];
    start(): void {
      this.calls.push('start');
    }
    async refresh(): Promise<void> {
      this.calls.push('refresh');
    }
    dispose(): void {
      this.calls.push('dispose');
    }
  }

  class Panel extends FollowingPanel<FakeModel> {
    again = true;
    protected refreshOnShow(): boolean {
      return this.again;
    }
  }

  it('starts its model when attached, reads when shown again, disposes it once', () => {
    const model = new FakeModel();
    const panel = new Panel(model);
    Widget.attach(panel, document.body);
    expect(model.calls).toEqual(['start']);
    panel.hide();
    panel.show();
    expect(model.calls).toEqual(['start', 'refresh']);
    panel.again = false; // e.g. a run read in full
    panel.hide();
    panel.show();
    expect(model.calls).toEqual(['start', 'refresh']);
    panel.dispose();
    panel.dispose();
    expect(model.calls).toEqual(['start', 'refresh', 'dispose']);
    expect(panel.isDisposed).toBe(true);
  });
});

describe('job log panel', () => {
  it('follows the log with the job’s hooks until it is complete', async () => {
    let done = false;
    const server = new StubServer().on('GET jobs/j1/logs', request => {
      const offset = Number(
        new URLSearchParams(request.path.split('?')[1]).get('offset')
      );
      const text = offset === 0 ? 'cell 1\n' : done ? 'cell 2\n' : '';
      return {
        body: {
          id: 'j1',
          status: done ? 'timed_out' : 'running',
          offset,
          next: offset + text.length,
          size: offset + text.length,
          text,
          complete: done && offset > 0
        }
      };
    });
    const model = new JobLogModel({
      client: server.client(),
      jobId: 'j1',
      status: 'running'
    });
    const view = new JobLogView(model);
    const node = view.node;
    expect(node.classList).toContain('lepton-JobLog');
    expect(node.classList).toContain('lepton-LogView');
    expect(node.dataset.leptonJob).toBe('j1');
    expect(node.dataset.leptonJobStatus).toBe('running');
    expect(node.dataset.leptonLogComplete).toBe('false');
    Widget.attach(view, document.body);
    const pre = node.querySelector('pre.lepton-job-log-text') as HTMLElement;
    await until(() => pre.textContent === 'cell 1\n');
    expect(pre.textContent).toBe('cell 1\n');
    const status = node.querySelector('.lepton-job-log-status') as HTMLElement;
    expect(status.textContent).toBe('Job j1: running. Following the log…');

    done = true;
    await model.refresh();
    expect(pre.textContent).toBe('cell 1\ncell 2\n');
    expect(view.complete).toBe(true);
    expect(node.dataset.leptonLogComplete).toBe('true');
    expect(node.dataset.leptonJobStatus).toBe('timed_out');
    expect(status.textContent).toBe('Job j1: timed out. End of log.');
    view.dispose();
    expect(model.isDisposed).toBe(true);
  });
});
