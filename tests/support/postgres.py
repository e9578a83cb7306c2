"""A private, throwaway PostgreSQL server (Debian's binaries) for store tests."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(
            f"PostgreSQL's {name} is missing: apt-get install -y postgresql (make test does this)"
        )
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; use Debian's postgres account then
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1 with its data in a fresh temp dir; yield a SQLAlchemy URL.

    The dir is made here (not under pytest's root-only tmp) so the postgres account can use it.
    """
    base = Path(tempfile.mkdtemp(prefix="lepton-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        _as_postgres(
            [_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    log = base / "server.log"
    subprocess.run(
        _as_postgres(
            [
                _bin("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base}",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
