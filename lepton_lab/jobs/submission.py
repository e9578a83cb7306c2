"""Submitting a notebook job: the one path from a request to a queued job row.

REST, the CLI, ``ll.jobs``, "run now" and the schedule firing all submit through
:func:`submit`, so a request is validated (:mod:`lepton_lab.jobs.spec`) and its notebook
snapshotted the same way whoever asks.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lepton_lab.config.files import PRIVATE_DIR, private_dir, private_file
from lepton_lab.contract.jobs import JobRequest, ScheduleTiming
from lepton_lab.jobs.schedules import next_fire
from lepton_lab.jobs.spec import (
    NotebookJob,
    job_request,
    schedule_fields,
    validate_job,
)
from lepton_lab.jobs.workdir import JobFiles, write_json_atomic
from lepton_lab.metering.ledger import current_user, job_tags
from lepton_lab.notify.rules import store_rule
from lepton_lab.store import Store
from lepton_lab.store.secrets import seal

log = logging.getLogger("lepton_lab.jobs")


def installed_kernels() -> set[str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return set(KernelSpecManager().find_kernel_specs())


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def secret_fields(state_dir: Path, secrets: Mapping[str, str]) -> dict[str, Any]:
    """What a job or schedule row stores of its secrets: their names, and their values sealed
    into one Fernet token with the state directory's key (``lepton_lab.store.secrets``)."""
    return {"secret_names": sorted(secrets), "secrets": seal(state_dir, secrets)}


def create_job(
    store: Store,
    state_dir: Path,
    job: NotebookJob,
    schedule_id: str | None = None,
    message: str = "submitted",
    secrets: dict[str, Any] | None = None,
    user: str | None = None,
    notify: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Snapshot the notebook into the job's folder and queue the job.

    The snapshot is what runs (editing the notebook afterwards does not change a queued job)
    and what the Dask executor ships to a worker. ``secrets``: stored secret fields to take as
    they are (a schedule's, sealed already); by default the request's own are sealed. Their
    values go into neither the folder (``request.json`` has no secrets) nor the row in clear.
    """
    stored_secrets = secrets if secrets is not None else secret_fields(state_dir, job.secrets)
    # ``notify``: stored rules to take as they are (a schedule's); else the request's, sealed
    stored_notify = notify if notify is not None else [store_rule(r, state_dir) for r in job.notify]
    job_id = new_id()
    user = user or current_user()
    files = JobFiles(private_dir(state_dir / "jobs", tighten=True) / job_id)
    files.root.mkdir(mode=PRIVATE_DIR, exist_ok=False)
    try:
        private_file(files.input)
        shutil.copyfile(job.notebook, files.input)  # into the private file: its mode stays
        private_file(files.log)
        write_json_atomic(
            files.request,
            {
                "parameters": job.parameters,
                "kernel": job.kernel,
                "language": job.language,
                "cwd": str(job.cwd),
                "output_formats": job.output_formats,
                # for the usage records of the runs the notebook starts
                "user": user,
                "notebook": str(job.notebook),
                "tags": job_tags({"tags": job.tags, "schedule_id": schedule_id}),
            },
        )
        for warning in job.warnings:
            log.warning("Lepton Lab: job %s: %s", job_id, warning)
        return store.create_job(
            job_id,
            message=message,
            notebook=str(job.notebook),
            input_path=str(files.input),
            cwd=str(job.cwd),
            output_dir=str(files.root),
            retry_backoff=job.retry_backoff,
            warnings=job.warnings,
            **schedule_fields(job),
            **stored_secrets,
            schedule_id=schedule_id,
            user=user,
            notify=stored_notify,
        )
    except BaseException:
        shutil.rmtree(files.root, ignore_errors=True)
        raise


def submit(
    store: Store,
    state_dir: Path,
    body: Any,
    root: Path | None,
    kernels: set[str],
    default_executor: str = "local",
    user: str | None = None,
) -> dict[str, Any]:
    """Validate a job request (a dict or a :class:`JobRequest`) and queue it; nothing is
    stored when it is refused. ``user``: who it is for (default: this process's user)."""
    spec = validate_job(body, root, kernels, default_executor, JobRequest)
    return create_job(store, state_dir, spec, user=user)


def submit_scheduled(
    store: Store,
    state_dir: Path,
    kernels: set[str],
    sched: dict[str, Any],
    due: float | None = None,
) -> dict[str, Any]:
    """Queue a schedule's job: for its fire time ``due``, or now ("run now"). The job gets
    the schedule's secrets, as sealed (they are opened only to start the job)."""
    body = dict(job_request(sched), allow_unknown=True)
    job = validate_job(body, None, kernels, sched["executor"])
    if due is None:
        message = f"run now from schedule {sched['id']}"
    else:
        message = f"fired by schedule {sched['id']} for {due:.3f}"
    secrets = {
        "secret_names": list(sched.get("secret_names") or []),
        "secrets": store.schedule_sealed_secrets(sched["id"]),
    }
    return create_job(
        store,
        state_dir,
        job,
        schedule_id=sched["id"],
        message=message,
        secrets=secrets,
        user=sched.get("user"),
        notify=list(sched.get("notify") or []),
    )


def new_schedule_fields(timing: ScheduleTiming, now: float | None = None) -> dict[str, Any]:
    """The stored timing fields of a schedule, with its next fire time (none when paused)."""
    now = time.time() if now is None else now
    return {
        "cron": timing.cron,
        "timezone": timing.timezone,
        "active": timing.active,
        "overlap": timing.overlap,
        "catchup": timing.catchup,
        "next_fire_at": next_fire(timing.cron, timing.timezone, now) if timing.active else None,
    }
