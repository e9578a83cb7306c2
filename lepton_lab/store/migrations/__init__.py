"""The store's schema migrations (Alembic), shipped in the package and applied on open.

Every process that opens the store (the server, the ``lepton-lab scheduler`` daemon, the CLI,
each kernel's ``ll.fit``) calls :func:`upgrade` first, so a new release never meets a database
laid out for an older one, and nobody has to remember an ``alembic upgrade`` step. It is safe
when several of them start at once: they take turns on a lock (a file next to a SQLite database,
an advisory lock on PostgreSQL) and re-read the revision once they hold it.

A database made by Lepton Lab 0.1.0 (``create_all``, before migrations) has the tables but no
``alembic_version``: its tables are checked against revision 0001, the same schema, and it is
stamped 0001 and upgraded in place with its rows. A database at a revision this code does not
know was written by a newer Lepton Lab: :class:`StoreVersionError`, and nothing is touched.

``python -m lepton_lab.store.migrations revision -m "..."`` writes a new migration (see
docs/decisions/store.md).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:  # Alembic is imported only when a database needs migrating (~0.3 s)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger("lepton_lab.store")

HERE = Path(__file__).parent
#: The revision whose schema is exactly what Lepton Lab 0.1.0 made with ``create_all``.
BASELINE = "0001"
#: How long a process waits for another one's migration before giving up.
LOCK_TIMEOUT = 600.0
#: Key of the PostgreSQL advisory lock that migrations take ("LLST").
_PG_LOCK_KEY = 0x4C4C5354


class StoreVersionError(RuntimeError):
    """The database's schema is not one this Lepton Lab can upgrade: newer, or not its own."""


def config(url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed at run time."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    # 0001_initial.py, 0002_...: files sort in the order they apply
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this code knows."""
    found = scripts().get_current_head()
    assert found is not None
    return found


@functools.cache
def newest_file() -> str:
    """The newest revision as the file names tell it (``0002_...py``): what an open compares
    with, without importing Alembic. A test checks that it is :func:`head`."""
    return max(p.name[:4] for p in (HERE / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database is at; () for a database without migrations."""
    if not inspect(connection).has_table("alembic_version"):
        return ()
    return tuple(sorted(connection.scalars(text("SELECT version_num FROM alembic_version"))))


# -- upgrade on open ---------------------------------------------------------------------------
_upgraded: set[str] = set()
_upgrading = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to :func:`head`, once per URL per process.

    Raises StoreVersionError, changing nothing, when the database is newer than this code or
    holds tables that Lepton Lab did not make.
    """
    key = engine.url.render_as_string(hide_password=False)
    with _upgrading:  # threads of one process wait for the first one's upgrade
        if key in _upgraded:
            return
        _upgrade(engine)
        _upgraded.add(key)


def _upgrade(engine: Engine) -> None:
    where = engine.url.render_as_string(hide_password=True)
    with engine.connect() as connection:  # most opens end here: already at head
        if current(connection) == (newest_file(),):
            return
    if sqlite_path(engine.url) is None and engine.dialect.name == "sqlite":
        # an in-memory database exists only in the engine's own connection
        with engine.begin() as connection:
            _migrate(connection, where)
        return
    migrator = _migration_engine(engine.url)
    try:
        with _exclusive(engine.url), migrator.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            _migrate(connection, where)
    finally:
        migrator.dispose()


def _migrate(connection: Connection, where: str) -> None:
    """Under the lock and in one transaction: re-read the revision, adopt a 0.1.0 database,
    upgrade to head."""
    before = current(connection)
    _check_known(before, where)
    if before == (head(),):
        return  # another process did it while this one waited for the lock
    from alembic import command

    cfg = config(connection=connection)
    tables = set(inspect(connection).get_table_names()) if not before else set()
    if tables and tables & _baseline_tables():
        _check_baseline(connection, where)
        command.stamp(cfg, BASELINE)
        before = ("0.1.0",)
    command.upgrade(cfg, "head")
    log.info("store %s upgraded from %s to %s", where, ", ".join(before) or "empty", head())


def _check_known(revisions: tuple[str, ...], where: str) -> None:
    known = {script.revision for script in scripts().walk_revisions()}
    unknown = [r for r in revisions if r not in known]
    if unknown:
        raise StoreVersionError(
            f"the database at {where} is at schema revision {', '.join(unknown)}, newer than "
            f"this Lepton Lab (head {head()}); upgrade lepton-lab or point "
            "LEPTON_LAB_DATABASE_URL elsewhere"
        )


# -- databases made by 0.1.0 -------------------------------------------------------------------
@functools.cache
def _baseline_schema() -> dict[str, frozenset[str]]:
    """Table -> column names of revision 0001, read back from a scratch database migrated to it
    (so the migration itself is the one description of that schema)."""
    from alembic import command

    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            command.upgrade(config(connection=connection), BASELINE)
            found = inspect(connection)
            return {
                table: frozenset(c["name"] for c in found.get_columns(table))
                for table in found.get_table_names()
                if table != "alembic_version"
            }
    finally:
        scratch.dispose()


def _baseline_tables() -> set[str]:
    return set(_baseline_schema())


def _check_baseline(connection: Connection, where: str) -> None:
    found = inspect(connection)
    tables = set(found.get_table_names())
    problems = []
    for table, columns in sorted(_baseline_schema().items()):
        if table not in tables:
            problems.append(f"no table {table}")
            continue
        have = {c["name"] for c in found.get_columns(table)}
        if have != columns:
            missing, extra = sorted(columns - have), sorted(have - columns)
            problems.append(f"table {table} lacks {missing} and has {extra}")
    if problems:
        raise StoreVersionError(
            f"the database at {where} has Lepton Lab tables but no schema revision, and they "
            f"are not the ones Lepton Lab 0.1.0 made ({'; '.join(problems)}); it cannot be "
            "upgraded in place: point LEPTON_LAB_DATABASE_URL elsewhere"
        )


# -- engines and locks -------------------------------------------------------------------------
def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for other databases, in-memory and ``file:`` URIs."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    if url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().absolute()


def _migration_engine(url: URL) -> Engine:
    """A separate engine for the migration's one transaction.

    On SQLite it has no ``foreign_keys`` pragma (batch mode's copy-and-drop of a table would
    otherwise cascade into its children's rows), and it runs DDL inside ``BEGIN IMMEDIATE``
    (the driver would commit around it), so a migration applies whole or not at all.
    """
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # this engine says when transactions begin
            dbapi_connection.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT * 1000)}")

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextlib.contextmanager
def _exclusive(url: URL) -> Iterator[None]:
    """One migrating process at a time on a SQLite file: a lock on ``<file>.lock``.

    (Not on the database file itself: closing any descriptor of it would drop SQLite's own
    POSIX locks in this process.) Other databases lock inside the migration's transaction.
    """
    path = sqlite_path(url)
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's write lock alone
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another process has been migrating {path} for {LOCK_TIMEOUT:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
