"""Shapes of the cluster routes (``/cluster``, ``/kernels``, ``/config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from lepton_lab.contract.base import Request, View

ClusterKind = Literal["local", "cuda", "factory", "external"]
ClusterState = Literal["stopped", "starting", "running", "error", "closed", "unreachable"]
Device = Literal["cpu", "gpu"]


class AdaptRequest(Request):
    """Dask's adaptive scaling between ``minimum`` and ``maximum`` workers."""

    minimum: int = Field(0, description="workers kept when idle", json_schema_extra={"minimum": 0})
    maximum: int = Field(
        description="workers at most; at most the server's max_workers",
        json_schema_extra={"minimum": 0},
    )

    @model_validator(mode="after")
    def _ordered(self, info: ValidationInfo) -> AdaptRequest:
        limit = (info.context or {}).get("max_workers")
        if self.minimum < 0 or self.maximum < 0:
            raise ValueError(
                f"'adapt' needs non-negative minimum and maximum, got {self.minimum} and "
                f"{self.maximum}"
            )
        if self.minimum > self.maximum:
            raise ValueError(
                f"'adapt' minimum ({self.minimum}) is more than its maximum ({self.maximum})"
            )
        if limit is not None and self.maximum > limit:
            raise ValueError(f"'adapt' maximum must be at most {limit}, got {self.maximum}")
        return self


class ScaleRequest(Request):
    """``PATCH /cluster``: either a fixed number of ``workers`` (which also turns adaptive
    scaling off) or ``adapt`` bounds (which turn it on). The upper bound is the server's
    (``max_workers``, or the GPU count on Dask-CUDA), given to validation as the context
    ``max_workers``."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"minProperties": 1, "maxProperties": 1},
    )

    # `None` is only the default: a request never sends null (the schema says integer/object)
    workers: int = Field(  # type: ignore[assignment]
        None,
        description="the number of workers to scale to (turns adaptive scaling off)",
        json_schema_extra={"minimum": 0},
    )
    adapt: AdaptRequest = Field(  # type: ignore[assignment]
        None, description="adaptive scaling between minimum and maximum workers"
    )

    @field_validator("workers")
    @classmethod
    def _within_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        limit = (info.context or {}).get("max_workers")
        if value is not None and (value < 0 or (limit is not None and value > limit)):
            raise ValueError(f"'workers' must be between 0 and {limit}, got {value}")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ScaleRequest:
        if (self.workers is None) == (self.adapt is None):
            raise ValueError(
                "send either 'workers' (a fixed size) or 'adapt' ({'minimum': m, 'maximum': n})"
                ", not both and not neither"
            )
        return self


class AdaptStatus(View):
    minimum: int
    maximum: int
    #: workers that runs (``ll.fit``) have asked for and not yet let go
    requested: int = 0


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
    cluster_class: str | None = Field(
        None, description="the Dask cluster class the lab runs, e.g. distributed.LocalCluster"
    )
    adapt: AdaptStatus | None = Field(None, description="adaptive scaling, when it is on")
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
    #: installed notification channels (the ``lepton_lab.notification_channels`` entry points)
    channels: list[ExecutorInfo] = []
    features: dict[str, bool]
