"""The task each rank runs on its Dask worker: rendezvous, the user's loop, clean-up."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lepton_lab.training.context import RunStopped, TrainContext, set_current
from lepton_lab.training.staging import rank_data


def free_port() -> int:
    """A port free on this worker's host, for this run's rendezvous (fixed ports collide)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def worker_device() -> str:
    """``cuda:0`` on a worker that sees a GPU (Dask-CUDA pins one per worker), else ``cpu``."""
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda:0"
    except ImportError:
        pass
    return "cpu"


class RendezvousTimeout(RuntimeError):
    """Not every rank arrived in time."""


def run_rank(fn: Callable[[Any], Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run one rank of a run; returns its result and usage, or raises the loop's error."""
    rank, world = spec["rank"], spec["world_size"]
    device = worker_device()
    ctx = TrainContext.from_spec(spec, device)
    ctx.data = rank_data(spec, rank, world)
    started = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    gpu_sampler = None
    if device.startswith("cuda"):
        import os

        from lepton_lab.metering.meter import gpu_meter_thread

        gpu_sampler = gpu_meter_thread(lambda: {os.getpid()})
    dist = None
    if spec["framework"] in ("torch", "keras") and world > 1:
        import torch.distributed as dist

        backend = "nccl" if device.startswith("cuda") else "gloo"
        try:
            dist.init_process_group(
                backend,
                init_method=f"tcp://{spec['master_addr']}:{spec['master_port']}",
                rank=rank,
                world_size=world,
                timeout=timedelta(seconds=spec["rendezvous_timeout"]),
            )
        except Exception as exc:  # torch raises DistStoreError / RuntimeError on timeout
            if "timeout" in str(exc).lower() or "timed out" in str(exc).lower():
                raise RendezvousTimeout(
                    f"rank {rank}: not all {world} ranks met at "
                    f"{spec['master_addr']}:{spec['master_port']} within "
                    f"{spec['rendezvous_timeout']:.0f} s"
                ) from exc
            raise
    set_current(ctx)
    stopped = False
    try:
        result = fn(spec["config"]) if spec.get("pass_config", True) else fn()
    except RunStopped:
        result, stopped = None, True
    finally:
        set_current(None)
        ctx.flush()
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.time() - started
    gpu = gpu_sampler.stop() if gpu_sampler is not None else None
    return {
        "rank": rank,
        "result": result,
        "stopped": stopped,
        "usage": {
            "rank": rank,
            "attempt": spec["attempt"],
            "worker": spec["worker"],
            # process CPU time: the worker runs one rank at a time (the run holds its lock)
            "cpu_seconds": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
            # a GPU second: the rank held its GPU (the whole rank, as Dask-CUDA pins one)
            "gpu_seconds": wall if device.startswith("cuda") else 0.0,
            "peak_memory": max(ctx._peak_rss, cpu1.ru_maxrss * 1024),
            "gpu_model": gpu.model if gpu else None,
            "gpu_util_seconds": gpu.util_seconds if gpu else 0.0,
            "gpu_peak_memory": gpu.peak_memory if gpu else 0,
        },
    }


def host_of(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0]
