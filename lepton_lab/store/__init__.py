"""SQLAlchemy storage of runs (and later jobs and models): SQLite by default, any URL."""

from lepton_lab.store.database import RunStore, open_store
from lepton_lab.store.schema import EventRow, MetricRow, RunRow, UsageRow

__all__ = ["EventRow", "MetricRow", "RunRow", "RunStore", "UsageRow", "open_store"]
