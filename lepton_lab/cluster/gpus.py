"""GPU discovery through NVML, the same library the NVIDIA driver ships.

NVML is asked, not CUDA: it answers in milliseconds without creating a CUDA context, so the
server can decide between a CPU and a Dask-CUDA cluster before any framework is imported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuProbe:
    """What NVML said about this machine's GPUs; ``reason`` explains a count of zero."""

    count: int
    names: tuple[str, ...] = field(default_factory=tuple)
    memory_total: tuple[int, ...] = field(default_factory=tuple)
    driver: str | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.count > 0


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _probe() -> GpuProbe:
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return GpuProbe(0, reason="nvidia-ml-py is not installed, so GPUs cannot be detected")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return GpuProbe(0, reason="no NVIDIA driver found (NVML library not found)")
    except pynvml.NVMLError as exc:
        return GpuProbe(0, reason=f"NVML could not start: {exc}")
    try:
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        names = tuple(_decode(pynvml.nvmlDeviceGetName(h)) for h in handles)
        memory = tuple(int(pynvml.nvmlDeviceGetMemoryInfo(h).total) for h in handles)
        driver = _decode(pynvml.nvmlSystemGetDriverVersion())
    except pynvml.NVMLError as exc:
        return GpuProbe(0, reason=f"NVML failed to list GPUs: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    reason = f"NVML found {count} GPU(s): {', '.join(names)}" if count else "NVML found no GPUs"
    return GpuProbe(count, names, memory, driver, reason)


@functools.lru_cache(maxsize=1)
def probe_gpus() -> GpuProbe:
    """Probe once per process; GPUs do not come and go while a server runs."""
    return _probe()
