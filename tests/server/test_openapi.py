"""The OpenAPI document is served and lists exactly the routes and methods the server has."""

from __future__ import annotations

import json
import re

from lepton_lab.server.handlers import ROUTES

METHODS = ("get", "post", "patch", "put", "delete")


def handler_methods():
    for pattern, handler in ROUTES:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        yield path, {m for m in METHODS if m in handler.__dict__}


async def test_openapi_document_lists_every_route_and_method(jp_fetch):
    response = await jp_fetch("lepton-lab", "api", "openapi.json")
    document = json.loads(response.body)
    assert document["openapi"].startswith("3.")
    served = {path: set(ops) for path, ops in document["paths"].items()}
    implemented = dict(handler_methods())
    assert served == implemented
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            assert op["operationId"]
