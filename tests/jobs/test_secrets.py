"""Secrets of jobs and schedules (#14), with real runner processes, kernels, CLI subprocesses
and a real Jupyter server: the job's kernel gets each value as an environment variable, and
the value is in none of the files the lab keeps (the bytes of the database, the log, the
output notebook, the HTML, the job's folder), whichever way the notebook prints it."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import create_engine, text

import lepton_lab as ll
from lepton_lab.contract import RequestError
from lepton_lab.jobs.redact import MIN_LENGTH, RedactingPipe, Redactor
from lepton_lab.jobs.submission import submit
from lepton_lab.services.jobs import JobService
from lepton_lab.services.schedules import ScheduleService
from lepton_lab.store import Store, migrations
from lepton_lab.store.secrets import KEY_FILE, SecretsKeyError, seal, unseal
from tests.jobs.conftest import wait_ended, write_notebook
from tests.support.permissions import not_private

#: A notebook that shows its secret every way a notebook can: a stream on stdout and on
#: stderr, a shell command writing to the kernel's own file descriptors, an execute_result, an
#: HTML display, a metric (its length), a file outside the lab (to prove it got the value),
#: and an exception whose message holds it.
LEAKY_CELLS = (
    "import os, sys\ntoken = os.environ['API_TOKEN']\n"
    "with open(out, 'w') as f:\n    f.write(token)",
    "print('the token is', token)\nprint('on stderr', token, file=sys.stderr)",
    "os.system('echo shell says $API_TOKEN; echo shell err $API_TOKEN >&2')",
    "import lepton_lab as ll\nll.log_metrics(token_length=len(token))",
    "token",
    "from IPython.display import HTML, display\ndisplay(HTML(f'<b>{token}</b>'))",
    "raise RuntimeError(f'refused: {token}')",
)


def new_value() -> str:
    """A value no file of the lab could hold by chance."""
    return f"tok-{secrets.token_hex(12)}"


def files_holding(root: Path, value: str) -> list[str]:
    """Every file under ``root`` whose bytes hold ``value`` (as it is, or as JSON or HTML would
    escape it: it has no character those escape)."""
    needle = value.encode()
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def leaky_notebook(folder: Path) -> Path:
    return write_notebook(folder / "leaky.ipynb", *LEAKY_CELLS, parameters="out = ''")


def stream_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


# -- a job -------------------------------------------------------------------------------------
def test_a_job_gets_its_secret_as_an_environment_variable_and_no_file_holds_the_value(
    state, store, tmp_path
):
    value = new_value()
    received = tmp_path / "received.txt"
    job = ll.jobs.submit(
        leaky_notebook(tmp_path),
        parameters={"out": str(received)},
        secrets={"API_TOKEN": value},
        output_formats=["ipynb", "html"],
    )
    assert job.wait(120) == "failed"  # the last cell raises, with the value in its message
    record = job.record()

    # the kernel had the value, as the environment variable of the secret's name
    assert received.read_text() == value
    assert {m["name"]: m["value"] for m in record["metrics"]} == {"token_length": len(value)}

    # the records show the name only
    assert record["secret_names"] == ["API_TOKEN"]
    assert "secrets" not in record and "sealed_secrets" not in record
    assert ll.jobs.list()[0]["secret_names"] == ["API_TOKEN"]
    assert value not in json.dumps(record)

    # each place the value was printed holds *** instead
    folder = Path(record["output_dir"])
    log = (folder / "job.log").read_text()
    assert "the token is ***" in log and "on stderr ***" in log
    assert "shell says ***" in log and "shell err ***" in log
    output = stream_text(folder / "output.ipynb")
    # (the shell's output reaches the notebook only when ipykernel forwards it in time)
    assert "the token is ***" in output and "on stderr ***" in output
    assert "<b>***</b>" in (folder / "output.ipynb").read_text()
    assert "refused: ***" in record["error"]
    assert record["error_cell"] == len(LEAKY_CELLS) + 2  # after parameters and injected ones
    html = (folder / "output.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "the token is ***" in html

    # no file of the lab holds the value: the database (and its WAL), the log, the output
    # notebook, the HTML, request.json, result.json...
    for name in ("lab.db", f"jobs/{job.id}/job.log", f"jobs/{job.id}/output.ipynb"):
        assert (state / name).exists(), name
    assert (folder / "output.html").exists() and (folder / "request.json").exists()
    assert files_holding(state, value) == []
    assert "API_TOKEN" not in (folder / "request.json").read_text()

    # stored encrypted: one Fernet token, which the state directory's key opens
    engine = create_engine(store.url)
    with engine.connect() as conn:
        names, token = conn.execute(
            text("SELECT secret_names, secrets FROM jobs WHERE id = :id"), {"id": job.id}
        ).one()
    engine.dispose()
    assert json.loads(names) == ["API_TOKEN"] and token.startswith("gAAAAA")
    assert unseal(state / KEY_FILE, token) == {"API_TOKEN": value}
    assert not_private(state / KEY_FILE) == []  # 0600
    assert stat.S_IMODE((state / KEY_FILE).stat().st_mode) == 0o600


def test_a_job_without_secrets_makes_no_key_and_runs_as_before(state, store, tmp_path):
    nb = write_notebook(
        tmp_path / "plain.ipynb", "import os\nprint('LEPTON_LAB_SECRET_NAMES' in os.environ)"
    )
    job = ll.jobs.submit(nb)
    assert job.wait(90) == "completed"
    assert job.record()["secret_names"] == []
    assert not (state / KEY_FILE).exists()
    assert "False" in stream_text(job.output_path)


def test_the_dask_executor_ships_the_secrets_to_the_worker_and_brings_back_no_value(
    store, state, service, tmp_path
):
    from distributed import Client, LocalCluster

    value = new_value()
    received = tmp_path / "received.txt"
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        record = submit(
            store,
            state,
            {
                "path": str(leaky_notebook(tmp_path)),
                "parameters": {"out": str(received)},
                "secrets": {"API_TOKEN": value},
                "executor": "dask",
                "output_formats": ["ipynb", "html"],
            },
            None,
            {"python3"},
        )
        service(dask_client=lambda: client)
        record = wait_ended(store, record["id"])
    assert record["status"] == "failed" and "refused: ***" in record["error"]
    assert received.read_text() == value
    folder = Path(record["output_dir"])
    log = (folder / "job.log").read_text()
    assert "(dask executor)" in log and "the token is ***" in log  # forwarded by the worker
    assert "the token is ***" in stream_text(folder / "output.ipynb")
    assert (folder / "output.html").exists()
    assert files_holding(state, value) == []


def test_a_missing_key_fails_the_job_with_a_clear_error(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "nb.ipynb", "print(1)")
    record = submit(
        store, state, {"path": str(nb), "secrets": {"API_TOKEN": new_value()}}, None, {"python3"}
    )
    (state / KEY_FILE).unlink()
    service()
    record = wait_ended(store, record["id"])
    assert record["status"] == "failed"
    assert record["error"].startswith("could not start the job: the secrets key ")
    assert f"{state / KEY_FILE} is missing" in record["error"]
    assert "Traceback" not in record["error"]


def test_a_replaced_key_fails_to_open_the_secrets_instead_of_giving_garbage(tmp_path):
    token = seal(tmp_path, {"A": "value-1"})
    assert unseal(tmp_path / KEY_FILE, token) == {"A": "value-1"}
    (tmp_path / KEY_FILE).unlink()
    seal(tmp_path, {"B": "other"})  # a new key
    with pytest.raises(SecretsKeyError, match="not the key that encrypted them"):
        unseal(tmp_path / KEY_FILE, token)


def _seal_in_a_process(args: tuple[str, int]) -> str:
    folder, i = args
    return seal(folder, {"N": f"value-{i}"}) or ""


def test_racing_processes_end_with_one_key_that_opens_every_token(tmp_path):
    folder = tmp_path / "state"
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        tokens = pool.map(_seal_in_a_process, [(str(folder), i) for i in range(16)])
    assert sorted(p.name for p in folder.iterdir()) == [KEY_FILE]  # no temporary file left
    key = folder / KEY_FILE
    assert [unseal(key, t) for t in tokens] == [{"N": f"value-{i}"} for i in range(16)]
    assert not_private(folder) == []  # the folder 0700, the key 0600


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "secrets_, message",
    [
        ({"1bad": "value-x"}, "secret name '1bad' must be an environment variable name"),
        ({"has space": "value-x"}, "secret name 'has space' must be an environment variable"),
        ({"LEPTON_LAB_JOB_ID": "value-x"}, "secret name 'LEPTON_LAB_JOB_ID' is reserved"),
        ({"A" * 129: "value-x"}, "is longer than 128 characters"),
        ({"TOKEN": 12345}, "secret 'TOKEN' must be a string, got integer"),
        ({"TOKEN": None}, "secret 'TOKEN' must be a string, got null"),
        ({"TOKEN": "x" * (64 * 1024 + 1)}, "secret 'TOKEN' is longer than 65536 bytes"),
        ({"TOKEN": "nul\x00inside"}, "secret 'TOKEN' contains a NUL character"),
        ({f"S{i}": "value-x" for i in range(51)}, "'secrets' takes at most 50 items"),
        ({f"S{i}": "v" * 60000 for i in range(5)}, "at most 262144 fit in a kernel's"),
        (["TOKEN"], "'secrets' must be a JSON object of NAME: value, got array"),
    ],
)
def test_bad_secrets_are_refused_by_name_never_showing_a_value_and_nothing_is_stored(
    state, store, tmp_path, secrets_, message
):
    nb = write_notebook(tmp_path / "nb.ipynb", "print(1)")
    service = JobService(store, state, kernels=lambda: {"python3"})
    with pytest.raises(RequestError) as refused:
        service.submit({"path": str(nb), "secrets": secrets_})
    assert message in str(refused.value) and refused.value.status == 400
    assert "value-x" not in str(refused.value) and "vvvv" not in str(refused.value)
    schedules = ScheduleService(service)
    with pytest.raises(RequestError) as refused:
        schedules.create({"path": str(nb), "cron": "0 0 1 1 *", "secrets": secrets_})
    assert message in str(refused.value)
    assert store.list_jobs() == [] and store.list_schedules() == []
    assert not (state / "jobs").exists() or list((state / "jobs").iterdir()) == []
    assert not (state / KEY_FILE).exists()


# -- schedules ---------------------------------------------------------------------------------
def test_a_schedule_gives_its_secrets_to_every_job_it_fires_and_an_edit_replaces_them(
    state, store, tmp_path
):
    first, second = new_value(), new_value()
    received = tmp_path / "received.txt"
    nb = write_notebook(
        tmp_path / "sched.ipynb",
        "import os\nopen(out, 'w').write(os.environ['API_TOKEN'])\nprint(os.environ['API_TOKEN'])",
        parameters="out = ''",
    )
    sched = ll.jobs.schedule(
        nb,
        cron="0 3 1 1 *",  # once a year: only "run now" fires it here
        parameters={"out": str(received)},
        secrets={"API_TOKEN": first},
    )
    assert sched.record()["secret_names"] == ["API_TOKEN"] and "secrets" not in sched.record()

    job = sched.run_now()
    assert job.wait(90) == "completed", job.error
    assert received.read_text() == first
    assert job.record()["secret_names"] == ["API_TOKEN"]
    assert "***" in stream_text(job.output_path)

    # an edit without secrets keeps them; with secrets, replaces them whole
    service = ScheduleService(JobService(store, state))
    assert service.update(sched.id, {"name": "renamed"}).secret_names == ["API_TOKEN"]
    assert sched.run_now().wait(90) == "completed"
    assert received.read_text() == first
    edited = service.update(sched.id, {"secrets": {"API_TOKEN": second, "OTHER": "more-1"}})
    assert edited.secret_names == ["API_TOKEN", "OTHER"]
    again = sched.run_now()
    assert again.wait(90) == "completed"
    assert received.read_text() == second

    # the cron path (the dispatcher's fire) gives them too
    from lepton_lab.jobs.dispatcher import Dispatcher

    fired = Dispatcher(store, state, name="t").submit_scheduled(store.get_schedule(sched.id), 1.0)
    assert store.get_job(fired)["secret_names"] == ["API_TOKEN", "OTHER"]
    assert unseal(state / KEY_FILE, store.sealed_secrets(fired)) == {
        "API_TOKEN": second,
        "OTHER": "more-1",
    }
    assert service.update(sched.id, {"secrets": {}}).secret_names == []
    assert store.schedule_sealed_secrets(sched.id) is None

    with pytest.raises(RequestError, match="secret 'X' must be a string"):
        service.update(sched.id, {"secrets": {"X": 1}})
    assert files_holding(state, first) == [] and files_holding(state, second) == []


# -- the CLI -----------------------------------------------------------------------------------
def lepton_lab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed ``lepton-lab`` command, as a user runs it (stdin is not a terminal)."""
    command = Path(sys.executable).with_name("lepton-lab")
    return subprocess.run(
        [str(command), *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def test_cli_secret_reads_the_environment_and_refuses_a_value_on_the_command_line(
    state, store, tmp_path
):
    value = new_value()
    received = tmp_path / "received.txt"
    nb = write_notebook(
        tmp_path / "cli.ipynb",
        "import os\nopen(out, 'w').write(os.environ['API_TOKEN'])\n"
        "print('got', os.environ['API_TOKEN'])",
        parameters="out = ''",
    )
    done = lepton_lab(
        "run", str(nb), "-r", "out", str(received), "--secret", "API_TOKEN", "--wait",
        env={"API_TOKEN": value},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert received.read_text() == value
    assert "got ***" in done.stdout and value not in done.stdout + done.stderr
    (job,) = store.list_jobs()
    assert job["secret_names"] == ["API_TOKEN"]
    shown = lepton_lab("jobs", "show", job["id"])
    assert "secrets:    API_TOKEN" in shown.stdout
    as_json = json.loads(lepton_lab("jobs", "show", job["id"], "--json").stdout)
    assert as_json["secret_names"] == ["API_TOKEN"] and value not in json.dumps(as_json)

    refused = lepton_lab("run", str(nb), "--secret", f"API_TOKEN={value}")
    assert refused.returncode == 2
    assert refused.stderr.startswith("lepton-lab: error: --secret takes a NAME only")
    assert "visible to other users" in refused.stderr and value not in refused.stderr

    unset = lepton_lab("schedule", str(nb), "--cron", "0 0 1 1 *", "--secret", "NOT_SET_HERE")
    assert unset.returncode == 2
    assert "the environment variable NOT_SET_HERE is not set" in unset.stderr
    assert len(store.list_jobs()) == 1 and store.list_schedules() == []

    scheduled = lepton_lab(
        "schedule", str(nb), "--cron", "0 0 1 1 *", "-r", "out", str(received),
        "--secret", "API_TOKEN", env={"API_TOKEN": value},
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    (sched,) = store.list_schedules()
    assert sched["id"] == scheduled.stdout.strip() and sched["secret_names"] == ["API_TOKEN"]
    assert files_holding(state, value) == []


def test_cli_secret_asks_for_a_value_without_echo_on_a_terminal(state, store, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    value = new_value()
    received = tmp_path / "received.txt"
    nb = write_notebook(
        tmp_path / "tty.ipynb",
        "import os\nopen(out, 'w').write(os.environ['TTY_TOKEN'])",
        parameters="out = ''",
    )
    env = {k: v for k, v in os.environ.items() if k != "TTY_TOKEN"}
    command = str(Path(sys.executable).with_name("lepton-lab"))
    child = pexpect.spawn(
        command,
        ["run", str(nb), "-r", "out", str(received), "--secret", "TTY_TOKEN", "--wait", "-q"],
        env=env,
        timeout=120,
        encoding="utf-8",
    )
    child.expect("value of secret TTY_TOKEN: ")
    child.sendline(value)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert value not in child.before  # not echoed
    assert received.read_text() == value
    assert files_holding(state, value) == []


# -- redaction itself --------------------------------------------------------------------------
def test_redactor_takes_every_escaped_form_and_leaves_short_values_alone():
    quoted = "sec\"ret\\with'quotes<&>é"
    redactor = Redactor([quoted, "abc"])
    assert "abc" in redactor.text("abc") and len("abc") < MIN_LENGTH
    for form in (quoted, json.dumps(quoted)[1:-1], repr(quoted)[1:-1]):
        assert redactor.text(f"[{form}]") == "[***]", form
    assert redactor.bytes(f"x{quoted}y".encode()) == b"x***y"
    nb = {"cells": [{"outputs": [{"text": f"a {quoted} b", "data": {"text/html": quoted}}]}]}
    assert redactor.tree(nb) and nb["cells"][0]["outputs"][0] == {
        "text": "a *** b",
        "data": {"text/html": "***"},
    }
    assert not Redactor(["abc"])  # nothing long enough: nothing to do


def test_a_value_split_across_writes_to_the_pipe_is_still_redacted(tmp_path):
    """The pipe's thread sees whatever chunks the writers make: a value cut in two by them
    (or by a read) is held back until it is whole."""
    script = tmp_path / "pipe.py"
    script.write_text(
        "import os, sys, time\n"
        "from lepton_lab.jobs.redact import RedactingPipe, Redactor\n"
        "pipe = RedactingPipe(Redactor(['abcdefgh-secret']))\n"
        "os.write(1, b'one abcdefg'); time.sleep(0.3); os.write(2, b'h-secret two\\n')\n"
        "os.write(1, b'no newline at the end abcdefgh-sec'); time.sleep(0.3)\n"
        "os.write(1, b'ret')\n"
        "os.system('echo child abcdefgh-secret')\n"
        "pipe.close()\n"
        "print('after close')\n"
    )
    log = tmp_path / "log.txt"
    with open(log, "wb") as out:
        subprocess.run([sys.executable, str(script)], stdout=out, stderr=out, check=True)
    written = log.read_text()
    assert "abcdefgh" not in written and "h-secret" not in written
    assert "one *** two" in written and "no newline at the end ***" in written
    assert "child ***" in written and written.endswith("after close\n")
    assert RedactingPipe  # imported for the script's sake


# -- the store's migration ---------------------------------------------------------------------
def test_a_0004_database_upgrades_and_keeps_its_jobs_and_schedules(tmp_path, monkeypatch):
    from alembic import command

    monkeypatch.setattr(migrations, "_upgraded", set())
    url = f"sqlite:///{tmp_path / 'lepton_lab.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.config(url, conn), "0004")
        conn.execute(
            text(
                "INSERT INTO jobs (id, name, notebook, input_path, cwd, output_dir, parameters,"
                " kernel, executor, retries, retry_backoff, tags, output_formats, warnings,"
                " status, attempt, not_before, stop_requested, progress, created_at) VALUES"
                " ('old-job', 'old', '/nb.ipynb', '/in.ipynb', '/', '/out', '{\"a\": 1}',"
                " 'python3', 'local', 0, 1.0, '[]', '[\"ipynb\"]', '[]', 'completed', 1, 0, 0,"
                " '{}', 1.0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO schedules (id, name, notebook, cwd, cron, timezone, parameters,"
                " kernel, executor, retries, tags, output_formats, active, overlap, catchup,"
                " fired, skipped, created_at) VALUES ('old-sched', 'nightly', '/nb.ipynb', '/',"
                " '0 3 * * *', 'UTC', '{}', 'python3', 'local', 0, '[]', '[\"ipynb\"]', 1,"
                " 'skip', 'once', 4, 0, 1.0)"
            )
        )
    engine.dispose()

    store = Store(url)  # upgrades to head
    with store.engine.connect() as conn:
        assert migrations.current(conn) == (migrations.head(),)
    job = store.get_job("old-job")
    assert job["parameters"] == {"a": 1} and job["status"] == "completed"
    assert job["secret_names"] == [] and store.sealed_secrets("old-job") is None
    sched = store.get_schedule("old-sched")
    assert sched["fired"] == 4 and sched["secret_names"] == []
    assert store.schedule_sealed_secrets("old-sched") is None
    store.create_job(
        "new-job",
        notebook="/nb.ipynb",
        input_path="/in.ipynb",
        cwd="/",
        output_dir="/out2",
        kernel="python3",
        secret_names=["A"],
        secrets="gAAAAA-token",
    )
    assert store.get_job("new-job")["secret_names"] == ["A"]
    assert store.sealed_secrets("new-job") == "gAAAAA-token"
    store.engine.dispose()


# -- REST --------------------------------------------------------------------------------------
@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    return {**lab_config, "n_workers": 1, "job_concurrency": 1}


async def test_rest_takes_secrets_and_shows_only_their_names(jp_fetch, jp_root_dir, lab_app):
    from tests.server.test_jobs_api import call, wait_job

    value = new_value()
    root = Path(jp_root_dir)
    received = root / "received.txt"
    write_notebook(root / "leaky.ipynb", *LEAKY_CELLS, parameters="out = ''")
    body = {
        "path": "leaky.ipynb",
        "parameters": {"out": str(received)},
        "secrets": {"API_TOKEN": value},
        "output_formats": ["ipynb", "html"],
    }
    code, job = await call(jp_fetch, "POST", "jobs", body=body)
    assert code == 201, job
    assert job["secret_names"] == ["API_TOKEN"] and value not in json.dumps(job)
    assert "secrets" not in job
    job = await wait_job(jp_fetch, job["id"])
    assert job["status"] == "failed" and "refused: ***" in job["error"]
    assert received.read_text() == value
    answers = [json.dumps(job)]
    for parts, params in [
        (("jobs",), None),
        (("jobs", job["id"], "logs"), None),
        (("jobs", job["id"], "output"), None),
        (("jobs", job["id"], "output"), {"format": "html"}),
    ]:
        code, answer = await call(jp_fetch, "GET", *parts, params=params)
        assert code == 200, parts
        answers.append(answer if isinstance(answer, str) else json.dumps(answer))
    assert all(value not in a for a in answers)
    assert "the token is ***" in answers[2]

    code, sched = await call(
        jp_fetch,
        "POST",
        "schedules",
        body={"path": "leaky.ipynb", "cron": "0 3 1 1 *", "secrets": {"API_TOKEN": value}},
    )
    assert code == 201 and sched["secret_names"] == ["API_TOKEN"]
    assert value not in json.dumps(sched)
    code, edited = await call(
        jp_fetch, "PATCH", "schedules", sched["id"], body={"secrets": {"B_TOKEN": value}}
    )
    assert code == 200 and edited["secret_names"] == ["B_TOKEN"]
    code, kept = await call(jp_fetch, "PATCH", "schedules", sched["id"], body={"name": "n"})
    assert code == 200 and kept["secret_names"] == ["B_TOKEN"]

    count = len(lab_app.store.list_jobs())
    for bad, message in [
        ({"1bad": value}, "secret name '1bad' must be an environment variable name"),
        ({"TOKEN": 1}, "secret 'TOKEN' must be a string, got integer"),
        ({"TOKEN": value * 3000}, "secret 'TOKEN' is longer than 65536 bytes"),
        ({f"S{i}": value for i in range(51)}, "'secrets' takes at most 50 items"),
    ]:
        code, error = await call(jp_fetch, "POST", "jobs", body={**body, "secrets": bad})
        assert code == 400 and message in error["message"], error
        assert value not in json.dumps(error)
        code, error = await call(jp_fetch, "PATCH", "schedules", sched["id"], body={"secrets": bad})
        assert code == 400 and message in error["message"], error
    assert len(lab_app.store.list_jobs()) == count
    code, unchanged = await call(jp_fetch, "GET", "schedules", sched["id"])
    assert unchanged["secret_names"] == ["B_TOKEN"]
    assert files_holding(Path(lab_app.state_dir), value) == []
