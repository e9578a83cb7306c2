"""The worker processes of the clusters the lab starts: allocator defaults kept, memory still
given back, and the lab's own environment left as it was.

Dask's nanny spawns every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed memory
goes back to the OS at once. Setting that variable also switches off glibc's dynamic mmap
threshold, so every allocation over 128 KiB becomes an ``mmap``/``munmap`` pair with fresh,
zero-filled pages. A training step allocates many such tensors: the setting alone made the
DDP step of ``bench/bench_peers.py`` 1.3x slower than under torchrun
(docs/decisions/performance.md).
The lab's workers therefore start with glibc's defaults, and :class:`IdleTrim` gives memory
back the way Dask wanted, with ``malloc_trim(0)`` once a worker has gone idle, instead of on
every ``free``.

The nanny also writes its ``pre-spawn-environ`` (``OMP_NUM_THREADS=1``...) into the *parent's*
``os.environ`` before each spawn and never takes it back, so every process the lab server or a
script started afterwards (kernels, ``torchrun``, jobs) inherited it. :class:`LabNanny` applies
those variables only for the instant of its worker's spawn.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing.spawn
import multiprocessing.util
import os
import threading
from typing import Any

from distributed import Nanny
from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger("lepton_lab.cluster")

#: what Dask's nanny sets for a worker's allocator; the lab leaves glibc's defaults
ALLOCATOR_VARIABLES = ("MALLOC_TRIM_THRESHOLD_",)


class LabNanny(Nanny):
    """A Dask nanny whose workers keep glibc's allocator defaults, and which leaves the
    environment of the process that runs it (the lab server, a script) as it found it.

    Its workers start without ``MALLOC_TRIM_THRESHOLD_`` even when this process has one: a
    value there is as likely to be what another cluster's nanny left as a choice of the user's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ALLOCATOR_VARIABLES:
            self.pre_spawn_env.pop(name, None)
            self.env.pop(name, None)
        # Nanny.instantiate -> WorkerProcess.start does os.environ.update(pre_spawn_env) and
        # leaves it there until the next spawn. An empty dict makes that a no-op; the
        # variables are set around the spawn itself instead (_spawn_with_worker_env).
        self.spawn_env = dict(self.pre_spawn_env)
        self.pre_spawn_env = {}

    async def instantiate(self) -> Any:
        with _spawning.lock:
            _spawning.count += 1
            _spawning.env.update(self.spawn_env)
        try:
            return await super().instantiate()
        finally:
            with _spawning.lock:
                _spawning.count -= 1
                if _spawning.count == 0:
                    _spawning.env.clear()


class _Spawning:
    """How many LabNannies of this process are starting a worker, and the variables their
    workers must have from the first instruction (Dask's ``pre-spawn-environ``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.env: dict[str, str] = {}


_spawning = _Spawning()


def _skip_main_while_spawning(original: Any) -> Any:
    """Wrap multiprocessing's ``spawn.get_preparation_data`` so that a worker spawned by a
    LabNanny does not re-import the parent's ``__main__``.

    Written by hand because neither multiprocessing nor Dask has a switch for it. A spawned
    child imports its parent's main script before it runs anything. Under ``jupyter lab``
    that script imports JupyterLab and Jupyter Server, about 2.5 s per worker, most of the
    time from the server answering to its cluster being ready (docs/decisions/performance.md). In a
    user's script without an ``if __name__ == "__main__":`` guard, the import would run the
    script again in every worker. Dask's workers never need ``__main__``: functions defined
    there travel by value (cloudpickle). Other spawns in the process are left alone, except
    when they happen in the same instant as a LabNanny's.
    """

    def get_preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if _spawning.count:
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    get_preparation_data.lepton_lab_wrapped = True  # type: ignore[attr-defined]
    return get_preparation_data


def _spawn_with_worker_env(original: Any) -> Any:
    """Wrap multiprocessing's ``util.spawnv_passfds`` (the ``fork``/``exec`` of a spawned
    child) so that a LabNanny's worker gets Dask's ``pre-spawn-environ`` and loses the
    allocator variables, while this process's environment holds them only for the ``exec``.

    Written by hand because a spawned child inherits ``os.environ`` as it is at ``exec``, and
    neither multiprocessing nor Dask can pass an environment to it. Setting the variables for
    the whole worker start, as the nanny does (then undoing it), left them in this process
    for seconds, and for good whenever a start was abandoned mid-way.
    """

    def spawnv_passfds(path: Any, args: Any, passfds: Any) -> int:
        if not _spawning.count:
            return original(path, args, passfds)
        with _spawning.lock:
            names = [*_spawning.env, *ALLOCATOR_VARIABLES]
            saved = {name: os.environ.get(name) for name in names}
            os.environ.update(_spawning.env)
            for name in ALLOCATOR_VARIABLES:
                os.environ.pop(name, None)
            try:
                return original(path, args, passfds)
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    spawnv_passfds.lepton_lab_wrapped = True  # type: ignore[attr-defined]
    return spawnv_passfds


if not getattr(multiprocessing.spawn.get_preparation_data, "lepton_lab_wrapped", False):
    multiprocessing.spawn.get_preparation_data = _skip_main_while_spawning(
        multiprocessing.spawn.get_preparation_data
    )
if not getattr(multiprocessing.util.spawnv_passfds, "lepton_lab_wrapped", False):
    multiprocessing.util.spawnv_passfds = _spawn_with_worker_env(
        multiprocessing.util.spawnv_passfds
    )


def keep_allocator_defaults() -> None:
    """Drop the allocator variables from Dask's ``pre-spawn-environ`` for every nanny this
    process starts from now on (for clusters whose nanny class is not :class:`LabNanny`)."""
    import dask.config

    dask.config.set(
        {f"distributed.nanny.pre-spawn-environ.{name}": None for name in ALLOCATOR_VARIABLES}
    )


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    path = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(path).malloc_trim if path else None
    except (OSError, AttributeError):
        return None


class IdleTrim(WorkerPlugin):
    """Return freed heap memory to the OS when a worker has had no task for ``delay`` s.

    What ``MALLOC_TRIM_THRESHOLD_`` did for Dask (unmanaged memory that the memory monitor
    would otherwise count against the worker), done once per idle spell rather than on
    every ``free``, so a busy task never pays for it.
    """

    name = "lepton-lab-idle-trim"
    idempotent = True

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self._worker: Any = None
        self._pending: Any = None
        self._trim: Any = None
        self.trims = 0

    def setup(self, worker: Any) -> None:
        self._worker = worker
        self._trim = _malloc_trim()

    def teardown(self, worker: Any) -> None:
        if self._pending is not None:
            self._pending.cancel()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        # called in the worker's event loop after every task state change
        if self._trim is None or finish not in ("memory", "error", "released", "forgotten"):
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._worker.loop.asyncio_loop.call_later(self.delay, self._when_idle)

    def _when_idle(self) -> None:
        self._pending = None
        state = self._worker.state
        if state.executing_count or state.ready:
            return  # a long task is still running: its next transition re-arms the timer
        self._trim(0)
        self.trims += 1
