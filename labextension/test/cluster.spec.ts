import { Widget } from '@lumino/widgets';

import { ICluster } from '../src/api';
import { ClusterSection, scalingLabel, waitingLabel } from '../src/cluster';
import { LeptonModels } from '../src/models';
import { StubServer, until } from './stub-server';

const GiB = 1024 ** 3;

function worker(name: string) {
  return {
    name,
    address: `tcp://127.0.0.1:${name}`,
    nthreads: 1,
    memory_limit: GiB,
    memory_used: 0,
    cpu: 0,
    status: 'running',
    gpu: null
  };
}

function cluster(extra: Partial<ICluster> = {}, workers = 1): ICluster {
  const list = Array.from({ length: workers }, (_, i) => worker(String(i)));
  return {
    mode: 'local',
    requested_mode: 'auto',
    status: 'running',
    owned: true,
    cluster_class: 'distributed.LocalCluster',
    adapt: null,
    max_workers: 8,
    workers: list,
    totals: {
      workers: list.length,
      threads: list.length,
      memory_limit: list.length * GiB,
      memory_used: 0,
      gpus: 0
    },
    ...extra
  };
}

/** A cluster section on a stub server; `state` is what `GET cluster` answers. */
async function mount(state: { current: ICluster }) {
  const server = new StubServer().on('GET cluster', () => ({
    body: state.current
  }));
  const models = new LeptonModels({ client: server.client() });
  const section = new ClusterSection(models.cluster);
  Widget.attach(section, document.body);
  await models.cluster.refresh();
  const q = <T extends HTMLElement>(selector: string) =>
    section.node.querySelector(selector) as T;
  const done = () => {
    Widget.detach(section);
    section.dispose();
    models.dispose();
  };
  return { server, models, section, q, done };
}

describe('cluster scaling labels', () => {
  it('say fixed or adaptive bounds, and a run waiting only beyond the current workers', () => {
    expect(scalingLabel(cluster())).toBe('fixed size');
    const adaptive = cluster({
      adapt: { minimum: 0, maximum: 8, requested: 0 }
    });
    expect(scalingLabel(adaptive)).toBe('adaptive 0–8');
    expect(waitingLabel(adaptive)).toBeNull();
    const asked = cluster({ adapt: { minimum: 0, maximum: 8, requested: 3 } });
    expect(waitingLabel(asked)).toBe('a run is waiting for 3 workers');
    // three workers already there: nobody waits
    expect(
      waitingLabel(
        cluster({ adapt: { minimum: 0, maximum: 8, requested: 3 } }, 3)
      )
    ).toBeNull();
    expect(
      waitingLabel(
        cluster({ adapt: { minimum: 0, maximum: 8, requested: 1 } }, 0)
      )
    ).toBe('a run is waiting for 1 worker');
  });
});

describe('cluster section', () => {
  it('shows the class, whether it is adaptive, and a waiting run', async () => {
    const state = {
      current: cluster(
        {
          mode: 'factory',
          cluster_class: 'dask_jobqueue.LocalCluster',
          adapt: { minimum: 0, maximum: 8, requested: 2 }
        },
        1
      )
    };
    const { q, done } = await mount(state);
    expect(q('.lepton-cluster-class').textContent).toBe(
      'dask_jobqueue.LocalCluster'
    );
    expect(q('.lepton-cluster-mode').textContent).toBe('factory');
    const scaling = q('.lepton-cluster-scaling');
    expect(scaling.textContent).toBe('adaptive 0–8');
    expect(scaling.dataset.leptonAdaptive).toBe('true');
    expect(q('.lepton-cluster-adapt-waiting').textContent).toBe(
      'a run is waiting for 2 workers'
    );
    // the controls follow the status: adaptive on with its bounds
    expect(q<HTMLInputElement>('.lepton-cluster-adapt-toggle').checked).toBe(
      true
    );
    expect(q<HTMLInputElement>('.lepton-cluster-adapt-min').value).toBe('0');
    expect(q<HTMLInputElement>('.lepton-cluster-adapt-max').value).toBe('8');
    expect(q<HTMLInputElement>('.lepton-cluster-workers-input').max).toBe('8');
    done();
  });

  it('sends {adapt} on Apply and {workers} on Scale, and shows the new status', async () => {
    const state = { current: cluster() };
    const { server, models, q, done } = await mount(state);
    expect(q('.lepton-cluster-scaling').textContent).toBe('fixed size');
    expect(q('.lepton-cluster-adapt-waiting')).toBeNull();
    const min = q<HTMLInputElement>('.lepton-cluster-adapt-min');
    const max = q<HTMLInputElement>('.lepton-cluster-adapt-max');
    const toggle = q<HTMLInputElement>('.lepton-cluster-adapt-toggle');
    // bounds are off until Adaptive is ticked
    expect(min.disabled).toBe(true);
    toggle.click();
    expect(min.disabled).toBe(false);
    min.value = '0';
    max.value = '2';
    max.dispatchEvent(new Event('input'));

    server.on('PATCH cluster', request => {
      const body = request.body as {
        adapt?: { minimum: number; maximum: number };
        workers?: number;
      };
      state.current = body.adapt
        ? cluster({ adapt: { ...body.adapt, requested: 0 } })
        : cluster({ adapt: null }, body.workers);
      return { body: state.current };
    });
    q<HTMLButtonElement>('.lepton-cluster-adapt-apply').click();
    await until(() => server.calls('PATCH cluster').length === 1);
    await until(
      () => q('.lepton-cluster-scaling').textContent === 'adaptive 0–2'
    );
    expect(server.calls('PATCH cluster')[0].body).toEqual({
      adapt: { minimum: 0, maximum: 2 }
    });
    expect(q('.lepton-cluster-scaling').textContent).toBe('adaptive 0–2');
    expect(models.cluster.data?.adapt?.maximum).toBe(2);

    // a fixed size turns it off
    const workers = q<HTMLInputElement>('.lepton-cluster-workers-input');
    workers.value = '3';
    workers.dispatchEvent(new Event('input'));
    q<HTMLButtonElement>('.lepton-cluster-scale').click();
    await until(
      () => q('.lepton-cluster-scaling').textContent === 'fixed size'
    );
    expect(server.calls('PATCH cluster')[1].body).toEqual({ workers: 3 });
    expect(q('.lepton-worker-count').textContent).toBe('3');
    expect(toggle.checked).toBe(false);
    expect(q<HTMLElement>('.lepton-cluster-control-error').hidden).toBe(true);
    done();
  });

  it('shows a refused change’s message in the section and keeps what was typed', async () => {
    const state = { current: cluster() };
    const { server, models, q, done } = await mount(state);
    server.on('PATCH cluster', {
      status: 400,
      body: { message: "'adapt' minimum (3) is more than its maximum (1)" }
    });
    q<HTMLInputElement>('.lepton-cluster-adapt-toggle').click();
    const min = q<HTMLInputElement>('.lepton-cluster-adapt-min');
    const max = q<HTMLInputElement>('.lepton-cluster-adapt-max');
    min.value = '3';
    max.value = '1';
    min.dispatchEvent(new Event('input'));
    const apply = q<HTMLButtonElement>('.lepton-cluster-adapt-apply');
    apply.click();
    const error = q<HTMLElement>('.lepton-cluster-control-error');
    await until(() => !error.hidden);
    expect(error.textContent).toBe(
      "'adapt' minimum (3) is more than its maximum (1) (HTTP 400)"
    );
    expect(server.calls('PATCH cluster')[0].body).toEqual({
      adapt: { minimum: 3, maximum: 1 }
    });
    expect(apply.disabled).toBe(false);
    // a poll does not overwrite the values being fixed, nor the status
    await models.cluster.refresh();
    expect(min.value).toBe('3');
    expect(max.value).toBe('1');
    expect(q('.lepton-cluster-scaling').textContent).toBe('fixed size');
    // not a whole number: said here, nothing sent
    min.value = '';
    min.dispatchEvent(new Event('input'));
    apply.click();
    await until(() => error.textContent?.includes('whole numbers') ?? false);
    expect(error.textContent).toContain('whole numbers');
    expect(server.calls('PATCH cluster')).toHaveLength(1);
    done();
  });

  it('keeps the controls off for a cluster the lab does not own', async () => {
    const state = {
      current: cluster({ mode: 'external', owned: false, cluster_class: null })
    };
    const { q, done } = await mount(state);
    expect(q('.lepton-cluster-class').textContent).toBe('–');
    expect(q<HTMLButtonElement>('.lepton-cluster-scale').disabled).toBe(true);
    expect(q<HTMLButtonElement>('.lepton-cluster-adapt-apply').disabled).toBe(
      true
    );
    expect(q('.lepton-cluster-controls').getAttribute('title')).toContain(
      'Not the lab’s own cluster'
    );
    done();
  });
});
