"""A real ``dask-gateway-server`` in a subprocess (local backend: schedulers and workers are
processes of this machine), for tests of the lab on a dask-gateway cluster."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.labserver import free_port

#: the gateway's own processes and its clusters' run with this environment's Python, so
#: workers can import lepton_lab and torch like the lab's kernels
BIN = Path(sys.executable).parent

CONFIG = """\
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.scheduler_memory = "1 G"
c.ClusterConfig.idle_timeout = 0
"""


class GatewayServer:
    """``dask-gateway-server -f <config>`` on 127.0.0.1 free ports, simple auth (any user
    name, no password: a test-only authenticator)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.api_port, self.proxy_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "gateway.log"

    @property
    def address(self) -> str:
        """The public address clients use: the gateway's proxy, which serves the API over
        HTTP and, on the same port, the schedulers over TLS (gateway://, routed by SNI)."""
        return f"http://127.0.0.1:{self.proxy_port}"

    def start(self, timeout: float = 60) -> GatewayServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "clusters").mkdir(exist_ok=True)
        config = self.workdir / "dask_gateway_config.py"
        config.write_text(
            CONFIG.format(
                api_port=self.api_port,
                proxy_port=self.proxy_port,
                clusters=str(self.workdir / "clusters"),
                dask=str(BIN / "dask"),
            )
        )
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "dask-gateway-server"), "-f", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dask-gateway-server exited:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError):
                if self.api("GET", "api/health").get("status") == "pass":
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"dask-gateway-server did not answer within {timeout} s\n{self.log()}")

    def api(self, method: str, path: str) -> Any:
        """Call the gateway's REST API as this account's user, the name dask_gateway's
        ``auth="basic"`` sends (the simple authenticator takes any name, ignores passwords,
        and lists only that user's clusters)."""
        import base64
        import getpass

        req = urllib.request.Request(f"{self.address}/{path.lstrip('/')}", method=method)
        user = base64.b64encode(f"{getpass.getuser()}:".encode()).decode()
        req.add_header("Authorization", f"Basic {user}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def clusters(self, status: str = "pending,running,stopping") -> dict[str, Any]:
        """This user's clusters in these states, by name."""
        return self.api("GET", f"api/v1/clusters/?status={status}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM: the gateway stops the clusters it still runs before it exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self._log.close()
