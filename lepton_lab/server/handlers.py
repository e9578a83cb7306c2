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


def _int_arg(handler: LeptonHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise client_error(400, f"'{name}' must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise client_error(400, f"'{name}' must be between {low} and {high}, got {value}")
    return value


class RunsHandler(LeptonHandler):
    """Runs, newest first; ``?status=`` filters, ``?limit=`` caps."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        from lepton_lab.store.schema import RUN_STATUSES

        status = self.get_query_argument("status", None)
        if status is not None and status not in RUN_STATUSES:
            raise client_error(400, f"'status' must be one of {', '.join(RUN_STATUSES)}")
        limit = _int_arg(self, "limit", 100, 1, 1000)
        runs = await self.offload(self.lab.store.list_runs, status, limit)
        self.write_json({"runs": runs})


class RunHandler(LeptonHandler):
    """One run: parameters, status, times, error, usage per rank and events."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.write_json(await self.run_record(run_id))

    async def run_record(self, run_id: str) -> dict[str, Any]:
        from lepton_lab.store.database import UnknownRun

        try:
            return await self.offload(self.lab.store.get_run, run_id)
        except UnknownRun as exc:
            raise client_error(404, str(exc)) from None


class RunMetricsHandler(RunHandler):
    """Reported values after cursor ``?since=`` (0: from the start); poll with ``next``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        from lepton_lab.store.database import UnknownRun

        since = _int_arg(self, "since", 0, 0, 2**62)
        limit = _int_arg(self, "limit", 10000, 1, 100000)
        try:
            page = await self.offload(self.lab.store.metrics, run_id, since, limit)
        except UnknownRun as exc:
            raise client_error(404, str(exc)) from None
        self.write_json(page)


class RunStopHandler(RunHandler):
    """Ask a run's ranks to stop (they stop at their next report)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        from lepton_lab.store.schema import FINAL_STATUSES

        record = await self.run_record(run_id)
        if record["status"] in FINAL_STATUSES:
            raise client_error(409, f"run {run_id} has already ended ({record['status']})")
        client = self.lab.cluster_manager.client
        if client is None:
            raise client_error(409, "the cluster is not running, so the run cannot be reached")
        await self.offload(_set_stop_event, client, run_id)
        self.write_json({"id": run_id, "status": record["status"], "stop_requested": True}, 202)


def _set_stop_event(client: Any, run_id: str) -> None:
    from distributed import Event

    from lepton_lab.training.context import stop_event_name

    Event(stop_event_name(run_id), client=client).set()


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
    (f"{API}/runs", RunsHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)", RunHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)/metrics", RunMetricsHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)/stop", RunStopHandler),
    (f"{API}/openapi.json", OpenAPIHandler),
]
