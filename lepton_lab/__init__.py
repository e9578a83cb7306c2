"""Lepton Lab: a notebook-first training environment on a Dask cluster.

The package's public names are re-exported here; heavy parts (the server, frameworks)
are imported only when used so ``import lepton_lab`` stays cheap inside kernels.
"""

from __future__ import annotations

import logging
from typing import Any

import lepton_lab.widgets as widgets  # cheap: ipywidgets loads with the first widget
from lepton_lab import jobs, runs
from lepton_lab.cluster.attach import attach, detach
from lepton_lab.jobs.metrics import log_metrics
from lepton_lab.kernels.device import device
from lepton_lab.runs.run import Run
from lepton_lab.training.context import context
from lepton_lab.training.fit import FitError, fit

__version__ = "0.1.0"

# A library leaves output to the application (server log, CLI); no stray stderr lines.
logging.getLogger("lepton_lab").addHandler(logging.NullHandler())

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
    "runs",
    "widgets",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from lepton_lab.server.app import LeptonLab

    return [{"module": "lepton_lab.server.app", "app": LeptonLab}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "lepton-lab"}]
