"""SIGKILL of a real ``jupyter lab`` while a kernel's ``ll.fit`` streams metrics into the
store and a job writes its log and metrics (through the server's supervisor): the SQLite file
passes ``PRAGMA integrity_check``, every row committed before the kill is still there, the
log keeps every byte written before it, and a server started again on the same state answers
with them (the job marked as interrupted by the restart)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import psutil

from tests.jobs.conftest import write_notebook
from tests.support.labserver import LabServer, execute

API = "lepton-lab/api"

JOB_CELL = """\
import time
import lepton_lab as ll
for i in range(3000):
    ll.log_metrics(value=float(i))
    print("line", i, flush=True)
    time.sleep(0.05)
"""

FIT = """\
import lepton_lab as ll

def loop(config):
    import time
    ctx = ll.context()
    for step in range(1, 100000):
        ctx.report(step=step, loss=1.0 / step)
        time.sleep(0.01)

run = ll.fit(loop, framework="torch", workers=1)
print(run.id)
"""


def committed(db: str) -> dict[str, list[tuple]]:
    """What another reader sees as committed now: every metric row, run and job."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return {
            "run_metrics": conn.execute(
                "SELECT id, run_id, rank, step, name, value FROM run_metrics ORDER BY id"
            ).fetchall(),
            "job_metrics": conn.execute(
                "SELECT id, job_id, attempt, name, value FROM job_metrics ORDER BY id"
            ).fetchall(),
            "runs": conn.execute("SELECT id FROM runs").fetchall(),
            "jobs": conn.execute("SELECT id FROM jobs").fetchall(),
        }


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_sigkill_of_the_server_loses_no_committed_row(tmp_path):
    state = tmp_path / "state"
    db = state / "lepton.db"
    settings = {
        "database_url": f"sqlite:///{db}",
        "state_dir": str(state),
        "cluster_mode": "local",
        "n_workers": 1,
        "threads_per_worker": 1,
        "memory_limit": "1GiB",
        "dashboard_address": "127.0.0.1:0",
    }
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "count.ipynb", JOB_CELL)
    server = LabServer(root, settings).start()
    orphans: list[psutil.Process] = []
    try:
        server.wait_cluster(lambda s: s["status"] == "running" and s["workers"])
        code, job = server.request("POST", f"{API}/jobs", {"path": "count.ipynb"})
        assert code == 201, job
        kernel = server.start_kernel("lepton-cpu")
        try:
            run_id = execute(kernel, FIT, timeout=180).strip().splitlines()[-1]
        finally:
            kernel.stop_channels()

        def streaming():
            rows = committed(str(db))
            runs = [r for r in rows["run_metrics"] if r[1] == run_id]
            jobs = [r for r in rows["job_metrics"] if r[1] == job["id"]]
            return len(runs) >= 50 and len(jobs) >= 10

        wait_for(streaming, 180, "the run and the job never streamed")
        log_path = state / "jobs" / job["id"] / "job.log"
        code, record = server.request("GET", f"{API}/jobs/{job['id']}")
        assert code == 200 and record["status"] == "running", record

        orphans = psutil.Process(server.proc.pid).children(recursive=True)
        before = committed(str(db))
        log_before = log_path.read_bytes()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(30)
        # the kernel, its ranks' workers, the job's runner and kernel: no one ends them now
        for proc in orphans:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(orphans, timeout=30)

    assert [p for p in orphans if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    after = committed(str(db))
    for table, rows in before.items():
        missing = set(rows) - set(after[table])
        assert not missing, f"{table}: {len(missing)} committed row(s) lost, e.g. {min(missing)}"
    assert len(before["run_metrics"]) >= 50 and len(before["job_metrics"]) >= 10
    assert log_path.read_bytes().startswith(log_before) and b"line 9\n" in log_before

    # the lab comes back on the same state and serves what was kept
    again = LabServer(tmp_path / "root", settings, app="jupyter_server").start()
    try:
        code, page = again.request("GET", f"{API}/runs/{run_id}/metrics?limit=100000")
        assert code == 200
        kept = {(m["id"], m["step"], m["value"]) for m in page["metrics"]}
        assert {(r[0], r[3], r[5]) for r in before["run_metrics"] if r[1] == run_id} <= kept
        # its driver (the kernel) died with the server: the run is failed, not running for ever
        code, run = again.request("GET", f"{API}/runs/{run_id}")
        assert code == 200 and run["status"] == "failed", run
        assert "ended before the run did" in run["error"]

        def reconciled():
            code, record = again.request("GET", f"{API}/jobs/{job['id']}")
            return record if code == 200 and record["status"] != "running" else None

        record = wait_for(reconciled, 60, "the interrupted job was never reconciled")
        assert "interrupted by restart" in (record["error"] or ""), record
        assert {m["value"] for m in record["metrics"]} >= {
            r[4] for r in before["job_metrics"] if r[1] == job["id"]
        }
    finally:
        assert again.stop() == 0, again.log()
    assert os.path.exists(db)
