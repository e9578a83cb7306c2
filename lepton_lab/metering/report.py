"""Usage reports: the ledger's records over a window, grouped and priced.

Sums are taken here rather than in SQL: grouping by tag reads a JSON list, and a stored thing
counts on every day it existed, neither of which SQLite and PostgreSQL say the same way. The
bench (``bench/bench_usage.py``) measures this over 100,000 records.
"""

from __future__ import annotations

import csv
import io
import math
import time
from bisect import bisect_right
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any

from lepton_lab.contract.base import RequestError
from lepton_lab.contract.usage import USAGE_GROUPS
from lepton_lab.metering.config import Prices
from lepton_lab.store.usage import REPORT_COLUMNS

DAY = 86400.0
#: a month, for GB-months: 30 days
MONTH = 30 * DAY
GB = 1e9
#: default window: the last 7 days
DEFAULT_DAYS = 7
#: a day-grouped report lists every day of its window (empty ones too) up to this many
MAX_DAYS = 1000

_COL = {name: i for i, name in enumerate(REPORT_COLUMNS)}


def _moment(text: str, name: str, end: bool) -> float:
    """``2026-11-01`` (its start, or for ``to`` its end) or an ISO time (UTC unless it says)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            f"'{name}' must be a date (2026-11-01) or an ISO time (2026-11-01T08:00:00Z), "
            f"got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def window(start: str | None, end: str | None, now: float | None = None) -> tuple[float, float]:
    """The window [start, end) in epoch seconds; a RequestError for a bad date or from > to."""
    now = time.time() if now is None else now
    hi = _moment(end, "to", end=True) if end else now
    lo = _moment(start, "from", end=False) if start else hi - DEFAULT_DAYS * DAY
    if lo > hi:
        raise RequestError(f"'from' ({start}) is after 'to' ({end or 'now'})")
    return lo, hi


def day_of(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d")


class _Sums:
    __slots__ = (
        "records",
        "cpu_s",
        "gpu_s",
        "gpu_models",
        "util_s",
        "wall_s",
        "peak",
        "gpu_peak",
        "uptime_s",
        "requests",
        "stored",
        "byte_s",
        "moved",
    )

    def __init__(self) -> None:
        self.records = 0
        self.cpu_s = self.gpu_s = self.util_s = self.wall_s = self.uptime_s = self.byte_s = 0.0
        self.gpu_models: dict[str, float] = defaultdict(float)
        self.peak = self.gpu_peak = self.requests = self.stored = self.moved = 0

    def view(self, prices: Prices | None) -> dict[str, Any]:
        gb_months = self.byte_s / GB / MONTH
        cost = None
        if prices is not None:
            cost = self.cpu_s / 3600 * prices.cpu_hour + gb_months * prices.gb_month
            cost += sum(s / 3600 * prices.gpu(model) for model, s in self.gpu_models.items())
            cost = round(cost, 6)
        return {
            "records": self.records,
            "cpu_hours": self.cpu_s / 3600,
            "gpu_hours": self.gpu_s / 3600,
            "gpu_hours_by_model": {m: s / 3600 for m, s in sorted(self.gpu_models.items())},
            "gpu_util_hours": self.util_s / 3600,
            "wall_hours": self.wall_s / 3600,
            "peak_memory": self.peak,
            "gpu_peak_memory": self.gpu_peak,
            "uptime_hours": self.uptime_s / 3600,
            "requests": self.requests,
            "storage_bytes": self.stored,
            "storage_gb_months": gb_months,
            "moved_bytes": self.moved,
            "cost": cost,
        }


def _keys(row: tuple[Any, ...], group_by: str) -> list[str]:
    if group_by == "user":
        return [row[_COL["user"]] or "(unknown)"]
    if group_by == "notebook":
        return [row[_COL["notebook"]] or "(none)"]
    if group_by == "kind":
        return [row[_COL["kind"]]]
    tags = row[_COL["tags"]] or []
    return [str(t) for t in tags] or ["(untagged)"]


def _add_work(sums: _Sums, row: tuple[Any, ...], end: float, now: float) -> None:
    """A run, job attempt, deployment or download (everything but storage)."""
    kind = row[_COL["kind"]]
    sums.records += 1
    sums.cpu_s += row[_COL["cpu_seconds"]] or 0.0
    gpu = row[_COL["gpu_seconds"]] or 0.0
    if gpu:
        sums.gpu_s += gpu
        sums.gpu_models[row[_COL["gpu_model"]] or "unknown"] += gpu
    sums.util_s += row[_COL["gpu_util_seconds"]] or 0.0
    sums.peak = max(sums.peak, row[_COL["peak_memory"]] or 0)
    sums.gpu_peak = max(sums.gpu_peak, row[_COL["gpu_peak_memory"]] or 0)
    if kind == "deployment":
        stop = row[_COL["ended_at"]] or min(now, end)
        sums.uptime_s += max(0.0, min(stop, end) - row[_COL["started_at"]])
        sums.requests += row[_COL["requests"]] or 0
    else:
        sums.wall_s += row[_COL["wall_seconds"]] or 0.0
        sums.moved += row[_COL["bytes"]] or 0  # downloads; what Dask-executor jobs read


def _add_storage(sums: _Sums, row: tuple[Any, ...], lo: float, hi: float) -> None:
    """A stored thing over [lo, hi): its byte-seconds there, and its bytes if it still
    existed at ``hi``."""
    size = row[_COL["bytes"]] or 0
    born, gone = row[_COL["started_at"]], row[_COL["deleted_at"]]
    span = min(hi, gone if gone is not None else hi) - max(lo, born)
    if span <= 0 and not (born < hi and (gone is None or gone >= hi)):
        return
    sums.records += 1
    sums.byte_s += size * max(0.0, span)
    if born < hi and (gone is None or gone >= hi):
        sums.stored += size


def build(
    rows: list[tuple[Any, ...]],
    start: float,
    end: float,
    group_by: str,
    prices: Prices | None,
    now: float | None = None,
) -> dict[str, Any]:
    """The report (:class:`~lepton_lab.contract.usage.UsageReport`'s shape) of ``rows``
    (tuples of ``REPORT_COLUMNS``, as ``Store.usage_rows`` gives them)."""
    if group_by not in USAGE_GROUPS:
        raise RequestError(f"'group_by' must be one of {', '.join(USAGE_GROUPS)}, got {group_by!r}")
    now = time.time() if now is None else now
    groups: dict[str, _Sums] = defaultdict(_Sums)
    total = _Sums()
    days = _days(start, end) if group_by == "day" else []
    bounds = []
    for key in days:
        groups[key]  # every day of the window, empty ones too (a bar chart's x axis)
        day_start = _moment(key, "from", end=False)
        bounds.append((key, max(start, day_start), min(end, day_start + DAY)))
    # the days' bounds ascend: a stored thing can only count on the days from the first that
    # ends after it was born to the last that begins no later than it was deleted (the others
    # would add nothing), found by bisection rather than by trying all of them
    day_los = [lo for _key, lo, _hi in bounds]
    day_his = [hi for _key, _lo, hi in bounds]
    day_names: dict[int, str] = {}  # UTC day number -> its name, as day_of gives it
    kind_col, started_col, deleted_col = _COL["kind"], _COL["started_at"], _COL["deleted_at"]
    for row in rows:
        if row[kind_col] == "storage":
            _add_storage(total, row, start, end)
            if group_by == "day":
                first = bisect_right(day_his, row[started_col])
                gone = row[deleted_col]
                last = len(bounds) if gone is None else bisect_right(day_los, gone)
                for key, lo, hi in bounds[first:last]:
                    _add_storage(groups[key], row, lo, hi)
            else:
                for key in _keys(row, group_by):
                    _add_storage(groups[key], row, start, end)
            continue
        _add_work(total, row, end, now)
        if group_by == "day":
            moment = row[started_col]
            number = int(moment // DAY)
            if 1e-3 < moment - number * DAY < DAY - 1e-3:
                name = day_names.get(number)
                if name is None:
                    name = day_names[number] = day_of(moment)
            else:  # near midnight: day_of rounds to microseconds; ask it
                name = day_of(moment)
            _add_work(groups[name], row, end, now)
        else:
            for key in _keys(row, group_by):
                _add_work(groups[key], row, end, now)
    views = [{"key": key, **sums.view(prices)} for key, sums in groups.items()]
    if group_by == "day":
        views.sort(key=lambda v: v["key"])
    else:
        views.sort(
            key=lambda v: (-(v["cost"] or 0.0), -(v["cpu_hours"] + v["gpu_hours"]), v["key"])
        )
    return {
        "start": start,
        "end": end,
        "group_by": group_by,
        "priced": prices is not None,
        "groups": views,
        "total": total.view(prices),
    }


def _days(start: float, end: float) -> list[str]:
    first = math.floor(start / DAY) * DAY
    count = math.ceil((end - first) / DAY)
    if count > MAX_DAYS:
        return []
    return [day_of(first + i * DAY) for i in range(max(count, 0))]


#: the CSV's columns, in order: one line per group, then the total
CSV_COLUMNS = (
    "key",
    "records",
    "cpu_hours",
    "gpu_hours",
    "gpu_util_hours",
    "wall_hours",
    "peak_memory",
    "gpu_peak_memory",
    "uptime_hours",
    "requests",
    "storage_bytes",
    "storage_gb_months",
    "moved_bytes",
    "cost",
)


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV: a header, a line per group, and a ``total`` line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((report["group_by"], *CSV_COLUMNS[1:]))
    for group in [*report["groups"], {"key": "total", **report["total"]}]:
        writer.writerow(_cell(group.get(name)) for name in CSV_COLUMNS)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
