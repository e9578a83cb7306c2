"""The store: runs, jobs, schedules, leases, the model registry and deployments in one SQLAlchemy
database (a SQLite file by default, any URL such as PostgreSQL by setting), upgraded by
Alembic migrations on open.

``open_store(url=None) -> Store`` is the entry point; ``StoreVersionError`` says that the
database was written by a newer Lepton Lab, ``StoreUnavailable`` that it cannot be reached.
"""

from lepton_lab.store.database import (
    RunStore,
    Store,
    StoreUnavailable,
    UnknownRun,
    open_store,
    safe_url,
)
from lepton_lab.store.deployments import UnknownDeployment
from lepton_lab.store.jobs import UnknownJob, UnknownSchedule
from lepton_lab.store.migrations import StoreVersionError
from lepton_lab.store.models import UnknownModelVersion
from lepton_lab.store.schema import EventRow, MetricRow, RunRow, UsageRow

#: Former names of the one Store and its opener.
JobStore = Store
open_job_store = open_store

__all__ = [
    "EventRow",
    "JobStore",
    "MetricRow",
    "RunRow",
    "RunStore",
    "Store",
    "StoreUnavailable",
    "StoreVersionError",
    "UnknownDeployment",
    "UnknownJob",
    "UnknownModelVersion",
    "UnknownRun",
    "UnknownSchedule",
    "UsageRow",
    "open_job_store",
    "open_store",
    "safe_url",
]
