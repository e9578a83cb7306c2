"""Notebook widgets: the cluster view, the fit launcher and the live run monitor.

ipywidgets and bqplot are imported on first use, so ``import lepton_lab`` stays cheap in
kernels that never show a widget.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClusterWidget": "lepton_lab.widgets.cluster",
    "FitLauncher": "lepton_lab.widgets.launcher",
    "RunMonitor": "lepton_lab.widgets.monitor",
    "TextMonitor": "lepton_lab.widgets.text",
}

__all__ = [*_EXPORTS, "widgets_available"]


def widgets_available() -> bool:
    """Whether this process is a Jupyter kernel that can send widgets to a frontend.

    Terminal IPython and plain scripts get the text monitor instead.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import bqplot  # noqa: F401
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lepton_lab.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
