"""Managed deployments: one supervised model server process per served version.

Whoever starts a deployment supervises it: the lab's server (``POST /deployments``, the
sidebar), ``lepton-lab serve`` in the foreground, or a kernel's ``ll.models.serve``. The
supervisor writes every state change to the store (starting, ready, failed with its error,
stopped), appends the process's output to the deployment's log (0600, in a 0700 folder),
restarts the process when it crashes (up to ``max_restarts``), and stops it when any process
sets the row's ``stop_requested`` (``DELETE /deployments/{id}`` from any server, ``lepton-lab
deployments stop``), which frees its ports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from lepton_lab.config.files import private_dir, private_file
from lepton_lab.config.processes import gone, identity
from lepton_lab.config.settings import state_dir
from lepton_lab.contract import Conflict, NotFound, RequestError
from lepton_lab.contract.serving import SERVABLE_FORMATS, DeploymentRequest
from lepton_lab.models.artifacts import CorruptArtifact
from lepton_lab.models.registry import ModelRegistry, split_ref
from lepton_lab.serving.process import EXIT_LOAD_FAILED, FAILURE_FILE
from lepton_lab.store import Store
from lepton_lab.store.deployments import LIVE_STATUSES

#: How long a model server may take from start to its model's ``ready``.
START_TIMEOUT = 180.0
#: How often the supervisor looks at its process, its readiness and the stop flag.
POLL = 0.25
#: How long a stopping model server gets after SIGTERM before SIGKILL.
STOP_GRACE = 10.0
#: The log lines quoted in a failed deployment's error.
ERROR_LINES = 12


def parse_ref(ref: str) -> tuple[str, str]:
    """``name@alias``, ``name:version`` or ``name`` (latest) as (name, version reference)."""
    if "@" in ref:
        return split_ref(ref)
    if ":" in ref:
        name, _, version = ref.rpartition(":")
        return name, version
    return ref, "latest"


def _free_port(host: str, taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host if host not in ("localhost",) else "127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port
    raise Conflict("no free port found for the model server")


def port_is_free(host: str, port: int) -> bool:
    """A server can listen on ``port`` (binding as servers do, with SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host != "localhost" else "127.0.0.1", port))
        except OSError:
            return False
    return True


def local_host(host: str) -> str:
    """Where this machine reaches an endpoint bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(host, host)


def endpoint_url(host: str, port: int) -> str:
    host = local_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _tail(path: Path, lines: int = ERROR_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """One deployment's model server process, watched from a thread of this process.

    It is also the handle that ``ll.models.serve`` returns: ``.url``, ``.wait_ready()``,
    ``.stop()``, ``.status``, ``.logs()``.
    """

    def __init__(self, store: Store, record: dict[str, Any], spec: dict[str, Any]) -> None:
        self.store = store
        self.id: str = record["id"]
        self.record = record
        self.spec = spec
        self.log_path = Path(record["log_path"])
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        # inference requests served: by earlier processes (a restart resets the counter),
        # and the last count read from this one's /metrics
        self._served_before = 0
        self._served_now = 0
        self._counted_at = 0.0

    # -- the handle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The endpoint on this machine, e.g. ``http://127.0.0.1:8500``."""
        return endpoint_url(self.spec["host"], self.spec["http_port"])

    @property
    def model(self) -> str:
        return self.spec["name"]

    @property
    def status(self) -> str:
        return self.store.get_deployment(self.id)["status"]

    def info(self) -> dict[str, Any]:
        return self.store.get_deployment(self.id)

    def wait_ready(self, timeout: float | None = START_TIMEOUT) -> Supervisor:
        """Block until the model answers (``ready``); a deployment that fails or stops first
        raises ``RuntimeError`` with its error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.store.get_deployment(self.id)
            if record["status"] == "ready":
                return self
            if record["status"] not in LIVE_STATUSES:
                raise RuntimeError(
                    f"deployment {self.id} of {record['ref']} {record['status']}: "
                    f"{record['error'] or 'stopped before it was ready'}"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"deployment {self.id} was not ready within {timeout} s")
            time.sleep(0.1)

    def request_stop(self) -> None:
        """Stop at the supervisor's next look (within ``POLL``), without waiting."""
        self._stop.set()

    def stop(self, timeout: float = STOP_GRACE + 5) -> None:
        """Stop the model server and wait until its ports are free."""
        self._stop.set()
        self._ended.wait(timeout)

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<Deployment {self.id} {self.spec['name']} v{self.spec['version']} {self.url}>"

    def _repr_html_(self) -> str:
        """In a notebook: what is served, where, and in what state."""
        import html

        record = self.info()
        endpoint = f"{self.url}/v2/models/{self.model}"
        error = f"<br><pre>{html.escape(record['error'])}</pre>" if record["error"] else ""
        return (
            f"<b>Deployment {html.escape(self.id)}</b>: {html.escape(record['ref'])} "
            f"(v{record['version']}, {html.escape(record['format'])}), "
            f"<code>{html.escape(record['status'])}</code> at "
            f"<code>{html.escape(endpoint)}</code>{error}"
        )

    # -- supervision ---------------------------------------------------------------------
    def start(self) -> Supervisor:
        """Supervise from a daemon thread (the server and kernels); see :meth:`run`."""
        self._thread = threading.Thread(
            target=self.run, name=f"lepton-deployment-{self.id}", daemon=True
        )
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> str:
        """Start the model server and keep it running until a stop; returns the final status."""
        try:
            return self._supervise()
        except BaseException as exc:  # KeyboardInterrupt in the CLI, or a bug here
            self._terminate()
            if isinstance(exc, KeyboardInterrupt):
                self.store.end_deployment(self.id, "stopped")
                return "stopped"
            self.store.end_deployment(self.id, "failed", f"the supervisor failed: {exc!r}")
            raise
        finally:
            self._record_usage()
            self._ended.set()

    # -- usage ---------------------------------------------------------------------------
    def _count_requests(self) -> None:
        """Read the live process's inference request count from its ``/metrics``."""
        count = requests_served(self.url)
        if count is not None:
            self._served_now = max(self._served_now, count)
        self._counted_at = time.monotonic()

    def _record_usage(self) -> None:
        """The deployment's usage record: up from ``ready_at`` (to ``ended_at`` once it has
        ended), requests served so far."""
        from lepton_lab.metering.ledger import record_deployment

        try:
            row = self.store.get_deployment(self.id)
        except Exception:  # noqa: BLE001 - the database is briefly unavailable
            return
        record_deployment(self.store, row, self._served_before + self._served_now)

    def _supervise(self) -> str:
        restarts = 0
        while True:
            started = time.monotonic()
            code = self._watch(self._spawn(restarts))
            if code is None:  # stopped
                self.store.end_deployment(self.id, "stopped")
                return "stopped"
            if isinstance(code, str):  # never became ready
                self.store.end_deployment(self.id, "failed", code)
                return "failed"
            why = f"the model server {_exit_text(code)}"
            if code == EXIT_LOAD_FAILED:
                self.store.end_deployment(self.id, "failed", self._load_failure(why))
                return "failed"
            if restarts >= self.record["max_restarts"]:
                self.store.end_deployment(
                    self.id,
                    "failed",
                    self._reason(f"{why}; it was restarted {restarts} time(s), the limit"),
                )
                return "failed"
            restarts += 1
            self.store.update_deployment(
                self.id, expect=LIVE_STATUSES, status="starting", restarts=restarts, pid=None
            )
            self._note(f"{why}; restart {restarts} of {self.record['max_restarts']}")
            # a process that dies at once would otherwise be restarted in a tight loop
            if self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started))):
                self.store.end_deployment(self.id, "stopped")
                return "stopped"

    def _load_failure(self, why: str) -> str:
        """What the process wrote of its load failure (the log's tail is shutdown noise)."""
        try:
            reason = (Path(self.spec["dir"]) / FAILURE_FILE).read_text(errors="replace")
        except OSError:
            return self._reason(why)
        return f"the model could not be loaded: {reason}"

    def _reason(self, why: str) -> str:
        tail = _tail(self.log_path)
        return f"{why}. Its log ends:\n{tail}" if tail else why

    def _note(self, text: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"--- lepton-lab: {text} ---\n")

    def _spawn(self, attempt: int) -> subprocess.Popen:
        spec_path = Path(self.spec["dir"]) / "spec.json"
        private_file(spec_path).write_text(json.dumps(self.spec))
        private_file(self.log_path)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lepton_lab.serving.process",
                    str(spec_path),
                    "--parent",
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.spec["dir"],
                env=env,
                start_new_session=True,  # a Ctrl-C in the CLI reaches the supervisor only
            )
        self.store.update_deployment(self.id, expect=LIVE_STATUSES, pid=self._process.pid)
        return self._process

    def _stop_asked(self, last_check: list[float]) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if now - last_check[0] >= 0.5:
            last_check[0] = now
            try:
                if self.store.deployment_stop_requested(self.id):
                    self._stop.set()
            except Exception:  # the database is briefly unavailable: look again later
                pass
        return self._stop.is_set()

    def _watch(self, process: subprocess.Popen) -> int | str | None:
        """Until the process ends (its exit status), is stopped (None), or is not ready in
        time (the error, a string)."""
        deadline = time.monotonic() + START_TIMEOUT
        ready = False
        last_check = [0.0]
        probe = f"{self.url}/v2/models/{self.spec['name']}/ready"
        while True:
            code = process.poll()
            if code is not None:
                self._served_before += self._served_now  # the next process counts from 0
                self._served_now = 0
                return code
            if self._stop_asked(last_check):
                if ready:
                    self._count_requests()  # the last count, before the process goes
                self._terminate()
                return None
            if ready and time.monotonic() - self._counted_at >= USAGE_EVERY:
                self._count_requests()
                self._record_usage()
            if not ready:
                if _answers(probe):
                    ready = True
                    self.store.update_deployment(
                        self.id, expect=LIVE_STATUSES, status="ready", ready_at=time.time()
                    )
                    self._counted_at = time.monotonic()
                    self._record_usage()
                elif time.monotonic() > deadline:
                    self._terminate()
                    return self._reason(f"the model was not ready within {START_TIMEOUT:.0f} s")
            self._stop.wait(POLL)

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: seconds between two readings of a live deployment's request count into its usage record
USAGE_EVERY = 30.0


def requests_served(url: str, timeout: float = 2.0) -> int | None:
    """Inference requests a model server answered, from ``rest_server_requests_total`` in its
    Prometheus ``/metrics`` (the infer routes only: metadata and health probes are not
    served requests); None when it cannot be read."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=timeout) as answer:  # noqa: S310
            text = answer.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("rest_server_requests_total{") and "/infer" in line:
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return int(total)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def resolve(registry: ModelRegistry, ref: str, format: str | None) -> tuple[dict, str]:
    """The version ``ref`` names and the format to serve (a 4xx ``RequestError`` when the
    version has no servable artifact)."""
    name, version = parse_ref(ref)
    record = registry.version(name, version)
    have = [a["format"] for a in record["artifacts"]]
    servable = [f for f in SERVABLE_FORMATS if f in have]
    if format is None:
        if not servable:
            raise RequestError(
                f"{name} v{record['version']} has no servable artifact (it has "
                f"{', '.join(have) or 'none'}; servable: {', '.join(SERVABLE_FORMATS)})"
            )
        return record, servable[0]
    if format not in SERVABLE_FORMATS:
        raise RequestError(
            f"format {format!r} cannot be served; use one of {', '.join(SERVABLE_FORMATS)}"
        )
    if format not in have:
        raise NotFound(
            f"{name} v{record['version']} has no {format!r} artifact (it has {', '.join(have)})"
        )
    return record, format


def start(
    store: Store,
    request: DeploymentRequest,
    owner: str,
    registry: ModelRegistry | None = None,
    state: Path | None = None,
    supervise: bool = True,
) -> Supervisor:
    """Record a deployment and start its model server (``supervise=False``: the caller calls
    :meth:`Supervisor.run` itself, as the CLI does in the foreground).

    Bad input (an unknown model, a format it lacks, a port in use) raises before anything is
    stored. A version whose artifact fails its digest check is recorded and ends ``failed``
    with that reason, as a model that fails to load does.
    """
    registry = registry or ModelRegistry(store)
    record, format = resolve(registry, request.model, request.format)
    name, number = record["name"], record["version"]
    taken = store.ports_in_use()
    if request.port is not None:
        if request.port in taken or not port_is_free(request.host, request.port):
            raise Conflict(f"port {request.port} is in use")
        port = request.port
    else:
        port = _free_port(request.host, taken)
    grpc_port = _free_port(request.host, taken | {port})
    metrics_port = _free_port(request.host, taken | {port, grpc_port})
    deployment_id = uuid.uuid4().hex[:12]
    folder = private_dir(Path(state or state_dir()) / "deployments" / deployment_id)
    row = store.create_deployment(
        deployment_id,
        model=name,
        version=number,
        ref=request.model,
        format=format,
        host=request.host,
        port=port,
        workers=request.workers,
        max_batch_size=request.max_batch_size,
        max_batch_delay_ms=request.max_batch_delay_ms,
        max_request_bytes=request.max_request_bytes,
        max_restarts=request.max_restarts,
        owner=owner,
        supervisor=identity(),
        log_path=str(folder / "server.log"),
    )
    private_file(folder / "server.log")
    spec = {
        "id": deployment_id,
        "dir": str(folder),
        "name": name,
        "version": number,
        "format": format,
        "framework": record["framework"],
        "uri": "",
        "host": request.host,
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "workers": request.workers,
        "max_batch_size": request.max_batch_size,
        "max_batch_delay_ms": request.max_batch_delay_ms,
        "max_request_bytes": request.max_request_bytes,
    }
    supervisor = Supervisor(store, row, spec)
    try:
        _, path = registry.artifact(name, number, format)
    except (CorruptArtifact, OSError, RequestError) as exc:
        store.end_deployment(deployment_id, "failed", f"the {format} artifact: {exc}")
        supervisor._ended.set()
        return supervisor
    spec["uri"] = str(path)
    if supervise:
        supervisor.start()
    return supervisor


def reconcile(store: Store) -> list[str]:
    """End the live deployments of this host whose supervisor process is gone (a server,
    kernel or ``lepton-lab serve`` killed without stopping them); their model servers died with
    it. Returns their ids."""
    ended = []
    for row in store.live_deployments():
        pid = gone(row.get("supervisor"))
        if pid is None:
            continue
        if store.end_deployment(
            row["id"], "failed", f"its supervisor (pid {pid}) ended without stopping it"
        ):
            ended.append(row["id"])
    return ended
