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
