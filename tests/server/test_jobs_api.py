"""REST routes of notebook jobs and schedules, against real papermill runs in the test server.

Notebooks are written into the server's root; the server's own job service executes them with
the ``python3`` kernel. Each test starts one server; the few real executions dominate the time.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from tornado.httpclient import HTTPClientError

FINAL = ("completed", "failed", "stopped", "timed_out")

TYPED_PARAMETERS = {
    "i": 42,
    "f": 2.5,
    "s": "héllo",
    "b": True,
    "l": [1, "two", 3.0],
    "d": {"k": [1, 2], "nested": {"x": None}},
    "n": None,
}
TYPE_NAMES = {
    "i": "int",
    "f": "float",
    "s": "str",
    "b": "bool",
    "l": "list",
    "d": "dict",
    "n": "NoneType",
}


@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    """One small worker (the jobs here run in local runner processes, not on the cluster) and
    one job at a time, so a second submission stays queued while the first runs."""
    return {**lab_config, "n_workers": 1, "job_concurrency": 1}


def write_notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def typed_notebook(root: Path) -> Path:
    return write_notebook(
        root / "typed.ipynb",
        "import json\n"
        "values = dict(i=i, f=f, s=s, b=b, l=l, d=d, n=n)\n"
        "print('TYPES ' + json.dumps({k: type(v).__name__ for k, v in values.items()}))\n"
        "print('VALUES ' + json.dumps(values))",
        parameters='i = 1\nf = 1.5\ns = "x"\nb = False\nl = [1]\nd = {"a": 1}\nn = None',
    )


async def call(
    jp_fetch: Any,
    method: str,
    *parts: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request; 4xx answers are returned, not raised."""
    if method not in ("POST", "PATCH"):
        body = None
    elif body is None:
        body = ""
    elif not isinstance(body, str):
        body = json.dumps(body)
    try:
        response = await jp_fetch(
            "lepton-lab", "api", *parts, method=method, body=body, params=params or {}
        )
    except HTTPClientError as exc:
        response = exc.response
        assert response is not None, exc
    raw = response.body.decode() if response.body else ""
    if response.headers.get("Content-Type", "").startswith("application/json") and raw:
        return response.code, json.loads(raw)
    return response.code, raw


async def wait_job(jp_fetch: Any, job_id: str, until=lambda j: j["status"] in FINAL, timeout=120):
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        code, job = await call(jp_fetch, "GET", "jobs", job_id)
        assert code == 200, job
        if until(job):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} never got there; last: {job}")


async def job_count(jp_fetch: Any) -> int:
    code, listing = await call(jp_fetch, "GET", "jobs", params={"limit": "1000"})
    assert code == 200
    return len(listing["jobs"])


def job_folders(lab_app: Any) -> list[Path]:
    folder = Path(lab_app.state_dir, "jobs")
    return sorted(folder.iterdir()) if folder.exists() else []


def text(value: str | list[str]) -> str:
    """nbformat stores multi-line strings as lists of lines."""
    return "".join(value) if isinstance(value, list) else value


async def test_submitted_job_runs_with_typed_parameters_and_serves_output_and_logs(
    jp_fetch, jp_root_dir, lab_app
):
    typed_notebook(Path(jp_root_dir))
    code, job = await call(
        jp_fetch,
        "POST",
        "jobs",
        body={
            "path": "typed.ipynb",
            "parameters": TYPED_PARAMETERS,
            "kernel": "python3",
            "output_formats": ["ipynb", "html"],
            "tags": ["api-test"],
        },
    )
    assert code == 201, job
    assert job["status"] == "queued" and job["path"] == "typed.ipynb"
    assert job["parameters"] == TYPED_PARAMETERS and job["tags"] == ["api-test"]
    write_notebook(Path(jp_root_dir, "nested", "fails.ipynb"), "x = 1", "1 / 0", "print('never')")
    code, failing = await call(jp_fetch, "POST", "jobs", body={"path": "nested/fails.ipynb"})
    assert code == 201 and failing["path"] == "nested/fails.ipynb"

    job = await wait_job(jp_fetch, job["id"])
    assert job["status"] == "completed", job["error"]
    assert [e["status"] for e in job["events"]] == ["queued", "running", "completed"]
    assert job["elapsed"] > 0 and job["progress"]["completed"] == job["progress"]["cells"]
    assert job["metrics"] == []
    assert job["outputs"] == ["ipynb", "html"]

    code, output = await call(jp_fetch, "GET", "jobs", job["id"], "output")
    assert code == 200 and output["nbformat"] == 4
    injected = [
        text(c["source"])
        for c in output["cells"]
        if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert len(injected) == 1
    assert "i = 42" in injected[0] and "n = None" in injected[0] and "b = True" in injected[0]
    printed = "".join(
        text(o.get("text", ""))
        for c in output["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
    )
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in printed.splitlines()}
    assert json.loads(lines["TYPES"]) == TYPE_NAMES
    assert json.loads(lines["VALUES"]) == TYPED_PARAMETERS

    response = await jp_fetch(
        "lepton-lab", "api", "jobs", job["id"], "output", params={"format": "html"}
    )
    assert response.headers["Content-Type"].startswith("text/html")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "TYPES" in response.body.decode()

    code, logs = await call(jp_fetch, "GET", "jobs", job["id"], "logs")
    assert code == 200 and logs["complete"] and logs["next"] == logs["size"] > 0
    assert f"attempt 1 of job {job['id']}" in logs["text"] and "TYPES" in logs["text"]
    # Paging: small pages from `next` add up to the whole log, and the end is marked.
    whole, offset, complete = "", 0, False
    for _ in range(10000):
        code, page = await call(
            jp_fetch,
            "GET",
            "jobs",
            job["id"],
            "logs",
            params={"offset": str(offset), "limit": "97"},
        )
        assert code == 200 and page["offset"] == offset
        whole, offset, complete = whole + page["text"], page["next"], page["complete"]
        if complete:
            break
    assert complete and whole == logs["text"]

    code, listing = await call(jp_fetch, "GET", "jobs", params={"status": "completed"})
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    code, listing = await call(jp_fetch, "GET", "jobs")
    assert [j["id"] for j in listing["jobs"]] == [failing["id"], job["id"]]  # newest first
    code, listing = await call(jp_fetch, "GET", "jobs", params={"limit": "1"})
    assert [j["id"] for j in listing["jobs"]] == [failing["id"]]

    # A failed job says which cell failed, and keeps its executed notebook and log.
    failing = await wait_job(jp_fetch, failing["id"])
    assert failing["status"] == "failed" and failing["error_cell"] == 2, failing
    assert "ZeroDivisionError" in failing["error"]
    code, output = await call(jp_fetch, "GET", "jobs", failing["id"], "output")
    assert code == 200
    errors = [o for c in output["cells"] for o in c.get("outputs", []) if "ename" in o]
    assert [e["ename"] for e in errors] == ["ZeroDivisionError"]
    code, logs = await call(jp_fetch, "GET", "jobs", failing["id"], "logs")
    assert "ZeroDivisionError" in logs["text"] and logs["complete"]

    code, _ = await call(jp_fetch, "POST", "jobs", job["id"], "stop")
    assert code == 409
    code, _ = await call(jp_fetch, "DELETE", "jobs", job["id"])
    assert code == 204
    code, _ = await call(jp_fetch, "DELETE", "jobs", failing["id"])
    assert code == 204
    assert not Path(job["output_dir"]).exists() and job_folders(lab_app) == []
    code, error = await call(jp_fetch, "GET", "jobs", job["id"])
    assert code == 404 and "no job with id" in error["message"]


def kernel_processes(runner_pid: int) -> list[psutil.Process]:
    try:
        tree = psutil.Process(runner_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in tree if "ipykernel_launcher" in " ".join(p.cmdline())]


def uses(proc: psutil.Process, connection: str) -> bool:
    """A live process started with this kernel connection file."""
    try:
        return connection in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def connection_file(proc: psutil.Process) -> str:
    args = proc.cmdline()
    return args[args.index("-f") + 1]


def ended(proc: psutil.Process) -> bool:
    """Gone, or a zombie waiting for its parent to reap it."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_stop_ends_a_running_job_and_its_kernel_and_a_queued_job_at_once(
    jp_fetch, jp_root_dir, lab_app
):
    write_notebook(
        Path(jp_root_dir, "sleepy.ipynb"),
        "import time\nprint('SLEEPING', flush=True)\ntime.sleep(600)",
    )
    code, job = await call(jp_fetch, "POST", "jobs", body={"path": "sleepy.ipynb"})
    assert code == 201, job

    deadline = time.monotonic() + 60
    logs: dict = {"text": ""}
    while "SLEEPING" not in logs["text"] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        code, logs = await call(jp_fetch, "GET", "jobs", job["id"], "logs")
    assert "SLEEPING" in logs["text"] and not logs["complete"], logs
    job = await wait_job(jp_fetch, job["id"], until=lambda j: "cell_elapsed" in j["progress"])
    assert job["status"] == "running" and job["elapsed"] > 0
    assert job["progress"]["cell_elapsed"] >= 0
    deadline = time.monotonic() + 60
    kernels: list[psutil.Process] = []
    while time.monotonic() < deadline and not kernels:
        kernels = kernel_processes(job["runner_pid"])
        await asyncio.sleep(0.2)
    assert len(kernels) == 1, kernels
    runner = psutil.Process(job["runner_pid"])
    conn = connection_file(kernels[0])

    # Concurrency is 1: a second job waits, and stopping it needs nobody's help.
    code, queued = await call(jp_fetch, "POST", "jobs", body={"path": "sleepy.ipynb"})
    assert code == 201 and queued["status"] == "queued"
    code, answer = await call(jp_fetch, "POST", "jobs", queued["id"], "stop")
    assert code == 202 and answer == {
        "id": queued["id"],
        "status": "stopped",
        "stop_requested": True,
    }
    code, record = await call(jp_fetch, "GET", "jobs", queued["id"])
    assert record["status"] == "stopped" and record["started_at"] is None
    assert record["outputs"] == []  # stopped before it ran: nothing to link to

    code, error = await call(jp_fetch, "DELETE", "jobs", job["id"])
    assert code == 409 and "stop it before deleting" in error["message"]
    code, answer = await call(jp_fetch, "POST", "jobs", job["id"], "stop")
    assert code == 202 and answer["status"] == "running"
    job = await wait_job(jp_fetch, job["id"], timeout=30)
    assert job["status"] == "stopped" and job["error"] is None

    for proc in (runner, *kernels):
        assert ended(proc), proc
    assert [p for p in psutil.Process().children(recursive=True) if uses(p, conn)] == []
    code, logs = await call(jp_fetch, "GET", "jobs", job["id"], "logs")
    assert "SLEEPING" in logs["text"] and logs["complete"]
    code, answer = await call(jp_fetch, "POST", "jobs", job["id"], "stop")
    assert code == 409 and "already ended (stopped)" in answer["message"]
    code, _ = await call(jp_fetch, "DELETE", "jobs", job["id"])
    assert code == 204


async def test_schedules_create_list_pause_resume_edit_run_now_and_delete(
    jp_fetch, jp_root_dir, lab_app
):
    typed_notebook(Path(jp_root_dir, "sub"))
    body = {
        "path": "sub/typed.ipynb",
        "cron": "0 3 1 1 *",  # once a year: it never fires during the test
        "timezone": "Europe/Paris",
        "parameters": {"i": 7},
        "name": "nightly",
    }
    code, sched = await call(jp_fetch, "POST", "schedules", body=body)
    assert code == 201, sched
    assert sched["active"] and sched["next_fire_at"] > time.time()
    assert sched["path"] == "sub/typed.ipynb" and sched["name"] == "nightly"
    assert len(sched["upcoming"]) == 3 and sched["upcoming"][0] == sched["next_fire_at"]
    sid = sched["id"]

    code, listing = await call(jp_fetch, "GET", "schedules")
    assert [s["id"] for s in listing["schedules"]] == [sid]

    code, paused = await call(jp_fetch, "PATCH", "schedules", sid, body={"active": False})
    assert code == 200 and not paused["active"] and paused["next_fire_at"] is None
    assert paused["upcoming"] == []
    code, resumed = await call(jp_fetch, "PATCH", "schedules", sid, body={"active": True})
    assert code == 200 and resumed["active"] and resumed["next_fire_at"] == sched["next_fire_at"]

    code, edited = await call(
        jp_fetch,
        "PATCH",
        "schedules",
        sid,
        body={"cron": "30 4 * * *", "timezone": "UTC", "parameters": {"i": 8, "s": "y"}},
    )
    assert code == 200, edited
    assert edited["cron"] == "30 4 * * *" and edited["parameters"] == {"i": 8, "s": "y"}
    assert edited["next_fire_at"] % 86400 == 4 * 3600 + 30 * 60

    for patch, message in [
        ({"parameters": {"i": "eight"}}, "parameter 'i' must be int"),
        ({"parameters": {"zzz": 1}}, "unknown parameter(s) zzz"),
        ({"kernel": "no-such-kernel"}, "unknown kernel"),
        ({"cron": "every day"}, "not a valid cron expression"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"overlap": "maybe"}, "'overlap' must be one of"),
        ({"path": "other.ipynb"}, "unknown field(s) path"),
        ({}, "nothing to change"),
    ]:
        code, error = await call(jp_fetch, "PATCH", "schedules", sid, body=patch)
        assert code == 400 and message in error["message"], (patch, error)
    code, unchanged = await call(jp_fetch, "GET", "schedules", sid)
    assert {k: unchanged[k] for k in ("cron", "parameters", "kernel")} == {
        k: edited[k] for k in ("cron", "parameters", "kernel")
    }

    code, job = await call(jp_fetch, "POST", "schedules", sid, "run")
    assert code == 201, job
    assert job["schedule_id"] == sid and job["parameters"] == {"i": 8, "s": "y"}
    job = await wait_job(jp_fetch, job["id"])
    assert job["status"] == "completed", job["error"]
    code, listing = await call(jp_fetch, "GET", "jobs", params={"schedule_id": sid})
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    code, record = await call(jp_fetch, "GET", "schedules", sid)
    assert record["last_job_id"] == job["id"]

    code, _ = await call(jp_fetch, "DELETE", "schedules", sid)
    assert code == 204
    for method, parts in [
        ("GET", ("schedules", sid)),
        ("PATCH", ("schedules", sid)),
        ("DELETE", ("schedules", sid)),
        ("POST", ("schedules", sid, "run")),
    ]:
        code, error = await call(jp_fetch, method, *parts, body={"active": True})
        assert code == 404 and "no schedule with id" in error["message"], (method, parts)
    code, job_after = await call(jp_fetch, "GET", "jobs", job["id"])
    assert code == 200  # a schedule's jobs outlive it


@pytest.mark.parametrize(
    "lab_config",
    [
        {
            "cluster_mode": "local",
            "n_workers": 1,
            "threads_per_worker": 1,
            "memory_limit": "1GiB",
            "dashboard_address": "127.0.0.1:0",
            "run_jobs": False,  # the one valid job below must stay queued
        }
    ],
)
async def test_bad_requests_are_4xx_json_and_store_nothing(
    jp_fetch, jp_root_dir, lab_app, tmp_path
):
    root = Path(jp_root_dir)
    typed_notebook(root)
    (root / "notes.txt").write_text("not a notebook")
    (root / "garbage.ipynb").write_text("{ this is not json")
    (root / "folder.ipynb").mkdir()
    outside = write_notebook(tmp_path / "outside" / "secret.ipynb", "print(1)")
    (root / "escape.ipynb").symlink_to(outside)
    (root / "link-dir").symlink_to(outside.parent, target_is_directory=True)
    (root / "loop.ipynb").symlink_to(root / "loop.ipynb")
    ok = {"path": "typed.ipynb", "kernel": "python3"}

    job_cases: list[tuple[Any, int, str]] = [
        ({**ok, "path": "../x.ipynb"}, 400, "outside the server's root"),
        ({**ok, "path": "/etc/passwd"}, 400, "outside the server's root"),
        ({**ok, "path": str(outside)}, 400, "outside the server's root"),
        ({**ok, "path": "escape.ipynb"}, 400, "outside the server's root"),
        ({**ok, "path": "link-dir/secret.ipynb"}, 400, "outside the server's root"),
        ({**ok, "path": "missing.ipynb"}, 404, "does not exist"),
        ({**ok, "path": "notes.txt"}, 400, "is not a notebook"),
        ({**ok, "path": "folder.ipynb"}, 400, "is not a notebook"),
        ({**ok, "path": "garbage.ipynb"}, 400, "is not a valid notebook"),
        ({**ok, "path": ""}, 400, "'path' must be a non-empty string"),
        ({**ok, "path": 3}, 400, "'path' must be a non-empty string"),
        ({**ok, "path": "a\u0000b.ipynb"}, 400, "NUL"),
        ({**ok, "path": "x" * 5000 + ".ipynb"}, 400, "cannot be looked up"),
        ({**ok, "path": "loop.ipynb"}, 400, "cannot be resolved"),
        ({"kernel": "python3"}, 400, "missing field 'path'"),
        ({**ok, "parameters": {"i": "forty-two"}}, 400, "parameter 'i' must be int"),
        ({**ok, "parameters": {"i": 4.2}}, 400, "parameter 'i' must be int"),
        ({**ok, "parameters": {"b": 1}}, 400, "parameter 'b' must be bool"),
        ({**ok, "parameters": {"f": "x"}}, 400, "parameter 'f' must be float"),
        ({**ok, "parameters": {"l": {"a": 1}}}, 400, "parameter 'l' must be list"),
        ({**ok, "parameters": {"unknown_one": 1}}, 400, "unknown parameter(s) unknown_one"),
        ({**ok, "parameters": {"not an identifier": 1}}, 400, "not a valid identifier"),
        ({**ok, "parameters": [1, 2]}, 400, "'parameters' must be a JSON object"),
        ({**ok, "kernel": "no-such-kernel"}, 400, "unknown kernel 'no-such-kernel'"),
        ({**ok, "colour": "red"}, 400, "unknown field(s) colour"),
        ({**ok, "timeout": -1}, 400, "'timeout' must be between"),
        ({**ok, "timeout": "soon"}, 400, "'timeout' must be a number"),
        ({**ok, "retries": "3"}, 400, "'retries' must be an integer"),
        ({**ok, "retries": 1000}, 400, "'retries' must be between"),
        ({**ok, "output_formats": ["pdf"]}, 400, "'output_formats' may hold only"),
        ({**ok, "executor": "cloud"}, 400, "'executor' must be one of"),
        ({**ok, "cwd": "../"}, 400, "outside the server's root"),
        ({**ok, "cwd": "notes.txt"}, 400, "is not a directory"),
        ({**ok, "allow_unknown": "yes"}, 400, "'allow_unknown' must be a boolean"),
        ({**ok, "timeout": 10**400}, 400, "'timeout' must be between"),
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "must be a JSON object"),
        ('{"path": "typed.ipynb", "timeout": NaN}', 400, "not valid JSON"),
        ('{"path": "typed.ipynb", "timeout": 1e999}', 400, "not valid JSON"),
        ('{"path": "\\ud800.ipynb"}', 400, "not valid Unicode"),
        ("[" * 100000 + "]" * 100000, 400, ""),
        ("", 400, "the request body is empty"),
    ]
    schedule_cases: list[tuple[Any, int, str]] = [
        ({**ok, "cron": "61 * * * *"}, 400, "not a valid cron expression"),
        ({**ok, "cron": "every minute"}, 400, "not a valid cron expression"),
        ({**ok, "cron": "* * * * * * * *"}, 400, "not a valid cron expression"),
        ({**ok, "cron": 5}, 400, "'cron' must be a non-empty string"),
        ({**ok, "cron": "* * * * *", "timezone": "Mars/Olympus"}, 400, "unknown timezone"),
        ({**ok, "cron": "* * * * *", "timezone": "x" * 5000}, 400, ""),
        ({**ok, "cron": "* * * * *", "active": "no"}, 400, "'active' must be a boolean"),
        ({**ok, "cron": "* * * * *", "catchup": "all"}, 400, "'catchup' must be one of"),
        ({**ok, "cron": "* * * * *", "retry_backoff": 1}, 400, "unknown field(s) retry_backoff"),
        (ok, 400, "missing field 'cron'"),
        ({**ok, "cron": "* * * * *", "path": "../x.ipynb"}, 400, "outside the server's root"),
        ({**ok, "cron": "* * * * *", "path": "missing.ipynb"}, 404, "does not exist"),
        ({**ok, "cron": "* * * * *", "parameters": {"i": "x"}}, 400, "must be int"),
    ]
    for route, cases in (("jobs", job_cases), ("schedules", schedule_cases)):
        for body, status, message in cases:
            code, error = await call(jp_fetch, "POST", route, body=body)
            shown = (route, str(body)[:80])
            assert code == status, (shown, code, error)
            assert isinstance(error, dict) and message in error["message"], (shown, error)
    assert await job_count(jp_fetch) == 0 and job_folders(lab_app) == []
    code, listing = await call(jp_fetch, "GET", "schedules")
    assert listing["schedules"] == []

    query_cases = [
        (("jobs",), {"status": "dancing"}, 400, "'status' must be one of"),
        (("jobs",), {"limit": "0"}, 400, "between 1 and 1000"),
        (("jobs",), {"limit": "lots"}, 400, "'limit' must be an integer"),
        (("jobs", "nope", "logs"), {"offset": "-1"}, 400, "'offset' must be between"),
        (("jobs", "nope", "logs"), {"limit": "0"}, 400, "'limit' must be between"),
        (("jobs", "nope", "output"), {"format": "pdf"}, 400, "'format' must be one of"),
        (("jobs", "nope"), {}, 404, "no job with id 'nope'"),
        (("jobs", "nope", "logs"), {}, 404, "no job with id"),
        (("jobs", "nope", "output"), {}, 404, "no job with id"),
        (("schedules", "nope"), {}, 404, "no schedule with id 'nope'"),
    ]
    for parts, params, status, message in query_cases:
        code, error = await call(jp_fetch, "GET", *parts, params=params)
        assert code == status and message in error["message"], (parts, params, error)
    for method, parts in [("DELETE", ("jobs", "nope")), ("POST", ("jobs", "nope", "stop"))]:
        code, error = await call(jp_fetch, method, *parts)
        assert code == 404 and "no job with id" in error["message"], (method, parts)

    # The same notebook is accepted once the request is right (and without kernel: the
    # notebook's own); stop it while queued so nothing runs.
    code, job = await call(
        jp_fetch,
        "POST",
        "jobs",
        body={"path": "typed.ipynb", "parameters": {"zz": 1}, "allow_unknown": True},
    )
    assert code == 201 and job["kernel"] == "python3", job
    assert any("zz" in w for w in job["warnings"])
    await call(jp_fetch, "POST", "jobs", job["id"], "stop")
    code, output = await call(jp_fetch, "GET", "jobs", job["id"], "output")
    assert code == 404 and "no ipynb output" in output["message"]
    code, output = await call(
        jp_fetch, "GET", "jobs", job["id"], "output", params={"format": "html"}
    )
    assert code == 404 and "did not ask for html output" in output["message"]
