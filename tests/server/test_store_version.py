"""A database written by a newer Lepton Lab: the server and the CLI refuse it with one clear
message and leave it as it was (the store's own tests cover the upgrade of an older one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy

from lepton_lab.store import Store
from tests.support.labserver import LabServer


def newer_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = Store(url)
    store.create_run("kept", framework="torch")
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '9999'"))
    store.engine.dispose()
    return url


def test_server_and_cli_refuse_a_newer_database(tmp_path):
    url = newer_database(tmp_path / "future.db")
    env = dict(os.environ, LEPTON_LAB_DATABASE_URL=url, LEPTON_LAB_STATE_DIR=str(tmp_path))
    cli = subprocess.run(
        [sys.executable, "-m", "lepton_lab.cli.main", "jobs", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cli.returncode == 2
    assert cli.stderr.startswith("lepton-lab: error: the database at sqlite:///")
    assert "newer than this Lepton Lab" in cli.stderr and "Traceback" not in cli.stderr

    server = LabServer(
        tmp_path / "root",
        lepton={"database_url": url, "state_dir": str(tmp_path), "cluster_mode": "local"},
        app="jupyter_server",
    ).start()
    try:
        code, _ = server.request("GET", "lepton-lab/api/cluster")
        assert code == 404  # the extension did not load
        log = server.log()
        assert "Lepton Lab: not started: the database at sqlite:///" in log
        assert "newer than this Lepton Lab" in log
    finally:
        server.stop()
    with sqlalchemy.create_engine(url).connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).all() == [
            ("9999",)
        ]
        assert conn.execute(sqlalchemy.text("SELECT id FROM runs")).all() == [("kept",)]
