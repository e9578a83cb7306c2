"""Binder, replayed on this machine: a fresh virtual environment installed the way repo2docker
installs this repository (``binder/postBuild`` from the repository root), then a real
``jupyter lab`` from it runs the quickstart notebook as a job while the test measures the
memory of the whole server tree (server, cluster, job runner, kernel) against Binder's ~2 GB.

It builds a virtual environment from scratch (several minutes), so the default test run leaves
it out (pyproject's ``--ignore=tests/binder``); ``make binder-check`` runs it, and CI runs that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.support.labserver import LabServer

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = "notebooks/01_quickstart.ipynb"
BINDER_MEMORY = 2 << 30  # what mybinder.org gives a session

pytestmark = pytest.mark.timeout(1800)


def copy_checkout(dst: Path) -> None:
    """The files git would check out (tracked and new, not ignored): what repo2docker gets."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        src = REPO / os.fsdecode(raw)
        if src.is_file():
            (dst / src.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / src.relative_to(REPO), follow_symlinks=False)


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("binder")
    repo, venv, home = root / "repo", root / "venv", root / "home"
    repo.mkdir()
    home.mkdir()
    copy_checkout(repo)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        # no internet here: pip finds the CPU torch wheel on this machine's own index
        "LEPTON_LAB_TORCH_INDEX": "",
    }
    # this machine reaches packages through its own pip settings (a local index, a folder of
    # wheels): keep them, although HOME is a fresh one
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    user_pip = Path.home() / ".config" / "pip" / "pip.conf"
    if user_pip.exists():
        env.setdefault("PIP_CONFIG_FILE", str(user_pip))
    # repo2docker's conda environment comes with a current pip; a fresh venv has the one
    # bundled with Python (23.x here, which refuses `torch==2.13.0+cpu` under this machine's
    # `torch<=2.14.1` pip constraint)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        env=env,
        check=True,
    )
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "binder/postBuild"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"binder/postBuild: {time.monotonic() - started:.0f} s")
    return {"repo": repo, "venv": venv, "home": home, "env": env}  # type: ignore[dict-item]


def run_in(binder: dict, *cmd: str) -> str:
    done = subprocess.run(
        cmd, cwd=binder["repo"], env=binder["env"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_extension_and_the_kernels_are_installed(binder):
    jupyter = str(binder["venv"] / "bin" / "jupyter")
    listed = run_in(binder, jupyter, "labextension", "list")
    line = next(ln for ln in listed.splitlines() if "lepton-lab" in ln)
    assert "enabled" in line and "OK" in line, listed
    specs = json.loads(run_in(binder, jupyter, "kernelspec", "list", "--json"))["kernelspecs"]
    assert {"lepton-cpu", "lepton-gpu"} <= set(specs)
    assert str(binder["venv"]) in specs["lepton-cpu"]["resource_dir"]
    # the demos' frameworks are there, CPU-only
    python = str(binder["venv"] / "bin" / "python")
    probe = run_in(
        binder,
        python,
        "-c",
        "import torch, keras, tensorflow, mlserver, onnxruntime, sklearn; "
        "print(torch.__version__, torch.cuda.is_available())",
    )
    assert "2.13.0+cpu False" in probe, probe  # the CPU build, not PyPI's CUDA one
    installed = run_in(binder, python, "-m", "pip", "list", "--format=freeze")
    assert not [p for p in installed.splitlines() if p.lower().startswith("nvidia-c")], installed


class BinderLab(LabServer):
    """``jupyter lab`` from the Binder environment (its own python and config paths)."""

    def __init__(self, binder: dict, **kwargs) -> None:
        super().__init__(
            binder["repo"] / "notebooks", app="jupyterlab", env=binder["env"], **kwargs
        )
        self.python = str(binder["venv"] / "bin" / "python")

    def command(self) -> list[str]:
        return [self.python, *super().command()[1:]]


def tree_memory(pid: int) -> tuple[int, list[tuple[int, str]]]:
    """Proportional set size of a process and its descendants (shared pages counted once),
    and each process's share with its command line."""
    parts: list[tuple[int, str]] = []
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, parts
    for proc in procs:
        try:
            parts.append((proc.memory_full_info().pss, " ".join(proc.cmdline())[:100]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return sum(size for size, _ in parts), parts


def test_the_quickstart_runs_as_a_job_in_binders_memory(binder):
    lab = BinderLab(binder)
    peak, at_peak = 0, []
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, at_peak
        while not stop.is_set():
            if lab.proc is not None:
                total, parts = tree_memory(lab.proc.pid)
                if total > peak:
                    peak, at_peak = total, parts
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    lab.start(timeout=180)
    sampler.start()
    try:
        status, cluster = lab.request("GET", "lepton-lab/api/cluster")
        assert status == 200, cluster
        # binder/jupyter_server_config.json sized the cluster for Binder
        deadline = time.monotonic() + 120
        while cluster.get("status") != "running" and time.monotonic() < deadline:
            time.sleep(1)
            cluster = lab.request("GET", "lepton-lab/api/cluster")[1]
        assert cluster["status"] == "running", cluster
        assert len(cluster["workers"]) == 2, cluster
        assert {w["nthreads"] for w in cluster["workers"]} == {1}
        assert {w["memory_limit"] for w in cluster["workers"]} == {1536 << 20}
        status, job = lab.request(
            "POST", "lepton-lab/api/jobs", {"path": "01_quickstart.ipynb", "parameters": {}}
        )
        assert status in (200, 201), job
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            record = lab.request("GET", f"lepton-lab/api/jobs/{job['id']}")[1]
            if record["status"] in ("completed", "failed", "timed_out", "stopped"):
                break
            time.sleep(2)
        assert record["status"] == "completed", (record["error"], record["events"][-3:])
        metrics = {m["name"]: m["value"] for m in record["metrics"]}
        assert metrics["accuracy"] >= 0.9, metrics
    finally:
        stop.set()
        sampler.join(5)
        lab.stop()
    print(f"peak memory of the Binder lab tree running the quickstart: {peak / 2**20:.0f} MiB")
    for size, command in sorted(at_peak, reverse=True):
        print(f"  {size / 2**20:6.0f} MiB  {command}")
    assert 0 < peak < BINDER_MEMORY, f"{peak / 2**20:.0f} MiB"
