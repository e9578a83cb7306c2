"""Any Dask cluster class as the lab's cluster: ``{"module", "class", "args", "kwargs"}``, the
shape dask-labextension's ``labextension.factory`` uses, so a config written for one works for
the other.
"""

from __future__ import annotations

import importlib
from typing import Any

from lepton_lab.cluster.errors import ClusterError

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
        module = importlib.import_module(spec["module"])
    except ImportError as exc:
        raise ClusterError(
            f"cluster_factory: cannot import {spec['module']!r} ({exc}); install the package "
            "that provides it in the server's environment"
        ) from exc
    cls = getattr(module, spec["class"], None)
    if not isinstance(cls, type):
        raise ClusterError(f"cluster_factory: {spec['module']} has no class {spec['class']!r}")
    return cls


def start_factory_cluster(spec: dict[str, Any]) -> Any:
    """``cls(*args, **kwargs)``; arguments it rejects are reported with its own message."""
    cls = load_cluster_class(spec)
    try:
        return cls(*spec["args"], **spec["kwargs"])
    except (TypeError, ValueError) as exc:
        raise ClusterError(
            f"cluster_factory: {factory_name(spec)} rejected its arguments: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


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
