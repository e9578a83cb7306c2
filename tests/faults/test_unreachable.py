"""Services the lab depends on, gone while it runs: a PostgreSQL server that stops and
comes back, and a Dask scheduler that is killed. Every REST route that needs the database
answers a 503 JSON error that names it (never its password), the CLI prints one line and
exits 1, the server stays up and answers again once the database is back; stopping a run or
scaling the cluster without its scheduler is a 503 naming the scheduler within seconds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from lepton_lab.store import Store
from tests.faults.services import dask_scheduler, postgres
from tests.support.labserver import LabServer

PASSWORD = "pw-Sekr1t-9f3a"
#: this checkout, for servers that import test helpers (tests.faults.clusters)
REPO = str(Path(__file__).resolve().parents[2])
API = "lepton-lab/api"

NOTEBOOK = {
    "cells": [
        {
            "id": "one",
            "cell_type": "code",
            "metadata": {},
            "source": "x = 1",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}

#: every route that reads or writes the store, with a body it would accept
STORE_ROUTES = [
    ("GET", f"{API}/runs", None),
    ("GET", f"{API}/runs/r-running", None),
    ("GET", f"{API}/runs/r-running/metrics", None),
    ("POST", f"{API}/runs/r-running/stop", b"{}"),
    ("GET", f"{API}/jobs", None),
    ("POST", f"{API}/jobs", {"path": "nb.ipynb"}),
    ("GET", f"{API}/jobs/j1", None),
    ("DELETE", f"{API}/jobs/j1", None),
    ("POST", f"{API}/jobs/j1/stop", b"{}"),
    ("GET", f"{API}/jobs/j1/logs", None),
    ("GET", f"{API}/jobs/j1/output", None),
    ("GET", f"{API}/schedules", None),
    ("POST", f"{API}/schedules", {"path": "nb.ipynb", "cron": "0 * * * *"}),
    ("GET", f"{API}/schedules/s1", None),
    ("PATCH", f"{API}/schedules/s1", {"active": False}),
    ("DELETE", f"{API}/schedules/s1", None),
    ("POST", f"{API}/schedules/s1/run", b"{}"),
    ("GET", f"{API}/models", None),
    ("GET", f"{API}/models/m", None),
    ("GET", f"{API}/models/m/compare?metric=acc", None),
    ("GET", f"{API}/models/m/versions/1", None),
    ("PATCH", f"{API}/models/m/versions/1", {"aliases": ["prod"]}),
    ("DELETE", f"{API}/models/m/versions/1", None),
    ("GET", f"{API}/models/m/versions/1/artifacts/onnx", None),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One jupyter server on a PostgreSQL store, attached to an external scheduler; the
    tests stop and start both."""
    tmp = tmp_path_factory.mktemp("unreachable")
    with postgres() as pg, dask_scheduler(tmp) as (address, scheduler):
        url = pg.url(PASSWORD)  # trust auth: the password is only there to be hidden
        store = Store(url)
        store.create_run("r-running", framework="torch", status="running")
        store.engine.dispose()
        (tmp / "root").mkdir()
        (tmp / "root" / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
        server = LabServer(
            tmp / "root",
            {"database_url": url, "state_dir": str(tmp / "state"), "cluster_mode": address},
            app="jupyter_server",
        ).start()
        try:
            server.wait_cluster()
            yield server, pg, url, scheduler, tmp
        finally:
            server.stop()


def expect_unavailable(server: LabServer, method: str, path: str, body, what: str) -> str:
    started = time.monotonic()
    code, answer = server.request(method, path, body, timeout=60)
    took = time.monotonic() - started
    assert code == 503, (method, path, code, answer)
    assert isinstance(answer, dict) and what in answer["message"], (method, path, answer)
    assert took < 20, (method, path, took)
    return answer["message"]


def test_database_down_is_a_503_everywhere_and_the_server_recovers(lab):
    server, pg, url, _, tmp = lab
    code, runs = server.request("GET", f"{API}/runs")
    assert code == 200 and [r["id"] for r in runs["runs"]] == ["r-running"]

    pg.stop()
    try:
        shown = url.replace(PASSWORD, "***")
        for method, path, body in STORE_ROUTES:
            message = expect_unavailable(server, method, path, body, f"the database at {shown}")
            assert "is unavailable: " in message and PASSWORD not in message
        # routes that do not need the store still answer: the server is up
        assert server.request("GET", f"{API}/openapi.json")[0] == 200
        assert server.request("GET", f"{API}/cluster")[0] == 200

        env = dict(os.environ, LEPTON_LAB_DATABASE_URL=url, LEPTON_LAB_STATE_DIR=str(tmp))
        for argv in (["jobs", "list"], ["models", "list"]):
            cli = subprocess.run(
                [sys.executable, "-m", "lepton_lab.cli.main", *argv],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert cli.returncode == 1, (argv, cli.stdout, cli.stderr)
            assert cli.stderr.startswith(f"lepton-lab: error: the database at {shown} is "), (
                cli.stderr
            )
            assert cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr
            assert PASSWORD not in cli.stderr + cli.stdout
    finally:
        pg.start()

    code, runs = server.request("GET", f"{API}/runs")
    assert code == 200 and [r["id"] for r in runs["runs"]] == ["r-running"]
    code, job = server.request("POST", f"{API}/jobs", {"path": "nb.ipynb"})
    assert code == 201, job
    log = server.log_path.read_text(errors="replace")
    assert PASSWORD not in log
    assert "Uncaught exception" not in log  # no route failed with a 500 and a traceback


def test_a_killed_scheduler_is_a_503_when_stopping_a_run(lab):
    server, _, _, scheduler, _ = lab
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait(30)
    message = expect_unavailable(
        server, "POST", f"{API}/runs/r-running/stop", b"{}", "the cluster's scheduler"
    )
    assert "cannot be reached" in message and "was not stopped" in message
    assert server.proc.poll() is None


def test_a_killed_scheduler_of_an_owned_cluster_is_a_503_when_scaling(tmp_path):
    """The lab owns a SubprocessCluster (a factory cluster whose scheduler is a process of
    its own): kill that process, then scale."""
    factory = {
        "module": "tests.faults.clusters",
        "class": "SubprocessSchedulerCluster",
        "kwargs": {"n_workers": 1},
    }
    server = LabServer(
        tmp_path / "root",
        {"cluster_factory": factory, "state_dir": str(tmp_path / "state"), "scale_timeout": 60},
        app="jupyter_server",
        # the factory's module lives in this checkout's tests/, not in the installed package
        env={"PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))},
    ).start()
    children: list[psutil.Process] = []
    try:
        status = server.wait_cluster(lambda s: s["status"] == "running" and s["workers"])
        assert status["owned"] is True
        children = psutil.Process(server.proc.pid).children(recursive=True)
        [sched] = [p for p in children if "distributed.Scheduler" in " ".join(p.cmdline())]
        sched.kill()
        sched.wait(30)
        message = expect_unavailable(
            server, "PATCH", f"{API}/cluster", {"workers": 2}, "the cluster's scheduler"
        )
        assert "cannot be reached" in message
        assert server.proc.poll() is None
        assert server.request("GET", f"{API}/openapi.json")[0] == 200
    finally:
        # killed, not stopped: closing a cluster whose scheduler is gone waits out Dask's
        # close timeouts (about 40 s), which is not what this test is about
        with contextlib.suppress(psutil.NoSuchProcess):
            children += psutil.Process(server.proc.pid).children(recursive=True)
        server.proc.kill()
        server.proc.wait(30)
        server._log.close()
        for proc in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(children, timeout=30)


def _without_root_file_access() -> None:
    """In the child before it runs the CLI: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    from the bounding set, so root, after exec, is held to files' modes like anyone."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_sqlite_file_whose_folder_cannot_be_opened_is_one_cli_line(tmp_path):
    """The folder of the database made unreadable (root reads anything, so then the CLI runs
    without the capabilities that let root ignore a folder's mode)."""
    base = Path(tempfile.mkdtemp(prefix="lepton-faults-"))
    try:
        folder = base / "state"
        url = f"sqlite:///{folder / 'lepton.db'}"
        store = Store(url)
        store.create_run("kept", framework="torch")
        store.engine.dispose()
        os.chmod(base, 0o711)
        os.chmod(folder, 0)
        env = dict(
            os.environ, LEPTON_LAB_DATABASE_URL=url, LEPTON_LAB_STATE_DIR=str(folder), HOME="/tmp"
        )
        cli = subprocess.run(
            [sys.executable, "-m", "lepton_lab.cli.main", "jobs", "list"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd="/",
            preexec_fn=_without_root_file_access if os.geteuid() == 0 else None,
        )
        assert cli.returncode == 1, (cli.stdout, cli.stderr)
        assert cli.stderr.startswith(f"lepton-lab: error: the database at {url} is unavailable: ")
        assert "Permission denied" in cli.stderr or "unable to open" in cli.stderr, cli.stderr
        assert cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr
        os.chmod(folder, 0o700)
        assert Store(url).get_run("kept")["id"] == "kept"  # nothing was touched
    finally:
        os.chmod(base, 0o700)
        if (base / "state").exists():
            os.chmod(base / "state", 0o700)
        shutil.rmtree(base, ignore_errors=True)
