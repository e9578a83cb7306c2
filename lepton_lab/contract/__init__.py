"""The REST contract, declared once: pydantic models of every request and response body.

Handlers, the CLI and ``ll.jobs`` validate requests with these models; the OpenAPI document's
``components.schemas`` is generated from them and the TypeScript types are generated from that
document, so there is no second copy to drift. Checks that need the file system or the
notebook (path confinement, parameters against the ``parameters`` cell, installed kernels)
stay in :mod:`lepton_lab.jobs.spec`.
"""

from lepton_lab.contract.base import (
    Conflict,
    NotFound,
    Request,
    RequestError,
    View,
    json_type,
    parse,
    parse_query,
)

__all__ = [
    "Conflict",
    "NotFound",
    "Request",
    "RequestError",
    "View",
    "json_type",
    "parse",
    "parse_query",
]
