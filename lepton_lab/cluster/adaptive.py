"""Adaptive scaling that also counts the workers a run is waiting for.

Dask's :class:`~distributed.deploy.Adaptive` sizes a cluster from the scheduler's task load.
That is right for a Dask array, but not for ``ll.fit``: its ranks are pinned to workers that
must exist before anything is submitted, so an adaptive cluster at 0 workers would never grow
for it. A run therefore writes how many workers it needs into the scheduler's metadata (the
scheduler is the one place both the kernel and the cluster's owner reach), and
:class:`LabAdaptive` takes the larger of Dask's target and those requests. The owner also
writes its bounds there, so a kernel knows the cluster is adaptive and how far it may grow.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed.deploy.adaptive import Adaptive

#: scheduler metadata: the owner's adaptive bounds, and the workers that runs are waiting for
ADAPT_KEY = ["lepton-lab", "adapt"]
REQUESTS_KEY = ["lepton-lab", "worker-requests"]


def live_requests(requests: dict[str, Any] | None, now: float | None = None) -> int:
    """The largest worker count asked for by a request that has not expired (a kernel that
    died while waiting must not hold workers up for good)."""
    now = time.time() if now is None else now
    counts = [
        int(r.get("workers", 0))
        for r in (requests or {}).values()
        if isinstance(r, dict) and float(r.get("expires", 0)) > now
    ]
    return max(counts, default=0)


class LabAdaptive(Adaptive):
    """Dask's adaptive policy, raised to the largest live worker request of a run."""

    async def target(self) -> int:
        load = await super().target()
        requests = await self.scheduler.get_metadata(keys=REQUESTS_KEY, default={})
        return max(load, live_requests(requests))


def adapt_bounds(client: Any) -> dict[str, int] | None:
    """The owner's adaptive bounds (``{"minimum", "maximum"}``), or None when the cluster
    is not adaptive."""
    bounds = client.get_metadata(ADAPT_KEY, default=None)
    return bounds if isinstance(bounds, dict) and "maximum" in bounds else None


def requested_workers(client: Any) -> int:
    """The largest live worker request of a run on this client's scheduler (0 when the
    metadata cannot be read: a status never fails on this figure)."""
    try:
        return live_requests(client.get_metadata(REQUESTS_KEY, default={}))
    except Exception:  # noqa: BLE001
        return 0


def adapt_status(client: Any, bounds: dict[str, Any] | None = None) -> dict[str, int] | None:
    """The status's ``adapt``: the bounds (given by the owner, else read from the scheduler,
    where the lab's owner wrote them) and the workers runs are waiting for; None when the
    cluster is not adaptive. One shape for the lab's status, the CLI and the widget."""
    bounds = bounds if bounds is not None else adapt_bounds(client)
    if bounds is None:
        return None
    return {
        "minimum": int(bounds["minimum"]),
        "maximum": int(bounds["maximum"]),
        "requested": requested_workers(client),
    }


@contextmanager
def workers_requested(client: Any, workers: int, hold: float) -> Iterator[None]:
    """Ask an adaptive cluster for ``workers`` while the block runs, for at most ``hold``
    seconds (after that the run's tasks keep their workers busy, and Dask never retires a
    busy worker)."""
    key = [*REQUESTS_KEY, uuid.uuid4().hex]
    client.set_metadata(key, {"workers": int(workers), "expires": time.time() + hold})
    try:
        yield
    finally:
        try:
            client.set_metadata(key, {"workers": 0, "expires": 0})
        except Exception:  # noqa: BLE001 - a gone scheduler has no request to drop
            pass
