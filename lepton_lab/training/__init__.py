"""Distributed fit on the lab's cluster: rank placement, rendezvous, reporting, restarts.

Names are imported on first use (PEP 562): a rank's TensorFlow process imports
``training.context`` and must not pay for ``fit`` (the store, SQLAlchemy: ~0.3 s of launch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_lab.training.context import RunStopped, TrainContext, context
    from lepton_lab.training.fit import fit

_LAZY = {
    "RunStopped": "lepton_lab.training.context",
    "TrainContext": "lepton_lab.training.context",
    "context": "lepton_lab.training.context",
    "fit": "lepton_lab.training.fit",
}

__all__ = ["RunStopped", "TrainContext", "context", "fit"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
