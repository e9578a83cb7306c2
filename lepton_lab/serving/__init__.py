"""Serving: a registered version behind an Open Inference Protocol endpoint (MLServer), as a
supervised deployment (docs/guide/serving.md).

``serve("digits@production")`` is ``ll.models.serve``: it starts the deployment from this
process and returns its handle (``.url``, ``.wait_ready()``, ``.stop()``). MLServer is
imported only by the model server process, so this package imports without the ``serving``
extra; starting a deployment without it fails with the install hint.
"""

from __future__ import annotations

import atexit
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_lab.serving.supervisor import Supervisor

_started: list[Supervisor] = []


def require_mlserver() -> None:
    """A readable error where the ``serving`` extra is missing."""
    if importlib.util.find_spec("mlserver") is None:
        raise RuntimeError(
            "serving needs MLServer: pip install 'lepton-lab[serving]' (docs/guide/serving.md)"
        )


def serve(
    model: str,
    version: str | int | None = None,
    *,
    format: str | None = None,
    port: int | None = None,
    host: str = "127.0.0.1",
    workers: int = 0,
    max_batch_size: int = 32,
    max_batch_delay_ms: float = 5.0,
    max_request_bytes: int = 16 << 20,
    max_restarts: int = 3,
    wait: bool = True,
    timeout: float | None = 180.0,
    owner: str = "kernel",
    store: Any = None,
    state: Any = None,
) -> Supervisor:
    """Serve ``model`` (``name@alias``, ``name:version``, ``name``; or ``version=``) from this
    process; the deployment stops with ``.stop()`` or when this process exits."""
    from lepton_lab.contract import parse
    from lepton_lab.contract.serving import DeploymentRequest
    from lepton_lab.serving import supervisor
    from lepton_lab.store import open_store

    require_mlserver()
    ref = model if version is None else f"{model}:{version}"
    if isinstance(version, str) and version.startswith("@"):
        ref = f"{model}{version}"
    request = parse(
        DeploymentRequest,
        {
            "model": ref,
            "format": format,
            "host": host,
            "port": port,
            "workers": workers,
            "max_batch_size": max_batch_size,
            "max_batch_delay_ms": float(max_batch_delay_ms),
            "max_request_bytes": max_request_bytes,
            "max_restarts": max_restarts,
        },
    )
    handle = supervisor.start(store or open_store(), request, owner=owner, state=state)
    if not _started:
        atexit.register(_stop_all)
    _started.append(handle)
    if wait:
        handle.wait_ready(timeout)
    return handle


def _stop_all() -> None:
    for handle in _started:
        handle.stop()


__all__ = ["require_mlserver", "serve"]
