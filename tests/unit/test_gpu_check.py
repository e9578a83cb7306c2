"""bench/gpu_check.py in its CPU mode: a real cluster and real runs, with the GPU rows skipped.

The GPU mode needs a GPU machine (docs/decisions/gpu.md); here the check must run the CPU parts,
pass them, name what it skipped and why, and fail (exit 1) when a part it runs breaks.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"
GPU_ROWS = {"dask-cuda import", "NVML figures in GET /cluster", "torch fit, 2 ranks on NCCL"}
CPU_ROWS = {
    "environment",
    "cluster_mode=auto",
    "GET /cluster",
    "torch fit, 2 ranks",
    'torch precision="mixed"',
    "Keras fit",
    'Keras precision="mixed"',
}


def run_check(tmp: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the script as a user would, in its CPU mode; its exit code, output and rows."""
    from lepton_lab.cluster.gpus import probe_gpus

    out = tmp / "rows.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--json", str(out), *args]
    if probe_gpus().available:  # the CPU mode also on a machine that has GPUs
        command.append("--cpu")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    return {
        "code": done.returncode,
        "stdout": done.stdout,
        "output": done.stdout + done.stderr,
        "rows": {r["check"]: r for r in rows},
    }


@pytest.fixture(scope="module")
def cpu_check(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_check(tmp_path_factory.mktemp("gpu-check"))


def test_cpu_parts_pass_and_exit_zero(cpu_check: dict[str, Any]) -> None:
    rows = cpu_check["rows"]
    assert cpu_check["code"] == 0, cpu_check["output"][-3000:]
    assert set(rows) == CPU_ROWS | GPU_ROWS
    assert {name: rows[name]["result"] for name in CPU_ROWS} == dict.fromkeys(CPU_ROWS, "PASS")
    assert "gpu_check (CPU mode): 7 passed, 0 failed, 3 skipped" in cpu_check["stdout"]


def test_table_has_a_line_per_check(cpu_check: dict[str, Any]) -> None:
    lines = cpu_check["stdout"].splitlines()
    assert any(re.match(r"check\s+result\s+figures/time\s+note$", line) for line in lines)
    for name, row in cpu_check["rows"].items():
        pattern = rf"{re.escape(name)}\s+{row['result']}\s"
        assert any(re.match(pattern, line) for line in lines), name


def test_auto_mode_reports_a_cpu_local_cluster_and_why(cpu_check: dict[str, Any]) -> None:
    row = cpu_check["rows"]["cluster_mode=auto"]
    assert row["figures"].startswith("LocalCluster, 2 worker(s)")
    assert row["note"].endswith(": CPU LocalCluster")
    assert "NVML" in row["note"] or "--cpu" in row["note"]  # the probe's reason
    route = cpu_check["rows"]["GET /cluster"]
    assert route["figures"].startswith("2 workers, 2 threads") and "0 GPU(s)" in route["figures"]


def test_gpu_parts_are_listed_as_skipped_with_the_reason(cpu_check: dict[str, Any]) -> None:
    rows = cpu_check["rows"]
    for name in GPU_ROWS:
        assert rows[name]["result"] == "SKIP", name
        assert "no GPU" in rows[name]["note"] or "no Dask-CUDA" in rows[name]["note"], name
    skipped = cpu_check["stdout"].split("\nskipped:\n", 1)[1]
    for name in GPU_ROWS:
        assert f"  {name}: {rows[name]['note']}" in skipped


def test_cpu_runs_use_gloo_bfloat16_and_keras(cpu_check: dict[str, Any]) -> None:
    rows = cpu_check["rows"]
    assert rows["torch fit, 2 ranks"]["figures"].startswith("2 rank(s), gloo, acc ")
    assert rows["torch fit, 2 ranks"]["note"] == "on cpu; ranks' weights identical"
    assert rows['torch precision="mixed"']["figures"].startswith("autocast bfloat16")
    assert rows["Keras fit"]["figures"].startswith("2 rank(s), 3 epochs")
    assert rows['Keras precision="mixed"']["figures"].startswith("compute bfloat16")


def test_a_part_that_breaks_fails_the_check(tmp_path: Path) -> None:
    """A torch that cannot be imported: the rows that need it fail, the rest still run."""
    broken = tmp_path / "broken"
    (broken / "torch").mkdir(parents=True)
    (broken / "torch" / "__init__.py").write_text("raise ImportError('torch broken on purpose')")
    import os

    env = {**os.environ, "PYTHONPATH": str(broken)}
    result = run_check(tmp_path, env=env)
    rows = result["rows"]
    assert result["code"] == 1, result["output"][-3000:]
    assert rows["environment"]["result"] == "FAIL"
    assert "torch broken on purpose" in rows["environment"]["note"]
    assert rows["cluster_mode=auto"]["result"] == "PASS"
    assert rows["torch fit, 2 ranks"]["result"] == "FAIL"
    assert rows["Keras fit"]["result"] == "FAIL"
    assert re.search(r"gpu_check \(CPU mode\): \d+ passed, [1-9]\d* failed", result["stdout"])


def test_requirements_follow_pyproject_and_never_carry_torch() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--requirements"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.split()
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in ("dask", "distributed"):
        pin = re.search(rf'"({name}==[^"]+)"', pyproject).group(1)
        assert pin in lines
    names = {re.split(r"[<>=!~]", line)[0].lower() for line in lines}
    assert {"dask-cuda", "keras", "sqlalchemy", "pydantic", "jupyter_core"} <= names
    assert not {"torch", "cuda-bindings"} & names


def test_prune_wheels_keeps_what_the_gpu_image_lacks(tmp_path: Path) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()

    def wheel(name: str, size: int = 10) -> Path:
        path = folder / name
        with path.open("wb") as f:
            f.truncate(size)  # sparse: counts at full size without taking the disk
        return path

    wheel("numpy-2.5.5-cp312-cp312-manylinux_2_27_x86_64.whl")
    wheel("torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    kept = wheel("dask-2026.7.1-py3-none-any.whl")
    prune = [sys.executable, str(SCRIPT), "--prune-wheels", str(folder)]
    done = subprocess.run(prune, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert sorted(p.name for p in folder.iterdir()) == [kept.name]
    assert "1 wheels" in done.stdout

    wheel("big-1.0-py3-none-any.whl", 64 * 1024**2)
    done = subprocess.run(prune, capture_output=True, text=True)
    assert done.returncode == 1 and "over the 64 MiB" in done.stdout

    (folder / "big-1.0-py3-none-any.whl").unlink()
    wheel("dask-2026.8.0-py3-none-any.whl")
    done = subprocess.run(prune, capture_output=True, text=True)
    assert done.returncode == 1 and "two versions of: dask" in done.stdout
