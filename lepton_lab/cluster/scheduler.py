"""Questions for a Dask scheduler that several parts ask (fit, the manager, widgets, demo)."""

from __future__ import annotations

from typing import Any


def scheduler_identity(client: Any, timeout: float | None = None) -> dict[str, Any]:
    """The scheduler's identity with every worker, fetched for this call.

    Not ``client.scheduler_info()``: that fetches into a shared attribute and returns it, and
    the client's own 2-second refresh writes a worker-less identity into the same attribute,
    so under contention the answer can lack the workers (a run then saw its workers "lost").

    With ``timeout``, a scheduler that does not answer within that many seconds raises
    ``TimeoutError`` (a lost one otherwise holds the caller for Dask's connect timeout).
    """
    return client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=timeout)
