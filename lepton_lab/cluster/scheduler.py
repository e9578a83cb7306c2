"""Questions for a Dask scheduler that several parts ask (fit, the manager, widgets, demo)."""

from __future__ import annotations

from typing import Any


def scheduler_identity(client: Any) -> dict[str, Any]:
    """The scheduler's identity with every worker, fetched for this call.

    Not ``client.scheduler_info()``: that fetches into a shared attribute and returns it, and
    the client's own 2-second refresh writes a worker-less identity into the same attribute,
    so under contention the answer can lack the workers (a run then saw its workers "lost").
    """
    return client.sync(client.scheduler.identity, n_workers=-1)
