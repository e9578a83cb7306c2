"""The store: one object over one database (a SQLite file by default, any SQLAlchemy URL),
holding the queries for runs (here) and for jobs, schedules and leases (``jobs.py``).

Opening a store upgrades its database to the newest schema first (``migrations``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from lepton_lab.config.files import make_private, private_dir, private_file
from lepton_lab.config.settings import database_url
from lepton_lab.store.jobs import JobQueries
from lepton_lab.store.migrations import sqlite_path, upgrade
from lepton_lab.store.models import ModelQueries
from lepton_lab.store.schema import (
    FINAL_STATUSES,
    EventRow,
    MetricRow,
    RunRow,
    UsageRow,
)


class UnknownRun(KeyError):
    """No run with that id."""

    def __str__(self) -> str:
        return f"no run with id {self.args[0]!r}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the server read while a kernel writes; foreign keys make deletes cascade.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class RunQueries:
    """Runs, their metrics, events and usage. A part of :class:`Store`, which gives it
    ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    # -- runs ------------------------------------------------------------------------------
    def create_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = RunRow(id=run_id, **fields)
            s.add(row)
            s.flush()
            return row.to_dict()

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self.session() as s, s.begin():
            result = s.execute(update(RunRow).where(RunRow.id == run_id).values(**fields))
            if result.rowcount == 0:
                raise UnknownRun(run_id)

    def finish_run(
        self, run_id: str, status: str, error: str | None = None, error_rank: int | None = None
    ) -> None:
        assert status in FINAL_STATUSES, status
        self.update_run(
            run_id, status=status, ended_at=time.time(), error=error, error_rank=error_rank
        )

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise UnknownRun(run_id)
            out = row.to_dict()
            out["usage"] = [
                u.to_dict()
                for u in s.scalars(
                    select(UsageRow).where(UsageRow.run_id == run_id).order_by(UsageRow.id)
                )
            ]
            out["events"] = [
                e.to_dict()
                for e in s.scalars(
                    select(EventRow).where(EventRow.run_id == run_id).order_by(EventRow.id)
                )
            ]
            return out

    def list_runs(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)
            if status:
                query = query.where(RunRow.status == status)
            return [r.to_dict() for r in s.scalars(query)]

    # -- metrics, events, usage ------------------------------------------------------------
    def add_metrics(self, run_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert reported values in one transaction; returns how many."""
        batch = [dict(row, run_id=run_id) for row in rows]
        if batch:
            # one executemany, not one ORM object per value: runs report thousands per second
            with self.session() as s, s.begin():
                s.execute(insert(MetricRow), batch)
        return len(batch)

    def metrics(self, run_id: str, since: int = 0, limit: int = 10000) -> dict[str, Any]:
        """Values with cursor id > ``since``; ``next`` is the cursor to poll with."""
        with self.session() as s:
            if s.get(RunRow, run_id) is None:
                raise UnknownRun(run_id)
            rows = list(
                s.scalars(
                    select(MetricRow)
                    .where(MetricRow.run_id == run_id, MetricRow.id > since)
                    .order_by(MetricRow.id)
                    .limit(limit)
                )
            )
        return {
            "run_id": run_id,
            "since": since,
            "next": rows[-1].id if rows else since,
            "metrics": [r.to_dict() for r in rows],
        }

    def count_metrics(self, run_id: str) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(MetricRow).where(MetricRow.run_id == run_id)
            return int(s.scalar(query) or 0)

    def run_summaries(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Where each run stands, for lists of runs: ``{"step": highest step reported or None,
        "last_metrics": {name: value of the newest report of that name}}``; ids that are not
        runs are left out.

        Two queries whatever the number of runs. Each reads a handful of index entries per
        run and metric name (ix_run_metrics_run_id_step, ix_run_metrics_run_id_name_id), not
        every value a run reported, so a sidebar can poll it while runs stream thousands.
        """
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return {}
        m = MetricRow.__table__.alias("m")
        highest_step = select(func.max(m.c.step)).where(m.c.run_id == RunRow.id).scalar_subquery()
        # The metric names of each run, walked through the index one name at a time
        # (a "loose index scan": min(name) > the previous name), as a recursive CTE.
        first = select(func.min(m.c.name)).where(m.c.run_id == RunRow.id).scalar_subquery()
        names = (
            select(RunRow.id.label("run_id"), first.label("name"))
            .where(RunRow.id.in_(ids))
            .cte("names", recursive=True)
        )
        after = (
            select(func.min(m.c.name))
            .where(m.c.run_id == names.c.run_id, m.c.name > names.c.name)
            .scalar_subquery()
        )
        names = names.union_all(select(names.c.run_id, after).where(names.c.name.is_not(None)))
        newest = (
            select(m.c.value)
            .where(m.c.run_id == names.c.run_id, m.c.name == names.c.name)
            .order_by(m.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        out: dict[str, dict[str, Any]] = {}
        with self.session() as s:
            steps = select(RunRow.id, highest_step).where(RunRow.id.in_(ids))
            for run_id, step in s.execute(steps):
                out[run_id] = {"step": step, "last_metrics": {}}
            values = select(names.c.run_id, names.c.name, newest).where(names.c.name.is_not(None))
            for run_id, name, value in s.execute(values):
                out[run_id]["last_metrics"][name] = value
        return out

    def add_event(
        self, run_id: str, kind: str, message: str = "", rank: int | None = None, **data: Any
    ) -> None:
        with self.session() as s, s.begin():
            s.add(
                EventRow(
                    run_id=run_id,
                    kind=kind,
                    message=message,
                    rank=rank,
                    data=data,
                    time=time.time(),
                )
            )

    def add_usage(self, run_id: str, rows: Iterable[dict[str, Any]]) -> None:
        with self.session() as s, s.begin():
            s.add_all(UsageRow(run_id=run_id, **row) for row in rows)


# -- the store ---------------------------------------------------------------------------------
def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 (its folder 0700 when this makes it) before SQLite
    would create it 0644; tighten an existing one. SQLite gives its -wal and -shm files the
    database file's mode."""
    private_dir(path.parent)
    private_file(path)
    make_private(f"{path}-wal")
    make_private(f"{path}-shm")


class Store(RunQueries, JobQueries, ModelQueries):
    """Runs, jobs, schedules, leases and models: every query of the library, server and CLI, on one
    SQLAlchemy engine. Use :func:`open_store`, which keeps one per URL per process.

    Creating one upgrades the database to the newest schema revision, or raises
    ``StoreVersionError`` for a database written by a newer Lepton Lab.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        path = sqlite_path(make_url(url))
        if path is not None:
            _private_sqlite_file(path)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            upgrade(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()


@functools.lru_cache(maxsize=8)
def _cached(url: str) -> Store:
    return Store(url)


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: the configured one), one instance per URL per process."""
    return _cached(url or database_url())


#: Former names: the run store and the job store are one object now.
RunStore = Store
