"""The OpenAPI 3.1 document of the REST API, written from the routes' declarations.

Paths come from :data:`lepton_lab.server.handlers.ROUTES` and each method's
:class:`~lepton_lab.server.handlers.Operation`; ``components.schemas`` are the contract's
pydantic models. Nothing here repeats a shape, so the document cannot drift from the code.
``python -m lepton_lab.server.openapi`` prints it (the labextension generates its TypeScript
types from that output).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from lepton_lab._version import __version__
from lepton_lab.contract.base import View
from lepton_lab.server.handlers import ROUTES, Operation

METHODS = ("get", "post", "patch", "put", "delete")
REF = "#/components/schemas/{model}"
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}
_ERROR_TEXT = {
    400: "The request is not valid; `message` names the field and the problem",
    403: "Not authenticated, or not authorized for the lepton-lab resource",
    404: "Nothing with that id (or no such notebook)",
    409: "The resource's state refuses the request",
    503: "A service the lab needs (its database, its cluster's scheduler) cannot be reached "
    "now; `message` names it. Try again later (`Retry-After`)",
}


class Error(View):
    """Every 4xx answer: what was wrong, in words."""

    message: str
    reason: str | None = None


def _path(pattern: str) -> tuple[str, list[str]]:
    names = re.findall(r"\(\?P<(\w+)>[^)]*\)", pattern)
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern), names


def _operations() -> list[tuple[str, list[str], str, Operation]]:
    found = []
    for pattern, handler in ROUTES:
        path, names = _path(pattern)
        for method in METHODS:
            fn = handler.__dict__.get(method)
            if fn is not None:
                found.append((path, names, method, fn.operation))
    return found


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the ``null`` branch of an optional field."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        merged.update(options[0])
        merged.pop("default", None) if merged.get("default") is None else None
        return merged
    return schema


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            **({"description": prop["description"]} if "description" in prop else {}),
            "schema": _not_null({k: v for k, v in prop.items() if k not in ("title",)}),
        }
        for name, prop in schema["properties"].items()
    ]


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(names: list[str], op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    parameters = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    answer: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
    if op.response is not None:
        answer["content"] = {"application/json": {"schema": _ref(op.response)}}
    elif op.content:
        answer["content"] = {media: {"schema": schema} for media, schema in op.content}
    responses: dict[str, Any] = {str(op.status): answer}
    errors = {403, *op.errors}
    if op.operation_id != "getOpenAPI":  # every other route needs the store or the cluster
        errors.add(503)
    if op.body is not None or op.query is not None:
        errors.add(400)
    if names:
        errors.add(404)
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    out["responses"] = responses
    return out


def component_schemas() -> dict[str, Any]:
    """Every body model the routes use (requests in validation mode, answers as sent)."""
    requests: set[type[BaseModel]] = set()
    answers: set[type[BaseModel]] = {Error}
    for *_, op in _operations():
        if op.body is not None:
            requests.add(op.body)
        if op.response is not None:
            answers.add(op.response)
    models = [(m, "validation") for m in sorted(requests, key=lambda m: m.__name__)]
    models += [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)]
    _, schemas = models_json_schema(models, ref_template=REF)
    return dict(sorted(schemas.get("$defs", {}).items()))


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    """The document, with the server's base URL so clients can resolve the paths."""
    paths: dict[str, dict[str, Any]] = {}
    for path, names, method, op in _operations():
        paths.setdefault(path, {})[method] = _operation(names, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lepton Lab API",
            "version": __version__,
            "description": "Cluster, kernels, runs, jobs and schedules of a Lepton Lab server. "
            "Authenticate like any Jupyter API (token or cookie + XSRF).",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "responses": {
                f"E{status}": {
                    "description": text,
                    "content": {"application/json": {"schema": _ref(Error)}},
                }
                for status, text in _ERROR_TEXT.items()
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


if __name__ == "__main__":
    print(json.dumps(openapi_document(), indent=2, sort_keys=False))
