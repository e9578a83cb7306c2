"""Services that the fault tests stop and start again: a PostgreSQL server (Debian's
binaries, as tests/support/postgres.py) and an external Dask scheduler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.labserver import free_port
from tests.support.postgres import _as_postgres, _bin


class Postgres:
    """A throwaway PostgreSQL server that a test can stop (as a crash would: ``immediate``)
    and start again on the same port with the same data."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="lepton-pg-faults-"))
        self.data = self.base / "data"
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self.port = free_port()
        subprocess.run(
            _as_postgres(
                [_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
                + ["-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )

    def url(self, password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://postgres{secret}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            _as_postgres(
                [_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log")]
                + ["-w", "-t", "60", "start", "-o"]
                + [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base}"]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            check=True,
            capture_output=True,
        )

    def close(self) -> None:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def dask_scheduler(folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``dask scheduler`` on 127.0.0.1 (no workers): its address and its process."""
    scheduler_file = folder / "scheduler.json"
    proc = subprocess.Popen(
        [Path(sys.executable).parent / "dask", "scheduler", "--host", "127.0.0.1"]
        + ["--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield json.loads(scheduler_file.read_text())["address"], proc
    finally:
        proc.kill()
        proc.wait(30)
