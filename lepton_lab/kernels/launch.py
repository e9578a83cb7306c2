"""Entry point of the ``lepton-cpu`` and ``lepton-gpu`` kernelspecs.

It sets the device defaults in the environment *before* ipykernel starts, so frameworks
imported later in the notebook (torch, TensorFlow, Keras) see them, then runs the ordinary
IPython kernel. The GPU kernel on a machine without a GPU still starts; it says so once, in the
output of the first cell the user runs, and computes on the CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lepton_lab.config.settings import ENV_DEVICE, ENV_POOL


def configure_device(device: str) -> str | None:
    """Apply device defaults to ``os.environ``; return the notice to show, if any."""
    os.environ[ENV_DEVICE] = device
    os.environ[ENV_POOL] = device
    # ll.fit's Keras runs use Keras 3 on the torch backend (docs/decisions/cluster.md); the
    # backend must be chosen before the notebook's first `import keras`. A user's own choice wins.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if device == "cpu":
        # Frameworks choose a visible GPU by default; the CPU kernel must not grab one.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return None
    from lepton_lab.cluster.gpus import probe_gpus

    probe = probe_gpus()
    if not probe.available:
        return f"Lepton Lab: no GPU on this machine: {probe.reason}. The GPU kernel runs on CPU."
    # TensorFlow otherwise reserves all GPU memory at import, starving the Dask-CUDA workers.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    return None


def _show_once(shell: Any, notice: str) -> None:
    def show(*_: Any) -> None:
        shell.events.unregister("pre_run_cell", show)
        print(notice)

    shell.events.register("pre_run_cell", show)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lepton_lab.kernels.launch", add_help=False)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    notice = configure_device(args.device)
    if notice:
        print(notice, file=sys.stderr, flush=True)  # the server log sees it at once

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(rest)
    if notice and app.shell is not None:
        _show_once(app.shell, notice)
    app.start()


if __name__ == "__main__":
    main()
