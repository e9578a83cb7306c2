"""Every Lepton Lab route refuses requests without credentials, and honours the authorizer."""

from __future__ import annotations

import re

import pytest
from jupyter_server.auth.authorizer import Authorizer

from lepton_lab.server.handlers import ROUTES
from tests.support.settings import config_sections

METHODS = ("get", "post", "patch", "put", "delete")


def route_methods():
    for pattern, handler in ROUTES:
        for method in METHODS:
            if getattr(handler, method) is not getattr(handler.__mro__[-2], method, None):
                if method in handler.__dict__:
                    yield pattern, method.upper()


ALL = list(route_methods())

# A scheduler started and closed within a second or two can trip distributed's GC timer.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*GCDiagnosis:pytest.PytestUnraisableExceptionWarning"
)


def concrete(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>[^)]*\)", "abc123", pattern).lstrip("/")


def test_every_route_is_listed():
    """The parametrized checks below cover every route and method: jobs, schedules and the
    model registry too."""
    api = "/lepton-lab/api"
    expected = {
        (f"{api}/cluster", "GET"),
        (f"{api}/cluster", "PATCH"),
        (f"{api}/jobs", "GET"),
        (f"{api}/jobs", "POST"),
        (f"{api}/jobs/(?P<job_id>[^/]+)", "GET"),
        (f"{api}/jobs/(?P<job_id>[^/]+)", "DELETE"),
        (f"{api}/jobs/(?P<job_id>[^/]+)/stop", "POST"),
        (f"{api}/jobs/(?P<job_id>[^/]+)/logs", "GET"),
        (f"{api}/jobs/(?P<job_id>[^/]+)/output", "GET"),
        (f"{api}/schedules", "GET"),
        (f"{api}/schedules", "POST"),
        (f"{api}/schedules/(?P<schedule_id>[^/]+)", "GET"),
        (f"{api}/schedules/(?P<schedule_id>[^/]+)", "PATCH"),
        (f"{api}/schedules/(?P<schedule_id>[^/]+)", "DELETE"),
        (f"{api}/schedules/(?P<schedule_id>[^/]+)/run", "POST"),
        (f"{api}/models", "GET"),
        (f"{api}/models/(?P<name>[^/]+)", "GET"),
        (f"{api}/models/(?P<name>[^/]+)/compare", "GET"),
        (f"{api}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", "GET"),
        (f"{api}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", "PATCH"),
        (f"{api}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", "DELETE"),
        (
            f"{api}/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/artifacts/(?P<format>[^/]+)",
            "GET",
        ),
    }
    assert expected <= set(ALL), expected - set(ALL)
    assert len(ALL) == len(set(ALL))


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
def lab_config(lab_config):
    """Refusals need no workers and no job queue: a scheduler alone starts and stops fast."""
    return {**lab_config, "n_workers": 0, "run_jobs": False}


@pytest.fixture
def jp_server_config(lab_config):
    return {
        "ServerApp": {
            "jpserver_extensions": {"lepton_lab": True},
            "authorizer_class": DenyLeptonLab,
        },
        **config_sections(lab_config),
    }


@pytest.mark.parametrize("pattern,method", ALL)
async def test_authenticated_but_unauthorized_requests_are_refused(jp_fetch, pattern, method):
    from tornado.httpclient import HTTPClientError

    body = "{}" if method in ("POST", "PATCH", "PUT") else None
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*concrete(pattern).split("/"), method=method, body=body)
    assert info.value.code == 403
