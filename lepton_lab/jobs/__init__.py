"""Notebook jobs and schedules: papermill runs with parameters, retries, timeouts, a queue,
cron schedules and logs (``ll.jobs.submit``, ``ll.jobs.schedule``, ``ll.jobs.list``)."""

from lepton_lab.jobs.api import (
    Job,
    Schedule,
    get,
    list_jobs,
    list_schedules,
    schedule,
    submit,
)
from lepton_lab.jobs.spec import JobRequestError

list = list_jobs  # noqa: A001 - the public name DESIGN.md gives: ll.jobs.list()

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
