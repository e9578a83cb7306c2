"""Shapes of the cluster routes (``/cluster``, ``/kernels``, ``/config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from lepton_lab.contract.base import Request, View

ClusterKind = Literal["local", "cuda", "external"]
ClusterState = Literal["stopped", "starting", "running", "error", "closed", "unreachable"]
Device = Literal["cpu", "gpu"]


class ScaleRequest(Request):
    """``PATCH /cluster``: the number of workers to scale a lab-owned cluster to. The upper
    bound is the server's (``max_workers``, or the GPU count on Dask-CUDA), given to
    validation as the context ``max_workers``."""

    workers: int = Field(
        description="the number of workers to scale to", json_schema_extra={"minimum": 0}
    )

    @field_validator("workers")
    @classmethod
    def _within_limit(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get("max_workers")
        if value < 0 or (limit is not None and value > limit):
            raise ValueError(f"'workers' must be between 0 and {limit}, got {value}")
        return value


class WorkerGpu(View):
    name: str | None = None
    utilization: float | None = None
    memory_used: int | None = None
    memory_total: int | None = None


class Worker(View):
    name: str
    address: str
    nthreads: int
    memory_limit: int
    memory_used: int
    cpu: float
    status: str
    gpu: WorkerGpu | None = None


class ClusterTotals(View):
    workers: int = 0
    threads: int = 0
    memory_limit: int = 0
    memory_used: int = 0
    gpus: int = 0


class ClusterEvent(View):
    time: float
    action: Literal["add-worker", "remove-worker"]
    worker: str | None = None
    reason: str | None = None


class ClusterStatus(View):
    """What the lab's cluster is, where, and how loaded."""

    mode: ClusterKind | None = None
    requested_mode: str
    reason: str | None = None
    status: ClusterState
    error: str | None = None
    owned: bool
    scheduler_address: str | None = None
    dashboard_link: str | None = None
    startup_seconds: float | None = None
    max_workers: int
    workers: list[Worker] = []
    totals: ClusterTotals = ClusterTotals()
    events: list[ClusterEvent] = []


class Kernel(View):
    name: str
    display_name: str
    device: Device
    installed: bool
    runs_on: Device


class OtherKernel(View):
    name: str
    display_name: str
    device: None = None


class Kernels(View):
    """The CPU and GPU kernelspecs and whether a GPU is really there."""

    gpu_available: bool
    gpu_count: int
    gpu_names: list[str]
    gpu_reason: str
    kernels: list[Kernel]
    other_kernels: list[OtherKernel]


class ExecutorInfo(View):
    name: str
    description: str


class LabConfig(View):
    """What this server has installed: job executors (from the ``lepton_lab.executors``
    entry points) and optional features, the way jupyter-scheduler's ``/config`` tells."""

    version: str
    default_executor: str
    executors: list[ExecutorInfo]
    features: dict[str, bool]
