"""A web page the user visits cannot drive Lepton Lab: every mutating route of a real
``jupyter lab`` refuses a request that carries the user's login cookie but no XSRF token (what
a cross-site form or fetch would send), and one that carries no credentials at all. The same
request with the token gets past the check, so the refusal is the XSRF check's."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.request

import pytest

from lepton_lab.server.handlers import ROUTES
from tests.server.test_auth import concrete
from tests.support.labserver import LabServer

MUTATING = ("post", "patch", "put", "delete")


def mutating_routes() -> list[tuple[str, str]]:
    found = []
    for pattern, handler in ROUTES:
        for method in MUTATING:
            if method in handler.__dict__:
                found.append((pattern, method.upper()))
    return found


ROUTES_TO_CHECK = mutating_routes()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("xsrf") / "root"
    server = LabServer(root, {"n_workers": 0, "run_jobs": False}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    """A cookie jar that logged in the way a browser does (token once, then cookies)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{lab.url}lab?token={lab.token}", timeout=60) as page:
        assert page.status == 200
    cookies = {c.name: c.value for c in jar}
    assert "_xsrf" in cookies and any(n.startswith("username-") for n in cookies), cookies
    return opener, cookies["_xsrf"]


def send(opener, url: str, method: str, headers: dict[str, str]) -> tuple[int, str]:
    body = b"{}" if method in ("POST", "PATCH", "PUT") else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(req, timeout=60) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def test_every_mutating_route_is_checked():
    methods = {method for _, method in ROUTES_TO_CHECK}
    assert {"POST", "PATCH", "DELETE"} <= methods
    assert len(ROUTES_TO_CHECK) >= 10


@pytest.mark.parametrize("pattern,method", ROUTES_TO_CHECK)
def test_cookie_without_xsrf_token_is_refused(lab, browser, pattern, method):
    opener, xsrf = browser
    url = lab.url + concrete(pattern)
    headers = {"Content-Type": "application/json"}

    code, text = send(opener, url, method, headers)
    assert code == 403, (pattern, method, code, text)
    assert re.search(r"xsrf", text, re.IGNORECASE), text

    bare = urllib.request.build_opener()  # no cookie, no token
    code, _ = send(bare, url, method, headers)
    assert code == 403, (pattern, method, code)

    # with the token the same request passes the check (and meets the route's own answer)
    code, text = send(opener, url, method, {**headers, "X-XSRFToken": xsrf})
    assert code != 403, (pattern, method, code, text)
