"""Jobs executed for real: papermill runner processes, real kernels, a real SQLite store."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import nbformat
import psutil
import pytest

import lepton_lab as ll
from lepton_lab.jobs.spec import validate_job
from lepton_lab.jobs.submission import create_job, installed_kernels
from tests.jobs.conftest import wait_ended, wait_for, write_notebook
from tests.support.permissions import not_private

TYPES_CELL = (
    "import json\n"
    "print(json.dumps({k: [type(v).__name__, v] for k, v in dict(i=i, f=f, s=s, b=b, l=l, "
    "d=d, n=n).items()}))"
)
PARAMS = "i = 0\nf = 0.0\ns = ''\nb = False\nl = []\nd = {}\nn = None"


def submit(store, state, path: Path, **body) -> dict:
    spec = validate_job({"path": str(path), "kernel": "python3", **body}, None, installed_kernels())
    return create_job(store, state, spec)


def stream_text(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def test_parameters_of_every_json_type_arrive_typed(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "types.ipynb", TYPES_CELL, parameters=PARAMS)
    values = {"i": 7, "f": 2.5, "s": "text", "b": True, "l": [1, "a"], "d": {"k": [1]}, "n": None}
    job = submit(store, state, nb, parameters=values)
    service()
    record = wait_ended(store, job["id"])
    assert record["status"] == "completed", record["error"]
    printed = json.loads(stream_text(Path(record["output_dir"]) / "output.ipynb"))
    assert printed == {
        "i": ["int", 7],
        "f": ["float", 2.5],
        "s": ["str", "text"],
        "b": ["bool", True],
        "l": ["list", [1, "a"]],
        "d": ["dict", {"k": [1]}],
        "n": ["NoneType", None],
    }
    injected = nbformat.read(Path(record["output_dir"]) / "output.ipynb", as_version=4).cells[1]
    assert "injected-parameters" in injected.metadata["tags"]


def test_job_folders_and_files_are_private(store, state, service, tmp_path):
    """The state dir, its jobs folder and every job's folder are 0700 and every file in them
    (snapshot, request, log, progress, metrics, result, outputs) 0600, under umask 022."""
    old = os.umask(0o022)
    try:
        nb = write_notebook(
            tmp_path / "private.ipynb",
            "import lepton_lab as ll\nll.log_metrics(score=1.0)\nopen('mine.txt', 'w').write('x')",
        )
        job = submit(store, state, nb, output_formats=["ipynb", "html"])
        service()
        record = wait_ended(store, job["id"])
    finally:
        os.umask(old)
    assert record["status"] == "completed", record["error"]
    out = Path(record["output_dir"])
    assert {p.name for p in out.iterdir()} >= {
        "input.ipynb",
        "request.json",
        "job.log",
        "progress.json",
        "metrics.jsonl",
        "result.json",
        "output.ipynb",
        "output.html",
    }
    assert not_private(out) == []
    # everything under the state dir (the store's files included); the dir itself was made
    # by this test's fixture, and a folder the user names is not re-moded
    assert not_private(state)[1:] == [] and not_private(state / "jobs") == []
    # the notebook's own files keep the user's umask: only Lepton Lab's records are private
    assert stat.S_IMODE((tmp_path / "mine.txt").stat().st_mode) == 0o644


def test_a_notebook_without_parameters_cell_runs_with_a_warning(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "plain.ipynb", "print('plain')")
    job = submit(store, state, nb)
    assert any("no cell tagged 'parameters'" in w for w in job["warnings"])
    service()
    assert wait_ended(store, job["id"])["status"] == "completed"


def test_failing_notebook_keeps_output_marks_the_cell_and_retries_with_backoff(
    store, state, service, tmp_path
):
    nb = write_notebook(
        tmp_path / "fail.ipynb", "x = 1", "1 / 0", "print('never')", parameters="p = 1"
    )
    job = submit(store, state, nb, retries=2, retry_backoff=0.5)
    service()
    record = wait_ended(store, job["id"])
    assert record["status"] == "failed"
    assert record["attempt"] == 3
    assert record["error_cell"] == 3
    assert "ZeroDivisionError" in record["error"]
    failures = [e for e in record["events"] if e["status"] == "failed"]
    starts = [e for e in record["events"] if e["status"] == "running"]
    assert [e["attempt"] for e in failures] == [1, 2, 3]
    # backoff doubles: >= 0.5 s before attempt 2, >= 1.0 s before attempt 3
    assert starts[1]["time"] - failures[0]["time"] >= 0.5
    assert starts[2]["time"] - failures[1]["time"] >= 1.0
    output = nbformat.read(Path(record["output_dir"]) / "output.ipynb", as_version=4)
    failing = [c for c in output.cells if c.metadata.get("papermill", {}).get("exception")]
    assert len(failing) == 1 and "1 / 0" in failing[0].source
    assert any(o.get("ename") == "ZeroDivisionError" for o in failing[0].outputs)


def _kernel_pid_file(tmp_path: Path) -> str:
    return (
        "import os, time\n"
        f"open({str(tmp_path / 'kernel.pid')!r}, 'w').write(str(os.getpid()))\n"
        "print('started', flush=True)\n"
        "time.sleep(600)"
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_timeout_ends_the_job_as_timed_out_with_no_kernel_left(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", _kernel_pid_file(tmp_path))
    job = submit(store, state, nb, timeout=6)
    service()
    record = wait_ended(store, job["id"])
    assert record["status"] == "timed_out"
    assert "timed out after 6 s" in record["error"]
    kernel_pid = int((tmp_path / "kernel.pid").read_text())
    wait_for(lambda: _gone(kernel_pid), timeout=10)
    runner = record["runner_pid"]
    assert runner and _gone(runner)
    # the output written so far is kept
    assert (Path(record["output_dir"]) / "output.ipynb").exists()


def test_stop_ends_a_running_job_and_its_kernel(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", _kernel_pid_file(tmp_path))
    job = submit(store, state, nb)
    service()
    pid_file = tmp_path / "kernel.pid"
    wait_for(pid_file.exists, timeout=60)
    handle = ll.jobs.Job(job["id"], store)
    assert handle.status == "running"
    assert handle.stop() == "running"  # flagged; its owner ends it
    t0 = time.monotonic()
    assert handle.wait(30) == "stopped"
    assert time.monotonic() - t0 < 10
    wait_for(lambda: _gone(int(pid_file.read_text())), timeout=10)


def test_stop_a_queued_job_before_it_starts(store, state, tmp_path):
    nb = write_notebook(tmp_path / "q.ipynb", "print(1)")
    job = submit(store, state, nb)  # no service running: it stays queued
    assert ll.jobs.Job(job["id"], store).stop() == "stopped"
    record = store.get_job(job["id"])
    assert record["status"] == "stopped" and record["attempt"] == 0
    with pytest.raises(ValueError, match="already ended"):
        store.request_stop(job["id"])


def test_queue_never_runs_more_than_the_limit_and_runs_all(store, state, service, tmp_path):
    nb = write_notebook(tmp_path / "short.ipynb", "import time; time.sleep(1.0)")
    ids = [submit(store, state, nb)["id"] for _ in range(6)]
    service(concurrency=2)
    records = [wait_ended(store, i, timeout=180) for i in ids]
    assert [r["status"] for r in records] == ["completed"] * 6
    spans = []
    for r in records:
        start = next(e["time"] for e in r["events"] if e["status"] == "running")
        spans.append((start, r["ended_at"]))
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running, peak = 0, 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    # queued in order: the first two start before any later one
    starts = [s for s, _ in spans]
    assert max(starts[:2]) <= min(starts[2:])


def test_progress_logs_and_metrics_are_visible_while_it_runs(store, state, service, tmp_path):
    nb = write_notebook(
        tmp_path / "live.ipynb",
        "import lepton_lab as ll\nll.log_metrics(loss=0.5, acc=0.75)\nprint('marker-one', "
        "flush=True)",
        "import time\ntime.sleep(4)",
        "print('done')",
    )
    job = submit(store, state, nb)
    service()
    log = Path(job["output_dir"]) / "job.log"

    def mid_run():
        rec = store.get_job(job["id"])
        return rec if rec["status"] == "running" and rec["progress"].get("cell") == 2 else None

    rec = wait_for(mid_run, timeout=60)
    assert rec["progress"]["cells"] == 3
    assert rec["progress"]["source"].startswith("import time")
    assert "marker-one" in log.read_text()
    assert {m["name"]: m["value"] for m in rec["metrics"]} == {"loss": 0.5, "acc": 0.75}
    assert wait_ended(store, job["id"])["status"] == "completed"
    assert ll.jobs.Job(job["id"], store).metrics() == {"loss": 0.5, "acc": 0.75}


def test_dask_executor_runs_the_job_on_a_worker_and_brings_the_output_back(
    store, state, service, tmp_path
):
    from distributed import Client, LocalCluster

    nb = write_notebook(
        tmp_path / "remote.ipynb",
        "import os, lepton_lab as ll\nll.log_metrics(where=1)\nprint('cwd', os.getcwd())",
        parameters="n = 1",
    )
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        job = submit(
            store, state, nb, executor="dask", parameters={"n": 3}, output_formats=["ipynb", "html"]
        )
        service(dask_client=lambda: client)
        record = wait_ended(store, job["id"])
        worker = next(iter(client.scheduler_info()["workers"]))
    assert record["status"] == "completed", record["error"]
    assert record["events"][-1]["message"] == f"ran on Dask worker {worker}"
    out = Path(record["output_dir"])
    assert "cwd" in stream_text(out / "output.ipynb")
    assert (out / "output.html").read_text().startswith("<!DOCTYPE html>")
    assert record["metrics"][0]["name"] == "where"
    log = (out / "job.log").read_text()
    # the worker ran its own copy in a private folder, not the job's folder
    assert "Input Notebook:  /" in log and str(out) not in log.split("Input Notebook:")[1]
    assert not_private(out) == []  # what came back from the worker is private too


def test_python_api_submits_and_an_embedded_service_runs_it(state, tmp_path):
    nb = write_notebook(tmp_path / "api.ipynb", "print(epochs * 2)", parameters="epochs = 1")
    job = ll.jobs.submit(nb, parameters={"epochs": 21}, kernel="python3")
    assert job.wait(90) == "completed"
    assert "42" in stream_text(job.output_path)
    assert any(j["id"] == job.id for j in ll.jobs.list())
    with pytest.raises(ll.jobs.JobRequestError, match="must be int"):
        ll.jobs.submit(nb, parameters={"epochs": "many"}, kernel="python3")
