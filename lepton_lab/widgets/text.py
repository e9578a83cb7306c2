"""The text face of a run monitor: one line per epoch and a final summary.

It is what a run shows where no widget can render: terminal IPython, a plain script, and the
saved output of a papermill/nbclient run (where the notebook holds text, not live widgets).
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import Any

from lepton_lab.widgets.follow import DEFAULT_INTERVAL, Follower
from lepton_lab.widgets.history import RunHistory

#: a run without epochs (a loop reporting steps) gets a line at most this often
LOOP_LINE_SECONDS = 5.0
#: lines kept in a notebook's text log (the summary is always kept)
MAX_LINES = 500


class TextLog:
    """Decides which lines a run's progress deserves: each finished epoch, else every few s."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._epochs_done = 0
        self._step: int | None = None
        self._last_line = 0.0
        self.summary: str | None = None

    def advance(self, history: RunHistory) -> list[str]:
        """The new lines since the last call (the summary once the run is over)."""
        new: list[str] = []
        done, total = history.epochs()
        step = history.last_step()
        if total:
            reported = done or 0
            if history.per_epoch_reports:
                # a line once the epoch's values have arrived, not just its progress message
                reported = min(reported, step + 1 if step is not None else 0)
            while self._epochs_done < reported:
                self._epochs_done += 1
                new.append(_epoch_line(history, self._epochs_done, total))
        elif step is not None and step != self._step:
            now = time.monotonic()
            if now - self._last_line >= LOOP_LINE_SECONDS or history.finished:
                self._step, self._last_line = step, now
                new.append(history.line())
        if history.finished and self.summary is None:
            self.summary = history.summary()
            new.append(self.summary)
        self.lines.extend(new)
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]
        return new


def _epoch_line(history: RunHistory, epoch: int, total: int) -> str:
    values = []
    for name, series in sorted(history.series.items()):
        value = _value_at(series, epoch - 1)
        if value is not None:
            values.append(f"{name} {value:.4g}")
    return f"[{history.run.id}] epoch {epoch}/{total}  " + "  ".join(values)


def _value_at(series: Any, step: int) -> float | None:
    xs, ys = series.points()
    for x, y in zip(xs, ys, strict=True):
        if x == step:
            return y
    return series.last()


class TextMonitor:
    """Follows a run and writes its lines to ``write`` (stdout by default)."""

    def __init__(
        self,
        run: Any,
        write: Callable[[str], None] | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.run = run
        self.log = TextLog()
        self._write = write or _print
        self._follower = Follower(run, self._render, interval=interval).start()

    def _render(self, history: RunHistory) -> None:
        for line in self.log.advance(history):
            self._write(line)

    def wait(self, timeout: float | None = None) -> bool:
        return self._follower.wait(timeout)

    def close(self) -> None:
        self._follower.close()

    def __repr__(self) -> str:
        return f"<TextMonitor of run {self.run.id}>"


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def log_bundle(lines: list[str], title: str) -> dict[str, str]:
    """A notebook output holding the text log: plain text for papermill and terminals, a
    collapsed block in JupyterLab (where the widget above already shows it all)."""
    text = "\n".join(lines) if lines else title
    body = html.escape("\n".join(lines))
    # the last line, or the summary (which may end with an error line) on one line
    last = lines[-1] if lines else title
    summary = html.escape(" · ".join(last.splitlines()))
    return {
        "text/plain": text,
        "text/html": (
            f"<details class='lepton-run-log'><summary>{summary}</summary>"
            f"<pre>{body}</pre></details>"
        ),
    }
