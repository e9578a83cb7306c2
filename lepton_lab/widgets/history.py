"""What a run monitor shows, kept apart from any widget so the text fallback shares it.

A ``RunHistory`` reads the run's store incrementally (metric rows by cursor, the record and
its events) and, for a run driven in this process, the live progress messages the ranks send.
The same code serves a running run and one read back from the store by id. Curves are bucketed
(``Series``) so a monitor left open on a long run holds a bounded number of points.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lepton_lab.store.schema import FINAL_STATUSES, MetricRow

#: points kept per curve; past this, neighbouring buckets merge (each then spans more steps)
MAX_POINTS = 1000
#: events kept for display (restarts, checkpoints, failures)
MAX_EVENTS = 200


class Series:
    """One metric's curve: the mean over ranks per step, merged pairwise past ``max_points``."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self.stride = 1
        # bucket -> [sum of steps, sum of values, count]
        self._buckets: dict[int, list[float]] = {}

    def add(self, step: int, value: float) -> None:
        bucket = self._buckets.setdefault(step // self.stride, [0.0, 0.0, 0])
        bucket[0] += step
        bucket[1] += value
        bucket[2] += 1
        if len(self._buckets) > self.max_points:
            self._merge()

    def _merge(self) -> None:
        self.stride *= 2
        merged: dict[int, list[float]] = {}
        for key, (s, v, n) in self._buckets.items():
            into = merged.setdefault(key // 2, [0.0, 0.0, 0])
            into[0] += s
            into[1] += v
            into[2] += n
        self._buckets = merged

    def __len__(self) -> int:
        return len(self._buckets)

    def points(self) -> tuple[list[float], list[float]]:
        keys = sorted(self._buckets)
        xs = [self._buckets[k][0] / self._buckets[k][2] for k in keys]
        ys = [self._buckets[k][1] / self._buckets[k][2] for k in keys]
        return xs, ys

    def last(self) -> float | None:
        if not self._buckets:
            return None
        b = self._buckets[max(self._buckets)]
        return b[1] / b[2]


@dataclass
class RankState:
    rank: int
    worker: str | None = None
    state: str = "waiting"
    step: int | None = None
    last_report: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)


def metric_family(name: str) -> str:
    """Train and validation values share a chart: ``val_loss`` belongs with ``loss``."""
    return name[4:] if name.startswith("val_") else name


class RunHistory:
    """Incremental view of one run: status, curves, per-rank state, events, progress."""

    def __init__(self, run: Any, max_points: int = MAX_POINTS) -> None:
        self.run = run
        self.max_points = max_points
        self.record: dict[str, Any] = {}
        self.series: dict[str, Series] = {}
        self.ranks: dict[int, RankState] = {}
        self.events: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self.metric_rows = 0
        self._cursor = 0
        self._events_seen = 0
        self._progress: dict[int, dict[str, Any]] = {}
        self._progress_lock = threading.Lock()
        self._last_step: int | None = None
        self._listening = False
        driver = getattr(run, "_driver", None)
        if driver is not None and not driver.finished.is_set():
            driver.listeners.append(self._on_message)
            self._listening = True

    # -- live messages from the driver thread (must stay cheap) ------------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("kind") == "progress":
            with self._progress_lock:
                self._progress[int(msg["rank"])] = msg

    def detach(self) -> None:
        """Stop receiving live messages (the monitor was closed or the run ended)."""
        driver = getattr(self.run, "_driver", None)
        if self._listening and driver is not None:
            try:
                driver.listeners.remove(self._on_message)
            except ValueError:
                pass
        self._listening = False

    # -- reading -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.record.get("status", "queued"))

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def update(self) -> bool:
        """Read what is new; True when anything a view shows changed."""
        store = self.run._store
        before = (self.status, self._cursor, self._events_seen, self._progress_snapshot())
        # the record first, then metrics: every row written before the record said
        # "finished" is read in this same pass
        record = store.get_run(self.run.id)
        self.record = record
        while True:
            rows = self._read_metrics(store, limit=5000)
            if not rows:
                break
            self._cursor = rows[-1][0]
            self._add_metrics(rows)
            if len(rows) < 5000:
                break
        events = record.get("events", [])
        for event in events[self._events_seen :]:
            self._add_event(event)
        self._events_seen = len(events)
        self._apply_progress()
        if self.finished:
            for state in self.ranks.values():
                if state.state in ("running", "waiting"):
                    state.state = self.status
        after = (self.status, self._cursor, self._events_seen, self._progress_snapshot())
        return before != after

    def _progress_snapshot(self) -> tuple:
        with self._progress_lock:
            return tuple(sorted((r, m.get("time")) for r, m in self._progress.items()))

    def _read_metrics(self, store: Any, limit: int) -> list[tuple]:
        """Rows after the cursor as plain tuples: a run reports thousands of values a second,
        and building an ORM object per row would cost the kernel more than the run's ranks
        can spare on a small machine."""
        from sqlalchemy import select

        query = (
            select(
                MetricRow.id,
                MetricRow.rank,
                MetricRow.step,
                MetricRow.name,
                MetricRow.value,
                MetricRow.time,
            )
            .where(MetricRow.run_id == self.run.id, MetricRow.id > self._cursor)
            .order_by(MetricRow.id)
            .limit(limit)
        )
        with store.engine.connect() as connection:
            return list(connection.execute(query).tuples())

    def _add_metrics(self, rows: list[tuple]) -> None:
        self.metric_rows += len(rows)
        for _id, rank_index, step, name, value, stamp in rows:
            series = self.series.get(name)
            if series is None:
                series = self.series[name] = Series(self.max_points)
            series.add(step, value)
            rank = self._rank(rank_index)
            rank.step, rank.last_report = step, stamp
            if rank.state == "waiting":
                rank.state = "running"
            self._last_step = step if self._last_step is None else max(self._last_step, step)

    def _add_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind, data = event.get("kind"), event.get("data") or {}
        if kind == "start":
            for rank, worker in enumerate(data.get("workers") or []):
                state = self._rank(rank)
                state.worker, state.state = worker, "running"
        elif kind == "failure" and event.get("rank") is not None:
            self._rank(int(event["rank"])).state = "failed"
        elif kind == "restart":
            for state in self.ranks.values():
                state.state = "restarting"

    def _apply_progress(self) -> None:
        with self._progress_lock:
            progress = dict(self._progress)
        for rank, msg in progress.items():
            self._rank(rank).progress = msg

    def _rank(self, rank: int) -> RankState:
        state = self.ranks.get(rank)
        if state is None:
            state = self.ranks[rank] = RankState(rank)
        return state

    # -- derived views -----------------------------------------------------------------------
    def families(self) -> dict[str, list[str]]:
        """Chart name -> its metric names (train first, then ``val_``)."""
        out: dict[str, list[str]] = {}
        for name in sorted(self.series, key=lambda n: (metric_family(n), n.startswith("val_"))):
            out.setdefault(metric_family(name), []).append(name)
        return out

    def params(self) -> dict[str, Any]:
        return self.record.get("params") or {}

    @property
    def per_epoch_reports(self) -> bool:
        """A Keras run reports once per epoch, with the epoch as its step."""
        return self.params().get("framework") == "keras"

    def epochs(self) -> tuple[int | None, int | None]:
        """(epochs done, epochs in total) when the run has epochs, else (None, None)."""
        p = self._chief_progress()
        total = p.get("epochs") or self.params().get("epochs")
        if total is None:
            return None, None
        done = 0
        if self.per_epoch_reports and self._last_step is not None:
            done = self._last_step + 1
        if p.get("epoch") is not None:
            finished_epoch = bool(p.get("steps")) and (p.get("step") or 0) >= p["steps"]
            done = max(done, int(p["epoch"]) + (1 if finished_epoch else 0))
        if self.status == "completed":
            done = int(total)
        return min(done, int(total)), int(total)

    def steps(self) -> tuple[int | None, int | None]:
        """(steps done, steps in total) of the current epoch, or of the run for a loop."""
        p = self._chief_progress()
        if p:
            return int(p.get("step") or 0), p.get("steps")
        done = self._last_step + 1 if self._last_step is not None else None
        total = (self.params().get("config") or {}).get("steps")
        if self.status == "completed" and done is not None:
            total = done
        return done, total

    def fraction(self) -> float | None:
        """How much of the run is done (0..1), when that is known."""
        done, total = self.epochs()
        if total:
            step, steps = self.steps()
            part = 0.0
            if steps and step is not None and done < total:
                part = min(step / steps, 1.0)
            return min((done + part) / total, 1.0)
        step, steps = self.steps()
        if steps and step is not None:
            return min(step / steps, 1.0)
        return None

    def elapsed(self) -> float | None:
        started = self.record.get("started_at")
        if started is None:
            return None
        return (self.record.get("ended_at") or time.time()) - started

    def eta(self) -> float | None:
        f, elapsed = self.fraction(), self.elapsed()
        if self.finished or not f or elapsed is None:
            return None
        return elapsed * (1 - f) / f

    def last_values(self) -> dict[str, float]:
        """The latest point of every curve (the mean over ranks, like the charts)."""
        out = {name: series.last() for name, series in sorted(self.series.items())}
        return {k: v for k, v in out.items() if v is not None}

    def last_step(self) -> int | None:
        return self._last_step

    def _chief_progress(self) -> dict[str, Any]:
        state = self.ranks.get(0)
        return state.progress if state is not None else {}

    # -- text ---------------------------------------------------------------------------------
    def line(self) -> str:
        """One line for the latest reported step: where the run is and its last values."""
        done, total = self.epochs()
        where = f"epoch {done}/{total}" if total else f"step {self._last_step}"
        values = "  ".join(f"{k} {v:.4g}" for k, v in self.last_values().items())
        return f"[{self.run.id}] {where}  {values}".rstrip()

    def summary(self) -> str:
        """The final word on the run: status, duration, last values, error with its rank."""
        elapsed = self.elapsed()
        took = f" in {format_seconds(elapsed)}" if elapsed is not None else ""
        name = self.record.get("name") or self.run.id
        head = f"Run {self.run.id} ({name}) {self.status}{took}"
        done, total = self.epochs()
        if total:
            head += f", {done}/{total} epochs"
        elif self._last_step is not None:
            head += f", {self._last_step + 1} steps"
        values = ", ".join(f"{k} {v:.4g}" for k, v in self.last_values().items())
        if values:
            head += f": {values}"
        restarts = sum(1 for e in self.events if e.get("kind") == "restart")
        if restarts:
            head += f" ({restarts} restart{'s' if restarts != 1 else ''})"
        error = self.record.get("error")
        if self.status == "failed" and error:
            rank = self.record.get("error_rank")
            where = f" on rank {rank}" if rank is not None else ""
            head += f"\nError{where}: {error.splitlines()[0]}"
        return head


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
