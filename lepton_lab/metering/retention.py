"""Retention: delete the files of old job outputs, run checkpoints and unaliased model versions
(``c.LeptonLab.retention``), keeping what reports and history need.

:func:`plan` lists what is older than its kind's retention; :func:`apply` deletes it. What
stays: job and run rows (a job gets an event, a run an event, saying their files went), usage
records (the storage record of each deleted thing gets ``deleted_at``; one is written first,
with the measured bytes, if the thing had none), and every model version that has an alias or
that a live deployment serves. Running, queued and not-yet-ended work is never touched.

The service that holds the job dispatcher lease runs it hourly
(``Dispatcher._maybe_retention``); ``lepton-lab gc`` runs it by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lepton_lab.metering.ledger import current_user, folder_bytes, job_tags
from lepton_lab.store import Store
from lepton_lab.store.schema import (
    JOB_FINAL_STATUSES,
    JobRow,
    ModelAliasRow,
    ModelVersionRow,
    RunRow,
)

log = logging.getLogger("lepton_lab.metering")

#: run statuses whose checkpoints nothing will read again by itself (no resume in progress)
RUN_FINAL_STATUSES = ("completed", "failed", "stopped")
#: the order items are listed in: the config's kinds, singular as in a storage subject
KINDS = {"jobs": "job", "runs": "run", "models": "model"}
DAY = 86400.0


@dataclass(frozen=True)
class Item:
    """One thing retention deletes (or would): its storage subject, files, size and age."""

    kind: str  # "job", "run" or "model"
    subject: str  # the storage usage record's subject: job:<id>, run:<id>, model:<name>/v<n>
    path: str  # the folder (or fsspec URL) whose files go
    bytes: int  # measured when planned
    age: float  # seconds since the job or run ended, or the version was registered
    reason: str
    deleted: bool = False
    error: str | None = None
    #: fields of the storage record to write if there is none (who, notebook, tags, created)
    record: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``UsageService.gc`` and ``lepton-lab gc --json``."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "path": self.path,
            "bytes": self.bytes,
            "age_days": round(self.age / DAY, 2),
            "reason": self.reason,
            "deleted": self.deleted,
            "error": self.error,
        }


def span(seconds: float) -> str:
    """A retention period as people wrote it: 90d, 2w, 12h, 30m, 45s."""
    for unit, size in (("w", 7 * DAY), ("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _age(seconds: float) -> str:
    return f"{seconds / DAY:.1f} days" if seconds >= DAY else f"{seconds / 3600:.1f} hours"


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _exists(location: str) -> bool:
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        return bool(fs.exists(path))
    return os.path.isdir(location.removeprefix("file://"))


def _remove(location: str) -> None:
    """Remove a folder (local or fsspec); one already gone is fine."""
    if _is_url(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        return
    shutil.rmtree(location.removeprefix("file://"), ignore_errors=False)


def plan(
    store: Store,
    retention: dict[str, float],
    now: float | None = None,
    artifact_dir: str | None = None,
) -> list[Item]:
    """What is older than its kind's retention (``parse_retention``'s kind -> seconds), oldest
    first within each kind. Nothing is changed. ``artifact_dir``: where runs without a
    recorded artifact folder kept theirs (default: the state directory's ``artifacts``)."""
    now = time.time() if now is None else now
    items: list[Item] = []
    if "jobs" in retention:
        items += _old_jobs(store, now, retention["jobs"])
    if "runs" in retention:
        items += _old_runs(store, now, retention["runs"], artifact_dir)
    if "models" in retention:
        items += _old_versions(store, now, retention["models"])
    return items


def _old_jobs(store: Store, now: float, keep: float) -> list[Item]:
    with store.session() as s:
        rows = [
            r.to_dict()
            for r in s.scalars(
                select(JobRow)
                .where(
                    JobRow.status.in_(JOB_FINAL_STATUSES),
                    JobRow.ended_at.is_not(None),
                    JobRow.ended_at < now - keep,
                )
                .order_by(JobRow.ended_at)
            )
        ]
    items = []
    for job in rows:
        path = job["output_dir"]
        # a job's folder is <state>/jobs/<id>: a row that says otherwise is not trusted
        if not path or Path(path).name != job["id"] or not os.path.isdir(path):
            continue
        items.append(
            Item(
                kind="job",
                subject=f"job:{job['id']}",
                path=path,
                bytes=folder_bytes(path),
                age=now - job["ended_at"],
                reason=f"{job['status']} {_age(now - job['ended_at'])} ago; "
                f"job outputs are kept {span(keep)}",
                record={
                    "user": job.get("user") or current_user(),
                    "notebook": job.get("notebook"),
                    "tags": job_tags(job),
                    "started_at": job["created_at"],
                },
            )
        )
    return items


def checkpoint_dir(run: dict[str, Any], artifact_dir: str | None = None) -> str:
    """Where a run kept its checkpoints (``ll.fit`` records its artifact folder in params)."""
    recorded = (run.get("params") or {}).get("artifact_dir")
    if recorded:
        return f"{str(recorded).rstrip('/')}/checkpoints"
    if artifact_dir is None:
        from lepton_lab.config.settings import state_dir

        artifact_dir = str(state_dir() / "artifacts")
    return f"{artifact_dir.rstrip('/')}/runs/{run['id']}/checkpoints"


def _old_runs(store: Store, now: float, keep: float, artifact_dir: str | None) -> list[Item]:
    with store.session() as s:
        rows = [
            r.to_dict()
            for r in s.scalars(
                select(RunRow)
                .where(
                    RunRow.status.in_(RUN_FINAL_STATUSES),
                    RunRow.ended_at.is_not(None),
                    RunRow.ended_at < now - keep,
                )
                .order_by(RunRow.ended_at)
            )
        ]
    items = []
    for run in rows:
        path = checkpoint_dir(run, artifact_dir)
        if not path.rstrip("/").endswith(f"/{run['id']}/checkpoints") or not _exists(path):
            continue
        items.append(
            Item(
                kind="run",
                subject=f"run:{run['id']}",
                path=path,
                bytes=folder_bytes(path),
                age=now - run["ended_at"],
                reason=f"{run['status']} {_age(now - run['ended_at'])} ago; "
                f"run checkpoints are kept {span(keep)}",
                record={
                    "user": current_user(),
                    "notebook": None,
                    "tags": [],
                    "started_at": run["created_at"],
                },
            )
        )
    return items


def _old_versions(store: Store, now: float, keep: float) -> list[Item]:
    aliased = select(ModelAliasRow.version_id)
    with store.session() as s:
        rows = [
            r.to_dict()
            for r in s.scalars(
                select(ModelVersionRow)
                .where(ModelVersionRow.created_at < now - keep, ModelVersionRow.id.not_in(aliased))
                .order_by(ModelVersionRow.created_at)
            )
        ]
    # a version a deployment serves now would fail its next restart without its files
    served = {(d["model"], d["version"]) for d in store.live_deployments()}
    items = []
    for version in rows:
        if (version["name"], version["version"]) in served:
            continue
        items.append(
            Item(
                kind="model",
                subject=f"model:{version['name']}/v{version['version']}",
                path=version["location"],
                bytes=folder_bytes(version["location"]),
                age=now - version["created_at"],
                reason=f"registered {_age(now - version['created_at'])} ago, no alias; "
                f"model versions are kept {span(keep)}",
                record={
                    "user": current_user(),
                    "notebook": version.get("notebook"),
                    "tags": [f"model:{version['name']}"],
                    "started_at": version["created_at"],
                },
            )
        )
    return items


def apply(
    store: Store, items: list[Item], artifact_dir: str | None = None, now: float | None = None
) -> list[Item]:
    """Delete what :func:`plan` listed; each item comes back with ``deleted`` or ``error``
    (a failure is logged and the others go on). ``artifact_dir``: the registry's."""
    done = []
    for item in items:
        try:
            _delete(store, item, artifact_dir, time.time() if now is None else now)
        except Exception as exc:  # noqa: BLE001 - one stuck folder must not keep the rest
            log.warning("Lepton Lab: retention could not delete %s: %s", item.subject, exc)
            done.append(dataclasses.replace(item, error=str(exc) or type(exc).__name__))
        else:
            done.append(dataclasses.replace(item, deleted=True))
    return done


def _delete(store: Store, item: Item, artifact_dir: str | None, now: float) -> None:
    kind, _, key = item.subject.partition(":")
    record = store.usage_record("storage", item.subject)
    if record is None:  # reports still know what was there, and for how long
        store.put_usage("storage", item.subject, bytes=item.bytes, **item.record)
        record = {"detail": {}}
    if kind == "model":
        from lepton_lab.models.registry import ModelRegistry

        name, _, number = key.rpartition("/v")
        if store.model_version(name, int(number))["aliases"]:  # aliased since the plan
            raise RuntimeError(f"{name} v{number} has an alias now; kept")
        ModelRegistry(store, artifact_dir).delete(name, int(number))
    else:
        _remove(item.path)
    detail = dict(record.get("detail") or {})
    detail.update(location=detail.get("location") or item.path, deleted_by="retention")
    store.put_usage("storage", item.subject, deleted_at=now, detail=detail)
    # the row stays (history); its timeline says where the files went
    note = f"deleted by retention ({item.reason})"
    if kind == "job":
        job = store.get_job(key, details=False)
        store.add_job_event(key, job["status"], f"outputs {note}", job["attempt"])
    elif kind == "run":
        store.add_event(key, "retention", f"checkpoints {note}", path=item.path)
