"""REST handlers under ``/lepton-lab/api``.

Every handler is authenticated (``@tornado.web.authenticated``) and authorized
(``@authorized``, resource ``lepton-lab``) like Jupyter's own APIs; XSRF stays on through
``APIHandler``. Bad input is answered with a 4xx JSON error and never reaches the cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from lepton_lab.cluster.manager import ClusterError

if TYPE_CHECKING:
    from lepton_lab.server.app import LeptonLab

AUTH_RESOURCE = "lepton-lab"
API = "/lepton-lab/api"


class RequestError(tornado.web.HTTPError):
    """A 4xx whose JSON ``message`` says what was wrong, verbatim.

    Tornado %-formats ``log_message`` with ``args``; passing the text as an argument keeps a
    user-supplied ``%`` from breaking the log line, and ``write_error`` below sends it as is.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message


def client_error(status: int, message: str) -> RequestError:
    return RequestError(status, message)


class LeptonHandler(ExtensionHandlerMixin, APIHandler):
    """Base for Lepton Lab's API handlers: JSON in and out, blocking work off the IOLoop."""

    auth_resource = AUTH_RESOURCE

    @property
    def lab(self) -> LeptonLab:
        return self.extensionapp

    async def offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking cluster calls in the extension's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.lab.executor, fn, *args)

    def json_body(self) -> dict[str, Any]:
        raw = self.request.body or b""
        if not raw.strip():
            raise client_error(400, "the request body is empty; send a JSON object")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise client_error(400, f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise client_error(
                400, f"the request body must be a JSON object, not {type(body).__name__}"
            )
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RequestError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.message, "reason": self._reason}))
            return
        super().write_error(status_code, **kwargs)

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class ClusterHandler(LeptonHandler):
    """The lab's cluster: status (GET) and scaling (PATCH ``{"workers": N}``)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.offload(self.lab.cluster_manager.status))

    @tornado.web.authenticated
    @authorized
    async def patch(self) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - {"workers"})
        if unknown:
            raise client_error(
                400, f"unknown field(s) {', '.join(unknown)}; only 'workers' can be set"
            )
        if "workers" not in body:
            raise client_error(400, "missing field 'workers' (the number of workers to scale to)")
        workers = body["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise client_error(400, f"'workers' must be an integer, not {type(workers).__name__}")
        manager = self.lab.cluster_manager
        limit = manager.max_workers()
        if not 0 <= workers <= limit:
            raise client_error(400, f"'workers' must be between 0 and {limit}, got {workers}")
        try:
            status = await self.offload(manager.scale, workers, self.lab.scale_timeout)
        except ClusterError as exc:
            raise client_error(409, str(exc)) from exc
        self.write_json(status)


class KernelsHandler(LeptonHandler):
    """Which kernelspec is CPU, which is GPU, and whether a GPU is really there."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        from lepton_lab.cluster.gpus import probe_gpus

        specs = self.kernel_spec_manager.get_all_specs()
        probe = await self.offload(probe_gpus)
        kernels = []
        for name, device in (("lepton-cpu", "cpu"), ("lepton-gpu", "gpu")):
            spec = specs.get(name, {}).get("spec", {})
            kernels.append(
                {
                    "name": name,
                    "display_name": spec.get("display_name", name),
                    "device": device,
                    "installed": name in specs,
                    "runs_on": "gpu" if device == "gpu" and probe.available else "cpu",
                }
            )
        others = [
            {"name": n, "display_name": s.get("spec", {}).get("display_name", n), "device": None}
            for n, s in sorted(specs.items())
            if n not in ("lepton-cpu", "lepton-gpu")
        ]
        self.write_json(
            {
                "gpu_available": probe.available,
                "gpu_count": probe.count,
                "gpu_names": list(probe.names),
                "gpu_reason": probe.reason,
                "kernels": kernels,
                "other_kernels": others,
            }
        )


class OpenAPIHandler(LeptonHandler):
    """The OpenAPI 3 document of every route above."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        from lepton_lab.server.openapi import openapi_document

        self.write_json(openapi_document(self.base_url))


ROUTES: list[tuple[str, type[LeptonHandler]]] = [
    (f"{API}/cluster", ClusterHandler),
    (f"{API}/kernels", KernelsHandler),
    (f"{API}/openapi.json", OpenAPIHandler),
]
