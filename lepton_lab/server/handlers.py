"""REST handlers under ``/lepton-lab/api``.

Every handler is authenticated (``@tornado.web.authenticated``) and authorized
(``@authorized``, resource ``lepton-lab``) like Jupyter's own APIs; XSRF stays on through
``APIHandler``. Bad input is answered with a 4xx JSON error and never reaches the cluster.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a JSON number")
    return value


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
        """The body as a JSON object of finite numbers and valid Unicode, or a 400.

        ``NaN``/``Infinity`` (and ``1e999``) and lone surrogate escapes parse in Python but
        cannot be stored or sent back as JSON, so they are refused here, before any handler.
        """
        raw = self.request.body or b""
        if not raw.strip():
            raise client_error(400, "the request body is empty; send a JSON object")
        try:
            body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, UnicodeDecodeError) as exc:
            raise client_error(400, f"the request body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise client_error(400, "the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise client_error(
                400, f"the request body must be a JSON object, not {type(body).__name__}"
            )
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise client_error(
                400, "the request body holds text that is not valid Unicode (a lone surrogate)"
            ) from None
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


class _RunBase(LeptonHandler):
    """Looks up a run; the sub-routes derive from this so they answer only their own methods."""

    async def run_record(self, run_id: str) -> dict[str, Any]:
        from lepton_lab.store.database import UnknownRun

        try:
            return await self.offload(self.lab.store.get_run, run_id)
        except UnknownRun as exc:
            raise client_error(404, str(exc)) from None


class RunHandler(_RunBase):
    """One run: parameters, status, times, error, usage per rank and events."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.write_json(await self.run_record(run_id))


class RunMetricsHandler(_RunBase):
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


class RunStopHandler(_RunBase):
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


# -- notebook jobs and schedules -----------------------------------------------------------

#: Bytes of a job's log one GET returns at most (page with ``offset``/``next``).
LOG_PAGE_MAX = 4 * 1024 * 1024


def _relative(notebook: str | None, root: Path) -> str | None:
    """The notebook's path relative to the server's root (None when it lies outside)."""
    if not notebook:
        return None
    path = Path(notebook)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None


def _job_view(record: dict[str, Any], root: Path) -> dict[str, Any]:
    """A job record as REST shows it: plus ``path``, the ``outputs`` that exist, and the
    ``elapsed`` seconds of the current attempt (``progress.cell_elapsed`` for the running cell)
    so a UI needs no clock of its own."""
    from lepton_lab.store.schema import JOB_FINAL_STATUSES

    out = dict(record)
    out["path"] = _relative(record.get("notebook"), root)
    now = time.time()
    started, ended, status = record.get("started_at"), record.get("ended_at"), record["status"]
    if status == "running" and started:
        out["elapsed"] = max(0.0, now - started)
    elif status in JOB_FINAL_STATUSES and started and ended:
        out["elapsed"] = max(0.0, ended - started)
    else:
        out["elapsed"] = None
    # the outputs written so far (a job stopped before its first cell has none)
    folder = Path(record["output_dir"]) if record.get("output_dir") else None
    out["outputs"] = [
        fmt
        for fmt in ("ipynb", "html")
        if folder is not None and (folder / f"output.{fmt}").exists()
    ]
    progress = record.get("progress") or {}
    if status == "running" and isinstance(progress.get("cell_started_at"), int | float):
        out["progress"] = dict(progress, cell_elapsed=max(0.0, now - progress["cell_started_at"]))
    return out


def _schedule_view(record: dict[str, Any], root: Path, upcoming: int = 0) -> dict[str, Any]:
    out = dict(record, path=_relative(record.get("notebook"), root))
    if upcoming:
        from lepton_lab.jobs.schedules import upcoming as next_times

        out["upcoming"] = (
            next_times(record["cron"], record["timezone"], time.time(), upcoming)
            if record["active"]
            else []
        )
    return out


def _checked(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a validating call; its ``JobRequestError`` becomes the 4xx it names.

    A name the file system refuses to look up (too long, not encodable) and a number too
    large for a float are bad input too: 400, not a server error.
    """
    from lepton_lab.jobs.spec import JobRequestError

    try:
        return fn(*args)
    except JobRequestError as exc:
        raise client_error(exc.status, str(exc)) from None
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise client_error(400, f"a path or name in the request cannot be used: {reason}") from None
    except OverflowError:
        raise client_error(400, "a number in the request is too large") from None


class JobsHandler(LeptonHandler):
    """Notebook jobs: list (newest first, ``?status=``, ``?schedule_id=``, ``?limit=``) and
    submit (validated against the notebook before anything is stored)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        from lepton_lab.store.schema import JOB_STATUSES

        status = self.get_query_argument("status", None)
        if status is not None and status not in JOB_STATUSES:
            raise client_error(400, f"'status' must be one of {', '.join(JOB_STATUSES)}")
        schedule_id = self.get_query_argument("schedule_id", None)
        if schedule_id is not None and not 0 < len(schedule_id) <= 64:
            raise client_error(400, "'schedule_id' must be 1 to 64 characters")
        limit = _int_arg(self, "limit", 100, 1, 1000)
        jobs = await self.offload(self.lab.job_store.list_jobs, status, limit, schedule_id)
        root = self.lab.root_dir
        self.write_json({"jobs": [_job_view(j, root) for j in jobs]})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        record = await self.offload(self._submit, body)
        self.write_json(_job_view(record, self.lab.root_dir), 201)

    def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        from lepton_lab.jobs.service import create_job
        from lepton_lab.jobs.spec import JOB_FIELDS, validate_job

        lab = self.lab
        spec = _checked(
            validate_job, body, lab.root_dir, lab.kernel_names(), JOB_FIELDS, lab.job_executor
        )
        return create_job(lab.job_store, Path(lab.state_dir), spec)


class _JobBase(LeptonHandler):
    """Looks up a job; sub-routes derive from this, not from :class:`JobHandler`, so they
    answer only the methods they define (a DELETE on ``.../stop`` must not delete the job)."""

    async def job_record(self, job_id: str, details: bool = True) -> dict[str, Any]:
        from lepton_lab.store.jobs import UnknownJob

        try:
            return await self.offload(self.lab.job_store.get_job, job_id, details)
        except UnknownJob as exc:
            raise client_error(404, str(exc)) from None


class JobHandler(_JobBase):
    """One job with its events, metrics and progress (GET); remove an ended one (DELETE)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.write_json(_job_view(await self.job_record(job_id), self.lab.root_dir))

    @tornado.web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.offload(self._delete, job_id)
        self.set_status(204)
        self.finish()

    def _delete(self, job_id: str) -> None:
        from lepton_lab.store.jobs import UnknownJob

        try:
            record = self.lab.job_store.delete_job(job_id)
        except UnknownJob as exc:
            raise client_error(404, str(exc)) from None
        except ValueError as exc:  # queued or running
            raise client_error(409, str(exc)) from None
        # Only ever a folder the job service made: never follow a record outside the state dir.
        folder = Path(record["output_dir"]).resolve()
        if folder.is_relative_to(Path(self.lab.state_dir).resolve() / "jobs"):
            shutil.rmtree(folder, ignore_errors=True)


class JobStopHandler(_JobBase):
    """Stop a job: a queued one at once, a running one by its owner (runner and kernel killed)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        from lepton_lab.store.jobs import UnknownJob

        try:
            status = await self.offload(self.lab.job_store.request_stop, job_id)
        except UnknownJob as exc:
            raise client_error(404, str(exc)) from None
        except ValueError as exc:  # already ended
            raise client_error(409, str(exc)) from None
        self.write_json({"id": job_id, "status": status, "stop_requested": True}, 202)


class JobLogsHandler(_JobBase):
    """The job's log (papermill's and the cells' output, all attempts) from byte ``?offset=``;
    poll with the returned ``next`` until ``complete``."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        from lepton_lab.store.schema import JOB_FINAL_STATUSES

        offset = _int_arg(self, "offset", 0, 0, 2**62)
        limit = _int_arg(self, "limit", 1024 * 1024, 1, LOG_PAGE_MAX)
        record = await self.job_record(job_id, details=False)
        ended = record["status"] in JOB_FINAL_STATUSES
        log = Path(record["output_dir"]) / "job.log"
        page = await self.offload(_read_log, log, offset, limit, ended)
        self.write_json({"id": job_id, "status": record["status"], **page})


def _read_log(path: Path, offset: int, limit: int, ended: bool) -> dict[str, Any]:
    """Up to ``limit`` bytes from ``offset``, cut at a character boundary: a UTF-8 character
    split across two pages would otherwise show as two replacement marks."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        size, data = 0, b""
    at_end = offset + len(data) >= size
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=ended and at_end)
    consumed = len(data) - len(decoder.getstate()[0])
    following = offset + consumed
    return {
        "offset": offset,
        "next": following,
        "size": size,
        "text": text,
        "complete": ended and following >= size,
    }


class JobOutputHandler(_JobBase):
    """The executed notebook (``?format=ipynb``, JSON) or its HTML (``?format=html``)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        from lepton_lab.jobs.spec import OUTPUT_FORMATS
        from lepton_lab.store.schema import JOB_ACTIVE_STATUSES

        fmt = self.get_query_argument("format", "ipynb")
        if fmt not in OUTPUT_FORMATS:
            raise client_error(400, f"'format' must be one of {', '.join(OUTPUT_FORMATS)}")
        record = await self.job_record(job_id, details=False)
        if fmt not in record["output_formats"]:
            raise client_error(
                404,
                f"job {job_id} did not ask for {fmt} output (output_formats: "
                f"{', '.join(record['output_formats'])})",
            )
        path = Path(record["output_dir"]) / ("output.ipynb" if fmt == "ipynb" else "output.html")
        text = await self.offload(_read_text, path)
        if text is None:
            raise client_error(
                404, f"job {job_id} has no {fmt} output (yet): it is {record['status']}"
            )
        if fmt == "html":
            # Notebook outputs may carry scripts: run them in an opaque origin, never with
            # this server's cookies and API.
            self.set_header("Content-Security-Policy", "sandbox allow-scripts")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.finish(text, set_content_type="text/html; charset=UTF-8")
            return
        try:
            notebook = json.loads(text)
        except ValueError:
            if record["status"] in JOB_ACTIVE_STATUSES:
                raise client_error(
                    409, f"job {job_id}'s output notebook is being written; try again"
                ) from None
            raise client_error(404, f"job {job_id}'s output notebook is unreadable") from None
        self.write_json(notebook)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


class SchedulesHandler(LeptonHandler):
    """Schedules (GET) and a new one (POST: the job fields plus cron, timezone, active,
    overlap and catchup)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        schedules = await self.offload(self.lab.job_store.list_schedules)
        root = self.lab.root_dir
        self.write_json({"schedules": [_schedule_view(s, root) for s in schedules]})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        record = await self.offload(self._create, body)
        self.write_json(_schedule_view(record, self.lab.root_dir, upcoming=3), 201)

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        from lepton_lab.jobs.api import create_schedule

        lab = self.lab
        return _checked(
            create_schedule,
            lab.job_store,
            body,
            lab.root_dir,
            lab.kernel_names(),
            lab.job_executor,
        )


class _ScheduleBase(LeptonHandler):
    """Looks up a schedule (404 JSON when unknown) for the schedule routes."""

    def _call(self, fn: Callable[..., Any], schedule_id: str, **fields: Any) -> Any:
        from lepton_lab.store.jobs import UnknownSchedule

        try:
            return fn(schedule_id, **fields)
        except UnknownSchedule as exc:
            raise client_error(404, str(exc)) from None

    def _get(self, schedule_id: str) -> dict[str, Any]:
        return self._call(self.lab.job_store.get_schedule, schedule_id)


class ScheduleHandler(_ScheduleBase):
    """One schedule: show (with its next fire times), edit (PATCH; ``active: false`` pauses,
    ``true`` resumes), delete (its jobs stay)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, schedule_id: str) -> None:
        record = await self.offload(self._get, schedule_id)
        self.write_json(_schedule_view(record, self.lab.root_dir, upcoming=3))

    @tornado.web.authenticated
    @authorized
    async def patch(self, schedule_id: str) -> None:
        body = self.json_body()
        record = await self.offload(self._patch, schedule_id, body)
        self.write_json(_schedule_view(record, self.lab.root_dir, upcoming=3))

    @tornado.web.authenticated
    @authorized
    async def delete(self, schedule_id: str) -> None:
        await self.offload(self._call, self.lab.job_store.delete_schedule, schedule_id)
        self.set_status(204)
        self.finish()

    def _patch(self, schedule_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from lepton_lab.jobs.api import schedule_changes

        current = self._get(schedule_id)
        changes = _checked(
            schedule_changes, current, body, self.lab.kernel_names(), self.lab.job_executor
        )
        return self._call(self.lab.job_store.update_schedule, schedule_id, **changes)


class ScheduleRunHandler(_ScheduleBase):
    """Run a schedule's notebook now, outside its cron times; answers with the new job."""

    @tornado.web.authenticated
    @authorized
    async def post(self, schedule_id: str) -> None:
        record = await self.offload(self._run_now, schedule_id)
        self.write_json(_job_view(record, self.lab.root_dir), 201)

    def _run_now(self, schedule_id: str) -> dict[str, Any]:
        store = self.lab.job_store
        schedule = self._get(schedule_id)
        job_id = _checked(self.lab.job_service.submit_scheduled, schedule)
        store.update_schedule(schedule_id, last_job_id=job_id)
        return store.get_job(job_id)


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
    (f"{API}/jobs", JobsHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)", JobHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/stop", JobStopHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/logs", JobLogsHandler),
    (f"{API}/jobs/(?P<job_id>[^/]+)/output", JobOutputHandler),
    (f"{API}/schedules", SchedulesHandler),
    (f"{API}/schedules/(?P<schedule_id>[^/]+)", ScheduleHandler),
    (f"{API}/schedules/(?P<schedule_id>[^/]+)/run", ScheduleRunHandler),
    (f"{API}/openapi.json", OpenAPIHandler),
]
