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
from lepton_lab.jobs.dispatcher import LEASE, Dispatcher
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.services.jobs import JobService
from lepton_lab.services.schedules import ScheduleService
from lepton_lab.store import Store, open_store
from lepton_lab.store.schema import JOB_FINAL_STATUSES

_embedded: Dispatcher | None = None
_lock = threading.Lock()


def _store() -> Store:
    return open_store()


def _jobs(store: Store | None = None) -> JobService:
    return JobService(store or _store(), state_dir())


def _schedules(store: Store | None = None) -> ScheduleService:
    return ScheduleService(_jobs(store))


def ensure_dispatcher(store: Store | None = None) -> bool:
    """Start a job service here unless the lab's server or the daemon already runs one.

    Returns True when this call started it.
    """
    global _embedded
    store = store or _store()
    with _lock:
        if _embedded is not None or store.lease_holder(LEASE) is not None:
            return False
        _embedded = Dispatcher(store, state_dir(), name="embedded")
        _embedded.start()
        atexit.register(_embedded.close)
        return True


class Job:
    """A notebook job: status, logs, output, metrics, stop."""

    def __init__(self, job_id: str, store: Store | None = None) -> None:
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
        return JobFiles.of(self._store.get_job(self.id, details=False)).output

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
        path = JobFiles.of(self._store.get_job(self.id, details=False)).log
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
    notify: list[dict[str, Any]] | None = None,
    **options: Any,
) -> Job:
    """Queue a notebook for execution with papermill; returns its :class:`Job`.

    ``notify``: notification rules, e.g. ``[{"on": ["failed", "timed_out"], "channel":
    "email", "to": ["ann@example.com"]}, {"on": ["late"], "after": "2h", "channel":
    "webhook", "url": "https://hooks.slack.com/..."}]`` (docs/guide/notifications.md); a webhook URL
    is stored encrypted.

    ``options``: ``name``, ``cwd``, ``retry_backoff``, ``tags``, ``output_formats``
    (``["ipynb", "html"]``), ``executor`` (``"local"`` or ``"dask"``), ``allow_unknown``,
    ``secrets`` (``{"API_TOKEN": "..."}``: environment variables of the job's kernel, stored
    encrypted, redacted from its log and output; the job shows only their names).
    Raises :class:`~lepton_lab.jobs.spec.JobRequestError` for bad input (nothing is stored).
    """
    body: dict[str, Any] = {"path": str(path), "parameters": parameters or {}, **options}
    body.update(retries=retries, timeout=timeout)
    if notify is not None:
        body["notify"] = list(notify)
    if kernel is not None:
        body["kernel"] = kernel
    store = _store()
    job = _jobs(store).submit(body)
    ensure_dispatcher(store)
    return Job(job.id, store)


def get(job_id: str) -> Job:
    store = _store()
    store.get_job(job_id, details=False)
    return Job(job_id, store)


def list_jobs(status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return _store().list_jobs(status=status, limit=limit)


class Schedule:
    """A notebook repeated on a cron expression."""

    def __init__(self, schedule_id: str, store: Store | None = None) -> None:
        self.id = schedule_id
        self._store = store or _store()

    def __repr__(self) -> str:
        record = self.record()
        state = "active" if record["active"] else "paused"
        return f"<Schedule {self.id} {record['cron']!r} {state}>"

    def record(self) -> dict[str, Any]:
        return self._store.get_schedule(self.id)

    def pause(self) -> None:
        _schedules(self._store).pause(self.id)

    def resume(self) -> None:
        _schedules(self._store).resume(self.id)

    def delete(self) -> None:
        _schedules(self._store).delete(self.id)

    def run_now(self) -> Job:
        """Queue the schedule's notebook now, outside its cron times."""
        return Job(_schedules(self._store).run_now(self.id).id, self._store)

    def jobs(self) -> list[dict[str, Any]]:
        return self._store.list_jobs(schedule_id=self.id)


def schedule(
    path: str | Path,
    cron: str,
    timezone: str = "UTC",
    parameters: dict[str, Any] | None = None,
    notify: list[dict[str, Any]] | None = None,
    **options: Any,
) -> Schedule:
    """Run a notebook on a cron schedule (croniter syntax; 6 fields put seconds last).

    ``options``: ``kernel``, ``name``, ``overlap`` (``"skip"``/``"queue"``), ``catchup``
    (``"once"``/``"none"``), ``active``, ``timeout``, ``retries``, ``tags``,
    ``output_formats``, ``executor``, ``allow_unknown``, ``cwd``, ``secrets`` (given to every
    job it fires, as with :func:`submit`).

    ``notify``: notification rules, as for :func:`submit`; each job the schedule fires gets
    them, and a ``late`` rule also tells when the schedule itself has not fired ``after``
    its time (paused, or no lab running).
    """
    body: dict[str, Any] = {
        "path": str(path),
        "cron": cron,
        "timezone": timezone,
        "parameters": parameters or {},
        **options,
    }
    if notify is not None:
        body["notify"] = list(notify)
    store = _store()
    created = _schedules(store).create(body)
    ensure_dispatcher(store)
    return Schedule(created.id, store)


def list_schedules() -> list[dict[str, Any]]:
    return _store().list_schedules()
