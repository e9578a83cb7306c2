"""``lepton-lab run | schedule | jobs | schedules`` as a user types them (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.jobs.conftest import write_notebook

PARAMS = "epochs = 1\nlr = 0.1\nname = 'a'\nflags = []"
SHOW = "print(repr((epochs, lr, name, flags)))"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lepton_lab.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=dict(os.environ),
    )


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture
def nb(tmp_path, state) -> Path:
    return write_notebook(tmp_path / "train.ipynb", SHOW, parameters=PARAMS)


def test_run_wait_with_p_and_a_params_file_succeeds_with_typed_values(nb, tmp_path, store):
    params = tmp_path / "params.yaml"
    params.write_text("lr: 0.5\nname: from-file\nflags: [1, two]\nepochs: 9\n")
    done = cli("run", str(nb), "-f", str(params), "-p", "epochs", "3", "--wait")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stderr
    (job,) = store.list_jobs()
    assert job["parameters"] == {"lr": 0.5, "name": "from-file", "flags": [1, "two"], "epochs": 3}
    assert "(3, 0.5, 'from-file', [1, 'two'])" in outputs(Path(job["output_dir"]) / "output.ipynb")
    assert "(3, 0.5, 'from-file', [1, 'two'])" in done.stdout  # the log streamed while it ran


def test_run_wait_exits_non_zero_and_prints_the_failing_cell(tmp_path, state, store):
    bad = write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise RuntimeError('data missing')")
    done = cli("run", str(bad), "--kernel", "python3", "--wait", "-q")
    assert done.returncode == 1
    assert "cell 2 (In [2]) raised RuntimeError: data missing" in done.stderr
    assert "output notebook:" in done.stderr
    (job,) = store.list_jobs()
    assert job["status"] == "failed"
    assert Path(job["output_dir"], "output.ipynb").exists()
    shown = cli("jobs", "show", job["id"])
    assert shown.returncode == 0 and "RuntimeError: data missing" in shown.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "{nb}", "-p", "epochs", "three"], "parameter 'epochs' must be int"),
        (["run", "{nb}", "-p", "batch", "3"], "unknown parameter(s) batch"),
        (["run", "{nb}", "--kernel", "no-such-kernel"], "unknown kernel 'no-such-kernel'"),
        (["run", "{dir}/missing.ipynb"], "does not exist"),
        (["run", "{dir}/notes.txt"], "is not a notebook"),
        (["run", "{dir}/broken.ipynb"], "is not a valid notebook"),
        (["run", "{nb}", "-f", "{dir}/list.yaml"], "must hold a mapping"),
        (["run", "{nb}", "--timeout", "-1"], "'timeout' must be between"),
        (["schedule", "{nb}", "--cron", "not a cron"], "is not a valid cron expression"),
        (
            ["schedule", "{nb}", "--cron", "* * * * *", "--timezone", "Mars/Base"],
            "unknown timezone",
        ),
        (["jobs", "show", "nosuchjob"], "no job with id 'nosuchjob'"),
        (["schedules", "pause", "nosuch"], "no schedule with id 'nosuch'"),
    ],
)
def test_bad_input_is_one_readable_line_and_stores_nothing(nb, tmp_path, store, args, message):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    argv = [a.format(nb=nb, dir=tmp_path) for a in args]
    done = cli(*argv)
    assert done.returncode == 2, done
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert store.list_jobs() == [] and store.list_schedules() == []


def test_jobs_and_schedules_commands(nb, store):
    job_id = cli("run", str(nb)).stdout.strip()  # no server running: it is queued
    listed = json.loads(cli("jobs", "list", "--json").stdout)
    assert [j["id"] for j in listed] == [job_id]
    assert cli("jobs", "stop", job_id).stdout.strip() == f"job {job_id}: stopped"
    again = cli("jobs", "stop", job_id)
    assert again.returncode == 2 and "already ended (stopped)" in again.stderr

    created = cli("schedule", str(nb), "--cron", "0 3 * * *", "-p", "epochs", "2")
    assert created.returncode == 0, created.stderr
    sid = created.stdout.strip()
    assert "next run" in created.stderr
    assert cli("schedules", "pause", sid).returncode == 0
    assert store.get_schedule(sid)["active"] is False
    assert cli("schedules", "resume", sid).returncode == 0
    assert store.get_schedule(sid)["next_fire_at"] is not None
    run_now = cli("schedules", "run", sid)
    assert run_now.returncode == 0, run_now.stderr
    assert store.get_job(run_now.stdout.strip())["schedule_id"] == sid
    assert sid in cli("schedules", "list").stdout
    assert cli("schedules", "delete", sid).returncode == 0
    assert store.list_schedules() == []
