"""Where a version came from: run, job, notebook (with its content hash), git state, and the
versions of Python and the libraries that made it.

Inside a job (``lepton-lab run``) the kernel inherits the job's id from the runner, and the
job's stored row names its notebook and the snapshot that ran, so nothing needs passing.
In a JupyterLab kernel, jupyter-server names the notebook in ``JPY_SESSION_NAME``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from lepton_lab.jobs.workdir import ENV_JOB_ID, JobFiles

#: libraries whose versions are recorded when installed
LIBRARIES = (
    "lepton-lab",
    "numpy",
    "torch",
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "tf-keras",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "safetensors",
)


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    if "keras" in sys.modules:  # only when in use: importing Keras can load TensorFlow
        found["keras.backend"] = sys.modules["keras"].backend.backend()
    return found


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git work tree holding ``folder``, or None."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "branch": None if branch == "HEAD" else branch}


def current_job(store: Any) -> dict[str, Any] | None:
    """The job this process runs in (from the environment), as stored, or None."""
    job_id = os.environ.get(ENV_JOB_ID)
    if not job_id:
        return None
    try:
        return store.get_job(job_id, details=False)
    except KeyError:
        return {"id": job_id}


def gather(store: Any, run: Any = None) -> dict[str, Any]:
    """The lineage fields of a new version (columns of ``model_versions``)."""
    fields: dict[str, Any] = {"run_id": None, "job_id": None, "notebook": None}
    fields["notebook_sha256"] = None
    params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    folder = os.getcwd()
    job = current_job(store)
    if job is not None:
        fields["job_id"] = job["id"]
        fields["notebook"] = job.get("notebook")
        # the snapshot that ran, not the notebook as it is now
        if job.get("output_dir"):
            fields["notebook_sha256"] = file_sha256(JobFiles.of(job).input)
        params.update(job.get("parameters") or {})
        folder = job.get("cwd") or folder
    elif os.environ.get("JPY_SESSION_NAME"):
        notebook = os.environ["JPY_SESSION_NAME"]
        fields["notebook"] = notebook
        fields["notebook_sha256"] = file_sha256(notebook)
        folder = str(Path(notebook).parent) if Path(notebook).is_absolute() else folder
    if run is not None:
        record = run.record()
        fields["run_id"] = run.id
        params.update(record.get("params") or {})
        summary = store.run_summaries([run.id]).get(run.id, {})
        metrics.update(summary.get("last_metrics") or {})
    fields["params"] = params
    fields["metrics"] = metrics
    fields["lineage"] = {"git": git_state(folder), "versions": library_versions()}
    return fields
