"""The demo notebooks in notebooks/ and the order a newcomer runs them in: each may use what an
earlier one made (05 promotes 01's candidate, evaluate.ipynb scores the promoted version).
The demo tests and bench/bench_demos.py both run them in this order."""

from __future__ import annotations

from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: every notebook in notebooks/, in the order they run (a new one must be added here)
ORDER = [
    "01_quickstart.ipynb",
    "02_pytorch_ddp.ipynb",
    "03_tensorflow.ipynb",
    "04_notebook_to_job.ipynb",
    "05_evaluate_promote_serve.ipynb",
    "06_gpu.ipynb",
    "evaluate.ipynb",
]
