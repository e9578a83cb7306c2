"""The ``lepton-lab`` command, run as a user runs it (a real process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "lepton-lab")


def run(*args: str, timeout: float = 180, state: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LEPTON_LAB_", "DASK_SCHEDULER"))
    }
    if state is not None:
        env["LEPTON_LAB_STATE_DIR"] = str(state)
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_runs_end_to_end_on_the_embedded_cluster(tmp_path):
    result = run("demo", "--epochs", "6", state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mode:       local" in result.stdout
    assert "mean of X @ X.T" in result.stdout
    assert result.stdout.count("executed") >= 1
    assert "demo finished" in result.stdout
    assert "training an MLP on the digits, data-parallel on 2 workers" in result.stdout
    assert "completed" in result.stdout and "6 checkpoints recorded" in result.stdout
    # the run's network, exported to each torch format and verified, is a registry version
    assert re.search(r"registered demo-digits v1 in .* \(lineage: run \w+\)", result.stdout)
    for fmt in ("safetensors", "torch.export", "torchscript", "onnx"):
        assert re.search(rf"  {re.escape(fmt)} +\d+ B  sha256 [0-9a-f]{{12}}", result.stdout), fmt
    assert "not registered" not in result.stdout
    assert len(list((tmp_path / "artifacts" / "models" / "demo-digits").iterdir())) == 1
    # served over the Open Inference Protocol, asked once, stopped
    assert re.search(
        r"served demo-digits v1 at http://127\.0\.0\.1:\d+/v2/models/demo-digits \(ready in "
        r".* s\): 32 rows in \d+ ms, 32/32 predictions equal to onnxruntime's in-process",
        result.stdout,
    ), result.stdout
    assert "running notebook job" in result.stdout
    assert re.search(r"job \w+ completed in .* 3 of 3 cells, accuracy 0\.\d+", result.stdout)
    assert (tmp_path / "lepton_lab.db").exists()
    assert len(list((tmp_path / "jobs").glob("*/output.ipynb"))) == 1


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
