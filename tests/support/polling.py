"""Polling for tests that wait on a real process, server or browser."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60,
    what: str = "the condition",
    interval: float = 0.1,
) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that); fail with
    ``what`` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
