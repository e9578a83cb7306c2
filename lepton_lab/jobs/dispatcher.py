"""``Dispatcher``: the queue, the supervisors of running jobs, and the schedule firing.

One runs in every process that executes jobs: the Jupyter server, the ``lepton-lab scheduler``
daemon, or a kernel/script that called ``ll.jobs.submit`` with neither running. They share the
database. The process holding the dispatcher lease is the only one that starts queued jobs and
fires schedules, so the concurrency limit holds across processes and no schedule time fires
twice. Any process may ask for a stop (a flag on the job row); the job's owner acts on it.
A job whose owner died (a killed server) is reconciled by the next process to start: marked
failed, "interrupted by restart", and retried if it has retries left.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from lepton_lab.contract.base import Unavailable
from lepton_lab.jobs.executors import Execution, kill_tree
from lepton_lab.jobs.plugins import executor_classes
from lepton_lab.jobs.schedules import fire_due
from lepton_lab.jobs.submission import installed_kernels, submit_scheduled
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.notify.delivery import Sender
from lepton_lab.store import Store
from lepton_lab.store.secrets import key_path

log = logging.getLogger("lepton_lab.jobs")

LEASE = "lepton-lab-dispatcher"
#: A running job whose owner has not beaten its heart for this long is presumed dead.
STALE_AFTER = 30.0
#: Retention (``c.LeptonLab.retention``) runs this long after a process gains the lease, then
#: at most this often, in the leader only
RETENTION_DELAY = 60.0
RETENTION_EVERY = 3600.0
HOST = socket.gethostname()


def default_concurrency() -> int:
    """One job per GPU, or two on a CPU-only machine."""
    from lepton_lab.cluster.gpus import probe_gpus

    gpus = probe_gpus().count
    return gpus if gpus > 0 else 2


class Supervisor:
    """Watches one running attempt: forwards progress and metrics to the store, enforces the
    timeout, acts on stop requests, and records how the attempt ended."""

    def __init__(self, store: Store, job: dict[str, Any], execution: Execution) -> None:
        self.store = store
        self.job = job
        self.execution = execution
        self.started = time.monotonic()
        self.ended_by: str | None = None  # "timeout", "stop" or "shutdown" when we ended it
        #: the lab's notification settings (the dispatcher's); None: queue none
        self.notify: Any = None
        self._last_stop_check = 0.0

    @property
    def id(self) -> str:
        return self.job["id"]

    def step(self) -> bool:
        """One look at the attempt; True once it has ended and been recorded."""
        self._forward()
        result = self.execution.poll()
        if result is None:
            now = time.monotonic()
            timeout = self.job["timeout"]
            if timeout and now - self.started > timeout:
                self.end("timeout")
            elif now - self._last_stop_check > 0.5:
                self._last_stop_check = now
                if self.store.stop_requested(self.id):
                    self.end("stop")
            return False
        self._forward()
        self._record(result)
        return True

    def end(self, why: str) -> None:
        """Kill the attempt (runner, kernel and their children); ``step`` then records it."""
        if self.ended_by is None:
            self.ended_by = why
            log.info("Lepton Lab: ending job %s (%s)", self.id, why)
            self.execution.kill()

    def _forward(self) -> None:
        progress, metrics = self.execution.updates()
        # metrics first: a reader that sees the progress of a later cell then also sees the
        # metrics logged before it
        if metrics:
            rows = [m for m in metrics if isinstance(m, dict) and {"name", "value"} <= set(m)]
            for row in rows:
                row.setdefault("time", time.time())
            self.store.add_job_metrics(self.id, self.job["attempt"], rows)
        if progress is not None:
            self.store.update_job(self.id, progress=progress)

    def _record(self, result: dict[str, Any]) -> None:
        status, error, cell = result.get("status"), result.get("error"), result.get("error_cell")
        if self.ended_by == "timeout":
            status, error = "timed_out", f"timed out after {self.job['timeout']:g} s"
        elif self.ended_by == "stop":
            status, error = "stopped", None
        elif self.ended_by == "shutdown":
            status, error = "failed", "interrupted: the process running the job shut down"
        elif status not in ("completed", "failed", "stopped"):
            status = "failed"
        where = f"ran on Dask worker {result['worker']}" if result.get("worker") else ""
        finish(self.store, self.job, status, error, cell, note=where, notify=self.notify)
        self._record_usage(result, status)

    def _record_usage(self, result: dict[str, Any], status: str) -> None:
        """The attempt's usage (what its runner measured of its process tree; a killed one's
        last snapshot) and the bytes its folder holds now."""
        from lepton_lab.metering.ledger import job_tags, record_job_attempt, record_storage

        record_job_attempt(self.store, self.job, result.get("usage"), status)
        record_storage(
            self.store,
            f"job:{self.id}",
            self.job["output_dir"],
            user=self.job.get("user"),
            notebook=self.job.get("notebook"),
            tags=job_tags(self.job),
            created_at=self.job.get("created_at"),
        )


def finish(
    store: Store,
    job: dict[str, Any],
    status: str,
    error: str | None,
    error_cell: int | None = None,
    owner: str | None = None,
    note: str = "",
    notify: Any = None,
) -> str:
    """Record an attempt's end; a failed or timed-out attempt with retries left goes back to
    the queue after its backoff (doubling each time). Returns the job's new status. A final
    status queues the notifications it calls for (``notify``: the lab's NotifySettings)."""
    attempt, retries = job["attempt"], job["retries"]
    owner = owner or job["owner"]
    summary = (error or "").strip().splitlines()[0] if error else ""
    if status in ("failed", "timed_out") and attempt <= retries:
        backoff = job["retry_backoff"] * 2 ** (attempt - 1)
        store.add_job_event(job["id"], status, summary, attempt)
        requeued = store.transition(
            job["id"],
            "queued",
            f"retry {attempt} of {retries} in {backoff:g} s",
            expect=["running"],
            owner_is=owner,
            owner=None,
            not_before=time.time() + backoff,
            error=error,
            error_cell=error_cell,
        )
        return "queued" if requeued else store.get_job(job["id"], details=False)["status"]
    ended = store.transition(
        job["id"],
        status,
        summary or note,
        expect=["running"],
        owner_is=owner,
        error=error,
        error_cell=error_cell,
    )
    if ended and notify is not None:
        from lepton_lab.notify.events import job_ended

        job_ended(store, job["id"], status, notify)
    return status


def _owner_alive(owner: str | None, heartbeat: float | None) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    fresh = heartbeat is not None and time.time() - heartbeat < STALE_AFTER
    if host != HOST:
        return fresh
    try:
        pid = int(rest.split(":")[0])
    except ValueError:
        return False
    return fresh and psutil.pid_exists(pid)


def _kill_orphan_runner(job: dict[str, Any], pid: int | None) -> None:
    """A runner left behind by a dead owner still holds a kernel: end it. The runner was
    created right when its attempt started; an unrelated process that reused the pid was not."""
    if not pid or not job["started_at"]:
        return
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return
    if job["started_at"] - 2 <= created <= job["started_at"] + 30:
        kill_tree(pid)


class Dispatcher:
    """Dispatcher lease, job queue, supervisors and schedule firing for one process."""

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        concurrency: int | None = None,
        dask_client: Callable[[], Any] | None = None,
        kernels: Callable[[], set[str]] = installed_kernels,
        tick: float = 0.2,
        lease_ttl: float = 10.0,
        name: str = "server",
    ) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.concurrency = concurrency or default_concurrency()
        self.kernels = kernels
        self.tick = tick
        self.lease_ttl = lease_ttl
        self.owner = f"{HOST}:{os.getpid()}:{name}-{uuid.uuid4().hex[:6]}"
        # built from the entry-point registry: a plug-in executor runs jobs like the built-ins
        client = dask_client or _attach_client
        self.executors = {name: cls(client) for name, cls in executor_classes().items()}
        self.supervisors: dict[str, Supervisor] = {}
        self.is_leader = False
        self._lease_until = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._last_reconcile = 0.0
        self._next_retention: float | None = None  # monotonic; None while not the leader
        self._last_retention = float("-inf")
        self._retention_thread: threading.Thread | None = None
        self.notify = _notify_settings(self.state_dir)
        self.sender = (
            Sender(store, self.owner, self.notify, tick=tick) if self.notify is not None else None
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from lepton_lab.jobs.executors import warm_runner_server

        threading.Thread(
            target=warm_runner_server, name="lepton-runner-warmup", daemon=True
        ).start()
        reconciled = self.reconcile()
        if reconciled:
            log.warning(
                "Lepton Lab: reconciled %d job(s) left running by a dead process", len(reconciled)
            )
        self._thread = threading.Thread(target=self._loop, name="lepton-jobs", daemon=True)
        self._thread.start()
        if self.sender is not None:
            self.sender.start()

    def close(self, timeout: float = 30) -> None:
        """Stop dispatching; end this process's running jobs (retried elsewhere if they can
        be) and hand the lease back."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for sup in list(self.supervisors.values()):
            sup.end("shutdown")
            sup.step()
        self.supervisors.clear()
        if self.sender is not None:
            self.sender.leading.clear()
            self.sender.close()
        if self.is_leader:
            self.store.release_lease(LEASE, self.owner)
            self.is_leader = False

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.step()
            except Unavailable as exc:  # the database is down: one line, not a traceback
                log.warning("Lepton Lab: job service waits: %s", exc)
                self._stopping.wait(5.0)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the queue
                log.exception("Lepton Lab: job service step failed; retrying")
                time.sleep(1.0)
            self._stopping.wait(self.tick)

    def step(self) -> None:
        now = time.time()
        if now > self._lease_until - self.lease_ttl / 2:
            self.is_leader = self.store.acquire_lease(LEASE, self.owner, self.lease_ttl)
            self._lease_until = now + self.lease_ttl if self.is_leader else 0.0
        for job_id, sup in list(self.supervisors.items()):
            if sup.step():
                del self.supervisors[job_id]
        if now - self._last_heartbeat > 2.0:
            self.store.heartbeat(self.owner, self.supervisors)
            self._last_heartbeat = now
        if self.sender is not None:
            # only the lease holder sends (each message once)
            if self.is_leader:
                self.sender.leading.set()
            else:
                self.sender.leading.clear()
        if not self.is_leader:
            self._next_retention = None
            return
        fire_due(self.store, self.submit_scheduled)
        free = self.concurrency - len(self.supervisors)
        if free > 0:
            for job_id in self.store.runnable(free):
                self.launch(job_id)
        if now - self._last_reconcile > 5.0:
            self.reconcile()
            self._last_reconcile = now
        self._maybe_retention()

    # -- retention ---------------------------------------------------------------------------
    def _maybe_retention(self) -> None:
        """Start retention in a thread of its own (deleting may take a while; the queue goes
        on) shortly after gaining the lease, then hourly."""
        now = time.monotonic()
        if self._next_retention is None:
            self._next_retention = max(
                now + RETENTION_DELAY, self._last_retention + RETENTION_EVERY
            )
        busy = self._retention_thread is not None and self._retention_thread.is_alive()
        if now < self._next_retention or busy:
            return
        self._last_retention = now
        self._next_retention = now + RETENTION_EVERY
        self._retention_thread = threading.Thread(
            target=self.run_retention, name="lepton-retention", daemon=True
        )
        self._retention_thread.start()

    def run_retention(self) -> list[dict[str, Any]]:
        """Delete what ``c.LeptonLab.retention`` says is old (nothing if unset); a failure is
        one warning, never the dispatcher's end."""
        try:
            from lepton_lab.services.usage import UsageService

            done = UsageService(self.store).gc(dry_run=False)
        except Exception as exc:  # noqa: BLE001 - a bad setting or a database hiccup
            log.warning("Lepton Lab: retention did not run: %s", exc)
            return []
        deleted = [d for d in done if d["deleted"]]
        if deleted:
            freed = sum(d["bytes"] for d in deleted)
            log.info("Lepton Lab: retention deleted %d item(s), %d bytes", len(deleted), freed)
        return done

    # -- jobs --------------------------------------------------------------------------------
    def launch(self, job_id: str) -> Supervisor | None:
        """Claim a queued job for this process and start its attempt."""
        job = self.store.claim(job_id, self.owner)
        if job is None:
            return None
        # the key that opens the job's sealed secrets (the executor opens them)
        job["secrets_key"] = str(key_path(self.state_dir))
        files = JobFiles.of(job)
        files.reset_attempt()
        try:
            executor = self.executors.get(job["executor"])
            if executor is None:
                raise RuntimeError(
                    f"the executor {job['executor']!r} is not installed here "
                    f"(installed: {', '.join(self.executors)})"
                )
            execution = executor.start(files, job)
        except Exception as exc:  # noqa: BLE001 - e.g. no cluster for the dask executor
            finish(
                self.store,
                job,
                "failed",
                f"could not start the job: {exc}",
                None,
                self.owner,
                notify=self.notify,
            )
            return None
        pid = getattr(execution, "pid", None)
        if pid:
            self.store.update_job(job_id, runner_pid=pid)
        sup = Supervisor(self.store, job, execution)
        sup.notify = self.notify
        self.supervisors[job_id] = sup
        return sup

    def run_foreground(
        self, job_id: str, on_step: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Claim and run one job in the calling thread (``lepton-lab run --wait``)."""
        sup = self.launch(job_id)
        if sup is None:
            raise RuntimeError(f"job {job_id} was taken by another process")
        last_beat = time.monotonic()
        try:
            while not sup.step():
                if on_step is not None:
                    on_step()
                if time.monotonic() - last_beat > 2.0:
                    self.store.heartbeat(self.owner, [job_id])
                    last_beat = time.monotonic()
                time.sleep(self.tick)
        except KeyboardInterrupt:
            sup.end("stop")
            sup.step()
            raise
        finally:
            self.supervisors.pop(job_id, None)
        if self.sender is not None:
            # `run --wait` may run with no lab to send its messages: send what is due now
            # (a retry of one that fails is left to the lease holder)
            try:
                self.sender.deliverer.step()
            except Exception as exc:  # noqa: BLE001 - a notification never fails the job
                log.warning("Lepton Lab: notifications wait: %s", exc)
        return self.store.get_job(job_id)

    def submit_scheduled(self, sched: dict[str, Any], due: float | None = None) -> str:
        """Queue a schedule's job for its fire time ``due`` (or now)."""
        return submit_scheduled(self.store, self.state_dir, self.kernels(), sched, due)["id"]

    def reconcile(self) -> list[str]:
        """Jobs marked running whose owner is gone: failed "interrupted by restart" (and
        retried if they have retries left)."""
        done = []
        for job in self.store.running():
            if job["owner"] == self.owner:
                continue
            if _owner_alive(job["owner"], job["heartbeat_at"]):
                continue
            _kill_orphan_runner(job, job["runner_pid"])
            status = finish(
                self.store,
                job,
                "failed",
                f"interrupted by restart (the process {job['owner']} that ran it is gone)",
                notify=self.notify,
            )
            log.warning(
                "Lepton Lab: job %s was left running by a dead process: now %s", job["id"], status
            )
            done.append(job["id"])
        return done


def _attach_client() -> Any:
    from lepton_lab.cluster.attach import attach

    return attach()


def _notify_settings(state_dir: Path) -> Any:
    """The lab's notification settings for this dispatcher; a bad lab rule is logged and its
    rules left out (the server refuses to start with one; the daemon says so and goes on)."""
    from lepton_lab.notify.delivery import NotifySettings

    try:
        return NotifySettings.load(state_dir)
    except ValueError as exc:
        log.error("Lepton Lab: c.LeptonLab.notifications ignored: %s", exc)
        return NotifySettings(state_dir=Path(state_dir))
