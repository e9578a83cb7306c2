"""OpenAPI 3.1 document of the Lepton Lab REST API.

Written as data next to the handlers; ``tests/server/test_openapi.py`` fails when a route or an
HTTP method is added to :data:`lepton_lab.server.handlers.ROUTES` without being described here.
"""

from __future__ import annotations

from typing import Any

from lepton_lab import __version__

_ERROR = {"$ref": "#/components/responses/Error"}


def _json(schema_ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}


_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, dict[str, Any]] = {
    "/lepton-lab/api/cluster": {
        "get": {
            "operationId": "getCluster",
            "summary": "Status of the lab's Dask cluster: mode, addresses, workers, totals",
            "responses": {
                "200": {"description": "Cluster status", "content": _json("ClusterStatus")},
                "403": _ERROR,
            },
        },
        "patch": {
            "operationId": "scaleCluster",
            "summary": "Scale the lab-owned cluster to a number of workers; waits until reached",
            "requestBody": {"required": True, "content": _json("ScaleRequest")},
            "responses": {
                "200": {"description": "Status after scaling", "content": _json("ClusterStatus")},
                "400": _ERROR,
                "403": _ERROR,
                "409": _ERROR,
            },
        },
    },
    "/lepton-lab/api/kernels": {
        "get": {
            "operationId": "getKernels",
            "summary": "The CPU and GPU kernelspecs and whether a GPU is really present",
            "responses": {
                "200": {"description": "Kernels", "content": _json("Kernels")},
                "403": _ERROR,
            },
        }
    },
    "/lepton-lab/api/runs": {
        "get": {
            "operationId": "listRuns",
            "summary": "Runs, newest first",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {
                        "type": "string",
                        "enum": ["queued", "running", "completed", "failed", "stopped"],
                    },
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "responses": {
                "200": {"description": "Runs", "content": _json("RunList")},
                "400": _ERROR,
                "403": _ERROR,
            },
        }
    },
    "/lepton-lab/api/runs/{run_id}": {
        "get": {
            "operationId": "getRun",
            "summary": "One run with its usage per rank and its events",
            "parameters": [_RUN_ID],
            "responses": {
                "200": {"description": "Run", "content": _json("Run")},
                "403": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/lepton-lab/api/runs/{run_id}/metrics": {
        "get": {
            "operationId": "getRunMetrics",
            "summary": "Reported values after a cursor; poll again with the returned `next`",
            "parameters": [
                _RUN_ID,
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100000},
                },
            ],
            "responses": {
                "200": {"description": "Metrics page", "content": _json("MetricsPage")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/lepton-lab/api/runs/{run_id}/stop": {
        "post": {
            "operationId": "stopRun",
            "summary": "Ask the run's ranks to stop at their next report",
            "parameters": [_RUN_ID],
            "responses": {
                "202": {"description": "Stop requested", "content": {"application/json": {}}},
                "403": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
            },
        }
    },
    "/lepton-lab/api/openapi.json": {
        "get": {
            "operationId": "getOpenAPI",
            "summary": "This document",
            "responses": {
                "200": {"description": "OpenAPI document", "content": {"application/json": {}}},
                "403": _ERROR,
            },
        }
    },
}

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SCHEDULE_ID = {
    "name": "schedule_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_JOB_STATUSES = ["queued", "running", "completed", "failed", "stopped", "timed_out"]
_NO_CONTENT = {"description": "Deleted"}

JOB_PATHS: dict[str, dict[str, Any]] = {
    "/lepton-lab/api/jobs": {
        "get": {
            "operationId": "listJobs",
            "summary": "Notebook jobs, newest first",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": _JOB_STATUSES},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {
                    "name": "schedule_id",
                    "in": "query",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                },
            ],
            "responses": {
                "200": {"description": "Jobs", "content": _json("JobList")},
                "400": _ERROR,
                "403": _ERROR,
            },
        },
        "post": {
            "operationId": "submitJob",
            "summary": "Queue a notebook for execution with papermill (validated against the "
            "notebook's parameters cell and the installed kernels; nothing is stored on error)",
            "requestBody": {"required": True, "content": _json("JobRequest")},
            "responses": {
                "201": {"description": "The queued job", "content": _json("Job")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        },
    },
    "/lepton-lab/api/jobs/{job_id}": {
        "get": {
            "operationId": "getJob",
            "summary": "One job with its events, metrics, per-cell progress and elapsed time",
            "parameters": [_JOB_ID],
            "responses": {
                "200": {"description": "Job", "content": _json("Job")},
                "403": _ERROR,
                "404": _ERROR,
            },
        },
        "delete": {
            "operationId": "deleteJob",
            "summary": "Remove an ended job and its output folder",
            "parameters": [_JOB_ID],
            "responses": {"204": _NO_CONTENT, "403": _ERROR, "404": _ERROR, "409": _ERROR},
        },
    },
    "/lepton-lab/api/jobs/{job_id}/stop": {
        "post": {
            "operationId": "stopJob",
            "summary": "Stop a job: a queued one at once, a running one (with its kernel) by "
            "the process that runs it",
            "parameters": [_JOB_ID],
            "responses": {
                "202": {"description": "Stop accepted", "content": _json("StopAccepted")},
                "403": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
            },
        }
    },
    "/lepton-lab/api/jobs/{job_id}/logs": {
        "get": {
            "operationId": "getJobLogs",
            "summary": "The job's log from a byte offset; poll again from `next` until `complete`",
            "parameters": [
                _JOB_ID,
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 4 * 1024 * 1024},
                },
            ],
            "responses": {
                "200": {"description": "Log page", "content": _json("JobLogs")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/lepton-lab/api/jobs/{job_id}/output": {
        "get": {
            "operationId": "getJobOutput",
            "summary": "The executed notebook (JSON) or its HTML rendering",
            "parameters": [
                _JOB_ID,
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["ipynb", "html"], "default": "ipynb"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The output notebook (nbformat 4 JSON) or HTML",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
            },
        }
    },
    "/lepton-lab/api/schedules": {
        "get": {
            "operationId": "listSchedules",
            "summary": "Schedules, oldest first",
            "responses": {
                "200": {"description": "Schedules", "content": _json("ScheduleList")},
                "403": _ERROR,
            },
        },
        "post": {
            "operationId": "createSchedule",
            "summary": "Repeat a notebook on a cron schedule (validated like a job, plus the "
            "cron expression and timezone)",
            "requestBody": {"required": True, "content": _json("ScheduleRequest")},
            "responses": {
                "201": {"description": "The schedule", "content": _json("Schedule")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        },
    },
    "/lepton-lab/api/schedules/{schedule_id}": {
        "get": {
            "operationId": "getSchedule",
            "summary": "One schedule with its next fire times",
            "parameters": [_SCHEDULE_ID],
            "responses": {
                "200": {"description": "Schedule", "content": _json("Schedule")},
                "403": _ERROR,
                "404": _ERROR,
            },
        },
        "patch": {
            "operationId": "updateSchedule",
            "summary": "Edit a schedule; `active: false` pauses it, `active: true` resumes it",
            "parameters": [_SCHEDULE_ID],
            "requestBody": {"required": True, "content": _json("SchedulePatch")},
            "responses": {
                "200": {"description": "The schedule after the edit", "content": _json("Schedule")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        },
        "delete": {
            "operationId": "deleteSchedule",
            "summary": "Delete a schedule (its jobs stay)",
            "parameters": [_SCHEDULE_ID],
            "responses": {"204": _NO_CONTENT, "403": _ERROR, "404": _ERROR},
        },
    },
    "/lepton-lab/api/schedules/{schedule_id}/run": {
        "post": {
            "operationId": "runSchedule",
            "summary": "Run the schedule's notebook now, outside its cron times",
            "parameters": [_SCHEDULE_ID],
            "responses": {
                "201": {"description": "The job it queued", "content": _json("Job")},
                "400": _ERROR,
                "403": _ERROR,
                "404": _ERROR,
            },
        }
    },
}
PATHS.update(JOB_PATHS)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}, "reason": {"type": ["string", "null"]}},
    },
    "ScaleRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["workers"],
        "properties": {"workers": {"type": "integer", "minimum": 0}},
    },
    "Gpu": {
        "type": ["object", "null"],
        "properties": {
            "name": {"type": ["string", "null"]},
            "utilization": {"type": ["number", "null"]},
            "memory_used": {"type": ["integer", "null"]},
            "memory_total": {"type": ["integer", "null"]},
        },
    },
    "Worker": {
        "type": "object",
        "required": ["name", "address", "nthreads", "memory_limit", "memory_used", "status"],
        "properties": {
            "name": {"type": "string"},
            "address": {"type": "string"},
            "nthreads": {"type": "integer"},
            "memory_limit": {"type": "integer"},
            "memory_used": {"type": "integer"},
            "cpu": {"type": "number"},
            "status": {"type": "string"},
            "gpu": {"$ref": "#/components/schemas/Gpu"},
        },
    },
    "ClusterEvent": {
        "type": "object",
        "properties": {
            "time": {"type": "number"},
            "action": {"type": "string", "enum": ["add-worker", "remove-worker"]},
            "worker": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
        },
    },
    "ClusterStatus": {
        "type": "object",
        "required": ["mode", "status", "workers", "totals"],
        "properties": {
            "mode": {"type": ["string", "null"], "enum": ["local", "cuda", "external", None]},
            "requested_mode": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "status": {
                "type": "string",
                "enum": ["stopped", "starting", "running", "error", "closed", "unreachable"],
            },
            "error": {"type": ["string", "null"]},
            "owned": {"type": "boolean"},
            "scheduler_address": {"type": ["string", "null"]},
            "dashboard_link": {"type": ["string", "null"]},
            "startup_seconds": {"type": ["number", "null"]},
            "max_workers": {"type": "integer"},
            "workers": {"type": "array", "items": {"$ref": "#/components/schemas/Worker"}},
            "totals": {
                "type": "object",
                "properties": {
                    k: {"type": "integer"}
                    for k in ("workers", "threads", "memory_limit", "memory_used", "gpus")
                },
            },
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/ClusterEvent"}},
        },
    },
    "Kernel": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "display_name": {"type": "string"},
            "device": {"type": "string", "enum": ["cpu", "gpu"]},
            "installed": {"type": "boolean"},
            "runs_on": {"type": "string", "enum": ["cpu", "gpu"]},
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "status", "framework", "params", "world_size"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "framework": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "completed", "failed", "stopped"],
            },
            "params": {"type": "object"},
            "world_size": {"type": "integer"},
            "attempts": {"type": "integer"},
            "created_at": {"type": "number"},
            "started_at": {"type": ["number", "null"]},
            "ended_at": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
            "error_rank": {"type": ["integer", "null"]},
            "usage": {"type": "array", "items": {"type": "object"}},
            "events": {"type": "array", "items": {"type": "object"}},
        },
    },
    "RunList": {
        "type": "object",
        "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}},
    },
    "MetricsPage": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "since": {"type": "integer"},
            "next": {"type": "integer"},
            "metrics": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "rank": {"type": "integer"},
                        "step": {"type": "integer"},
                        "name": {"type": "string"},
                        "value": {"type": "number"},
                        "time": {"type": "number"},
                    },
                },
            },
        },
    },
    "Kernels": {
        "type": "object",
        "properties": {
            "gpu_available": {"type": "boolean"},
            "gpu_count": {"type": "integer"},
            "gpu_names": {"type": "array", "items": {"type": "string"}},
            "gpu_reason": {"type": "string"},
            "kernels": {"type": "array", "items": {"$ref": "#/components/schemas/Kernel"}},
            "other_kernels": {"type": "array", "items": {"type": "object"}},
        },
    },
}


_STRING = {"type": "string"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_JOB_OPTIONS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 200, "description": "Default: the notebook's name"},
    "parameters": {
        "type": "object",
        "description": "Values for the notebook's `parameters` cell (any JSON type; checked "
        "against the declared defaults' types)",
        "additionalProperties": True,
    },
    "kernel": {
        "type": "string",
        "minLength": 1,
        "description": "Kernelspec name; default: the notebook's",
    },
    "cwd": {
        "type": ["string", "null"],
        "description": "Working directory (relative to the server root); default: the "
        "notebook's folder",
    },
    "timeout": {
        "type": ["number", "null"],
        "minimum": 0.1,
        "maximum": 604800,
        "description": "Seconds per attempt; null: none",
    },
    "retries": {"type": "integer", "minimum": 0, "maximum": 100},
    "tags": {
        "type": "array",
        "maxItems": 50,
        "items": {"type": "string", "maxLength": 100},
    },
    "output_formats": {
        "type": "array",
        "maxItems": 2,
        "items": {"type": "string", "enum": ["ipynb", "html"]},
    },
    "executor": {"type": "string", "enum": ["local", "dask"]},
    "allow_unknown": {
        "type": "boolean",
        "description": "Pass parameters the notebook does not declare",
    },
}
_PATH = {
    "type": "string",
    "minLength": 1,
    "description": "The notebook, relative to the server's root directory",
}
_TIMING: dict[str, Any] = {
    "cron": {
        "type": "string",
        "minLength": 1,
        "description": "Cron expression (5 fields, or 6 with seconds last)",
    },
    "timezone": {"type": "string", "minLength": 1, "description": "IANA name; default UTC"},
    "active": {"type": "boolean"},
    "overlap": {
        "type": "string",
        "enum": ["skip", "queue"],
        "description": "While the previous job still runs: skip this time, or queue anyway",
    },
    "catchup": {
        "type": "string",
        "enum": ["once", "none"],
        "description": "After downtime: fire once for the missed times, or not at all",
    },
}
_EDITABLE = {k: v for k, v in {**_JOB_OPTIONS, **_TIMING}.items() if k != "cwd"}

JOB_SCHEMAS: dict[str, Any] = {
    "JobRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {
            "path": _PATH,
            **_JOB_OPTIONS,
            "retry_backoff": {
                "type": "number",
                "minimum": 0,
                "maximum": 3600,
                "description": "Seconds before the first retry; doubles each time",
            },
        },
    },
    "ScheduleRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["path", "cron"],
        "properties": {"path": _PATH, **_JOB_OPTIONS, **_TIMING},
    },
    "SchedulePatch": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": _EDITABLE,
    },
    "JobEvent": {
        "type": "object",
        "properties": {
            "time": {"type": "number"},
            "status": _STRING,
            "attempt": {"type": "integer"},
            "message": _STRING,
        },
    },
    "JobMetric": {
        "type": "object",
        "properties": {
            "name": _STRING,
            "value": {"type": "number"},
            "time": {"type": "number"},
            "attempt": {"type": "integer"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "notebook", "kernel", "parameters"],
        "properties": {
            "id": _STRING,
            "name": _STRING,
            "path": {"type": ["string", "null"], "description": "Relative to the server root"},
            "notebook": _STRING,
            "cwd": _STRING,
            "output_dir": _STRING,
            "parameters": {"type": "object"},
            "kernel": _STRING,
            "executor": {"type": "string", "enum": ["local", "dask"]},
            "timeout": _NUMBER_OR_NULL,
            "retries": {"type": "integer"},
            "retry_backoff": {"type": "number"},
            "tags": {"type": "array", "items": _STRING},
            "output_formats": {"type": "array", "items": _STRING},
            "outputs": {
                "type": "array",
                "items": {"type": "string", "enum": ["ipynb", "html"]},
                "description": "The outputs written so far (GET .../output?format=)",
            },
            "warnings": {"type": "array", "items": _STRING},
            "schedule_id": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": _JOB_STATUSES},
            "attempt": {"type": "integer"},
            "stop_requested": {"type": "boolean"},
            "progress": {
                "type": "object",
                "description": "cells, cell (1-based, running), completed, source, "
                "started_at, cell_started_at, cell_elapsed. Cells are those of the executed "
                "notebook, papermill's injected-parameters cell included",
            },
            "created_at": {"type": "number"},
            "started_at": _NUMBER_OR_NULL,
            "ended_at": _NUMBER_OR_NULL,
            "elapsed": {
                "type": ["number", "null"],
                "description": "Seconds of the current (or last) attempt",
            },
            "error": {"type": ["string", "null"]},
            "error_cell": {"type": ["integer", "null"]},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/JobEvent"}},
            "metrics": {"type": "array", "items": {"$ref": "#/components/schemas/JobMetric"}},
        },
    },
    "JobList": {
        "type": "object",
        "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}},
    },
    "JobLogs": {
        "type": "object",
        "properties": {
            "id": _STRING,
            "status": {"type": "string", "enum": _JOB_STATUSES},
            "offset": {"type": "integer"},
            "next": {"type": "integer", "description": "The offset to ask for next"},
            "size": {"type": "integer"},
            "text": _STRING,
            "complete": {"type": "boolean", "description": "The job has ended and all is read"},
        },
    },
    "StopAccepted": {
        "type": "object",
        "properties": {
            "id": _STRING,
            "status": {"type": "string", "enum": ["stopped", "running"]},
            "stop_requested": {"type": "boolean"},
        },
    },
    "Schedule": {
        "type": "object",
        "required": ["id", "cron", "timezone", "active"],
        "properties": {
            "id": _STRING,
            "name": _STRING,
            "path": {"type": ["string", "null"]},
            "notebook": _STRING,
            "cwd": _STRING,
            **_TIMING,
            "parameters": {"type": "object"},
            "kernel": _STRING,
            "executor": {"type": "string", "enum": ["local", "dask"]},
            "timeout": _NUMBER_OR_NULL,
            "retries": {"type": "integer"},
            "tags": {"type": "array", "items": _STRING},
            "output_formats": {"type": "array", "items": _STRING},
            "next_fire_at": _NUMBER_OR_NULL,
            "last_fired_at": _NUMBER_OR_NULL,
            "last_job_id": {"type": ["string", "null"]},
            "fired": {"type": "integer"},
            "skipped": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "number"},
            "upcoming": {"type": "array", "items": {"type": "number"}},
        },
    },
    "ScheduleList": {
        "type": "object",
        "properties": {
            "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}}
        },
    },
}
SCHEMAS.update(JOB_SCHEMAS)


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    """The document, with the server's base URL so clients can resolve the paths."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lepton Lab API",
            "version": __version__,
            "description": "Cluster, kernels, runs, jobs, schedules and models of a Lepton Lab "
            "server. Authenticate like any Jupyter API (token or cookie + XSRF).",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "What was wrong with the request",
                    "content": _json("Error"),
                }
            },
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token <jupyter server token>'",
                }
            },
        },
    }
