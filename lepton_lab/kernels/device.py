"""Which device a Lepton kernel computes on."""

from __future__ import annotations

import os

from lepton_lab.config.settings import ENV_DEVICE


def device() -> str:
    """``"cuda"`` in the GPU kernel on a machine with a GPU, else ``"cpu"``.

    Use it where a framework wants a device string: ``model.to(ll.device())``.
    """
    if os.environ.get(ENV_DEVICE) != "gpu":
        return "cpu"
    from lepton_lab.cluster.gpus import probe_gpus

    return "cuda" if probe_gpus().available else "cpu"
