"""Faults under a running ``ll.fit`` and a running job, on a real cluster, a real SQLite file
and real processes:

- a checkpoint write that fails halfway (``RLIMIT_FSIZE`` in the rank: the write hits
  ``EFBIG``) leaves the previous checkpoint readable, and the run resumes from it;
- the database locked by another process for longer than SQLite's busy timeout: the run's
  driver and the job's supervisor retry their writes, and both complete with every value.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lepton_lab as ll
from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.jobs.dispatcher import Dispatcher
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.services.jobs import JobService
from lepton_lab.store import Store
from lepton_lab.store.database import BUSY_TIMEOUT_MS
from tests.jobs.conftest import write_notebook


@pytest.fixture(scope="module")
def cluster():
    manager = ClusterManager(
        mode="local",
        n_workers=1,
        threads_per_worker=1,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
    )
    manager.start()
    yield manager
    manager.close()


def _ignore_sigxfsz() -> bool:
    # on the worker's event loop (its main thread): a write past RLIMIT_FSIZE then fails
    # with EFBIG instead of the signal killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return True


def checkpoint_then_fail_halfway(config):
    import os
    import resource

    ctx = ll.context()
    state = ctx.checkpoint()
    start = state["step"] if state else 0
    third = f"{ctx.checkpoint_dir}/step-00000003.ckpt"
    seen_at_start = os.path.exists(third)
    for step in range(start + 1, 5):
        payload = {"step": step, "blob": bytes(300_000)}
        if step == 3 and ctx.attempt == 1:
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            # the file may grow to 64 KiB: torch.save fails partway through 300 kB
            resource.setrlimit(resource.RLIMIT_FSIZE, (65536, hard))
            try:
                ctx.report(step=step, loss=1.0 / step, checkpoint=payload)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        else:
            ctx.report(step=step, loss=1.0 / step, checkpoint=payload)
    return {"resumed_from": start, "attempt": ctx.attempt, "third_existed": seen_at_start}


def test_a_checkpoint_write_that_fails_halfway_keeps_the_previous_one(cluster, tmp_path):
    import torch

    client = cluster.client
    assert all(client.run(_ignore_sigxfsz).values())
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    run = ll.fit(
        checkpoint_then_fail_halfway,
        framework="torch",
        workers=1,
        max_failures=1,
        client=client,
        store=store,
        artifact_dir=str(tmp_path / "artifacts"),
    )
    assert run.wait(180) == "completed", run.error
    events = run.events()
    failure = next(e for e in events if e["kind"] == "failure")
    assert "File too large" in failure["message"], failure["message"]
    restart = next(e for e in events if e["kind"] == "restart")
    assert restart["data"]["resume_step"] == 2
    # the second attempt began from the checkpoint of step 2, and the half-written step 3
    # had not taken the checkpoint's name
    assert run.result == [{"resumed_from": 2, "attempt": 2, "third_existed": False}]
    folder = tmp_path / "artifacts" / "runs" / run.id / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"step-{n:08d}.ckpt" for n in (1, 2, 3, 4)], names  # no temporary left
    for n in (1, 2, 3, 4):
        state = torch.load(folder / f"step-{n:08d}.ckpt", weights_only=False)
        assert state["step"] == n and len(state["blob"]) == 300_000


def report_for_a_while(config):
    import time

    ctx = ll.context()
    for step in range(1, config["steps"] + 1):
        ctx.report(step=step, value=float(step))
        time.sleep(config["pause"])
    return "done"


JOB_CELL = """\
import time
import lepton_lab as ll
for i in range(16):
    ll.log_metrics(value=float(i))
    print("line", i, flush=True)
    time.sleep(0.5)
"""


def notebook(path: Path) -> Path:
    return write_notebook(path, JOB_CELL)


LOCKER = """\
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print(time.time(), flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print(time.time(), flush=True)
"""


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_runs_and_jobs_wait_out_a_locked_database(cluster, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="lepton_lab.store")
    db = tmp_path / "state" / "lepton.db"
    store = Store(f"sqlite:///{db}")
    state = tmp_path / "state"
    jobs = JobService(store, state, root=tmp_path)
    dispatcher = Dispatcher(store, state, concurrency=1, name="faults")
    dispatcher.start()
    locker = None
    try:
        job = jobs.submit({"path": str(notebook(tmp_path / "count.ipynb")), "kernel": "python3"})
        steps = 60
        run = ll.fit(
            report_for_a_while,
            framework="torch",
            workers=1,
            config={"steps": steps, "pause": 0.15},
            client=cluster.client,
            store=store,
            artifact_dir=str(tmp_path / "artifacts"),
        )
        wait_for(lambda: store.get_job(job.id)["metrics"], 120, "the job never logged a value")
        wait_for(lambda: store.count_metrics(run.id) > 0, 60, "the run never reported")

        hold = BUSY_TIMEOUT_MS / 1000 + 4  # longer than one statement waits
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db), str(hold)], stdout=subprocess.PIPE, text=True
        )
        locked_at = float(locker.stdout.readline())
        # both end while the lock is held: their last writes must outlast it
        assert run.wait(180) == "completed", run.error
        released_at = float(locker.stdout.readline())
        assert locker.wait(10) == 0
        assert released_at - locked_at >= hold - 0.5
        wait_for(
            lambda: store.get_job(job.id, details=False)["status"] not in ("queued", "running"),
            120,
            "the job never ended",
        )
        record = store.get_job(job.id)
        assert record["status"] == "completed", record
        assert sorted(m["value"] for m in record["metrics"]) == [float(i) for i in range(16)]
        log = JobFiles.of(record).log.read_text()
        assert all(f"line {i}" in log for i in range(16))
        assert run.record()["status"] == "completed"
        values = sorted(m["value"] for m in run.metrics())
        assert values == [float(s) for s in range(1, steps + 1)]
        # they did meet the lock (and waited it out rather than failing)
        assert "is locked by another process; retrying" in caplog.text
    finally:
        if locker is not None and locker.poll() is None:
            locker.kill()
        dispatcher.close()
