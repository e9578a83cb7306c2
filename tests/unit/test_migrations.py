"""The store's schema migrations: a 0.1.0 database upgrades in place, a new one is created at
head, a newer one is refused untouched, concurrent opens are safe, and the models never drift
from the migrations. On real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, event, insert, inspect, select, text
from sqlalchemy.engine import make_url

from lepton_lab.store import (
    JobStore,
    RunStore,
    Store,
    StoreVersionError,
    UnknownRun,
    migrations,
    open_job_store,
    open_store,
)
from lepton_lab.store.schema import Base
from tests.support.postgres import postgres_server

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store" / "v0_1_0.sql"
#: The tables Lepton Lab 0.1.0 had, children after their parents.
V0_1_0_TABLES = (
    "runs",
    "run_metrics",
    "run_events",
    "run_usage",
    "jobs",
    "job_events",
    "job_metrics",
    "schedules",
    "leases",
)


@pytest.fixture(scope="module")
def postgres_url():
    # a password in the URL (trust auth ignores it) to show that no message prints it
    with postgres_server() as url:
        yield url.replace("postgres@", "postgres:s3cret-pw@")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """The URL of an empty database (a new SQLite file, or a PostgreSQL database wiped)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'lepton_lab.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Each test opens its databases as a new process would: no upgrade remembered."""
    monkeypatch.setattr(migrations, "_upgraded", set())


def load_v0_1_0(url: str) -> None:
    """Put the database that Lepton Lab 0.1.0 wrote (the fixture) at ``url``."""
    path = migrations.sqlite_path(make_url(url))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as connection:
            connection.executescript(FIXTURE.read_text())
        connection.close()
        return
    # PostgreSQL: the same tables (as 0.1.0's create_all made them, read back from the dump)
    # and the same rows
    source = sqlite3.connect(":memory:")
    source.executescript(FIXTURE.read_text())
    scratch = create_engine("sqlite://", creator=lambda: source)
    old = MetaData()
    old.reflect(scratch)
    target = create_engine(url)
    old.create_all(target)
    with scratch.connect() as read, target.begin() as write:
        for name in V0_1_0_TABLES:
            rows = [dict(r._mapping) for r in read.execute(select(old.tables[name]))]
            if rows:
                write.execute(insert(old.tables[name]), rows)
            if "id" in old.tables[name].c and name not in ("runs", "jobs", "schedules"):
                write.exec_driver_sql(  # as a serial column would be after those inserts
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
    target.dispose()
    scratch.dispose()


def contents(url: str) -> dict[str, list[tuple]]:
    """Every row of every 0.1.0 table, in primary-key order."""
    engine = create_engine(url)
    found = MetaData()
    found.reflect(engine, only=V0_1_0_TABLES)
    with engine.connect() as conn:
        out = {
            name: [
                tuple(r)
                for r in conn.execute(
                    select(found.tables[name]).order_by(*found.tables[name].primary_key)
                )
            ]
            for name in V0_1_0_TABLES
        }
    engine.dispose()
    return out


def revision(url: str) -> tuple[str, ...]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = migrations.current(conn)
    engine.dispose()
    return found


# -- a database written by 0.1.0 ---------------------------------------------------------------
def test_a_0_1_0_database_upgrades_in_place_with_every_row(empty_url):
    load_v0_1_0(empty_url)
    before = contents(empty_url)
    assert revision(empty_url) == ()

    store = Store(empty_url)

    assert revision(empty_url) == (migrations.head(),)
    # later revisions add columns at the end (0005: the secrets of jobs and schedules); the
    # columns 0.1.0 had keep every value
    after = contents(empty_url)
    assert {t: [r[: len(before[t][0])] for r in rows] for t, rows in after.items() if rows} == {
        t: rows for t, rows in before.items() if rows
    }
    assert {t: len(rows) for t, rows in before.items()} == {
        "runs": 3,
        "run_metrics": 21,
        "run_events": 2,
        "run_usage": 2,
        "jobs": 3,
        "job_events": 7,
        "job_metrics": 2,
        "schedules": 2,
        "leases": 1,
    }
    store.engine.dispose()


def test_runs_jobs_schedules_and_metrics_of_0_1_0_read_back_and_take_new_writes(empty_url):
    load_v0_1_0(empty_url)
    store = Store(empty_url)

    run = store.get_run("run-done")
    assert (run["status"], run["params"], run["world_size"]) == ("completed", {"lr": 0.1}, 2)
    assert [e["kind"] for e in run["events"]] == ["start", "checkpoint"]
    assert run["events"][1]["data"] == {"path": "/ckpt/step-4", "step": 4}
    assert [u["cpu_seconds"] for u in run["usage"]] == [1.5, 2.5]
    assert store.count_metrics("run-done") == 20
    assert store.metrics("run-done", limit=1)["metrics"][0] == {
        "id": 1,
        "rank": 0,
        "step": 0,
        "name": "loss",
        "value": 0.5,
        "time": 1_700_000_010.0,
    }
    assert store.get_run("run-failed")["error_rank"] == 0
    assert {r["id"] for r in store.list_runs()} == {"run-done", "run-failed", "run-queued"}

    assert [j["status"] for j in store.list_jobs()] == ["queued", "failed", "completed"]
    job = store.get_job("job-1")
    assert (job["schedule_id"], job["parameters"], job["progress"]) == (
        "sched-1",
        {"epochs": 2},
        {"cell": 3, "cells": 5},
    )
    assert [e["status"] for e in job["events"]] == ["queued", "running", "failed"]
    assert [m["value"] for m in job["metrics"]] == [pytest.approx(0.8)]
    schedules = store.list_schedules()
    assert [(s["id"], s["active"], s["timezone"]) for s in schedules] == [
        ("sched-1", True, "Europe/Paris"),
        ("sched-2", False, "UTC"),
    ]
    assert store.get_schedule("sched-2")["tags"] == ["eval"]
    assert store.lease_holder("dispatch") is None  # 0.1.0's lease expired long ago

    # new rows go after the old ones, in every table with a generated id
    store.add_metrics("run-done", [{"rank": 0, "step": 5, "name": "loss", "value": 0.1, "time": 1}])
    assert store.metrics("run-done", since=20)["metrics"][0]["id"] == 22
    store.add_event("run-done", "note", "after the upgrade")
    store.add_usage(
        "run-done",
        [
            {
                "rank": 0,
                "attempt": 2,
                "worker": "w",
                "cpu_seconds": 1.0,
                "gpu_seconds": 0.0,
                "peak_memory": 1,
            }
        ],
    )
    store.create_run("run-new", framework="torch", params={})
    store.create_job(
        "job-new",
        notebook="n.ipynb",
        input_path="/i",
        cwd="/",
        output_dir="/o",
        kernel="lepton-cpu",
    )
    assert store.claim("job-2", "host:9") is not None
    store.add_job_metrics("job-2", 1, [{"name": "acc", "value": 1.0, "time": 2.0}])
    assert store.advance_schedule("sched-1", 1_700_050_000.0, 1_700_060_000.0, fired=1)
    assert store.acquire_lease("dispatch", "host:9", ttl=30)
    assert store.get_run("run-done")["events"][-1]["message"] == "after the upgrade"
    assert store.count("queued") == 1
    assert store.run_summaries(["run-done"])["run-done"] == {
        "step": 5,
        "last_metrics": {"loss": 0.1, "accuracy": pytest.approx(1.5)},
    }
    store.engine.dispose()


def test_a_database_with_other_tables_by_lepton_lab_names_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    with sqlite3.connect(tmp_path / "odd.db") as connection:
        connection.executescript(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, owner TEXT);"
            "INSERT INTO runs VALUES ('a', 'someone else');"
        )
    connection.close()
    with pytest.raises(StoreVersionError, match="not the ones Lepton Lab 0.1.0 made") as error:
        Store(url)
    assert "table runs lacks" in str(error.value)
    engine = create_engine(url)
    assert inspect(engine).get_table_names() == ["runs"]  # nothing created, nothing stamped
    engine.dispose()


# -- new databases, concurrent opens -----------------------------------------------------------
def test_a_new_database_is_created_at_head_with_every_table(empty_url):
    store = Store(empty_url)
    assert revision(empty_url) == (migrations.head(),)
    tables = set(inspect(store.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    store.create_run("r1", framework="torch")
    Store(empty_url).get_run("r1")  # opening again: nothing to do, no error
    store.engine.dispose()


def test_the_models_match_the_newest_migration(empty_url):
    """A column or index changed in schema.py without a migration fails here."""
    store = Store(empty_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    store.engine.dispose()


def test_opening_a_store_at_head_knows_the_head_without_alembic(tmp_path):
    """An open compares the database with the newest migration file's number, so that most
    opens skip importing Alembic: the files must be named for their revisions, in order."""
    assert migrations.newest_file() == migrations.head()
    for script in migrations.scripts().walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_")
    check = (
        "import sys, lepton_lab.store as s; s.open_store(sys.argv[1]); "
        "print('alembic' in sys.modules)"
    )
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).engine.dispose()
    out = subprocess.run([sys.executable, "-c", check, url], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_open_store_is_one_store_per_url_under_every_former_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert RunStore is Store and JobStore is Store
    assert open_store(url) is open_job_store(url) is open_store(url)
    from lepton_lab.store.database import UnknownRun as OldUnknownRun
    from lepton_lab.store.jobs import UnknownJob, UnknownSchedule  # noqa: F401

    assert OldUnknownRun is UnknownRun


OPEN_AT_ONCE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lepton_lab.store import open_store
    url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    store = open_store(url)
    store.create_run(ready.name, framework="torch")
    """
)


@pytest.mark.parametrize("start", ["new", "0.1.0"])
def test_processes_that_open_one_sqlite_file_at_once_all_succeed(tmp_path, start):
    """The server, the scheduler daemon and kernels start together on one file."""
    url = f"sqlite:///{tmp_path / 'state' / 'lepton_lab.db'}"
    if start == "0.1.0":
        load_v0_1_0(url)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, url, str(tmp_path / f"p{i}"), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        while not all((tmp_path / f"p{i}").exists() for i in range(4)):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()  # all imported: they open together
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert revision(url) == (migrations.head(),)
    store = Store(url)
    assert {f"p{i}" for i in range(4)} <= {r["id"] for r in store.list_runs()}
    assert len(store.list_runs()) == (4 if start == "new" else 7)
    store.engine.dispose()


# -- a database from a newer Lepton Lab --------------------------------------------------------
def test_a_newer_database_is_refused_with_a_clear_message_and_left_untouched(empty_url):
    store = Store(empty_url)
    store.create_run("r1", framework="torch")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.engine.dispose()
    before = contents(empty_url)
    migrations._upgraded.clear()  # as a process started later would

    with pytest.raises(StoreVersionError) as error:
        Store(empty_url)

    message = str(error.value)
    assert "is at schema revision 9999, newer than this Lepton Lab" in message
    assert f"(head {migrations.head()})" in message
    assert "upgrade lepton-lab or point LEPTON_LAB_DATABASE_URL elsewhere" in message
    assert make_url(empty_url).render_as_string(hide_password=True) in message
    assert "s3cret-pw" not in message
    assert isinstance(error.value, RuntimeError)
    assert revision(empty_url) == ("9999",)
    assert contents(empty_url) == before


# -- private files -----------------------------------------------------------------------------
def test_a_new_sqlite_store_is_private_to_its_user(tmp_path):
    path = tmp_path / "new-state" / "lepton_lab.db"
    store = Store(f"sqlite:///{path}")
    store.create_run("r1", framework="torch")  # WAL mode: -wal and -shm exist now
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in path.parent.iterdir()
        if p.name.startswith("lepton_lab.db")
    }
    assert modes == {
        "lepton_lab.db": 0o600,
        "lepton_lab.db-wal": 0o600,
        "lepton_lab.db-shm": 0o600,
        "lepton_lab.db.lock": 0o600,
    }
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store.engine.dispose()


def test_an_existing_readable_sqlite_file_is_made_private(tmp_path):
    path = tmp_path / "lepton_lab.db"
    load_v0_1_0(f"sqlite:///{path}")
    path.chmod(0o644)
    Store(f"sqlite:///{path}").engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- run summaries -----------------------------------------------------------------------------
def test_run_summaries_give_the_highest_step_and_the_newest_value_of_each_metric(empty_url):
    store = Store(empty_url)
    for run_id in ("a", "b", "c"):
        store.create_run(run_id, framework="torch")
    store.add_metrics(
        "a",
        [
            {"rank": rank, "step": step, "name": name, "value": step + rank / 10, "time": 0.0}
            for step in range(3)
            for rank in (0, 1)
            for name in ("loss", "acc")
        ],
    )
    # a resumed run reports a lower step again: the step is still the highest, the values
    # are the newest
    store.add_metrics("a", [{"rank": 0, "step": 1, "name": "loss", "value": 9.0, "time": 0.0}])
    store.add_metrics("b", [{"rank": 0, "step": 7, "name": "val_loss", "value": 0.5, "time": 0}])

    assert store.run_summaries(["a", "b", "c", "nope"]) == {
        "a": {"step": 2, "last_metrics": {"loss": 9.0, "acc": 2.1}},
        "b": {"step": 7, "last_metrics": {"val_loss": 0.5}},
        "c": {"step": None, "last_metrics": {}},
    }
    assert store.run_summaries([]) == {}
    store.engine.dispose()


def test_run_summaries_take_two_queries_whatever_the_number_of_runs(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    ids = [f"r{i}" for i in range(30)]
    for run_id in ids:
        store.create_run(run_id, framework="torch")
        store.add_metrics(
            run_id,
            [
                {"rank": 0, "step": s, "name": n, "value": 1.0, "time": 0}
                for s in range(3)
                for n in "xyz"
            ],
        )
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert len(store.run_summaries(ids[:1])) == 1
    one = len(statements)
    assert len(store.run_summaries(ids)) == 30
    assert len(statements) - one == one == 2
    store.engine.dispose()


# -- the migration helper ----------------------------------------------------------------------
def test_the_migration_helper_finds_no_model_change_without_a_migration():
    result = subprocess.run(
        [sys.executable, "-m", "lepton_lab.store.migrations", "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_a_0003_registry_upgrades_and_numbers_go_on_from_its_versions(tmp_path):
    """0004 adds model_names and fills it from the versions a 0003 database holds (which kept
    no record of deleted numbers); from then on a number is never given twice."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'lepton_lab.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.config(url, conn), "0003")
        for version in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO model_versions (name, version, framework, created_at, params,"
                    " metrics, lineage, tags, failed_formats, location) VALUES ('digits',"
                    " :v, 'torch', 1.0, '{}', '{}', '{}', '{}', '{}', '/nowhere')"
                ),
                {"v": version},
            )
        conn.execute(text("DELETE FROM model_versions WHERE version = 3"))
    engine.dispose()
    store = Store(url)  # upgrades to head
    with store.engine.connect() as conn:
        filled = dict(conn.execute(text("SELECT name, last_version FROM model_names")).all())
    assert filled == {"digits": 2}
    assert (
        store.add_model_version("digits", {"framework": "torch", "location": "/x"}, [])["version"]
        == 3
    )  # 0003 had no record of the deleted 3: numbering goes on from what is stored
    assert (
        store.add_model_version("other", {"framework": "torch", "location": "/y"}, [])["version"]
        == 1
    )
    with store.engine.connect() as conn:
        names = dict(conn.execute(text("SELECT name, last_version FROM model_names")).all())
    assert names == {"digits": 3, "other": 1}
    store.engine.dispose()
