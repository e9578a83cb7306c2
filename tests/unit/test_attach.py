"""``ll.attach()`` outside the lab: an embedded local cluster, reused, then cleaned up."""

from __future__ import annotations

import json
import os

import psutil
import pytest

import lepton_lab as ll
from lepton_lab.cluster.attach import embedded_cluster, lab_scheduler_address


@pytest.fixture
def no_lab(monkeypatch):
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    ll.detach()


def test_attach_outside_the_lab_starts_one_embedded_cluster_and_reuses_it(no_lab):
    client = ll.attach()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert client.submit(lambda x: x * 2, 21).result() == 42
    assert ll.attach() is client
    manager = embedded_cluster()
    assert manager is not None and manager.owned
    pids = list(client.run(os.getpid).values())
    ll.detach()
    assert embedded_cluster() is None
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], 20)
    assert not alive


def test_lab_address_comes_from_the_environment_first(monkeypatch):
    monkeypatch.setenv("LEPTON_LAB_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1234")
    assert lab_scheduler_address() == "tcp://127.0.0.1:1234"


def test_lab_address_from_the_state_file_of_a_still_starting_server(monkeypatch, tmp_path):
    monkeypatch.delenv("LEPTON_LAB_SCHEDULER_ADDRESS", raising=False)
    state = tmp_path / "cluster.json"
    monkeypatch.setenv("LEPTON_LAB_CLUSTER_FILE", str(state))
    state.write_text(json.dumps({"status": "starting"}))
    with pytest.raises(TimeoutError, match="not ready"):
        lab_scheduler_address(timeout=0.5)
    state.write_text(json.dumps({"status": "running", "scheduler_address": "tcp://127.0.0.1:99"}))
    assert lab_scheduler_address(timeout=1) == "tcp://127.0.0.1:99"
    state.write_text(json.dumps({"status": "error", "error": "boom"}))
    with pytest.raises(RuntimeError, match="failed to start: boom"):
        lab_scheduler_address(timeout=1)


def test_no_lab_means_no_address(no_lab):
    assert lab_scheduler_address() is None


UNGUARDED_SCRIPT = """
import os
import lepton_lab as ll

print("script ran in", os.getpid(), flush=True)
client = ll.attach()
print("answer", client.submit(lambda: 40 + 2).result(), flush=True)
"""


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_attaches_and_runs_once(no_lab, tmp_path, how):
    """The embedded cluster's workers do not re-import the script (``spawn`` would run it
    again in each of them, and each would start a cluster of its own)."""
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(UNGUARDED_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTON_LAB_SCHEDULER")}
    env["LEPTON_LAB_STATE_DIR"] = str(tmp_path / "state")
    command = [sys.executable, str(script)] if how == "file" else [sys.executable, "-"]
    done = subprocess.run(
        command,
        input=None if how == "file" else UNGUARDED_SCRIPT,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("script ran in") == 1, done.stdout
    assert "answer 42" in done.stdout
