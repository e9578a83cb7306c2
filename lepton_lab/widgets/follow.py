"""The background thread that keeps a view (widget or text) up to date with its run.

A thread, not the kernel's event loop: it reads the store (blocking SQL) and must not delay the
cells the user runs meanwhile. ipywidgets sends trait changes made here over the comm at once.
Redraws are throttled to one per ``interval`` however fast the run reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from lepton_lab.widgets.history import RunHistory

log = logging.getLogger(__name__)

#: seconds between redraws: a few per second at most
DEFAULT_INTERVAL = 0.5


class Follower:
    """Calls ``render(history)`` whenever the run changed, until the run ends or ``close()``."""

    def __init__(
        self,
        run: Any,
        render: Callable[[RunHistory], None],
        interval: float = DEFAULT_INTERVAL,
        on_tick: Callable[[RunHistory], None] | None = None,
    ) -> None:
        self.run = run
        self.history = RunHistory(run)
        self.render = render
        self.on_tick = on_tick
        self.interval = max(float(interval), 0.05)
        self.redraws = 0
        #: CPU seconds spent reading and drawing (what the monitor costs the kernel)
        self.cpu_seconds = 0.0
        self.error: str | None = None
        self._closed = threading.Event()
        self.done = threading.Event()  # set once the final state has been drawn
        self._thread = threading.Thread(target=self._loop, name=f"lepton-monitor-{run.id}")
        self._thread.daemon = True

    def start(self) -> Follower:
        """Draw the current state now (all of it, for a finished run), then follow."""
        try:
            if self._step():
                return self
        except Exception as exc:  # noqa: BLE001 - a view must never take the kernel down
            self._failed(exc)
            return self
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        self.history.detach()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the final state is drawn (or the view closed); True when drawn."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done.is_set() and not self._closed.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self.done.wait(0.1 if left is None else min(left, 0.1))
        return self.done.is_set()

    def _step(self) -> bool:
        """Read and draw what is new; True once the final state is drawn."""
        started = time.thread_time()
        try:
            return self._read_and_draw()
        finally:
            self.cpu_seconds += time.thread_time() - started

    def _read_and_draw(self) -> bool:
        driver = getattr(self.run, "_driver", None)
        # a run driven here is final only once its driver has forwarded every report
        final = driver.finished.is_set() if driver is not None else None
        changed = self.history.update()
        if final is None:
            final = self.history.finished
        if self.on_tick is not None:
            self.on_tick(self.history)
        if changed or final or self.redraws == 0:
            self.render(self.history)
            self.redraws += 1
        if final and self.history.finished:
            self.done.set()
            self.history.detach()
            return True
        return False

    def _loop(self) -> None:
        try:
            while not self._closed.is_set():
                started = time.monotonic()
                if self._step():
                    break
                self._closed.wait(max(self.interval - (time.monotonic() - started), 0.01))
        except Exception as exc:  # noqa: BLE001 - a view must never take the kernel down
            self._failed(exc)
        finally:
            self.history.detach()

    def _failed(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self._closed.set()  # waiters return instead of waiting for a final draw
        log.warning("monitor of run %s stopped: %s", self.run.id, self.error, exc_info=True)
