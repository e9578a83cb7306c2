"""Shapes of the run routes (``/runs``...)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lepton_lab.contract.base import Request, View
from lepton_lab.contract.models import ModelRef
from lepton_lab.store.schema import RUN_STATUSES

RunStatus = Literal[RUN_STATUSES]  # type: ignore[valid-type]


class RunQuery(Request):
    """``GET /runs``: newest first."""

    status: RunStatus | None = None
    limit: int = Field(100, ge=1, le=1000)


class MetricsQuery(Request):
    """``GET /runs/{id}/metrics``: values after the cursor ``since``."""

    since: int = Field(0, ge=0, le=2**62)
    limit: int = Field(10000, ge=1, le=100000)


class RunUsage(View):
    rank: int
    attempt: int
    worker: str
    cpu_seconds: float
    gpu_seconds: float
    peak_memory: int


class RunEvent(View):
    id: int
    time: float
    kind: str
    rank: int | None = None
    message: str = ""
    data: dict[str, Any] = {}


class Run(View):
    """One ``ll.fit`` call. In listings ``usage`` and ``events`` are left out and ``step``
    and ``last_metrics`` summarise the progress."""

    id: str
    name: str = ""
    framework: str
    status: RunStatus
    params: dict[str, Any] = {}
    world_size: int
    attempts: int = 0
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    error_rank: int | None = None
    step: int | None = Field(None, description="the highest step reported so far")
    last_metrics: dict[str, float] = Field({}, description="the last reported value of each metric")
    usage: list[RunUsage] | None = None
    events: list[RunEvent] | None = None
    models: list[ModelRef] = Field([], description="the model versions this run registered")


class RunList(View):
    runs: list[Run]


class Metric(View):
    id: int
    rank: int
    step: int
    name: str
    value: float
    time: float


class MetricsPage(View):
    run_id: str
    since: int
    next: int = Field(description="the cursor to poll with next")
    metrics: list[Metric]


class StopAccepted(View):
    """A stop was asked for; the run or job stops shortly (202)."""

    id: str
    status: str
    stop_requested: bool = True
