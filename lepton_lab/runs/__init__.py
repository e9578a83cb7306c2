"""Run records: the ``Run`` handle ``ll.fit`` returns, and lookups of past runs."""

from lepton_lab.runs.run import Run, get, list_runs

__all__ = ["Run", "get", "list_runs"]
