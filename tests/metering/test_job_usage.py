"""Usage of notebook jobs, measured for real: papermill runner processes, their kernels, and a
child process the kernel starts, against a private SQLite store (``tests/jobs`` fixtures)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from lepton_lab.jobs.spec import validate_job
from lepton_lab.jobs.submission import create_job, installed_kernels
from lepton_lab.metering.ledger import folder_bytes
from tests.jobs.conftest import wait_ended, write_notebook

#: CPU seconds the kernel's child burns; the job's record must hold them
CHILD_CPU = 2.0
BURN = f"""\
import subprocess, sys
subprocess.run([sys.executable, "-c", '''
import time
end = time.process_time() + {CHILD_CPU}
while time.process_time() < end:
    pass
'''], check=True)
"""


def submit(db, state_dir, path: Path, **body) -> dict:
    spec = validate_job({"path": str(path), "kernel": "python3", **body}, None, installed_kernels())
    return create_job(db, state_dir, spec)


def disk_bytes(folder: str) -> int:
    return sum(
        os.lstat(os.path.join(root, name)).st_size
        for root, _dirs, files in os.walk(folder)
        for name in files
    )


def test_a_job_counts_the_cpu_of_its_kernels_child_and_is_recorded_for_its_user(
    store, state, service, tmp_path
):
    nb = write_notebook(tmp_path / "burn.ipynb", BURN, "x = bytearray(50_000_000)")
    job = submit(store, state, nb, tags=["nightly", "team-a"])
    service()
    ended = wait_ended(store, job["id"])
    assert ended["status"] == "completed", ended["error"]

    record = store.usage_record("job", f"{job['id']}#1")
    assert record is not None
    # the child's CPU (2 s) plus the kernel's and papermill's own start-up
    assert CHILD_CPU * 0.95 <= record["cpu_seconds"] <= CHILD_CPU + 15, record
    assert record["wall_seconds"] >= CHILD_CPU * 0.9
    assert record["peak_memory"] > 50_000_000  # the kernel's 50 MB bytearray, at least
    assert record["user"] == getpass.getuser()
    assert record["notebook"] == str(nb)
    assert record["tags"] == ["nightly", "team-a"]
    assert record["detail"]["status"] == "completed" and record["detail"]["measured"]
    assert record["gpu_seconds"] == 0.0  # no GPU here

    stored = store.usage_record("storage", f"job:{job['id']}")
    assert stored is not None and stored["deleted_at"] is None
    assert stored["bytes"] == disk_bytes(ended["output_dir"]) == folder_bytes(ended["output_dir"])
    assert stored["bytes"] > 0


def test_a_timed_out_job_keeps_the_usage_it_had_when_it_was_killed(store, state, service, tmp_path):
    busy = "import time\nend = time.process_time() + 60\nwhile time.process_time() < end:\n    pass"
    nb = write_notebook(tmp_path / "spin.ipynb", busy)
    job = submit(store, state, nb, timeout=8)
    service()
    ended = wait_ended(store, job["id"])
    assert ended["status"] == "timed_out"
    record = store.usage_record("job", f"{job['id']}#1")
    assert record is not None
    assert record["detail"]["status"] == "timed_out"
    # the last snapshot before the kill: the kernel had been spinning for a few seconds
    assert record["cpu_seconds"] >= 1.0, record
    assert record["wall_seconds"] >= 5.0
