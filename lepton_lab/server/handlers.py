"""REST handlers under ``/lepton-lab/api``: parse, call the service facade, serialize.

Each HTTP method is declared once with :func:`api`: that makes it authenticated
(``@tornado.web.authenticated``) and authorized (``@authorized``, resource ``lepton-lab``)
like Jupyter's own APIs, and records its :class:`Operation` (models, statuses), from which
:mod:`lepton_lab.server.openapi` writes the OpenAPI document. XSRF stays on through
``APIHandler``. Bad input is a 4xx JSON error that names the field; blocking work runs in the
extension's thread pool, never on the IOLoop.

A service the lab depends on that cannot be reached (the database, the cluster's scheduler) is
a 503 JSON error for every route, decided here once (:meth:`LeptonHandler.call`): the
services raise :class:`~lepton_lab.contract.base.Unavailable`, and a database error that
escapes them is one too. The server keeps serving, and answers again once the service is back.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel

from lepton_lab.contract import RequestError, parse, parse_query
from lepton_lab.contract.base import Unavailable
from lepton_lab.contract.cluster import ClusterStatus, Kernels, LabConfig, ScaleRequest
from lepton_lab.contract.jobs import (
    Job,
    JobList,
    JobLogs,
    JobQuery,
    JobRequest,
    LogQuery,
    OutputQuery,
    Schedule,
    ScheduleList,
    SchedulePatch,
    ScheduleRequest,
)
from lepton_lab.contract.models import (
    CompareQuery,
    Comparison,
    Model,
    ModelList,
    ModelVersion,
    VersionPatch,
)
from lepton_lab.contract.notifications import NotificationList, NotificationQuery
from lepton_lab.contract.runs import (
    MetricsPage,
    MetricsQuery,
    Run,
    RunList,
    RunQuery,
    StopAccepted,
)
from lepton_lab.contract.serving import (
    Deployment,
    DeploymentList,
    DeploymentLogQuery,
    DeploymentLogs,
    DeploymentQuery,
    DeploymentRequest,
)
from lepton_lab.contract.usage import UsageQuery, UsageReport
from lepton_lab.services.lab import LabServices

AUTH_RESOURCE = "lepton-lab"
API = "/lepton-lab/api"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """What one route method takes and answers; the OpenAPI document is written from it."""

    operation_id: str
    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: statuses besides 200/201/202/204, 403 (every route) and 404 (routes with an id)
    errors: tuple[int, ...] = ()
    #: non-model answers: media type -> JSON schema
    content: tuple[tuple[str, dict[str, Any]], ...] = ()


def api(operation: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route method: authenticated, authorized, and described by ``operation``."""

    def declare(method: Callable[..., Any]) -> Callable[..., Any]:
        guarded = tornado.web.authenticated(authorized(method))
        guarded.operation = operation  # type: ignore[attr-defined]
        return guarded

    return declare


class HTTPRequestError(tornado.web.HTTPError):
    """A 4xx whose JSON ``message`` says what was wrong, verbatim.

    Tornado %-formats ``log_message`` with ``args``; passing the text as an argument keeps a
    user-supplied ``%`` from breaking the log line, and ``write_error`` sends it as is.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a JSON number")
    return value


class LeptonHandler(ExtensionHandlerMixin, APIHandler):
    """Base of the API handlers: JSON in and out, services called off the IOLoop."""

    auth_resource = AUTH_RESOURCE

    @property
    def services(self) -> LabServices:
        return self.extensionapp.services

    async def call(self, fn: Callable[..., M], *args: Any) -> M:
        """Run a blocking service call in the extension's pool; its RequestError becomes the
        4xx it names."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.services.pool, fn, *args)
        except RequestError as exc:
            raise HTTPRequestError(exc.status, str(exc)) from None
        except Unavailable as exc:
            raise self.unavailable(str(exc)) from None
        except Exception as exc:
            from sqlalchemy.exc import DBAPIError, OperationalError

            # a database error that no service translated: still the database, not a bug here
            if isinstance(exc, OperationalError) or (
                isinstance(exc, DBAPIError) and exc.connection_invalidated
            ):
                reason = str(exc.orig or exc).strip().splitlines()[0]
                raise self.unavailable(f"the database is unavailable: {reason}") from None
            raise

    def usage_user(self) -> str:
        """Whom the request's work is for, in usage records: the identity provider's user name,
        or this server's user (``current_user``) when Jupyter only knows a shared token. Such
        a token gives each browser a random "Anonymous ..." user (``generate_anonymous_user``),
        which would split one person's usage over made-up names."""
        from lepton_lab.metering.ledger import current_user

        user = self.current_user
        name = getattr(user, "name", "") or ""
        username = getattr(user, "username", "") or ""
        if not username or (name.startswith("Anonymous ") and len(username) == 32):
            return current_user()
        return username

    @staticmethod
    def unavailable(message: str) -> HTTPRequestError:
        """A 503 for a service that cannot be reached now: Tornado logs it as one warning
        line, not a traceback (the server is fine; what it depends on is not)."""
        return HTTPRequestError(503, message)

    def body(self, model: type[M], context: dict[str, Any] | None = None) -> M:
        """The body as ``model``, or a 400 naming the problem.

        ``NaN``/``Infinity`` (and ``1e999``) and lone surrogate escapes parse in Python but
        cannot be stored or sent back as JSON, so they are refused before the model sees them.
        """
        raw = self.request.body or b""
        if not raw.strip():
            raise HTTPRequestError(400, "the request body is empty; send a JSON object")
        try:
            body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPRequestError(400, f"the request body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise HTTPRequestError(400, "the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise HTTPRequestError(
                400, f"the request body must be a JSON object, not {type(body).__name__}"
            )
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPRequestError(
                400, "the request body holds text that is not valid Unicode (a lone surrogate)"
            ) from None
        try:
            return parse(model, body, context)
        except RequestError as exc:
            raise HTTPRequestError(exc.status, str(exc)) from None

    def query(self, model: type[M]) -> M:
        try:
            return parse_query(model, self.request.query_arguments)
        except RequestError as exc:
            raise HTTPRequestError(exc.status, str(exc)) from None

    def reply(self, payload: BaseModel | dict[str, Any] | None, status: int = 200) -> None:
        self.set_status(status)
        if payload is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        if isinstance(payload, BaseModel):
            self.finish(payload.model_dump_json())
        else:
            self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HTTPRequestError):
            if status_code == 503:
                self.set_header("Retry-After", "5")
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.message, "reason": self._reason}))
            return
        super().write_error(status_code, **kwargs)


# -- cluster ---------------------------------------------------------------------------------


class ClusterHandler(LeptonHandler):
    @api(Operation("getCluster", "Status of the lab's Dask cluster", ClusterStatus))
    async def get(self) -> None:
        self.reply(await self.call(self.services.cluster.status))

    @api(
        Operation(
            "scaleCluster",
            "Scale the lab-owned cluster to a number of workers (waits until reached; turns "
            "adaptive scaling off), or turn Dask's adaptive scaling on with 'adapt'",
            ClusterStatus,
            body=ScaleRequest,
            errors=(409,),
        )
    )
    async def patch(self) -> None:
        limit = self.services.cluster.manager.worker_limit()
        request = self.body(ScaleRequest, {"max_workers": limit})
        self.reply(await self.call(self.services.cluster.scale, request))


class KernelsHandler(LeptonHandler):
    @api(Operation("getKernels", "The CPU and GPU kernelspecs and whether a GPU is there", Kernels))
    async def get(self) -> None:
        self.reply(await self.call(self.services.cluster.kernels))


class ConfigHandler(LeptonHandler):
    @api(Operation("getConfig", "Installed job executors and features of this lab", LabConfig))
    async def get(self) -> None:
        self.reply(await self.call(self.services.cluster.config))


# -- runs ------------------------------------------------------------------------------------


class RunsHandler(LeptonHandler):
    @api(Operation("listRuns", "Runs, newest first, with their progress", RunList, query=RunQuery))
    async def get(self) -> None:
        self.reply(await self.call(self.services.runs.list, self.query(RunQuery)))


class RunHandler(LeptonHandler):
    @api(Operation("getRun", "One run with its usage per rank and its events", Run))
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(self.services.runs.get, run_id))


class RunMetricsHandler(LeptonHandler):
    @api(
        Operation(
            "getRunMetrics",
            "Reported values after a cursor; poll again with the returned `next`",
            MetricsPage,
            query=MetricsQuery,
        )
    )
    async def get(self, run_id: str) -> None:
        query = self.query(MetricsQuery)
        self.reply(await self.call(self.services.runs.metrics, run_id, query))


class RunStopHandler(LeptonHandler):
    @api(
        Operation(
            "stopRun",
            "Ask the run's ranks to stop at their next report",
            StopAccepted,
            status=202,
            errors=(409,),
        )
    )
    async def post(self, run_id: str) -> None:
        self.reply(await self.call(self.services.runs.stop, run_id), 202)


# -- notebook jobs ---------------------------------------------------------------------------


class JobsHandler(LeptonHandler):
    @api(Operation("listJobs", "Notebook jobs, newest first", JobList, query=JobQuery))
    async def get(self) -> None:
        self.reply(await self.call(self.services.jobs.list, self.query(JobQuery)))

    @api(
        Operation(
            "submitJob",
            "Run a notebook with papermill (validated before anything is stored)",
            Job,
            status=201,
            body=JobRequest,
            errors=(404,),
        )
    )
    async def post(self) -> None:
        request = self.body(JobRequest)
        self.reply(await self.call(self.services.jobs.submit, request, self.usage_user()), 201)


class JobHandler(LeptonHandler):
    @api(Operation("getJob", "One job with its events, metrics and progress", Job))
    async def get(self, job_id: str) -> None:
        self.reply(await self.call(self.services.jobs.get, job_id))

    @api(Operation("deleteJob", "Remove an ended job and its files", status=204, errors=(409,)))
    async def delete(self, job_id: str) -> None:
        await self.call(self.services.jobs.delete, job_id)
        self.reply(None, 204)


class JobStopHandler(LeptonHandler):
    @api(
        Operation(
            "stopJob",
            "Stop a job: a queued one at once, a running one with its kernel",
            StopAccepted,
            status=202,
            errors=(409,),
        )
    )
    async def post(self, job_id: str) -> None:
        self.reply(await self.call(self.services.jobs.stop, job_id), 202)


class JobLogsHandler(LeptonHandler):
    @api(
        Operation(
            "getJobLogs",
            "The job's log from byte `offset`; poll with `next` until `complete`",
            JobLogs,
            query=LogQuery,
        )
    )
    async def get(self, job_id: str) -> None:
        query = self.query(LogQuery)
        self.reply(await self.call(self.services.jobs.logs, job_id, query))


class JobOutputHandler(LeptonHandler):
    @api(
        Operation(
            "getJobOutput",
            "The executed notebook (`format=ipynb`) or its HTML (`format=html`)",
            query=OutputQuery,
            errors=(409,),
            content=(
                ("application/json", {"type": "object", "description": "nbformat 4 notebook"}),
                ("text/html", {"type": "string"}),
            ),
        )
    )
    async def get(self, job_id: str) -> None:
        fmt = self.query(OutputQuery).format
        output = await self.call(self.services.jobs.output, job_id, fmt)
        if isinstance(output, str):
            # Notebook outputs may carry scripts: run them in an opaque origin, never with
            # this server's cookies and API.
            self.set_header("Content-Security-Policy", "sandbox allow-scripts")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.finish(output, set_content_type="text/html; charset=UTF-8")
            return
        self.reply(output)


# -- schedules -------------------------------------------------------------------------------


class SchedulesHandler(LeptonHandler):
    @api(Operation("listSchedules", "Schedules", ScheduleList))
    async def get(self) -> None:
        self.reply(await self.call(self.services.schedules.list))

    @api(
        Operation(
            "createSchedule",
            "Run a notebook on a cron schedule",
            Schedule,
            status=201,
            body=ScheduleRequest,
            errors=(404,),
        )
    )
    async def post(self) -> None:
        request = self.body(ScheduleRequest)
        self.reply(await self.call(self.services.schedules.create, request, self.usage_user()), 201)


class ScheduleHandler(LeptonHandler):
    @api(Operation("getSchedule", "One schedule with its next fire times", Schedule))
    async def get(self, schedule_id: str) -> None:
        self.reply(await self.call(self.services.schedules.get, schedule_id))

    @api(
        Operation(
            "updateSchedule",
            "Edit a schedule; `active: false` pauses it, `true` resumes it",
            Schedule,
            body=SchedulePatch,
        )
    )
    async def patch(self, schedule_id: str) -> None:
        request = self.body(SchedulePatch)
        self.reply(await self.call(self.services.schedules.update, schedule_id, request))

    @api(Operation("deleteSchedule", "Delete a schedule (its jobs stay)", status=204))
    async def delete(self, schedule_id: str) -> None:
        await self.call(self.services.schedules.delete, schedule_id)
        self.reply(None, 204)


class ScheduleRunHandler(LeptonHandler):
    @api(Operation("runSchedule", "Run a schedule's notebook now", Job, status=201))
    async def post(self, schedule_id: str) -> None:
        self.reply(await self.call(self.services.schedules.run_now, schedule_id), 201)


# -- models ----------------------------------------------------------------------------------


class ModelsHandler(LeptonHandler):
    @api(Operation("listModels", "Registered models: newest version, aliases, metrics", ModelList))
    async def get(self) -> None:
        self.reply(await self.call(self.services.models.list))


class ModelHandler(LeptonHandler):
    @api(Operation("getModel", "A model with all its versions, newest first", Model, errors=(400,)))
    async def get(self, name: str) -> None:
        self.reply(await self.call(self.services.models.get, name))


class ModelCompareHandler(LeptonHandler):
    @api(
        Operation(
            "compareModel",
            "The versions side by side, best first by `metric`",
            Comparison,
            query=CompareQuery,
            errors=(400,),
        )
    )
    async def get(self, name: str) -> None:
        query = self.query(CompareQuery)
        self.reply(await self.call(self.services.models.compare, name, query))


VERSION_DOC = "`version`: a number, `latest`, `@alias` or `best:<metric>`"


class ModelVersionHandler(LeptonHandler):
    @api(
        Operation(
            "getModelVersion",
            f"One version: lineage, artifacts, evaluations ({VERSION_DOC})",
            ModelVersion,
            errors=(400,),
        )
    )
    async def get(self, name: str, version: str) -> None:
        self.reply(await self.call(self.services.models.version, name, version))

    @api(
        Operation(
            "patchModelVersion",
            "Set the aliases that point at this version (moved from others) and merge tags",
            ModelVersion,
            body=VersionPatch,
        )
    )
    async def patch(self, name: str, version: str) -> None:
        patch = self.body(VersionPatch)
        self.reply(await self.call(self.services.models.patch, name, version, patch))

    @api(
        Operation(
            "deleteModelVersion",
            "Delete a version: its artifacts and rows together",
            status=204,
            errors=(400,),
        )
    )
    async def delete(self, name: str, version: str) -> None:
        await self.call(self.services.models.delete, name, version)
        self.reply(None, 204)


class ModelArtifactHandler(LeptonHandler):
    @api(
        Operation(
            "downloadModelArtifact",
            "Download one artifact (a SavedModel folder as .zip); its digest is checked first",
            errors=(400, 409),
            content=(("application/octet-stream", {"type": "string", "format": "binary"}),),
        )
    )
    async def get(self, name: str, version: str, format: str) -> None:
        download = await self.call(self.services.models.download, name, version, format)
        try:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{download.filename}"')
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Length", str(download.size))
            if download.sha256:
                self.set_header("X-Lepton-SHA256", download.sha256)
            reader = await self.call(download.reader)
            sent = 0
            try:
                while chunk := await self.call(reader.read, 1 << 20):
                    self.write(chunk)
                    await self.flush()
                    sent += len(chunk)
            finally:
                reader.close()
                # data moved (#15): the bytes that left, also of a download cut short
                await self.call(
                    self.services.usage.record_download, download.subject, sent, self.usage_user()
                )
            self.finish()
        finally:
            await self.call(download.discard)


# -- deployments -----------------------------------------------------------------------------


class DeploymentsHandler(LeptonHandler):
    @api(
        Operation(
            "listDeployments",
            "Deployments, newest first, with their endpoint and proxied URL",
            DeploymentList,
            query=DeploymentQuery,
        )
    )
    async def get(self) -> None:
        query = self.query(DeploymentQuery)
        self.reply(await self.call(self.services.deployments.list, query))

    @api(
        Operation(
            "createDeployment",
            "Serve a registered version over the Open Inference Protocol (a supervised "
            "MLServer process; `starting`, then `ready` or `failed`)",
            Deployment,
            status=201,
            body=DeploymentRequest,
            errors=(404, 409),
        )
    )
    async def post(self) -> None:
        request = self.body(DeploymentRequest)
        self.reply(await self.call(self.services.deployments.start, request), 201)


class DeploymentHandler(LeptonHandler):
    @api(Operation("getDeployment", "One deployment and where its endpoint answers", Deployment))
    async def get(self, deployment_id: str) -> None:
        self.reply(await self.call(self.services.deployments.get, deployment_id))

    @api(
        Operation(
            "stopDeployment",
            "Stop a deployment (its ports are free once it is `stopped`)",
            StopAccepted,
            status=202,
            errors=(409,),
        )
    )
    async def delete(self, deployment_id: str) -> None:
        self.reply(await self.call(self.services.deployments.stop, deployment_id), 202)


class DeploymentLogsHandler(LeptonHandler):
    @api(
        Operation(
            "getDeploymentLogs",
            "The model server's log from byte `offset`; poll with `next` until `complete`",
            DeploymentLogs,
            query=DeploymentLogQuery,
        )
    )
    async def get(self, deployment_id: str) -> None:
        query = self.query(DeploymentLogQuery)
        self.reply(await self.call(self.services.deployments.logs, deployment_id, query))


# -- usage -----------------------------------------------------------------------------------


class UsageHandler(LeptonHandler):
    @api(
        Operation(
            "getUsage",
            "Usage over a window (`from`, `to`), grouped by day, user, notebook, tag or kind; "
            "priced when the lab has prices",
            UsageReport,
            query=UsageQuery,
            errors=(400,),
        )
    )
    async def get(self) -> None:
        self.reply(await self.call(self.services.usage.report, self.query(UsageQuery)))


class UsageCSVHandler(LeptonHandler):
    @api(
        Operation(
            "getUsageCSV",
            "The same report as CSV: a line per group, then the total",
            query=UsageQuery,
            errors=(400,),
            content=(("text/csv", {"type": "string"}),),
        )
    )
    async def get(self) -> None:
        text = await self.call(self.services.usage.csv, self.query(UsageQuery))
        self.set_header("Content-Disposition", 'attachment; filename="lepton-lab-usage.csv"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(text, set_content_type="text/csv; charset=UTF-8")


# -- notifications ---------------------------------------------------------------------------


class NotificationsHandler(LeptonHandler):
    @api(
        Operation(
            "listNotifications",
            "The notification log, newest first (`since`: the ones after an id, oldest first; "
            "`mine`: the caller's)",
            NotificationList,
            query=NotificationQuery,
            errors=(400,),
        )
    )
    async def get(self) -> None:
        query = self.query(NotificationQuery)
        user = self.usage_user()
        self.reply(await self.call(self.services.notifications.list, query, user))


class OpenAPIHandler(LeptonHandler):
    @api(
        Operation(
            "getOpenAPI",
            "This document",
            content=(("application/json", {"type": "object"}),),
        )
    )
    async def get(self) -> None:
        self.reply(self.services.openapi(self.base_url))


ROUTES: list[tuple[str, type[LeptonHandler]]] = [
    (f"{API}/cluster", ClusterHandler),
    (f"{API}/kernels", KernelsHandler),
    (f"{API}/config", ConfigHandler),
    (f"{API}/runs", RunsHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)", RunHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)/metrics", RunMetricsHandler),
    (f"{API}/runs/(?P<run_id>[^/]+)/stop", RunStopHandler),
    (f"{API}/jobs", JobsHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)", JobHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/stop", JobStopHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/logs", JobLogsHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/output", JobOutputHandler),
    (f"{API}/schedules", SchedulesHandler),
    (f"{API}/schedules/(?P<schedule_id>[^/]+)", ScheduleHandler),
    (f"{API}/schedules/(?P<schedule_id>[^/]+)/run", ScheduleRunHandler),
    (f"{API}/models", ModelsHandler),
    (f"{API}/models/(?P<name>[^/]+)", ModelHandler),
    (f"{API}/models/(?P<name>[^/]+)/compare", ModelCompareHandler),
    (f"{API}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", ModelVersionHandler),
    (
        f"{API}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/artifacts/(?P<format>[^/]+)",
        ModelArtifactHandler,
    ),
    (f"{API}/deployments", DeploymentsHandler),
    (f"{API}/deployments/(?P<deployment_id>[^/]+)", DeploymentHandler),
    (f"{API}/deployments/(?P<deployment_id>[^/]+)/logs", DeploymentLogsHandler),
    (f"{API}/notifications", NotificationsHandler),
    (f"{API}/usage", UsageHandler),
    (f"{API}/usage/csv", UsageCSVHandler),
    (f"{API}/openapi.json", OpenAPIHandler),
]
