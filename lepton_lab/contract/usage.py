"""Shapes of the usage routes (``/usage``, ``/usage/csv``): what runs, jobs, deployments,
stored files and downloads used over a time window, grouped, and priced when the lab has
prices (``c.LeptonLab.prices``). How the figures are measured: docs/guide/usage.md."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from lepton_lab.contract.base import Request, View

USAGE_GROUPS = ("day", "user", "notebook", "tag", "kind")
UsageGroupBy = Literal[USAGE_GROUPS]  # type: ignore[valid-type]


class UsageQuery(Request):
    """``GET /usage``: the window (ISO dates or times, UTC unless they say otherwise) and the
    grouping."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    start: str | None = Field(
        None,
        alias="from",
        max_length=64,
        description="start of the window: `2026-11-01` or an ISO time (default: 7 days ago)",
    )
    end: str | None = Field(
        None,
        alias="to",
        max_length=64,
        description="end of the window, exclusive; a date means the end of that day (default: now)",
    )
    group_by: UsageGroupBy = Field(
        "day", description="one row per day, user, notebook, tag or kind"
    )


class UsageFigures(View):
    """Sums over the records of one group (or all of them)."""

    records: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    #: GPU hours per GPU model name (NVML's)
    gpu_hours_by_model: dict[str, float] = Field(default_factory=dict)
    #: GPU busy hours: utilisation integrated over the time a GPU was held
    gpu_util_hours: float = 0.0
    #: wall hours of runs and jobs
    wall_hours: float = 0.0
    #: the highest peak of one record (host memory, bytes)
    peak_memory: int = 0
    gpu_peak_memory: int = 0
    #: deployments: hours up (ready until ended, or the window's end) and requests served
    uptime_hours: float = 0.0
    requests: int = 0
    #: checkpoints, job outputs and model artifacts that existed at the window's end
    storage_bytes: int = 0
    #: byte-months of storage during the window (what ``gb_month`` prices)
    storage_gb_months: float = 0.0
    #: bytes downloaded through the REST API, and read by jobs on the Dask executor
    moved_bytes: int = 0
    #: in the lab's price units; None when the lab has no prices
    cost: float | None = None


class UsageGroup(UsageFigures):
    key: str = Field(description="the day (YYYY-MM-DD), user, notebook, tag or kind")


class UsageReport(View):
    """``GET /usage``: groups in order (days ascending, the others by cost or CPU hours,
    largest first) and the total. A record with several tags counts under each of them, so
    with ``group_by=tag`` the groups can sum to more than the total."""

    start: float = Field(description="the window's start, seconds since the epoch")
    end: float = Field(description="the window's end, seconds since the epoch")
    group_by: UsageGroupBy
    priced: bool = Field(description="whether costs are given (the lab has prices)")
    groups: list[UsageGroup]
    total: UsageFigures
