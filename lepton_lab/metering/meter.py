"""Measuring work while it runs: a process tree's memory, I/O and GPU use, sampled.

CPU time needs no sampling: the kernel counts it (``getrusage``), for reaped children too, so
a job's runner reads its whole tree's CPU exactly when it ends. What the kernel does not keep
is sampled here in one daemon thread: the tree's summed resident memory (its peak), the bytes
its processes read, and, through NVML, whether a process of the tree holds a GPU, how busy
that GPU was and how much of its memory the tree used.

NVML (``nvidia-ml-py``, the ``gpu`` extra) is imported lazily; without it or a driver, the
GPU figures stay zero. ``LEPTON_LAB_METERING=0`` turns sampling off (the bench compares).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("lepton_lab.metering")

#: ``0`` turns the sampling thread off (CPU time is still counted)
ENV_METERING = "LEPTON_LAB_METERING"
#: seconds between samples (a sample of a small tree costs about 2 ms of CPU)
INTERVAL = 1.0


def enabled() -> bool:
    return os.environ.get(ENV_METERING, "1") not in ("0", "false", "no", "off")


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _nvidia_devices() -> bool:
    """Whether this machine shows NVIDIA device nodes (Linux); elsewhere, assume it may."""
    import glob
    import sys

    if not sys.platform.startswith("linux"):
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/nvidiactl")


class GpuMeter:
    """NVML samples of the GPUs this process may use (``CUDA_VISIBLE_DEVICES``): seconds a
    GPU was held by one of ``pids()``, its utilisation integrated over that time, the most GPU
    memory those processes used, and the GPU's model name."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.util_seconds = 0.0
        self.peak_memory = 0
        self.model: str | None = None
        self._nvml: Any = None
        self._handles: list[Any] = []
        if not _nvidia_devices():
            return  # no driver's device nodes: skip importing NVML (tens of ms per process)
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # noqa: BLE001 - no library, no driver: no GPU to meter
            return
        self._nvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._handles = self._visible(handles)
        except pynvml.NVMLError as exc:
            log.debug("NVML could not list GPUs: %s", exc)
            self._handles = []

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def _visible(self, handles: list[Any]) -> list[Any]:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return handles
        chosen = []
        for item in (v.strip() for v in visible.split(",") if v.strip()):
            if item.isdigit() and int(item) < len(handles):
                chosen.append(handles[int(item)])
            else:  # a UUID (Dask-CUDA may pin by UUID)
                for handle in handles:
                    if _decode(self._nvml.nvmlDeviceGetUUID(handle)).startswith(item):
                        chosen.append(handle)
        return chosen

    def sample(self, pids: set[int], dt: float) -> None:
        nvml = self._nvml
        for handle in self._handles:
            try:
                procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except nvml.NVMLError:
                continue
            ours = [p for p in procs if p.pid in pids]
            if not ours:
                continue
            self.seconds += dt
            try:
                self.util_seconds += nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100 * dt
                if self.model is None:
                    self.model = _decode(nvml.nvmlDeviceGetName(handle))
            except nvml.NVMLError:
                pass
            used = sum(int(p.usedGpuMemory or 0) for p in ours)
            self.peak_memory = max(self.peak_memory, used)

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            self._nvml = None


class TreeMeter:
    """Samples process ``pid`` and its descendants every ``interval`` seconds until
    :meth:`stop`; with ``snapshot``, writes the figures so far there (0600) every few
    seconds, so that a supervisor that kills the tree still knows what it used."""

    def __init__(
        self,
        pid: int | None = None,
        interval: float = INTERVAL,
        snapshot: Path | None = None,
        gpu: bool = True,
    ) -> None:
        import psutil

        self.root = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.snapshot = snapshot
        self.started_at = time.time()
        self.peak_memory = 0
        self.cpu_seconds = 0.0
        self._cpu: dict[int, float] = {}
        self._read: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gpu_wanted = gpu
        self.gpu: GpuMeter | None = None

    def start(self) -> TreeMeter:
        if enabled():
            self._thread = threading.Thread(target=self._loop, name="lepton-meter", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        if self._gpu_wanted:
            self.gpu = GpuMeter()
            if not self.gpu.active:
                self.gpu.close()
                self.gpu = None
        last = time.monotonic()
        written = 0.0
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            self.sample(now - last)
            last = now
            if self.snapshot is not None and now - written >= 2.0:
                self._write()
                written = now

    def sample(self, dt: float = 0.0) -> None:
        """One look at the tree (the thread calls this; a test may too)."""
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        pids = set()
        for proc in procs:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    self._cpu[proc.pid] = (
                        times.user + times.system + times.children_user + times.children_system
                    )
                    io = proc.io_counters() if hasattr(proc, "io_counters") else None
                    if io is not None:
                        self._read[proc.pid] = max(self._read.get(proc.pid, 0), io.read_chars)
                pids.add(proc.pid)
            except (psutil.Error, OSError):
                continue
        self.peak_memory = max(self.peak_memory, rss)
        self.cpu_seconds = max(self.cpu_seconds, sum(self._cpu.values()))
        if self.gpu is not None and dt > 0:
            self.gpu.sample(pids, dt)

    def figures(self, cpu_seconds: float | None = None) -> dict[str, Any]:
        gpu = self.gpu
        return {
            "started_at": self.started_at,
            "wall_seconds": time.time() - self.started_at,
            "cpu_seconds": self.cpu_seconds if cpu_seconds is None else cpu_seconds,
            "peak_memory": self.peak_memory,
            "read_bytes": sum(self._read.values()),
            "gpu_seconds": gpu.seconds if gpu else 0.0,
            "gpu_util_seconds": gpu.util_seconds if gpu else 0.0,
            "gpu_peak_memory": gpu.peak_memory if gpu else 0,
            "gpu_model": gpu.model if gpu else None,
            "sampled": self._thread is not None,
        }

    def _write(self) -> None:
        from lepton_lab.config.files import private_file

        assert self.snapshot is not None
        tmp = self.snapshot.with_name(self.snapshot.name + ".tmp")
        try:
            private_file(tmp).write_text(json.dumps(self.figures()), encoding="utf-8")
            os.replace(tmp, self.snapshot)
        except OSError as exc:
            log.debug("could not write the usage snapshot: %s", exc)

    def stop(self, cpu_seconds: float | None = None) -> dict[str, Any]:
        """End sampling; the figures, with ``cpu_seconds`` (exact, from ``getrusage``) when
        the caller has them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.gpu is not None:
            self.gpu.close()
        figures = self.figures(cpu_seconds)
        if self.snapshot is not None:
            self._write_final(figures)
        return figures

    def _write_final(self, figures: dict[str, Any]) -> None:
        from lepton_lab.config.files import private_file

        try:
            private_file(self.snapshot).write_text(json.dumps(figures), encoding="utf-8")
        except OSError:
            pass


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of every child it (or they) waited for."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def gpu_meter_thread(pids: Callable[[], set[int]], interval: float = 1.0) -> Any:
    """A started sampler of the GPUs this process sees, for ``pids()``; ``stop()`` ends it
    and returns its :class:`GpuMeter` (None without NVML or a visible GPU)."""

    class _Sampler:
        def __init__(self) -> None:
            self.meter = GpuMeter()
            self._stop = threading.Event()
            self._thread = None
            if self.meter.active and enabled():
                self._thread = threading.Thread(target=self._loop, daemon=True)
                self._thread.start()

        def _loop(self) -> None:
            last = time.monotonic()
            while not self._stop.wait(interval):
                now = time.monotonic()
                self.meter.sample(pids(), now - last)
                last = now

        def stop(self) -> GpuMeter | None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(5)
            self.meter.close()
            return self.meter if self.meter.active else None

    return _Sampler()
