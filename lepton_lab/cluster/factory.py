"""Any Dask cluster class as the lab's cluster: ``{"module", "class", "args", "kwargs"}``, the
shape dask-labextension's ``labextension.factory`` uses, so a config written for one works for
the other.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lepton_lab.cluster.errors import ClusterError

log = logging.getLogger("lepton_lab.cluster")

#: the keys a factory may have
FACTORY_KEYS = ("module", "class", "args", "kwargs")


def check_factory(spec: Any) -> dict[str, Any]:
    """The factory with its defaults filled in, or a ClusterError that says what is wrong."""
    if not isinstance(spec, dict):
        raise ClusterError(
            "cluster_factory must be a dict like {'module': 'dask_jobqueue', 'class': "
            f"'SLURMCluster', 'kwargs': {{...}}}}, got {type(spec).__name__}"
        )
    unknown = sorted(set(spec) - set(FACTORY_KEYS))
    if unknown:
        raise ClusterError(
            f"cluster_factory has unknown key(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(FACTORY_KEYS)}"
        )
    module, name = spec.get("module"), spec.get("class")
    if not isinstance(module, str) or not module or not isinstance(name, str) or not name:
        raise ClusterError("cluster_factory needs 'module' and 'class' as non-empty strings")
    args, kwargs = spec.get("args") or [], spec.get("kwargs") or {}
    if not isinstance(args, (list, tuple)):
        raise ClusterError(f"cluster_factory 'args' must be a list, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise ClusterError(f"cluster_factory 'kwargs' must be a dict, got {type(kwargs).__name__}")
    return {"module": module, "class": name, "args": list(args), "kwargs": dict(kwargs)}


def factory_name(spec: dict[str, Any]) -> str:
    return f"{spec['module']}.{spec['class']}"


def load_cluster_class(spec: dict[str, Any]) -> type:
    """Import the factory's class; a missing module or class is one readable line."""
    try:
        with _signal_handlers_kept():
            module = importlib.import_module(spec["module"])
    except ImportError as exc:
        raise ClusterError(
            f"cluster_factory: cannot import {spec['module']!r} ({exc}); install the package "
            "that provides it in the server's environment"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a module that fails as it imports
        raise ClusterError(
            f"cluster_factory: importing {spec['module']!r} failed: {_one_line(exc)}"
        ) from exc
    cls = getattr(module, spec["class"], None)
    if not isinstance(cls, type):
        raise ClusterError(f"cluster_factory: {spec['module']} has no class {spec['class']!r}")
    return cls


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Import without letting the module install signal handlers. dask-jobqueue 0.9 sets
    ``SIGINT -> sys.exit()`` when imported (dask_jobqueue/runner.py): off the main thread, where
    the lab starts its cluster, that raises "signal only works in main thread"; on it, it
    would replace the server's (or a kernel's) own Ctrl-C handling. Calls from other threads
    pass through."""
    real = signal.signal
    importer = threading.get_ident()

    def keep(signalnum: Any, handler: Any) -> Any:
        if threading.get_ident() != importer:
            return real(signalnum, handler)
        log.debug("cluster_factory: ignored a signal handler set by the import (%s)", signalnum)
        return signal.getsignal(signalnum)

    signal.signal = keep
    try:
        yield
    finally:
        signal.signal = real


def start_factory_cluster(spec: dict[str, Any]) -> Any:
    """``cls(*args, **kwargs)``; whatever it raises becomes one line that names the class:
    arguments it rejects with its own message, a failed start with its root cause (Dask's
    "Nanny failed to start." hides a worker's TypeError, say)."""
    cls = load_cluster_class(spec)
    try:
        return cls(*spec["args"], **spec["kwargs"])
    except (TypeError, ValueError) as exc:
        raise ClusterError(
            f"cluster_factory: {factory_name(spec)} rejected its arguments: {_one_line(exc)}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any class's failure is reported the same way
        raise ClusterError(
            f"cluster_factory: {factory_name(spec)} failed to start: {_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, and the root cause's when there is one."""

    def line(e: BaseException) -> str:
        text = str(e).strip().splitlines()
        first = text[0] if text else ""
        first = first if len(first) <= 300 else first[:297] + "..."
        return f"{type(e).__name__}: {first}" if first else type(e).__name__

    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    return line(exc) if root is exc else f"{line(exc)} (caused by {line(root)})"


def class_name(cluster: Any) -> str:
    """``module.Class`` of a cluster object, the public module where the class is exported
    from (``distributed.LocalCluster``, not ``distributed.deploy.local.LocalCluster``)."""
    cls = type(cluster)
    top = cls.__module__.split(".")[0]
    try:
        if getattr(importlib.import_module(top), cls.__name__, None) is cls:
            return f"{top}.{cls.__name__}"
    except ImportError:
        pass
    return f"{cls.__module__}.{cls.__qualname__}"


#: the fields of ``distributed.security.Security`` a client needs, as PEM text
TLS_FIELDS = ("tls_ca_file", "tls_client_cert", "tls_client_key")


def client_security(cluster: Any) -> dict[str, str] | None:
    """The TLS credentials another process needs to connect to this cluster, as PEM text
    (``Security(**creds, require_encryption=True)`` rebuilds them), or None for a cluster
    without TLS. dask-gateway keeps its per-cluster key and self-signed certificate in memory
    only (``GatewaySecurity.tls_key``/``tls_cert``; the certificate is also the CA), so a
    kernel given only the ``gateway://`` address cannot connect."""
    security = getattr(cluster, "security", None)
    if security is None:
        return None
    key, cert = getattr(security, "tls_key", None), getattr(security, "tls_cert", None)
    if isinstance(key, str) and isinstance(cert, str):  # dask_gateway.GatewaySecurity
        return {"tls_ca_file": cert, "tls_client_cert": cert, "tls_client_key": key}
    values = {name: getattr(security, name, None) for name in TLS_FIELDS}
    if not values["tls_ca_file"] or not values["tls_client_cert"]:
        return None
    out: dict[str, str] = {}
    for name, value in values.items():
        if not value:
            continue
        # a path is read here: the kernel may not see the server's files (another user's
        # home, a container); text with a newline is PEM already
        out[name] = value if "\n" in value else Path(value).read_text()
    return out
