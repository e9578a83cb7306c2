"""``ll.attach()`` outside the lab: an embedded local cluster, reused, then cleaned up."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from distributed import Client

import lepton_lab as ll
from lepton_lab.cluster.attach import embedded_cluster, lab_scheduler_address
from tests.support.permissions import not_private


@pytest.fixture
def no_lab(monkeypatch):
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    ll.detach()


def test_attach_outside_the_lab_starts_one_embedded_cluster_and_reuses_it(no_lab):
    client = ll.attach()
    # TLS with a key pair of its own: no other process on the machine can drive it
    assert client.scheduler.address.startswith("tls://127.0.0.1:")
    assert client.submit(lambda x: x * 2, 21).result() == 42
    assert ll.attach() is client
    manager = embedded_cluster()
    assert manager is not None and manager.owned
    keys = Path(manager.client_security()["tls_client_key"])
    assert not_private(keys.parent) == []
    with pytest.raises((OSError, TypeError)):
        Client(client.scheduler.address, timeout=5)
    pids = list(client.run(os.getpid).values())
    ll.detach()
    assert embedded_cluster() is None
    assert not keys.parent.exists()  # the key pair goes with the cluster
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], 20)
    assert not alive


def test_lab_address_comes_from_the_environment_first(monkeypatch):
    monkeypatch.setenv("LEPTON_LAB_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1234")
    assert lab_scheduler_address() == "tcp://127.0.0.1:1234"


def test_lab_address_from_the_state_file_of_a_still_starting_server(monkeypatch, tmp_path):
    monkeypatch.delenv("LEPTON_LAB_SCHEDULER_ADDRESS", raising=False)
    state = tmp_path / "cluster.json"
    monkeypatch.setenv("LEPTON_LAB_CLUSTER_FILE", str(state))
    state.write_text(json.dumps({"status": "starting"}))
    with pytest.raises(TimeoutError, match="not ready"):
        lab_scheduler_address(timeout=0.5)
    state.write_text(json.dumps({"status": "running", "scheduler_address": "tcp://127.0.0.1:99"}))
    assert lab_scheduler_address(timeout=1) == "tcp://127.0.0.1:99"
    state.write_text(json.dumps({"status": "error", "error": "boom"}))
    with pytest.raises(RuntimeError, match="failed to start: boom"):
        lab_scheduler_address(timeout=1)


def test_no_lab_means_no_address(no_lab):
    assert lab_scheduler_address() is None


# -- the embedded cluster from every way of running Python (issue #13) --------------------------
#
# Each way runs the same script body, with no ``if __name__ == "__main__":`` guard, in a real
# process of its own. Spawned workers that re-imported ``__main__`` would run the body again
# (a second line in the runs file) or fail to start ("Nanny failed to start"), so each test
# asserts the computed value, one run of the body, and a time limit.

SCRIPT = """
import os
import time

import lepton_lab as ll

t0 = time.perf_counter()
runs = open(os.environ["LL_TEST_RUNS"], "a")
runs.write(f"{os.getpid()}\\n")
runs.close()
client = ll.attach()
print("answer", client.submit(sum, [1, 2, 3]).result(), flush=True)
print("workers", len(client.nthreads()), flush=True)
print("seconds", round(time.perf_counter() - t0, 2), flush=True)
"""

FIT = """

def train_loop(config):
    import torch

    ctx = ll.context()
    torch.manual_seed(0)
    model = ctx.prepare(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.ones(8, 4), torch.full((8, 1), 2.0)
    for step in range(config["steps"]):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        ctx.report(step=step, loss=float(loss.detach()))
    return ctx.rank + 10 * ctx.world_size


n = len(client.nthreads())
run = ll.fit(train_loop, framework="torch", workers=n, config={"steps": 2}, wait=True)
print("fit", run.status, run.result, flush=True)
"""

#: seconds a way may take, start to exit (an embedded start is 2-4 s; torch adds a few)
LIMIT = 120
#: seconds the script may take from its first line to the computed result
RESULT_LIMIT = 60


def _python_env(tmp_path: Path) -> dict[str, str]:
    """The test process's environment without any lab address, with a state dir and an
    IPython dir of the test's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("LEPTON_LAB_SCHEDULER_ADDRESS", "LEPTON_LAB_CLUSTER_FILE", "DASK_SCHEDULER_ADDRESS")
    }
    env["LEPTON_LAB_STATE_DIR"] = str(tmp_path / "state")
    env["LL_TEST_RUNS"] = str(tmp_path / "runs.txt")
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tool(name: str) -> str:
    """A console script of this environment (ipython, jupyter), next to its Python."""
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{path} missing from this environment"
    return str(path)


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run a command the way a user would, within the time limit; it must exit 0."""
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=LIMIT, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _run_repl(body: str, env: dict[str, str], cwd: Path) -> str:
    """Type ``body`` line by line into an interactive ``python -i`` on a pseudo-terminal
    (``__main__`` is then the REPL's, with no file), and return what it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-q", "-i"], env)
    lines = [line for line in body.splitlines() if line.strip()] + ["exit()"]
    for line in lines:
        os.write(fd, line.encode() + b"\n")
    out = b""
    deadline = time.monotonic() + LIMIT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # the REPL exited: its end of the terminal is closed
                    break
                if not data:
                    break
                out += data
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the REPL did not exit within {LIMIT} s: {out[-2000:]!r}")
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-3000:]
    return out.decode(errors="replace").replace("\r\n", "\n")


def _run_notebook(body: str, env: dict[str, str], cwd: Path) -> str:
    """Execute ``body`` as a notebook cell in a real ``python3`` kernel (``jupyter execute``,
    nbclient) and return the cell's stream output."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(body)]
    path = cwd / "attach.ipynb"
    nbformat.write(notebook, path)
    _run(
        [_tool("jupyter"), "execute", "--inplace", "--kernel_name=python3", str(path)],
        cwd=cwd,
        env=env,
    )
    executed = nbformat.read(path, as_version=4)
    outputs = executed.cells[0].outputs
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


WAYS = {
    "python script.py": "file",
    "python -c": "c",
    "python - < script.py": "stdin",
    "ipython script.py": "ipython-file",
    "ipython -c": "ipython-c",
    "python -i (terminal)": "repl",
    "notebook (python3 kernel)": "notebook",
}
#: the ways that also run an ll.fit (torch, 2 ranks): a loop defined in an unguarded
#: script's __main__, and in a notebook cell, travels to the workers by value
WITH_FIT = {"file", "notebook"}


@pytest.mark.parametrize("way", list(WAYS.values()), ids=list(WAYS))
def test_every_way_of_running_a_script_attaches_computes_and_runs_the_body_once(tmp_path, way):
    body = SCRIPT + (FIT if way in WITH_FIT else "")
    env = _python_env(tmp_path)
    script = tmp_path / "train.py"
    script.write_text(body)
    started = time.monotonic()
    if way == "repl":
        out = _run_repl(body, env, tmp_path)
    elif way == "notebook":
        out = _run_notebook(body, env, tmp_path)
    else:
        command = {
            "file": [sys.executable, str(script)],
            "c": [sys.executable, "-c", body],
            "stdin": [sys.executable, "-"],
            "ipython-file": [_tool("ipython"), "--no-banner", str(script)],
            "ipython-c": [_tool("ipython"), "--no-banner", "-c", body],
        }[way]
        done = _run(command, cwd=tmp_path, env=env, stdin=body if way == "stdin" else None)
        out = done.stdout
    elapsed = time.monotonic() - started
    assert "answer 6" in out, out[-3000:]
    assert elapsed < LIMIT
    seconds = float(re.search(r"seconds ([\d.]+)", out).group(1))
    assert seconds < RESULT_LIMIT, out
    runs = (tmp_path / "runs.txt").read_text().splitlines()
    assert len(runs) == 1, f"the script body ran {len(runs)} times: {runs}"
    if way in WITH_FIT:
        n = int(re.search(r"workers (\d+)", out).group(1))
        assert f"fit completed {[10 * n + rank for rank in range(n)]}" in out, out[-3000:]


# -- what cannot work says so in one line, in bounded time ------------------------------------

FAILING_WORKER = """
import os
import sys
import time

# a worker process of the embedded cluster (multiprocessing's spawn marks it so)
if "--multiprocessing-fork" in sys.argv:
    with open(os.environ["LL_TEST_WORKERS"], "a") as pids:
        pids.write(f"{os.getpid()}\\n")
    if os.environ["LL_TEST_WORKER"] == "hang":
        time.sleep(600)
    os._exit(3)
"""

CATCHING_SCRIPT = """
import os
import time

import lepton_lab as ll
from lepton_lab.cluster.errors import ClusterError

t0 = time.perf_counter()
try:
    ll.attach(timeout=float(os.environ.get("LL_TEST_TIMEOUT", "60")))
except ClusterError as error:
    print("error:", error, flush=True)
else:
    print("attached", flush=True)
print("seconds", round(time.perf_counter() - t0, 2), flush=True)
"""


@pytest.mark.parametrize("worker", ["hang", "exit"])
def test_a_worker_that_hangs_or_dies_at_start_is_one_line_in_bounded_time(tmp_path, worker):
    """A worker that never comes up made Dask's LocalCluster wait forever; one that dies left
    a wall of chained tracebacks. Both are now one ClusterError line within ``timeout``
    (plus a bounded unwind), and no worker process is left behind."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAILING_WORKER)
    env = _python_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["LL_TEST_WORKER"] = worker
    env["LL_TEST_WORKERS"] = str(tmp_path / "workers.txt")
    env["LL_TEST_TIMEOUT"] = "8"
    done = _run([sys.executable, "-c", CATCHING_SCRIPT], cwd=tmp_path, env=env)
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stdout
    message = errors[0]
    if worker == "hang":
        assert "did not start within 8 s" in message and "ll.attach(timeout=" in message
        assert float(re.search(r"seconds ([\d.]+)", done.stdout).group(1)) < 8 + 15
    else:
        assert "failed to start" in message and "sitecustomize" in message
    assert "ll.attach('tcp://host:8786')" in message
    # Dask's per-worker tracebacks stay off the terminal
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    pids = [int(p) for p in (tmp_path / "workers.txt").read_text().split()]
    assert pids, "no worker process was started"
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], 10)
    assert not alive, f"worker processes left behind: {alive}"


DAEMON_SCRIPT = """
import multiprocessing
import time


def child(queue):
    import lepton_lab as ll
    from lepton_lab.cluster.errors import ClusterError

    try:
        ll.attach(timeout=60)
        queue.put("attached")
    except ClusterError as error:
        queue.put(f"error: {error}")


if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    t0 = time.perf_counter()
    process = ctx.Process(target=child, args=(queue,), daemon=True)
    process.start()
    print(queue.get(timeout=60), flush=True)
    process.join(30)
    print("seconds", round(time.perf_counter() - t0, 2), flush=True)
"""


def test_a_daemonic_process_is_refused_at_once_instead_of_hanging(tmp_path):
    """A daemonic process may not have children: every nanny failed and Dask's LocalCluster
    then waited for ever (a multiprocessing Pool worker calling ll.attach() hung)."""
    script = tmp_path / "pool.py"  # a file: the spawned child imports its target from it
    script.write_text(DAEMON_SCRIPT)
    done = _run([sys.executable, str(script)], cwd=tmp_path, env=_python_env(tmp_path))
    assert "cannot start an embedded cluster in a daemonic process" in done.stdout
    assert "ll.attach(client.scheduler.address)" in done.stdout
    assert float(re.search(r"seconds ([\d.]+)", done.stdout).group(1)) < 30


SHUTDOWN_SCRIPT = """
import atexit

import lepton_lab as ll
from lepton_lab.cluster.errors import ClusterError


def late():
    try:
        ll.attach()
        print("attached", flush=True)
    except ClusterError as error:
        print("error:", error, flush=True)


atexit.register(late)
print("registered", flush=True)
"""


def test_attach_while_python_shuts_down_says_so_in_one_line(tmp_path):
    """From an atexit handler Dask can neither start nor connect (it failed deep inside an
    import with "can't register atexit after shutdown")."""
    done = _run([sys.executable, "-c", SHUTDOWN_SCRIPT], cwd=tmp_path, env=_python_env(tmp_path))
    assert "error: ll.attach() was called while Python is shutting down" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


FORK_SCRIPT = """
import os
import sys
import time

import lepton_lab as ll

client = ll.attach()
print("parent", client.submit(sum, [1, 2]).result(), flush=True)
before = sorted(client.run(os.getpid).values())
pid = os.fork()
if pid == 0:
    child = ll.attach(timeout=20)
    print("child has its own client", child is not client, flush=True)
    print("child", child.submit(sum, [3, 4]).result(), flush=True)
    sys.exit(0)
t0 = time.perf_counter()
_, status = os.waitpid(pid, 0)
took = round(time.perf_counter() - t0, 2)
print("child exit", os.waitstatus_to_exitcode(status), took, flush=True)
time.sleep(1)
print("parent again", client.submit(sum, [5, 6]).result(), flush=True)
print("same workers", sorted(client.run(os.getpid).values()) == before, flush=True)
"""


def test_a_forked_child_attaches_to_its_parents_cluster_and_leaves_it_running(tmp_path):
    """The child inherited the parent's client with no event loop behind it: attach()
    returned it and its first result hung; a child that attached nothing hung at exit; and
    its exit terminated the parent's workers (and removed the scheduler's scratch folder)."""
    done = _run([sys.executable, "-c", FORK_SCRIPT], cwd=tmp_path, env=_python_env(tmp_path))
    out = done.stdout
    assert "parent 3" in out and "child 7" in out and "parent again 11" in out, out
    assert "child has its own client True" in out
    assert float(re.search(r"child exit 0 ([\d.]+)", out).group(1)) < 30, out
    assert "same workers True" in out, done.stderr[-3000:]
    stderr = done.stderr[-3000:]
    assert "Restarting worker" not in stderr and "Traceback" not in stderr, stderr
