"""Every Lepton Lab route refuses requests without credentials, and honours the authorizer."""

from __future__ import annotations

import re

import pytest
from jupyter_server.auth.authorizer import Authorizer

from lepton_lab.server.handlers import ROUTES

METHODS = ("get", "post", "patch", "put", "delete")


def route_methods():
    for pattern, handler in ROUTES:
        for method in METHODS:
            if getattr(handler, method) is not getattr(handler.__mro__[-2], method, None):
                if method in handler.__dict__:
                    yield pattern, method.upper()


ALL = list(route_methods())


def concrete(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>[^)]*\)", "abc123", pattern).lstrip("/")


def test_every_route_is_listed():
    assert ("/lepton-lab/api/cluster", "GET") in ALL
    assert ("/lepton-lab/api/cluster", "PATCH") in ALL
    assert len(ALL) >= 4


@pytest.mark.parametrize("pattern,method", ALL)
async def test_unauthenticated_requests_are_refused(
    jp_serverapp, http_server_client, jp_base_url, pattern, method
):
    body = "{}" if method in ("POST", "PATCH", "PUT") else None
    response = await http_server_client.fetch(
        f"{jp_base_url}{concrete(pattern)}",
        method=method,
        body=body,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    assert response.code == 403, (pattern, method, response.code)


class DenyLeptonLab(Authorizer):
    """Lets a user use Jupyter but not Lepton Lab, to prove the routes ask the authorizer."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "lepton-lab"


@pytest.fixture
def jp_server_config(lab_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"lepton_lab": True},
            "authorizer_class": DenyLeptonLab,
        },
        "LeptonLab": lab_config,
    }


@pytest.mark.parametrize("pattern,method", ALL)
async def test_authenticated_but_unauthorized_requests_are_refused(jp_fetch, pattern, method):
    from tornado.httpclient import HTTPClientError

    body = "{}" if method in ("POST", "PATCH", "PUT") else None
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*concrete(pattern).split("/"), method=method, body=body)
    assert info.value.code == 403
