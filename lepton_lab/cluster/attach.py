"""``ll.attach()``: the one call a notebook makes to reach the lab's cluster.

Under the lab, the server exports the scheduler address to every kernel (and a state file for
kernels started before the cluster was ready). Anywhere else (a script, a papermill run, a
test) the first ``attach()`` starts an embedded local cluster that lives as long as the process.

The embedded start works from any ``__main__`` (a script without a main guard, ``python -c``,
``python -``, IPython, a notebook kernel) because its workers are spawned without re-importing
``__main__`` (:mod:`lepton_lab.cluster.workers`). Where it cannot work (a daemonic process,
interpreter shutdown) or does not finish (a worker that dies or hangs at start-up), ``attach``
raises one :class:`ClusterError` line that says what to do, within ``timeout`` seconds, and
keeps Dask's per-worker tracebacks in a log file instead of the terminal
(docs/guide/embedded-cluster.md).
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_lab.cluster.errors import ClusterError
from lepton_lab.cluster.security import client_security, cluster_file_security
from lepton_lab.config.settings import ENV_CLUSTER_FILE, ENV_SCHEDULER_ADDRESS

if TYPE_CHECKING:
    from distributed import Client

    from lepton_lab.cluster.manager import ClusterManager

_lock = threading.Lock()
_client: Client | None = None
_embedded: ClusterManager | None = None
#: in a forked child: the scheduler of the embedded cluster its parent started, and the
#: credentials (paths of its key files) to reach it
_parent_address: str | None = None
_parent_security: dict[str, str] | None = None
_atexit_registered = False

#: the name Dask's nanny gives the worker processes it spawns
_WORKER_PROCESS_NAME = "Dask Worker process (from Nanny)"
#: seconds a stuck start gets to unwind once its workers were stopped
_UNWIND_SECONDS = 10.0
#: where to point people for a cluster they start themselves
_OWN_SCHEDULER_HINT = (
    "or start a scheduler yourself and pass its address: ll.attach('tcp://host:8786') or "
    f"{ENV_SCHEDULER_ADDRESS}"
)


def lab_scheduler_address(timeout: float = 60.0) -> str | None:
    """The lab's scheduler address from the environment, or None when not under the lab.

    Waits (up to ``timeout``) while the server's cluster is still starting, and raises a
    readable error when it failed to start.
    """
    address = os.environ.get(ENV_SCHEDULER_ADDRESS)
    if address:
        return address
    state_file = os.environ.get(ENV_CLUSTER_FILE)
    if not state_file:
        return None
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while True:
        try:
            state = json.loads(Path(state_file).read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("status") == "running" and state.get("scheduler_address"):
            return str(state["scheduler_address"])
        if state.get("status") == "error":
            raise RuntimeError(f"the lab's cluster failed to start: {state.get('error')}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the lab's cluster was not ready after {timeout:.0f} s "
                f"(last state: {state.get('status', 'unknown')}; file {state_file})"
            )
        time.sleep(0.2)


def attach(address: str | None = None, *, timeout: float = 60.0) -> Client:
    """Return a ``distributed.Client`` to the lab's cluster (or an embedded local one).

    The client is created once per process and reused, so every cell that calls ``attach()``
    shares it. Pass ``address`` to reach another scheduler explicitly. ``timeout`` bounds the
    wait for the lab's cluster, the connection, and the start of an embedded cluster; what
    cannot work raises a one-line :class:`ClusterError`.
    """
    global _client, _embedded, _atexit_registered
    with _lock:
        target = address or lab_scheduler_address(timeout) or _parent_address
        if _client is not None and _client.status not in ("closed", "closing"):
            if target is None and _embedded is not None:
                return _client
            if target is not None and _client.scheduler.address == _normalise(target):
                return _client
            _client.close()
            _client = None
        _refuse_at_shutdown()
        from distributed import Client

        if target is not None:
            if target == _parent_address:
                security = client_security(_parent_security)
            else:
                security = lab_security(target)
            _client = Client(target, timeout=timeout, set_as_default=True, security=security)
            return _client
        if _embedded is None:
            try:
                _embedded = _start_embedded(timeout)
            except ClusterError as error:
                raise error.with_traceback(None) from None  # the one line, not Dask's frames
            if not _atexit_registered:
                atexit.register(detach)
                _atexit_registered = True
        _client = Client(
            _embedded.scheduler_address,
            timeout=timeout,
            set_as_default=True,
            security=client_security(_embedded.client_security()),
        )
        return _client


def embedded_cluster() -> ClusterManager | None:
    """The cluster this process started for itself, if ``attach()`` started one."""
    return _embedded


def detach() -> None:
    """Close this process's client and stop the embedded cluster if it started one."""
    global _client, _embedded
    with _lock:
        if _client is not None:
            _client.close()
            _client = None
        if _embedded is not None:
            _embedded.close()
            _embedded = None


def lab_security(address: str) -> Any:
    """``distributed.Security`` for the lab's cluster when it needs TLS credentials, else
    None (Dask's configured security). The server names them in its 0600 cluster file: the
    key files of its own cluster (lepton_lab.cluster.security), or the PEM text of a
    dask-gateway cluster's, which exist only in the server's memory. A ``gateway://``
    address needs dask_gateway imported: that registers its comm."""
    if address.startswith("gateway://"):
        import dask_gateway  # noqa: F401

    state_file = os.environ.get(ENV_CLUSTER_FILE)
    if not state_file:
        return None
    return cluster_file_security(state_file, address)


def _normalise(address: str) -> str:
    return address if "://" in address else f"tcp://{address}"


# -- the embedded start ------------------------------------------------------------------------
def _refuse_at_shutdown() -> None:
    """Once the main thread has finished, Dask can neither start threads for its event loop
    nor register its clean-up, so a start then failed half-way with a traceback: say so."""
    import sys

    if sys.is_finalizing() or not threading.main_thread().is_alive():
        raise ClusterError(
            "ll.attach() was called while Python is shutting down (from an atexit handler, a "
            "__del__, or a thread still running after the main script ended), when Dask can "
            "no longer start or connect: call ll.attach() before the script ends"
        )


def _refuse_in_daemonic_process(manager: ClusterManager) -> None:
    """A daemonic process may not have children, so every nanny fails and Dask's
    ``LocalCluster`` then waits forever: refuse at once instead."""
    if manager.factory is None and multiprocessing.current_process().daemon:
        raise ClusterError(
            "ll.attach() cannot start an embedded cluster in a daemonic process (a "
            "multiprocessing Pool worker, or a Process with daemon=True), which may not have "
            "child processes: call ll.attach() in the parent and give the child its address "
            f"(ll.attach(client.scheduler.address)), {_OWN_SCHEDULER_HINT}"
        )


def _start_embedded(timeout: float) -> ClusterManager:
    """Start the embedded cluster, bounded by ``timeout``; a failure is one readable line."""
    from lepton_lab.cluster.manager import ClusterManager

    # Embedded default: a small local cluster; no dashboard port to collide on.
    manager = ClusterManager(
        mode="auto", dashboard_address="127.0.0.1:0", start_timeout=float(timeout)
    )
    _refuse_in_daemonic_process(manager)
    before = {p.pid for p in _worker_processes()}
    hold = _DaskErrorHold()
    hold.install()
    thread = manager.start_in_background(on_done=lambda m: hold.release(m.wait_ready(0)))
    thread.join(timeout)
    stuck = thread.is_alive()
    stopped = 0
    if stuck:
        # Dask's LocalCluster waits for every nanny, and a worker that hangs at start-up
        # (or one that never reports) blocks it for good: stop this start's workers so
        # the start fails and cleans up, then report.
        for process in _worker_processes():
            if process.pid not in before:
                process.kill()
                stopped += 1
        thread.join(_UNWIND_SECONDS)
    if not stuck and manager.wait_ready(0):
        return manager
    held = hold.cause()  # also writes what was held to the log file
    where = f"; Dask's log: {hold.log_path}" if hold.log_path else ""
    if stuck:
        cause = held or "no error logged"
        raise ClusterError(
            f"ll.attach(): the embedded Dask cluster did not start within {timeout:.0f} s "
            f"({stopped} stuck worker process{'es' if stopped != 1 else ''} stopped; "
            f"{cause}{where}): on a busy machine pass a longer ll.attach(timeout=...), "
            f"{_OWN_SCHEDULER_HINT}"
        )
    cause = held or manager.status()["error"] or "unknown error"
    raise ClusterError(
        f"ll.attach(): the embedded Dask cluster failed to start ({cause}{where}): check that "
        "a worker process can start here (this Python, PYTHONPATH, sitecustomize; try "
        f"python -c 'import distributed'), {_OWN_SCHEDULER_HINT}"
    )


def _worker_processes() -> list[multiprocessing.process.BaseProcess]:
    """This process's live Dask worker processes (spawned by its nannies)."""
    return [p for p in multiprocessing.active_children() if p.name == _WORKER_PROCESS_NAME]


class _DaskErrorHold(logging.Filter):
    """Keeps Dask's ERROR records off the terminal while the embedded cluster starts.

    A failed start logs a traceback per worker (and chained ones per nanny), a wall of text
    that buried what to do. The records are held: a start that succeeds prints them after
    all, one that fails writes them to a file that the one-line error names.
    """

    def __init__(self) -> None:
        super().__init__("lepton_lab.attach")
        self.records: list[logging.LogRecord] = []
        self.log_path: str | None = None
        self._handlers: list[logging.Handler] = []
        self._lock = threading.Lock()
        self._released = False
        self._written = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        with self._lock:
            if self._released:
                return True
            if record not in self.records:
                self.records.append(record)
        return False

    def install(self) -> None:
        self._handlers = list(logging.getLogger("distributed").handlers)
        for handler in self._handlers:
            handler.addFilter(self)

    def release(self, started: bool) -> None:
        """Called once the start has ended: a start that worked prints what was held, one
        that failed writes it to a file (the same file a timed-out start already named)."""
        with self._lock:
            if self._released:
                return
            self._released = True
            records = list(self.records)
        for handler in self._handlers:
            handler.removeFilter(self)
        if started:
            for record in records:
                for handler in self._handlers:
                    if record.levelno >= handler.level:
                        handler.handle(record)
            return
        self._write()

    def cause(self) -> str | None:
        """The innermost error of the first held record with a traceback (what failed first)."""
        self._write()
        with self._lock:
            records = list(self.records)
        for record in records:
            error = record.exc_info[1] if record.exc_info else None
            while error is not None and (error.__cause__ or error.__context__) is not None:
                error = error.__cause__ or error.__context__
            if error is not None:
                text = str(error).strip().splitlines()
                return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
        if records:
            return records[0].getMessage().strip().splitlines()[0]
        return None

    def _write(self) -> None:
        """Append the records not yet written to this start's log file."""
        with self._lock:
            records = self.records[self._written :]
            self._written = len(self.records)
        if not records:
            return
        formatter = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
        text = "".join(formatter.format(record) + "\n" for record in records)
        try:
            if self.log_path is None:
                fd, self.log_path = tempfile.mkstemp(
                    prefix=f"lepton-lab-attach-{os.getpid()}-", suffix=".log"
                )
                os.close(fd)
                Path(self.log_path).write_text(text)
            else:
                with open(self.log_path, "a") as out:
                    out.write(text)
        except OSError:
            self.log_path = None


# -- fork --------------------------------------------------------------------------------------
#: in a forked child: the parent's client and cluster objects, kept so that they are never
#: collected here (their finalizers would close sockets and processes that are not ours)
_inherited: list[Any] = []


def _forget_inherited_cluster() -> None:
    """In a forked child (``os.fork``), let go of the parent's client and embedded cluster.

    Their event-loop threads did not survive the fork, so anything done with them waits
    forever: ``attach()`` returned the dead client (its first ``.result()`` hung), and the
    atexit clean-up of ours and Dask's tried to close them and hung the child's exit. The
    child's exit also ran the parent's process bookkeeping: multiprocessing terminated the
    parent's workers (a failed ``waitpid`` reads as "alive"), and Dask removed the parent's
    scratch folders. The child attaches to its parent's scheduler as a client of its own.
    """
    global _lock, _client, _embedded, _parent_address, _parent_security
    _lock = threading.Lock()
    if _client is None and _embedded is None:
        return
    inherited: list[Any] = [_client]
    if _embedded is not None:
        inherited.append(_embedded.client)
        _parent_address = _embedded.scheduler_address
        _parent_security = _embedded.client_security()
        cluster = _embedded.cluster
        if cluster is not None:
            cluster.shutdown_on_close = False  # Dask's atexit would close it from here
        _disown_dask_processes()
    for client in inherited:
        if client is not None:
            client.status = "closed"  # close(), __del__ and Dask's atexit leave it alone
    _inherited.extend([_client, _embedded])
    _client = None
    _embedded = None


def _disown_dask_processes() -> None:
    """Drop, in a forked child, what would act on the parent's Dask processes and folders at
    exit: its worker processes in multiprocessing's child list (terminated at exit) and
    Dask's atexit finalizers (which terminate those workers and delete the scratch space).

    Reaches into ``multiprocessing.process._children`` and ``weakref.finalize._registry``
    because neither module can be told that a fork's child does not own what its parent did
    (``multiprocessing`` clears the list only in the children it starts itself).
    """
    import weakref

    children = getattr(multiprocessing.process, "_children", None)
    if isinstance(children, set):
        for process in list(children):
            if process.name == _WORKER_PROCESS_NAME:
                children.discard(process)
    registry = getattr(weakref.finalize, "_registry", None)
    for finalizer in list(registry or ()):
        entry = finalizer.peek()
        if entry is not None and finalizer.atexit:
            module = getattr(entry[1], "__module__", "") or ""
            if module.startswith("distributed."):
                finalizer.detach()


os.register_at_fork(after_in_child=_forget_inherited_cluster)
