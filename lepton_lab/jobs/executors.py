"""Where a job attempt runs: ``local`` (a runner process on this machine) or ``dask`` (a task
on a cluster worker that starts the runner there).

Both give the supervisor the same handle, an ``Execution``: ``poll()`` for the result,
``updates()`` for new progress and metrics, ``kill()`` to end the attempt with its kernel.
With ``dask`` the notebook travels in the task and the executed notebook, HTML, log lines,
progress and metrics travel back (as the task's result and as Dask events), so the worker
needs no shared file system.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import psutil

from lepton_lab.config.files import private_file
from lepton_lab.jobs.workdir import (
    ENV_JOB_ID,
    ENV_JOB_METRICS_FILE,
    ENV_SECRET_NAMES,
    JobFiles,
    ProgressWatch,
    Tail,
    read_json,
    write_json_atomic,
)

POLL_SECONDS = 0.25


class Execution(Protocol):
    def poll(self) -> dict[str, Any] | None: ...

    def updates(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]: ...

    def kill(self) -> None: ...


def kill_tree(pid: int, grace: float = 3.0) -> None:
    """End a process and every descendant (the runner, its kernel, what the kernel started).

    Descendants are listed before anything is signalled: once a parent dies its children are
    re-parented and can no longer be found from it.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


#: Imported once by the fork server, so each job's runner starts as a fork of a warm process
#: instead of a fresh interpreter that imports papermill and nbformat again (seconds each).
PRELOAD = ["lepton_lab.jobs.runner", "papermill", "papermill.engines", "nbclient", "nbconvert"]


def _runner_context() -> Any:
    """How runner processes start.

    A process with a single thread (``lepton-lab run --wait``) forks itself: papermill is
    already imported there, so the job costs what plain papermill costs. A process with
    threads (the server, the daemon, a Dask worker) must not fork itself, so its runners come
    from a fork server that has preloaded papermill.
    """
    import multiprocessing
    import threading

    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_runner_server() -> None:
    """Start the fork server (and its imports) ahead of the first job."""
    import multiprocessing.forkserver

    _runner_context()
    multiprocessing.forkserver.ensure_running()


def _runner_main(folder: str, log_path: str, env: dict[str, str]) -> None:
    """Entry of a runner process: its own session, the job's environment, output to the log."""
    import io

    os.setsid()  # like start_new_session: a signal to the parent's group does not reach it
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(folder)
    from lepton_lab.jobs.runner import run

    sys.exit(run(Path(folder)))


def job_secrets(job: dict[str, Any]) -> dict[str, str]:
    """The secrets of a claimed job (``Store.claim`` gives its ``sealed_secrets``), opened
    with the key of the state directory (``secrets_key``, set by the dispatcher).

    Only the runner's environment may hold what this returns: the executors call it to start
    an attempt, and a missing or wrong key fails the attempt with a clear error
    (``SecretsKeyError``) before anything runs.
    """
    token = job.get("sealed_secrets")
    if not token:
        return {}
    from lepton_lab.store.secrets import key_path, unseal

    key = job.get("secrets_key")
    if not key:
        from lepton_lab.config.settings import state_dir

        key = key_path(state_dir())
    return unseal(key, token)


def runner_env(
    files: JobFiles, job_id: str, secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a runner, and so of the job's kernel: this process's, the job's
    files, and the job's secrets as variables (their names in ``LEPTON_LAB_SECRET_NAMES``, for
    the runner's redaction)."""
    env = dict(os.environ)
    env.pop(ENV_SECRET_NAMES, None)
    env[ENV_JOB_ID] = job_id
    env[ENV_JOB_METRICS_FILE] = str(files.metrics)
    env["PYTHONUNBUFFERED"] = "1"
    if secrets:
        env.update(secrets)
        env[ENV_SECRET_NAMES] = ",".join(sorted(secrets))
    return env


def start_runner(
    files: JobFiles, job_id: str, attempt: int, secrets: dict[str, str] | None = None
) -> Any:
    """Start a runner process with stdout/stderr appended to the job's log; returns the
    ``multiprocessing.Process``. ``secrets`` become environment variables of the runner (and
    its kernel), never arguments or files."""
    env = runner_env(files, job_id, secrets)
    with open(private_file(files.log), "ab") as log:
        log.write(f"=== lepton-lab: attempt {attempt} of job {job_id} ===\n".encode())
    sys.stdout.flush()
    sys.stderr.flush()
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return _SpawnedRunner(files, env)  # a Dask worker: daemonic, may not fork children
    proc = _runner_context().Process(
        target=_runner_main, args=(str(files.root), str(files.log), env), daemon=False
    )
    proc.start()
    return proc


class _SpawnedRunner:
    """A runner as a plain subprocess, with the ``multiprocessing.Process`` calls we use."""

    def __init__(self, files: JobFiles, env: dict[str, str]) -> None:
        import subprocess

        with open(private_file(files.log), "ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-m", "lepton_lab.jobs.runner", str(files.root)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=files.root,
                start_new_session=True,
            )
        self.pid = self._popen.pid

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def join(self, timeout: float | None = None) -> None:
        import subprocess

        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


def runner_result(files: JobFiles, returncode: int) -> dict[str, Any]:
    result = read_json(files.result)
    if result is None:
        result = {
            "status": "failed",
            "error": f"the job's runner process exited with code {returncode} before it "
            "finished (killed, or out of memory?)",
            "error_cell": None,
            # what the killed tree used until its last snapshot
            "usage": read_json(files.usage),
        }
    return result


class LocalExecution:
    """A runner process on this machine, in the job's own folder."""

    def __init__(
        self, files: JobFiles, job_id: str, attempt: int, secrets: dict[str, str] | None = None
    ) -> None:
        self.files = files
        self.proc = start_runner(files, job_id, attempt, secrets)
        self.pid = self.proc.pid
        self._progress = ProgressWatch(files.progress)
        self._metrics = Tail(files.metrics, lines=True)

    def poll(self) -> dict[str, Any] | None:
        code = self.proc.exitcode
        if code is None:
            return None
        return runner_result(self.files, code)

    def updates(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return self._progress.changed(), self._metrics.records()

    def kill(self) -> None:
        kill_tree(self.pid)
        self.proc.join(10)


class LocalExecutor:
    """A papermill runner process on this machine (forked from a warm process)."""

    name = "local"
    description = "a papermill process on the machine that runs the lab"

    def __init__(self, client_factory: Any = None) -> None:
        del client_factory  # the local executor needs no cluster

    def start(self, files: JobFiles, job: dict[str, Any]) -> LocalExecution:
        return LocalExecution(files, job["id"], job["attempt"], job_secrets(job))


# -- dask ------------------------------------------------------------------------------------


def _stop_event_name(job_id: str, attempt: int) -> str:
    return f"lepton-lab-job-stop-{job_id}-{attempt}"


class Secrets:
    """A job's secrets on their way to a Dask worker (the task's argument): its repr, which
    Dask may log or show, names no value."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def __repr__(self) -> str:
        return f"<secrets {', '.join(sorted(self.values)) or '(none)'}>"

    def __reduce__(self) -> Any:
        return (Secrets, (self.values,))


def run_job_on_worker(
    job_id: str,
    attempt: int,
    topic: str,
    notebook: bytes,
    request: dict[str, Any],
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The Dask task: run the runner in a private folder on the worker, forward its log,
    progress and metrics as events, obey the stop event, and return the outputs as bytes.

    ``secrets`` go into the runner's environment; the runner redacts their values from its
    log and outputs, so what this task sends back holds none."""
    from distributed import Event, get_worker

    worker = get_worker()
    stop = Event(_stop_event_name(job_id, attempt))
    folder = Path(tempfile.mkdtemp(prefix=f"lepton-job-{job_id}-"))
    try:
        files = JobFiles(folder)
        private_file(files.input).write_bytes(notebook)
        cwd = request.get("cwd")
        request = dict(request, cwd=cwd if cwd and os.path.isdir(cwd) else str(folder))
        write_json_atomic(files.request, request)
        proc = start_runner(files, job_id, attempt, secrets.values if secrets else None)
        log, metrics = Tail(files.log, lines=True), Tail(files.metrics, lines=True)
        progress = ProgressWatch(files.progress)
        stopped = False

        def forward(final: bool = False) -> None:
            text = log.read().decode("utf-8", "replace")
            changed = progress.changed()
            records = metrics.records()
            if text or changed or records or final:
                worker.log_event(
                    topic, {"log": text, "progress": changed, "metrics": records, "final": final}
                )

        while proc.exitcode is None:
            forward()
            if stop.is_set():
                kill_tree(proc.pid)
                stopped = True
                break
            time.sleep(POLL_SECONDS)
        proc.join(10)
        forward(final=True)
        result = runner_result(files, proc.exitcode if proc.exitcode is not None else -9)
        if stopped:
            result = {"status": "stopped", "error": None, "error_cell": None}
        if not result.get("usage"):
            result["usage"] = read_json(files.usage)  # killed: what it used until then
        return {
            "result": result,
            "output": files.output.read_bytes() if files.output.exists() else None,
            "html": files.html.read_bytes() if files.html.exists() else None,
            "worker": worker.address,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class DaskExecution:
    """A job attempt running as a task on a cluster worker."""

    def __init__(self, client: Any, files: JobFiles, job: dict[str, Any]) -> None:
        self.client = client
        self.files = files
        self.job_id = job["id"]
        self.attempt = job["attempt"]
        self.topic = f"lepton-lab-job-{self.job_id}"
        self._events: queue.Queue = queue.Queue()
        self._final_seen = False
        self._done_at: float | None = None
        self.pid = None
        client.subscribe_topic(self.topic, self._events.put)
        request = read_json(files.request) or {}
        secrets = job_secrets(job)  # a missing key fails the start, before anything is sent
        with open(private_file(files.log), "ab") as log:
            log.write(
                f"=== lepton-lab: attempt {self.attempt} of job {self.job_id} "
                f"(dask executor) ===\n".encode()
            )
        self.future = client.submit(
            run_job_on_worker,
            self.job_id,
            self.attempt,
            self.topic,
            files.input.read_bytes(),
            request,
            Secrets(secrets) if secrets else None,
            pure=False,
            key=f"lepton-job-{self.job_id}-{self.attempt}",
        )

    def poll(self) -> dict[str, Any] | None:
        if not self.future.done():
            return None
        # The task's last events travel apart from its result: give them a moment to land,
        # so the log and metrics are complete when the job is marked ended.
        self._done_at = self._done_at or time.monotonic()
        if not self._final_seen and time.monotonic() - self._done_at < 3:
            return None
        self._unsubscribe()
        try:
            answer = self.future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker or a task error fails the job
            return {
                "status": "failed",
                "error": f"the Dask task failed: {type(exc).__name__}: {exc}",
                "error_cell": None,
            }
        if answer["output"] is not None:
            private_file(self.files.output).write_bytes(answer["output"])
        if answer["html"] is not None:
            private_file(self.files.html).write_bytes(answer["html"])
        result = dict(answer["result"], worker=answer["worker"])
        return result

    def updates(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        progress, metrics, text = None, [], []
        while True:
            try:
                _, message = self._events.get_nowait()
            except queue.Empty:
                break
            if message.get("log"):
                text.append(message["log"])
            if message.get("progress"):
                progress = message["progress"]
            metrics.extend(message.get("metrics") or [])
            self._final_seen = self._final_seen or bool(message.get("final"))
        if text:
            with open(private_file(self.files.log), "a", encoding="utf-8") as log:
                log.write("".join(text))
        return progress, metrics

    def kill(self) -> None:
        from distributed import Event

        Event(_stop_event_name(self.job_id, self.attempt), client=self.client).set()
        deadline = time.monotonic() + 15
        while not self.future.done() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if not self.future.done():
            self.future.cancel()
        self.updates()
        self._unsubscribe()

    def _unsubscribe(self) -> None:
        try:
            self.client.unsubscribe_topic(self.topic)
        except Exception:  # noqa: BLE001 - already gone with the client
            pass


class DaskExecutor:
    """Runs attempts on the cluster that ``client_factory()`` connects to."""

    name = "dask"
    description = "a task on a Dask worker of the lab's cluster; the notebook travels with it"

    def __init__(self, client_factory: Any) -> None:
        self._client_factory = client_factory

    def start(self, files: JobFiles, job: dict[str, Any]) -> DaskExecution:
        return DaskExecution(self._client_factory(), files, job)
