"""The run store on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from lepton_lab.store import Store, UnknownRun
from tests.support.postgres import postgres_server


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'runs.db'}")
    store = Store(request.getfixturevalue("postgres_url"))
    with store.engine.begin() as conn:  # each test starts empty
        for table in ("run_metrics", "run_events", "run_usage", "runs"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    return store


def test_a_run_record_round_trips(store):
    store.create_run("r1", framework="torch", params={"lr": 0.1, "layers": [64, 10]}, world_size=2)
    record = store.get_run("r1")
    assert record["status"] == "queued"  # the model's default, not a surprise from the database
    assert record["params"] == {"lr": 0.1, "layers": [64, 10]}
    store.update_run("r1", status="running", started_at=1.0)
    store.finish_run("r1", "failed", error="rank 1 raised ValueError", error_rank=1)
    record = store.get_run("r1")
    assert (record["status"], record["error_rank"]) == ("failed", 1)
    assert record["ended_at"] is not None
    assert [r["id"] for r in store.list_runs(status="failed")] == ["r1"]
    assert store.list_runs(status="completed") == []


def test_metrics_page_by_cursor(store):
    store.create_run("r2", framework="torch", params={}, world_size=2)
    rows = [
        {"rank": r, "step": s, "name": "loss", "value": 1.0 / (s + 1), "time": float(s)}
        for s in range(10)
        for r in (0, 1)
    ]
    assert store.add_metrics("r2", rows) == 20
    first = store.metrics("r2", since=0, limit=7)
    assert len(first["metrics"]) == 7
    rest = store.metrics("r2", since=first["next"])
    assert len(rest["metrics"]) == 13
    assert store.metrics("r2", since=rest["next"])["metrics"] == []
    assert store.count_metrics("r2") == 20


def test_events_and_usage_belong_to_their_run(store):
    store.create_run("r3", framework="keras", params={}, world_size=1)
    store.add_event("r3", "checkpoint", "step 3", rank=0, path="/x/step-3.ckpt", step=3)
    store.add_usage(
        "r3",
        [
            {
                "rank": 0,
                "attempt": 1,
                "worker": "tcp://127.0.0.1:1",
                "cpu_seconds": 1.5,
                "gpu_seconds": 0.0,
                "peak_memory": 10,
            }
        ],
    )
    record = store.get_run("r3")
    assert record["events"][0]["data"] == {"path": "/x/step-3.ckpt", "step": 3}
    assert record["usage"][0]["cpu_seconds"] == 1.5


def test_unknown_runs_are_a_clear_error(store):
    with pytest.raises(UnknownRun, match="no run with id 'nope'"):
        store.get_run("nope")
    with pytest.raises(UnknownRun):
        store.update_run("nope", status="running")
    with pytest.raises(UnknownRun):
        store.metrics("nope")


def test_a_run_whose_driver_is_gone_is_failed_by_the_next_reader(store):
    """A kernel killed mid-``ll.fit`` leaves its run running; the run service fails it the
    next time runs are read on that host, and leaves runs of live or remote drivers alone."""
    import os
    import socket
    import subprocess
    import sys

    from lepton_lab.services.runs import RunService

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    host = socket.gethostname()
    drivers = {
        "dead": f"{host}:{dead}",
        "alive": f"{host}:{os.getpid()}",
        "remote": f"another-host.example:{dead}",
        "done": f"{host}:{dead}",
    }
    for name, driver in drivers.items():
        store.create_run(name, framework="torch", status="running", driver=driver)
    store.update_run("done", status="completed")
    store.create_run("old", framework="torch", status="running")  # from before drivers
    runs = {r.id: r for r in RunService(store, lambda: None).list().runs}
    assert runs["dead"].status == "failed"
    assert runs["dead"].error == (
        f"its driver (pid {dead}, the process that called ll.fit) ended before the run did"
    )
    assert runs["dead"].ended_at is not None
    assert {runs[n].status for n in ("alive", "remote", "old")} == {"running"}
    assert runs["done"].status == "completed"
