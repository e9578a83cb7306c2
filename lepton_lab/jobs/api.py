"""``ll.jobs``: submit, schedule, list and steer notebook jobs from Python.

Jobs go into the same store the lab's server and the ``lepton-lab scheduler`` daemon read, and
one of them runs them. When neither is running (a script, papermill, a plain Python kernel),
the first submit starts a job service in this process, the way ``ll.attach()`` starts an
embedded cluster outside the lab.
"""

from __future__ import annotations

import atexit
import threading
import time
from pathlib import Path
from typing import Any

from lepton_lab.config.settings import state_dir
from lepton_lab.jobs.service import (
    LEASE,
    JobService,
    create_job,
    installed_kernels,
    new_id,
    new_schedule_fields,
)
from lepton_lab.jobs.spec import (
    JOB_FIELDS,
    SCHEDULE_EDITABLE,
    SCHEDULE_FIELDS,
    job_request,
    schedule_fields,
    validate_job,
    validate_timing,
)
from lepton_lab.store.jobs import JobStore, open_job_store
from lepton_lab.store.schema import JOB_FINAL_STATUSES

_embedded: JobService | None = None
_lock = threading.Lock()


def _store() -> JobStore:
    return open_job_store()


def ensure_dispatcher(store: JobStore | None = None) -> bool:
    """Start a job service here unless the lab's server or the daemon already runs one.

    Returns True when this call started it.
    """
    global _embedded
    store = store or _store()
    with _lock:
        if _embedded is not None or store.lease_holder(LEASE) is not None:
            return False
        _embedded = JobService(store, state_dir(), name="embedded")
        _embedded.start()
        atexit.register(_embedded.close)
        return True


class Job:
    """A notebook job: status, logs, output, metrics, stop."""

    def __init__(self, job_id: str, store: JobStore | None = None) -> None:
        self.id = job_id
        self._store = store or _store()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status}>"

    def record(self) -> dict[str, Any]:
        return self._store.get_job(self.id)

    @property
    def status(self) -> str:
        return self._store.get_job(self.id, details=False)["status"]

    @property
    def error(self) -> str | None:
        return self._store.get_job(self.id, details=False)["error"]

    @property
    def output_path(self) -> Path:
        """The executed notebook (kept for failed jobs too)."""
        return Path(self._store.get_job(self.id, details=False)["output_dir"]) / "output.ipynb"

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Block until the job has ended (or ``timeout``); returns the status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status in JOB_FINAL_STATUSES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def stop(self) -> str:
        """Stop a queued job at once, or ask the running job's owner to end it."""
        return self._store.request_stop(self.id)

    def logs(self) -> str:
        path = Path(self._store.get_job(self.id, details=False)["output_dir"]) / "job.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def metrics(self) -> dict[str, float]:
        """The last value of each metric the notebook logged."""
        return {m["name"]: m["value"] for m in self.record()["metrics"]}


def submit(
    path: str | Path,
    parameters: dict[str, Any] | None = None,
    kernel: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    **options: Any,
) -> Job:
    """Queue a notebook for execution with papermill; returns its :class:`Job`.

    ``options``: ``name``, ``cwd``, ``retry_backoff``, ``tags``, ``output_formats``
    (``["ipynb", "html"]``), ``executor`` (``"local"`` or ``"dask"``), ``allow_unknown``.
    Raises :class:`~lepton_lab.jobs.spec.JobRequestError` for bad input (nothing is stored).
    """
    body: dict[str, Any] = {"path": str(path), "parameters": parameters or {}, **options}
    body.update(retries=retries, timeout=timeout)
    if kernel is not None:
        body["kernel"] = kernel
    store = _store()
    spec = validate_job(body, None, installed_kernels(), JOB_FIELDS)
    record = create_job(store, state_dir(), spec)
    ensure_dispatcher(store)
    return Job(record["id"], store)


def get(job_id: str) -> Job:
    store = _store()
    store.get_job(job_id, details=False)
    return Job(job_id, store)


def list_jobs(status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return _store().list_jobs(status=status, limit=limit)


class Schedule:
    """A notebook repeated on a cron expression."""

    def __init__(self, schedule_id: str, store: JobStore | None = None) -> None:
        self.id = schedule_id
        self._store = store or _store()

    def __repr__(self) -> str:
        record = self.record()
        state = "active" if record["active"] else "paused"
        return f"<Schedule {self.id} {record['cron']!r} {state}>"

    def record(self) -> dict[str, Any]:
        return self._store.get_schedule(self.id)

    def pause(self) -> None:
        self._store.update_schedule(self.id, active=False, next_fire_at=None)

    def resume(self) -> None:
        record = self.record()
        timing = validate_timing({"active": True}, record)
        self._store.update_schedule(self.id, **new_schedule_fields(timing))

    def delete(self) -> None:
        self._store.delete_schedule(self.id)

    def jobs(self) -> list[dict[str, Any]]:
        return self._store.list_jobs(schedule_id=self.id)


def schedule(
    path: str | Path,
    cron: str,
    timezone: str = "UTC",
    parameters: dict[str, Any] | None = None,
    **options: Any,
) -> Schedule:
    """Run a notebook on a cron schedule (croniter syntax; 6 fields put seconds last).

    ``options``: ``kernel``, ``name``, ``overlap`` (``"skip"``/``"queue"``), ``catchup``
    (``"once"``/``"none"``), ``active``, ``timeout``, ``retries``, ``tags``,
    ``output_formats``, ``executor``, ``allow_unknown``, ``cwd``.
    """
    body = {
        "path": str(path),
        "cron": cron,
        "timezone": timezone,
        "parameters": parameters or {},
        **options,
    }
    store = _store()
    record = create_schedule(store, body, None, installed_kernels())
    ensure_dispatcher(store)
    return Schedule(record["id"], store)


def create_schedule(
    store: JobStore,
    body: Any,
    root: Path | None,
    kernels: set[str],
    default_executor: str = "local",
) -> dict[str, Any]:
    """Validate and store a schedule (shared by REST, CLI and ``ll.jobs.schedule``)."""
    job_fields = SCHEDULE_FIELDS - {"cron", "timezone", "active", "overlap", "catchup"}
    timing_fields = {"cron", "timezone", "active", "overlap", "catchup"}
    if not isinstance(body, dict):
        body = {"": body}  # validate_job reports the wrong type
    job = validate_job(
        {k: v for k, v in body.items() if k not in timing_fields},
        root,
        kernels,
        job_fields,
        default_executor,
    )
    if "cron" not in body:
        from lepton_lab.jobs.spec import JobRequestError

        raise JobRequestError("missing field 'cron'")
    timing = validate_timing(body)
    return store.create_schedule(
        new_id(),
        notebook=str(job.notebook),
        cwd=str(job.cwd),
        **schedule_fields(job),
        **new_schedule_fields(timing),
    )


def list_schedules() -> list[dict[str, Any]]:
    return _store().list_schedules()


#: What an edit of a schedule may carry besides the stored fields: ``allow_unknown`` applies
#: to the parameters checked in that edit.
SCHEDULE_EDIT_FIELDS = SCHEDULE_EDITABLE | {"allow_unknown"}
_TIMING_FIELDS = {"cron", "timezone", "active", "overlap", "catchup"}


def schedule_changes(
    current: dict[str, Any],
    body: Any,
    kernels: set[str],
    default_executor: str = "local",
    now: float | None = None,
) -> dict[str, Any]:
    """The field updates for an edit of schedule ``current`` (REST PATCH, CLI pause/resume).

    Job fields are checked again against the notebook as it is now (so an edit cannot store
    a parameter the notebook would reject); parameters stored earlier are not re-judged
    unless the edit replaces them. ``next_fire_at`` is recomputed when cron, timezone or
    ``active`` change; pausing clears it.
    """
    from lepton_lab.jobs.spec import JobRequestError, check_fields

    body = check_fields(body, SCHEDULE_EDIT_FIELDS)
    if not set(body) - {"allow_unknown"}:
        raise JobRequestError(
            f"nothing to change; send one or more of {', '.join(sorted(SCHEDULE_EDITABLE))}"
        )
    changes: dict[str, Any] = {}
    job_keys = set(body) & (SCHEDULE_EDITABLE - _TIMING_FIELDS)
    if job_keys:
        merged = job_request(current)
        merged.update({k: body[k] for k in job_keys})
        merged["allow_unknown"] = body.get("allow_unknown", "parameters" not in body)
        job = validate_job(merged, None, kernels, JOB_FIELDS, default_executor)
        changes.update(schedule_fields(job))
    timing_keys = set(body) & _TIMING_FIELDS
    if timing_keys:
        fields = new_schedule_fields(validate_timing(body, current), now)
        if not timing_keys & {"cron", "timezone", "active"}:
            del fields["next_fire_at"]  # overlap/catchup alone leave the next time as it is
        changes.update(fields)
    return changes
