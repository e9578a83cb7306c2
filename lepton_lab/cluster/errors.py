"""The cluster part's one error type."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """A cluster problem a person can act on; its message says what to do."""
