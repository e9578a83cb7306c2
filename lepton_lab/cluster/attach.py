"""``ll.attach()``: the one call a notebook makes to reach the lab's cluster.

Under the lab, the server exports the scheduler address to every kernel (and a state file for
kernels started before the cluster was ready). Anywhere else (a script, a papermill run, a
test) the first ``attach()`` starts an embedded local cluster that lives as long as the process.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_lab.config.settings import ENV_CLUSTER_FILE, ENV_SCHEDULER_ADDRESS

if TYPE_CHECKING:
    from distributed import Client

    from lepton_lab.cluster.manager import ClusterManager

_lock = threading.Lock()
_client: Client | None = None
_embedded: ClusterManager | None = None


def lab_scheduler_address(timeout: float = 60.0) -> str | None:
    """The lab's scheduler address from the environment, or None when not under the lab.

    Waits (up to ``timeout``) while the server's cluster is still starting, and raises a
    readable error when it failed to start.
    """
    address = os.environ.get(ENV_SCHEDULER_ADDRESS)
    if address:
        return address
    state_file = os.environ.get(ENV_CLUSTER_FILE)
    if not state_file:
        return None
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while True:
        try:
            state = json.loads(Path(state_file).read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("status") == "running" and state.get("scheduler_address"):
            return str(state["scheduler_address"])
        if state.get("status") == "error":
            raise RuntimeError(f"the lab's cluster failed to start: {state.get('error')}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the lab's cluster was not ready after {timeout:.0f} s "
                f"(last state: {state.get('status', 'unknown')}; file {state_file})"
            )
        time.sleep(0.2)


def attach(address: str | None = None, *, timeout: float = 60.0) -> Client:
    """Return a ``distributed.Client`` to the lab's cluster (or an embedded local one).

    The client is created once per process and reused, so every cell that calls ``attach()``
    shares it. Pass ``address`` to reach another scheduler explicitly.
    """
    global _client, _embedded
    from distributed import Client

    with _lock:
        target = address or lab_scheduler_address(timeout)
        if _client is not None and _client.status not in ("closed", "closing"):
            if target is None and _embedded is not None:
                return _client
            if target is not None and _client.scheduler.address == _normalise(target):
                return _client
            _client.close()
            _client = None
        if target is not None:
            _client = Client(target, timeout=timeout, set_as_default=True)
            return _client
        if _embedded is None:
            from lepton_lab.cluster.manager import ClusterManager

            # Embedded default: a small local cluster; no dashboard port to collide on.
            manager = ClusterManager(mode="auto", dashboard_address="127.0.0.1:0")
            manager.start()
            _embedded = manager
            atexit.register(detach)
        _client = Client(_embedded.scheduler_address, timeout=timeout, set_as_default=True)
        return _client


def embedded_cluster() -> ClusterManager | None:
    """The cluster this process started for itself, if ``attach()`` started one."""
    return _embedded


def detach() -> None:
    """Close this process's client and stop the embedded cluster if it started one."""
    global _client, _embedded
    with _lock:
        if _client is not None:
            _client.close()
            _client = None
        if _embedded is not None:
            _embedded.close()
            _embedded = None


def _normalise(address: str) -> str:
    return address if "://" in address else f"tcp://{address}"
