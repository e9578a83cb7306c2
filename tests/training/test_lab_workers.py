"""The lab's worker processes: glibc's allocator defaults, memory given back when idle, and
the environment of the process that started the cluster left as it was."""

from __future__ import annotations

import os
import time

from tests.support.polling import wait_for

NANNY_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in NANNY_VARIABLES}


def test_workers_keep_allocator_defaults_and_dasks_thread_settings(client):
    envs = client.run(_worker_env)
    assert len(envs) == 2
    for env in envs.values():
        assert env["MALLOC_TRIM_THRESHOLD_"] is None  # glibc's dynamic thresholds stay on
        assert env["OMP_NUM_THREADS"] == "1"  # what Dask sets for numpy is kept


def test_a_worker_restart_leaves_this_process_environment_alone(client, monkeypatch):
    for name in NANNY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    worker = sorted(client.scheduler_info()["workers"])[0]
    client.restart_workers([worker], timeout=60)
    client.wait_for_workers(2, timeout=60)
    assert {name: os.environ.get(name) for name in NANNY_VARIABLES} == dict.fromkeys(
        NANNY_VARIABLES
    )
    # the restarted worker was spawned with the same settings as the first
    for env in client.run(_worker_env).values():
        assert env["MALLOC_TRIM_THRESHOLD_"] is None and env["OMP_NUM_THREADS"] == "1"


def test_a_worker_start_left_unfinished_does_not_keep_dasks_variables_here(client, monkeypatch):
    """A nanny whose worker start is abandoned mid-way (its cluster closed under it) once kept
    the variables in this process for good: now they are only set for the spawn itself."""
    from lepton_lab.cluster import workers

    for name in NANNY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with workers._spawning.lock:  # as if another LabNanny were still starting its worker
        workers._spawning.count += 1
    try:
        worker = sorted(client.scheduler_info()["workers"])[0]
        client.restart_workers([worker], timeout=60)
        client.wait_for_workers(2, timeout=60)
        assert _worker_env() == dict.fromkeys(NANNY_VARIABLES)
    finally:
        with workers._spawning.lock:
            workers._spawning.count -= 1
    for env in client.run(_worker_env).values():
        assert env["MALLOC_TRIM_THRESHOLD_"] is None and env["OMP_NUM_THREADS"] == "1"


_HELD: list = []


def _fragment_heap() -> int:
    """Allocate 300 MB in 100 KB blocks, then free every other one: the holes stay in the
    heap (only the top of a heap is given back by free), until malloc_trim."""
    import numpy as np
    import psutil

    blocks = [np.ones(12_800) for _ in range(3_000)]
    _HELD[:] = blocks[::2]
    del blocks
    return psutil.Process().memory_info().rss


def _rss_and_trims(dask_worker) -> tuple[int, int]:
    import psutil

    return psutil.Process().memory_info().rss, dask_worker.plugins["lepton-lab-idle-trim"].trims


def _release() -> None:
    _HELD.clear()


def test_an_idle_worker_gives_freed_memory_back(client):
    worker = sorted(client.scheduler_info()["workers"])[0]
    trims_before = client.run(_rss_and_trims, workers=[worker])[worker][1]
    fragmented = client.submit(_fragment_heap, workers=[worker], pure=False).result()
    # one second after its last task the worker trims; 150 MB of holes go back to the OS
    wait_for(
        lambda: client.run(_rss_and_trims, workers=[worker])[worker][1] > trims_before,
        timeout=10,
        what="the idle worker's malloc_trim",
    )
    rss, _ = client.run(_rss_and_trims, workers=[worker])[worker]
    assert fragmented - rss > 100 * 2**20, (fragmented, rss)
    client.submit(_release, workers=[worker], pure=False).result()


def test_a_busy_worker_is_not_trimmed_mid_task(client):
    worker = sorted(client.scheduler_info()["workers"])[1]
    time.sleep(1.5)  # any trim from earlier work has happened
    before = client.run(_rss_and_trims, workers=[worker])[worker][1]
    # a task of 3 s, started by a short one: the timer armed by the first must not fire
    # while the second runs
    client.submit(time.sleep, 0.01, workers=[worker], pure=False).result()
    long = client.submit(time.sleep, 3, workers=[worker], pure=False)
    time.sleep(2)
    during = client.run(_rss_and_trims, workers=[worker])[worker][1]
    long.result()
    assert during == before
