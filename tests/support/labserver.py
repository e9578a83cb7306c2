"""A real ``jupyter lab`` (or ``jupyter server``) in a subprocess, for tests and benchmarks
that need the whole server process: its start-up, its shutdown, and its kernels."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` can be handed out again, to a Dask worker
    or an outgoing connection of a parallel test, before our server binds it: CI saw
    "The port ... is already in use". Ports below the ephemeral range are only ever taken
    by explicit binds, so that race goes away."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """Starts ``python -m jupyterlab`` on 127.0.0.1 with a token; talks to it over HTTP."""

    def __init__(
        self,
        root_dir: Path,
        lepton: dict[str, Any] | None = None,
        log_path: Path | None = None,
        app: str = "jupyterlab",
        env: dict[str, str] | None = None,
        base_url: str = "/",
    ) -> None:
        self.root_dir = Path(root_dir)
        # a non-root base URL is what JupyterHub and Binder give a user's server
        self.base_url = base_url
        self.extra_env = env or {}
        self.lepton = lepton or {}
        self.app = app
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.runtime_dir = self.root_dir.parent / f"runtime-{self.port}"
        self.log_path = log_path or self.root_dir.parent / f"lab-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.up_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            self.app,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
        ]
        if self.base_url != "/":
            cmd.append(f"--ServerApp.base_url={self.base_url}")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI and containers run as root
        from tests.support.settings import config_sections

        for section, values in config_sections(self.lepton).items():
            cmd += [f"--{section}.{key}={value}" for key, value in values.items()]
        return cmd

    def start(self, timeout: float = 90) -> LabServer:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(self.runtime_dir), **self.extra_env)
        for name in (
            "LEPTON_LAB_SCHEDULER_ADDRESS",
            "LEPTON_LAB_CLUSTER_FILE",
            "DASK_SCHEDULER_ADDRESS",
        ):
            env.pop(name, None)
        self.started_at = time.monotonic()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.root_dir
        )
        deadline = time.monotonic() + timeout
        port_retries = 3
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if port_retries and "is already in use" in self.log():
                    # another process took the port between free_port() and the bind
                    port_retries -= 1
                    self.port = free_port()
                    self._log.close()
                    self._log = open(self.log_path, "wb")
                    self.proc = subprocess.Popen(
                        self.command(),
                        stdout=self._log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=self.root_dir,
                    )
                    continue
                raise RuntimeError(f"jupyter exited with {self.proc.returncode}:\n{self.log()}")
            # not listening yet; a short timeout, since a port that another process holds
            # can accept the connection and never answer (the port-taken test waited 60 s)
            with contextlib.suppress(OSError):
                status, _ = self.request("GET", "api/status", timeout=5)
                if status == 200:
                    self.up_at = time.monotonic()
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"jupyter did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def request(
        self, method: str, path: str, body: Any = None, token: bool = True, timeout: float = 60
    ) -> tuple[int, Any]:
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                code = resp.status
        except urllib.error.HTTPError as err:
            raw, code = err.read(), err.code
        try:
            return code, json.loads(raw) if raw else None
        except ValueError:
            return code, raw.decode(errors="replace")

    def wait_cluster(
        self,
        predicate: Callable[[dict], bool] = lambda s: s["status"] == "running",
        timeout: float = 90,
    ) -> dict:
        deadline = time.monotonic() + timeout
        status: Any = None
        while time.monotonic() < deadline:
            code, status = self.request("GET", "lepton-lab/api/cluster")
            if code == 200 and predicate(status):
                return status
            time.sleep(0.05)
        raise TimeoutError(f"cluster status never matched; last: {status}\n{self.log()}")

    def cluster_client(self, timeout: float = 30) -> Any:
        """A ``distributed.Client`` of the lab's cluster, with the TLS credentials that the
        server named in its cluster file (what ``ll.attach()`` in a kernel uses)."""
        from distributed import Client

        from lepton_lab.cluster.security import cluster_file_security

        address = self.wait_cluster()["scheduler_address"]
        [state_file] = self.runtime_dir.glob("lepton-lab-cluster-*.json")
        security = cluster_file_security(state_file, address)
        return Client(address, timeout=timeout, security=security)

    def start_kernel(self, name: str) -> Any:
        """Start a kernel through the REST API; return a blocking client connected to it."""
        from jupyter_client import BlockingKernelClient

        code, kernel = self.request("POST", "api/kernels", {"name": name})
        assert code == 201, (code, kernel)
        connection_file = self.runtime_dir / f"kernel-{kernel['id']}.json"
        deadline = time.monotonic() + 30
        while not connection_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = BlockingKernelClient()
        client.load_connection_file(str(connection_file))
        # Without a KernelManager the client judges liveness by heartbeat; the default 1 s
        # reads a busy 2-core machine (cluster, server and kernel starting) as a dead kernel.
        client.hb_channel.time_to_dead = 10.0
        client.start_channels()
        client.wait_for_ready(timeout=60)
        client.kernel_id = kernel["id"]
        return client

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as Ctrl-C or a service manager would; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._log.close()


def execute(client: Any, code: str, timeout: float = 120) -> str:
    """Run code in a kernel; return its stdout/stderr text; fail on an error reply."""
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(code, output_hook=hook, timeout=timeout)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)
