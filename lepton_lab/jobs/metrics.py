"""``ll.log_metrics(**values)``: metrics a job notebook records on its job.

The kernel of a job inherits the path of the job's metrics file from the runner; values are
appended there as JSON lines and the job's supervisor moves them into the store while the job
runs. Outside a job the values are only returned (and a warning says so once), so the same
notebook runs interactively and as a job.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings

from lepton_lab.jobs.workdir import ENV_JOB_METRICS_FILE

_warned = False


def log_metrics(**values: float) -> dict[str, float]:
    """Record numeric metrics on the current job; returns what was recorded."""
    global _warned
    clean: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)  # numpy and torch scalars
            except (TypeError, ValueError):
                raise TypeError(
                    f"metric {name!r} must be a number, got {type(value).__name__}"
                ) from None
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be finite, got {value}")
        clean[name] = float(value)
    path = os.environ.get(ENV_JOB_METRICS_FILE)
    if not path:
        if not _warned:
            warnings.warn(
                "ll.log_metrics: not running as a Lepton Lab job, so the metrics are not stored",
                stacklevel=2,
            )
            _warned = True
        return clean
    now = time.time()
    with open(path, "a", encoding="utf-8") as f:
        for name, value in clean.items():
            f.write(json.dumps({"name": name, "value": value, "time": now}) + "\n")
    return clean
