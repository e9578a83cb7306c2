"""Elastic workers: Dask's adaptive scaling on the lab's own cluster, set by config and by
PATCH /cluster, growing for the workers an ``ll.fit`` needs and for a queued Dask job, and
shrinking back when they are done."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.server.test_jobs_api import call, wait_job, write_notebook
from tests.training.loops import digits_torch

ADAPT = {"minimum": 0, "maximum": 2, "interval": "300ms", "wait_count": 3}


@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    """Adaptive from the start, at 0 workers; jobs on the cluster (the dask executor)."""
    return {**lab_config, "n_workers": 0, "adapt": ADAPT, "job_executor": "dask"}


def workers(status: dict) -> int:
    return status["totals"]["workers"]


async def test_a_two_worker_fit_brings_its_workers_and_they_go_after_the_run(
    cluster_status, jp_fetch, tmp_path
):
    from distributed import Client

    import lepton_lab as ll
    from lepton_lab.cluster.attach import lab_security
    from lepton_lab.store import Store

    status = await cluster_status()
    assert status["adapt"] == {"minimum": 0, "maximum": 2, "requested": 0}
    assert status["owned"] is True and status["cluster_class"] == "distributed.LocalCluster"
    assert workers(status) == 0

    address = status["scheduler_address"]
    # the lab's TLS keys, from the cluster file that this server process exported
    client = await asyncio.to_thread(Client, address, timeout=30, security=lab_security(address))
    try:
        run = await asyncio.to_thread(
            ll.fit,
            digits_torch,
            framework="torch",
            workers=2,
            config={"epochs": 2},
            client=client,
            store=Store(f"sqlite:///{tmp_path / 'runs.db'}"),
            artifact_dir=str(tmp_path / "artifacts"),
        )
        # while the run waits, the status shows what it asked for
        asked = await cluster_status(lambda s: s["adapt"]["requested"] == 2 or workers(s) == 2)
        assert asked["adapt"]["maximum"] == 2
        await asyncio.to_thread(run.wait, 180)
        assert run.status == "completed", run.error
        assert len(run.result) == 2
        assert {r["weights_sha"] for r in run.result} == {run.result[0]["weights_sha"]}
        waiting = [e for e in run.events() if e["kind"] == "waiting"]
        assert waiting and "asking the adaptive cluster for 2 workers" in waiting[0]["message"]
    finally:
        await asyncio.to_thread(client.close)
    # idle again: the adaptive policy lets both workers go
    after = await cluster_status(lambda s: workers(s) == 0, timeout=60)
    assert after["adapt"]["requested"] == 0


async def test_a_queued_dask_job_brings_a_worker_up(cluster_status, jp_fetch, jp_root_dir):
    await cluster_status(lambda s: s["status"] == "running" and workers(s) == 0)
    write_notebook(jp_root_dir / "adaptive.ipynb", "print(6 * 7)")
    code, job = await call(jp_fetch, "POST", "jobs", body={"path": "adaptive.ipynb"})
    assert code == 201, job
    done = await wait_job(jp_fetch, job["id"], timeout=180)
    assert done["status"] == "completed", done["error"]
    assert done["events"][-1]["message"].startswith("ran on Dask worker ")
    await cluster_status(lambda s: workers(s) == 0, timeout=60)


async def test_patch_switches_between_a_fixed_size_and_adaptive(cluster_status, jp_fetch):
    await cluster_status()
    code, fixed = await call(jp_fetch, "PATCH", "cluster", body={"workers": 1})
    assert code == 200, fixed
    assert fixed["adapt"] is None and workers(fixed) == 1
    await asyncio.sleep(2)  # a fixed size stays put: nothing retires the idle worker
    assert workers(await cluster_status()) == 1

    code, adaptive = await call(
        jp_fetch, "PATCH", "cluster", body={"adapt": {"minimum": 0, "maximum": 3}}
    )
    assert code == 200, adaptive
    assert adaptive["adapt"] == {"minimum": 0, "maximum": 3, "requested": 0}
    # Dask's default policy (1 s interval, 3 checks) retires the idle worker
    await cluster_status(lambda s: workers(s) == 0, timeout=60)


BAD_ADAPT = [
    ({"adapt": {"minimum": 3, "maximum": 1}}, "minimum (3) is more than its maximum (1)"),
    ({"adapt": {"minimum": -1, "maximum": 2}}, "non-negative"),
    ({"adapt": {"minimum": 0, "maximum": 5}}, "'adapt' maximum must be at most 4, got 5"),
    ({"adapt": {"minimum": 0}}, "missing field 'adapt.maximum'"),
    ({"workers": 2, "adapt": {"maximum": 2}}, "send either 'workers'"),
]


@pytest.mark.parametrize("body,expected", BAD_ADAPT)
async def test_bad_adapt_requests_are_400_and_leave_the_cluster_as_it_was(
    cluster_status, jp_fetch, body, expected
):
    before = await cluster_status()
    code, error = await call(jp_fetch, "PATCH", "cluster", body=json.dumps(body))
    assert code == 400, error
    assert expected in error["message"]
    after = await cluster_status()
    assert after["adapt"] == before["adapt"] == {"minimum": 0, "maximum": 2, "requested": 0}


async def test_the_cli_status_of_the_labs_cluster_says_it_is_adaptive(cluster_status):
    from lepton_lab.cli.common import format_status
    from lepton_lab.cluster.manager import ClusterManager

    status = await cluster_status()
    outside = ClusterManager(mode=status["scheduler_address"])  # what `cluster status` runs
    await asyncio.to_thread(outside.start)
    try:
        seen = outside.status()
    finally:
        await asyncio.to_thread(outside.close)
    assert seen["mode"] == "external" and seen["owned"] is False
    assert seen["adapt"] == {"minimum": 0, "maximum": 2, "requested": 0}
    assert "adaptive:   0..2 workers" in format_status(seen)
    assert "class:      distributed.LocalCluster" in format_status(status)


@pytest.mark.parametrize(
    "adapt,expected",
    [
        ({"minimum": 3, "maximum": 1}, "minimum (3) is more than its maximum (1)"),
        ({"minimum": 0, "maximum": 2, "wait": 5}, "adapt does not take wait"),
        ({"minimum": -2, "maximum": 2}, "must be a non-negative integer, got -2"),
    ],
)
def test_a_bad_adapt_setting_leaves_a_fixed_size_cluster_and_one_line(adapt, expected):
    from lepton_lab.cluster.manager import ClusterManager

    manager = ClusterManager(
        mode="local", n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    )
    manager.adapt = adapt
    manager.start()
    try:
        status = manager.status()
        assert status["status"] == "running" and status["totals"]["workers"] == 1
        assert status["adapt"] is None
        assert status["error"].startswith("the adapt setting was not applied: ")
        assert expected in status["error"] and "\n" not in status["error"]
    finally:
        manager.close()
