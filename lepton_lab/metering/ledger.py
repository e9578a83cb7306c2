"""Writing the usage ledger: who a record is for, and one function per thing measured.

Called where the figures are known: a run's driver when the run ends (``training/fit.py``),
a job's supervisor when an attempt ends (``jobs/dispatcher.py``), a deployment's supervisor
(``serving/supervisor.py``), the registry when a version is stored, and the REST download of
an artifact. A failure to write usage is logged and never fails the work it measured.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lepton_lab.config.settings import ENV_NOTEBOOK, ENV_TAGS, ENV_USER

log = logging.getLogger("lepton_lab.metering")


def current_user() -> str:
    """Who this process works for: the lab's Jupyter user (exported by the server to its
    kernels and jobs), JupyterHub's user, else the OS user (the CLI, a script)."""
    for name in (ENV_USER, "JUPYTERHUB_USER"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (some containers)
        return str(os.getuid())


def current_notebook() -> str | None:
    """The notebook this process runs: a job's (set by its runner), the one Jupyter started
    this kernel for (``JPY_SESSION_NAME``), else the script's path."""
    if os.environ.get(ENV_NOTEBOOK):
        return os.environ[ENV_NOTEBOOK]
    if os.environ.get("JPY_SESSION_NAME"):
        # Jupyter's path is relative to its root and the kernel runs in the notebook's
        # folder: the absolute path, as jobs record theirs
        return os.path.join(os.getcwd(), os.path.basename(os.environ["JPY_SESSION_NAME"]))
    script = sys.argv[0] if sys.argv else ""
    if script and script not in ("-c", "-") and not script.endswith("ipykernel_launcher.py"):
        return os.path.basename(script)
    return None


def current_tags() -> list[str]:
    """The tags of the job this process runs in (its runs inherit them)."""
    raw = os.environ.get(ENV_TAGS)
    if not raw:
        return []
    try:
        tags = json.loads(raw)
    except ValueError:
        return []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def job_tags(job: dict[str, Any]) -> list[str]:
    """A job's tags, with ``schedule:<id>`` for a scheduled one (reports group by it)."""
    tags = [str(t) for t in job.get("tags") or []]
    if job.get("schedule_id"):
        tags.append(f"schedule:{job['schedule_id']}")
    return tags


def _safely(what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - usage must never fail the work it measured
        log.warning("Lepton Lab: could not record the usage of %s: %s", what, exc)


def record_run(store: Any, run: dict[str, Any], ranks: Iterable[dict[str, Any]]) -> None:
    """One record for a run: its ranks' usage (every attempt) summed."""
    ranks = list(ranks)
    gpu_models = [r.get("gpu_model") for r in ranks if r.get("gpu_model")]
    started = run.get("started_at") or run.get("created_at") or time.time()
    ended = run.get("ended_at") or time.time()
    _safely(
        f"run {run['id']}",
        store.put_usage,
        "run",
        run["id"],
        user=current_user(),
        notebook=current_notebook(),
        tags=current_tags(),
        started_at=started,
        ended_at=ended,
        cpu_seconds=sum(r.get("cpu_seconds") or 0.0 for r in ranks),
        gpu_seconds=sum(r.get("gpu_seconds") or 0.0 for r in ranks),
        gpu_util_seconds=sum(r.get("gpu_util_seconds") or 0.0 for r in ranks),
        gpu_model=gpu_models[0] if gpu_models else None,
        wall_seconds=max(0.0, ended - started),
        peak_memory=max((r.get("peak_memory") or 0 for r in ranks), default=0),
        gpu_peak_memory=max((r.get("gpu_peak_memory") or 0 for r in ranks), default=0),
        detail={"framework": run.get("framework"), "world_size": run.get("world_size")},
    )


def record_job_attempt(
    store: Any, job: dict[str, Any], usage: dict[str, Any] | None, status: str
) -> None:
    """One record per job attempt, from the runner's measurement of its process tree (None
    when the runner was killed before it measured: then only the wall time is known)."""
    usage = usage or {}
    now = time.time()
    started = usage.get("started_at") or job.get("started_at") or now
    _safely(
        f"job {job['id']}",
        store.put_usage,
        "job",
        f"{job['id']}#{job.get('attempt', 0)}",
        user=job.get("user") or current_user(),
        notebook=job.get("notebook"),
        tags=job_tags(job),
        started_at=started,
        ended_at=now,
        cpu_seconds=usage.get("cpu_seconds", 0.0),
        gpu_seconds=usage.get("gpu_seconds", 0.0),
        gpu_util_seconds=usage.get("gpu_util_seconds", 0.0),
        gpu_model=usage.get("gpu_model"),
        wall_seconds=usage.get("wall_seconds") or max(0.0, now - started),
        peak_memory=usage.get("peak_memory", 0),
        gpu_peak_memory=usage.get("gpu_peak_memory", 0),
        # what the job read on a Dask worker is data moved to it; on this machine it is not
        bytes=usage.get("read_bytes", 0) if job.get("executor") == "dask" else 0,
        detail={
            "status": status,
            "executor": job.get("executor"),
            "read_bytes": usage.get("read_bytes", 0),
            "measured": bool(usage),
        },
    )


def record_deployment(store: Any, row: dict[str, Any], requests: int | None = None) -> None:
    """A deployment's record: up from ``ready_at`` until ``ended_at``, requests served."""
    if not row.get("ready_at"):
        return
    fields: dict[str, Any] = {
        "user": row.get("user") or current_user(),
        "notebook": None,
        "tags": [f"model:{row['model']}"],
        "started_at": row["ready_at"],
        "ended_at": row.get("ended_at"),
        "detail": {"model": row["model"], "version": row["version"], "format": row["format"]},
    }
    if requests is not None:
        fields["requests"] = requests
    _safely(f"deployment {row['id']}", store.put_usage, "deployment", row["id"], **fields)


def folder_bytes(location: str | os.PathLike[str]) -> int:
    """Bytes of the files under ``location`` (a file, a folder, or an fsspec URL), measured
    from the files themselves; 0 when it does not exist."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        import fsspec

        fs, path = fsspec.core.url_to_fs(text)
        try:
            return int(fs.du(path, total=True))
        except FileNotFoundError:
            return 0
    path = Path(text.removeprefix("file://"))
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while we walked
                pass
    return total


def record_storage(
    store: Any,
    subject: str,
    location: str | os.PathLike[str],
    *,
    user: str | None = None,
    notebook: str | None = None,
    tags: list[str] | None = None,
    created_at: float | None = None,
) -> None:
    """The bytes stored for ``subject`` (``run:<id>``, ``job:<id>``, ``model:<name>/v<n>``)
    as measured now; an existing record is updated."""

    def measure() -> None:
        fields: dict[str, Any] = {
            "bytes": folder_bytes(location),
            "detail": {"location": str(location)},
        }
        if store.usage_record("storage", subject) is None:
            fields.update(
                user=user or current_user(),
                notebook=notebook,
                tags=tags or [],
                started_at=created_at or time.time(),
            )
        store.put_usage("storage", subject, **fields)

    _safely(subject, measure)


def mark_deleted(store: Any, subject: str, when: float | None = None) -> None:
    """A stored thing's files are gone: its record stays, with ``deleted_at``."""

    def mark() -> None:
        if store.usage_record("storage", subject) is not None:
            store.put_usage("storage", subject, deleted_at=when or time.time())

    _safely(subject, mark)


def model_subject(name: str, version: int) -> str:
    return f"model:{name}/v{version}"


def record_download(store: Any, subject: str, size: int, user: str) -> None:
    """Bytes of one artifact download through the REST API."""
    _safely(
        subject,
        store.add_usage_record,
        "transfer",
        subject,
        user=user,
        tags=[],
        bytes=int(size),
        ended_at=time.time(),
    )
