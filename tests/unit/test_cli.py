"""The ``lepton-lab`` command, run as a user runs it (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "lepton-lab")


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LEPTON_LAB_", "DASK_SCHEDULER"))
    }
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_runs_end_to_end_on_the_embedded_cluster():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "mode:       local" in result.stdout
    assert "mean of X @ X.T" in result.stdout
    assert result.stdout.count("executed") >= 1
    assert "demo finished" in result.stdout


def test_cluster_status_json():
    result = run("cluster", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "running" and status["totals"]["workers"] >= 1


def test_unreachable_scheduler_is_one_readable_line():
    result = run("cluster", "status", "--address", "tcp://127.0.0.1:9", timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("lepton-lab: error:")
    assert "Traceback" not in result.stderr
