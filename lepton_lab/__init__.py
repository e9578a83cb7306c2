"""Lepton Lab: a notebook-first training environment on a Dask cluster.

The public names are re-exported here and imported on first use (PEP 562), so ``import
lepton_lab`` itself loads neither SQLAlchemy, distributed nor a framework: a kernel pays for
``ll.fit`` only when it calls it.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from lepton_lab._version import __version__

if TYPE_CHECKING:
    from lepton_lab import jobs, models, runs, widgets
    from lepton_lab.cluster.attach import attach, detach
    from lepton_lab.jobs.metrics import log_metrics
    from lepton_lab.kernels.device import device
    from lepton_lab.metering import usage
    from lepton_lab.runs.run import Run
    from lepton_lab.training.context import context
    from lepton_lab.training.fit import FitError, fit

# A library leaves output to the application (server log, CLI); no stray stderr lines.
logging.getLogger("lepton_lab").addHandler(logging.NullHandler())

#: public name -> module that defines it (a module itself when the name is a subpackage)
_LAZY = {
    "FitError": "lepton_lab.training.fit",
    "Run": "lepton_lab.runs.run",
    "attach": "lepton_lab.cluster.attach",
    "context": "lepton_lab.training.context",
    "detach": "lepton_lab.cluster.attach",
    "device": "lepton_lab.kernels.device",
    "fit": "lepton_lab.training.fit",
    "jobs": "lepton_lab.jobs",
    "log_metrics": "lepton_lab.jobs.metrics",
    "models": "lepton_lab.models",
    "runs": "lepton_lab.runs",
    "usage": "lepton_lab.metering",
    "widgets": "lepton_lab.widgets",
}

__all__ = [
    "FitError",
    "Run",
    "__version__",
    "attach",
    "context",
    "detach",
    "device",
    "fit",
    "jobs",
    "log_metrics",
    "models",
    "runs",
    "usage",
    "widgets",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'lepton_lab' has no attribute {name!r}")
    module = importlib.import_module(target)
    value = module if target == f"lepton_lab.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from lepton_lab.server.app import LeptonLab

    return [{"module": "lepton_lab.server.app", "app": LeptonLab}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "lepton-lab"}]
