"""Durable delivery of notifications with real processes on one SQLite file:

- a ``jupyter server`` killed (SIGKILL) while a failed job's webhook is pending between two
  retries sends it, once, after a restart on the same state;
- a server and the ``lepton-lab scheduler`` daemon on one database, the dispatcher lease
  passing from one to the other, send each job's message once per rule (its own rule and
  the lab's), none missing, none twice.

The webhook is a local HTTP server of the test that records every POST it receives."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.jobs.conftest import write_notebook
from tests.support.labserver import LabServer, free_port
from tests.support.polling import wait_for

API = "lepton-lab/api"
LEASE = "lepton-lab-dispatcher"


class Sink:
    """A webhook receiver on 127.0.0.1:``port``: every POST as (received at, path, body)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                at = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.posts.append((at, self.path, json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[tuple[float, str, dict[str, Any]]]:
        with self._lock:
            return list(self.posts)

    def by_job(self) -> dict[tuple[str, str], int]:
        """How many POSTs each (path, job id) got."""
        counts: dict[tuple[str, str], int] = {}
        for _, path, body in self.received():
            key = (path, body["record"]["id"])
            counts[key] = counts.get(key, 0) + 1
        return counts


def rows(db: Path, job_id: str | None = None) -> list[dict[str, Any]]:
    """The notification log as another reader of the SQLite file sees it."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        query = (
            "SELECT id, key, channel, subject_id, status, attempts, next_attempt_at, "
            "claimed_by, error, sent_at FROM notifications"
        )
        args: tuple[Any, ...] = ()
        if job_id is not None:
            query += " WHERE subject_id = ?"
            args = (job_id,)
        return [dict(r) for r in conn.execute(query + " ORDER BY id", args)]


def job_row(db: Path, job_id: str) -> dict[str, Any] | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute(
            "SELECT id, status, ended_at FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return dict(found) if found else None


def lease_holder(db: Path) -> str | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        found = conn.execute(
            "SELECT holder, expires_at FROM leases WHERE name = ?", (LEASE,)
        ).fetchone()
    return found[0] if found and found[1] > time.time() else None


def settings_of(state: Path) -> dict[str, Any]:
    return {
        "database_url": f"sqlite:///{state / 'lepton.db'}",
        "state_dir": str(state),
        # jobs run on the local executor; the lab's own cluster is as small as it gets
        "cluster_mode": "local",
        "n_workers": 1,
        "threads_per_worker": 1,
        "memory_limit": "1GiB",
        "dashboard_address": "127.0.0.1:0",
    }


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and what it started (the jobs' runners are orphans otherwise)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=30)


@pytest.mark.timeout(240)
def test_a_webhook_pending_when_the_server_is_killed_is_sent_once_after_restart(tmp_path):
    state = tmp_path / "state"
    db = state / "lepton.db"
    root = tmp_path / "root"
    write_notebook(root / "fails.ipynb", "raise ValueError('planted failure')")
    port = free_port()  # nothing listens there until the server is dead
    rule = {"on": ["failed"], "channel": "webhook", "url": f"http://127.0.0.1:{port}/hook"}

    server = LabServer(root, settings_of(state), app="jupyter_server").start()
    try:
        code, job = server.request("POST", f"{API}/jobs", {"path": "fails.ipynb", "notify": [rule]})
        assert code == 201, job
        wait_for(
            lambda: (j := job_row(db, job["id"])) and j["status"] == "failed",
            120,
            "the job to fail",
        )

        def between_retries():
            # a first attempt failed (connection refused) and the next is not due for a
            # while: the kill cannot land in the middle of a send
            found = [r for r in rows(db, job["id"]) if r["channel"] == "webhook"]
            return (
                len(found) == 1
                and found[0]["status"] == "pending"
                and found[0]["attempts"] >= 1
                and found[0]["next_attempt_at"] - time.time() > 0.4
                and found
            )

        [pending] = wait_for(between_retries, 60, "a webhook retry waiting for its backoff")
        assert "could not be reached" in (pending["error"] or ""), pending
        kill_tree(server.proc)
    finally:
        if server.proc.poll() is None:
            kill_tree(server.proc)
        server._log.close()

    [after_kill] = [r for r in rows(db, job["id"]) if r["channel"] == "webhook"]
    assert after_kill["status"] == "pending" and after_kill["sent_at"] is None, after_kill
    attempts_before = after_kill["attempts"]

    with Sink(port) as sink:
        again = LabServer(root, settings_of(state), app="jupyter_server").start()
        try:
            wait_for(sink.received, 90, "the webhook after the restart")
            # a duplicate would come within a retry's backoff or a sender tick: wait past both
            time.sleep(5)
            posts = sink.received()
            [row] = [r for r in rows(db, job["id"]) if r["channel"] == "webhook"]
        finally:
            again.stop()
    assert len(posts) == 1, [(p[1], p[2]["record"]["id"]) for p in posts]
    _, path, body = posts[0]
    assert path == "/hook"
    assert body["event"] == "failed" and body["status"] == "failed"
    assert body["record"]["id"] == job["id"]
    assert "planted failure" in body["text"]
    assert row["status"] == "sent" and row["sent_at"] is not None and row["error"] is None
    assert row["attempts"] == attempts_before + 1 and row["attempts"] >= 2, row


def _daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lepton_lab.cli.main", "scheduler", "--concurrency", "2"],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.timeout(300)
def test_a_server_and_the_daemon_on_one_database_send_each_message_once(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    db = state / "lepton.db"
    root = tmp_path / "root"
    write_notebook(root / "quick.ipynb", "print('quick')")
    port = free_port()
    own = {"on": ["completed"], "channel": "webhook", "url": f"http://127.0.0.1:{port}/job"}
    lab = [{"on": ["completed"], "channel": "webhook", "url": f"http://127.0.0.1:{port}/lab"}]
    env = dict(
        os.environ,
        LEPTON_LAB_STATE_DIR=str(state),
        LEPTON_LAB_DATABASE_URL=f"sqlite:///{db}",
        LEPTON_LAB_NOTIFICATIONS=json.dumps(lab),
    )
    for name in ("LEPTON_LAB_SCHEDULER_ADDRESS", "LEPTON_LAB_CLUSTER_FILE"):
        env.pop(name, None)
    holders: list[str] = []

    def watch_lease(stop: threading.Event) -> None:
        while not stop.wait(0.1):
            try:
                holder = lease_holder(db)
            except sqlite3.Error:  # the schema is still being created
                continue
            if holder and (not holders or holders[-1] != holder):
                holders.append(holder)

    with Sink(port) as sink:
        server = LabServer(
            root,
            {**settings_of(state), "job_concurrency": 2},
            app="jupyter_server",
            env={"LEPTON_LAB_NOTIFICATIONS": json.dumps(lab)},
        )
        stop = threading.Event()
        watcher = threading.Thread(target=watch_lease, args=(stop,), daemon=True)
        jobs: list[str] = []
        # the daemon first: it takes the lease; the server comes up beside it, standing by
        daemon = _daemon(env, tmp_path / "daemon.log")
        try:
            watcher.start()
            wait_for(lambda: holders, 60, "the daemon to take the dispatcher lease")
            assert ":daemon-" in holders[0], holders
            server.start()

            def submit(count: int) -> None:
                for _ in range(count):
                    code, job = server.request(
                        "POST", f"{API}/jobs", {"path": "quick.ipynb", "notify": [own]}
                    )
                    assert code == 201, job
                    jobs.append(job["id"])

            def delivered(expected: int) -> bool:
                return len(sink.received()) >= expected

            # first wave: submitted to the server, run and sent by the daemon (the holder)
            submit(3)
            wait_for(lambda: delivered(6), 120, "the first wave's 6 webhooks")
            assert len(holders) == 1, holders
            # the daemon stops (SIGTERM: it hands the lease back); the server takes over
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0
            wait_for(lambda: ":server-" in holders[-1], 60, "the server to take the lease")
            submit(3)
            wait_for(lambda: delivered(12), 120, "the second wave's 6 webhooks")
            time.sleep(4)  # a duplicate would come within a few sender ticks
        finally:
            stop.set()
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(60)
        counts = sink.by_job()

    assert len(jobs) == 6 and len(set(jobs)) == 6
    expected = {(path, j): 1 for j in jobs for path in ("/job", "/lab")}
    assert counts == expected, {k: v for k, v in counts.items() if expected.get(k) != v}
    # the lease passed once, from the daemon to the server
    assert len(holders) == 2 and ":server-" in holders[1], holders
    assert "standing by" not in (tmp_path / "daemon.log").read_text()
    log = rows(db)
    for job_id in jobs:
        mine = [r for r in log if r["subject_id"] == job_id]
        # its rule, the lab's, and the toast: each one row, sent at the first attempt
        assert sorted(r["channel"] for r in mine) == ["jupyterlab", "webhook", "webhook"], mine
        assert all(r["status"] == "sent" and r["attempts"] == 1 for r in mine), mine
