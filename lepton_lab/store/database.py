"""The store: one object over one database (a SQLite file by default, any SQLAlchemy URL),
holding the queries for runs (here) and for jobs, schedules and leases (``jobs.py``).

Opening a store upgrades its database to the newest schema first (``migrations``).

Every query method of :class:`Store` goes through one guard (:func:`_guarded`):

- SQLite's "database is locked" (another process held the write lock for longer than the
  ``busy_timeout`` of :data:`BUSY_TIMEOUT_MS`) is retried, with a growing pause, for up to
  :data:`LOCKED_RETRY_SECONDS` more; a lock is taken at a transaction's first write, before
  anything of it is written, so running the method again is safe.
- Any other failure to reach or use the database (a PostgreSQL server that is down, a SQLite
  file whose folder cannot be opened) is raised as :class:`StoreUnavailable`: one line that
  names the database (without its password) and the driver's reason, which REST answers
  with a 503 and the CLI prints before exiting 1.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lepton_lab.config.files import make_private, private_dir, private_file
from lepton_lab.config.settings import database_url
from lepton_lab.contract.base import Unavailable
from lepton_lab.store.deployments import DeploymentQueries
from lepton_lab.store.jobs import JobQueries
from lepton_lab.store.migrations import sqlite_path, upgrade
from lepton_lab.store.models import ModelQueries
from lepton_lab.store.notifications import NotificationQueries
from lepton_lab.store.schema import (
    FINAL_STATUSES,
    EventRow,
    MetricRow,
    RunRow,
    UsageRow,
)
from lepton_lab.store.usage import UsageQueries

log = logging.getLogger("lepton_lab.store")

#: How long one SQLite statement waits for another process's write lock (SQLite retries it).
BUSY_TIMEOUT_MS = 10_000
#: How much longer a store method keeps retrying "database is locked" after that.
LOCKED_RETRY_SECONDS = 60.0
#: Seconds to wait for a PostgreSQL (libpq) connection before calling the server unreachable.
CONNECT_TIMEOUT = 10

F = TypeVar("F", bound=Callable[..., Any])


class StoreUnavailable(Unavailable):
    """The database cannot be reached or used now (its server is down, its file cannot be
    opened, it stayed locked): one line naming it, without its password."""


def safe_url(url: str | URL) -> str:
    """The database URL as messages and logs show it: the password as ``***``."""
    return make_url(url).render_as_string(hide_password=True)


def _reason(exc: BaseException, url: URL) -> str:
    """The driver's own first line ("connection refused", "unable to open database file"),
    never the password, even where a driver quotes the connection string."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    reason = text.splitlines()[0].strip() if text else type(exc).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def _unreachable(exc: BaseException) -> bool:
    """A failure of the database rather than of the query: what a 503 is for."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


_calls = threading.local()


def _guarded(method: F) -> F:
    """``method`` with the store's retry of a locked SQLite database and its translation of
    an unreachable one (see the module's docstring). A method called from another one runs
    bare: the outermost call retries it all, once."""

    @functools.wraps(method)
    def guarded(self: Store, *args: Any, **kwargs: Any) -> Any:
        if getattr(_calls, "depth", 0):
            return method(self, *args, **kwargs)
        deadline: float | None = None
        pause = 0.05
        _calls.depth = 1
        try:
            while True:
                try:
                    return method(self, *args, **kwargs)
                except DBAPIError as exc:
                    if not _locked(exc):
                        if _unreachable(exc):
                            raise self.unavailable(exc) from exc
                        raise
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + LOCKED_RETRY_SECONDS
                        log.warning(
                            "Lepton Lab store %s: %s is locked by another process; "
                            "retrying for up to %.0f s",
                            method.__name__,
                            safe_url(self.url),
                            LOCKED_RETRY_SECONDS,
                        )
                    if now >= deadline:
                        raise self.unavailable(exc) from exc
                    time.sleep(min(pause, deadline - now))
                    pause = min(pause * 2, 1.0)
        finally:
            _calls.depth = 0

    guarded.guarded = True  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


class UnknownRun(KeyError):
    """No run with that id."""

    def __str__(self) -> str:
        return f"no run with id {self.args[0]!r}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the server read while a kernel writes; foreign keys make deletes cascade.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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

    def driven_runs(self) -> list[dict[str, Any]]:
        """Queued and running runs with their driver (``host:pid``)."""
        with self.session() as s:
            query = select(RunRow.id, RunRow.driver).where(
                RunRow.status.in_(("queued", "running")), RunRow.driver.is_not(None)
            )
            return [{"id": i, "driver": d} for i, d in s.execute(query)]

    def fail_driverless_run(self, run_id: str, error: str) -> bool:
        """Fail a run that is still queued or running (a compare-and-set: a driver that ends
        it meanwhile wins)."""
        with self.session() as s, s.begin():
            result = s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.in_(("queued", "running")))
                .values(status="failed", error=error, ended_at=time.time())
            )
            return result.rowcount == 1

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


class Store(
    RunQueries, JobQueries, ModelQueries, DeploymentQueries, UsageQueries, NotificationQueries
):
    """Runs, jobs, schedules, leases and models: every query of the library, server and CLI, on one
    SQLAlchemy engine. Use :func:`open_store`, which keeps one per URL per process.

    Creating one upgrades the database to the newest schema revision, or raises
    ``StoreVersionError`` for a database written by a newer Lepton Lab.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        path = sqlite_path(parsed)
        try:
            if path is not None:
                _private_sqlite_file(path)
        except OSError as exc:  # e.g. its folder cannot be entered or made
            raise self.unavailable(exc) from exc
        connect_args: dict[str, Any] = {}
        libpq = parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in (
            "psycopg",
            "psycopg2",
        )
        if libpq and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT  # a host that drops packets
        self.engine: Engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            upgrade(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            if _unreachable(exc):
                raise self.unavailable(exc) from exc
            raise
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        return unavailable(self.url, exc)


def unavailable(url: str | URL, exc: BaseException) -> StoreUnavailable:
    """``exc`` (a driver's or the file system's error) on the database at ``url`` as the one
    line users see."""
    url = make_url(url)
    reason = _reason(exc, url)
    if _locked(exc):
        reason += f" (by another process, for more than {LOCKED_RETRY_SECONDS:.0f} s)"
    return StoreUnavailable(f"the database at {safe_url(url)} is unavailable: {reason}")


def _guard_queries(cls: type) -> None:
    """Put :func:`_guarded` around every public query method the store has (its own and its
    parts'), as the method resolution order finds it."""
    import inspect

    for name in dir(cls):
        if name.startswith("_") or name in ("session", "unavailable"):
            continue
        value = inspect.getattr_static(cls, name)
        if inspect.isfunction(value) and not getattr(value, "guarded", False):
            setattr(cls, name, _guarded(value))


_guard_queries(Store)


@functools.lru_cache(maxsize=8)
def _cached(url: str) -> Store:
    return Store(url)


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: the configured one), one instance per URL per process."""
    return _cached(url or database_url())


#: Former names: the run store and the job store are one object now.
RunStore = Store
