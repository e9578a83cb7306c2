"""Notebook jobs and schedules: papermill runs with parameters, retries, timeouts, a queue,
cron schedules and logs (``ll.jobs.submit``, ``ll.jobs.schedule``, ``ll.jobs.list``).

The public names come from :mod:`lepton_lab.jobs.client` on first use, so the engine's
modules (the dispatcher, executors, spec) import without pulling in the Python client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lepton_lab.contract import RequestError as JobRequestError
    from lepton_lab.jobs.client import (
        Job,
        Schedule,
        get,
        list_jobs,
        list_schedules,
        schedule,
        submit,
    )

_CLIENT = ("Job", "Schedule", "get", "list_jobs", "list_schedules", "schedule", "submit")

__all__ = [
    "Job",
    "JobRequestError",
    "Schedule",
    "get",
    "list",
    "list_jobs",
    "list_schedules",
    "schedule",
    "submit",
]


def __getattr__(name: str) -> Any:
    if name == "JobRequestError":
        from lepton_lab.contract import RequestError

        return RequestError
    if name == "list":  # ll.jobs.list(), the name the product design gives it
        name = "list_jobs"
    if name in _CLIENT:
        return getattr(importlib.import_module("lepton_lab.jobs.client"), name)
    raise AttributeError(f"module 'lepton_lab.jobs' has no attribute {name!r}")
