"""The Dask dashboard through the Jupyter server's URL (issue #13): a real ``jupyter lab`` under
a JupyterHub-style base URL, its real LocalCluster, and jupyter-server-proxy in front of the
dashboard. The link the lab hands out (status API, kernels) must open the dashboard - page,
scripts, data and the Bokeh websocket - with Jupyter's token, and nothing of it without one.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from urllib.parse import quote, urljoin, urlsplit

import dask.config
import pytest
from distributed.utils import format_dashboard_link

from lepton_lab.cluster import dashboard
from lepton_lab.cluster.dashboard import proxied_dashboard_link
from tests.support.labserver import LabServer, execute

pytestmark = pytest.mark.timeout(180)

BASE = "/user/alice/"  # what JupyterHub gives a user's server; Binder's is alike
LEPTON = {
    "cluster_mode": "local",
    "n_workers": 1,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",  # others' labs on this machine may hold 8787
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(tmp_path_factory.mktemp("dashboard") / "root", lepton=LEPTON, base_url=BASE)
    server.start()
    try:
        server.wait_cluster(lambda s: s["status"] == "running" and len(s["workers"]) == 1)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def link(lab: LabServer) -> str:
    """The dashboard link the lab's status API gives (a path on the Jupyter server)."""
    code, status = lab.request("GET", "lepton-lab/api/cluster")
    assert code == 200, status
    return status["dashboard_link"]


def fetch(
    lab: LabServer, path: str, token: str | None = "lab", headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request to the Jupyter server with no redirect followed, so a redirect to the login
    page shows as what it is. ``token="lab"`` sends the lab's token in the header."""
    conn = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=60)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"token {lab.token if token == 'lab' else token}"
    try:
        conn.request("GET", path, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def dashboard_port(lab: LabServer) -> int:
    """The port the scheduler's dashboard really listens on, asked of the scheduler itself."""
    with lab.cluster_client() as client:
        return client.scheduler_info()["services"]["dashboard"]


def assert_refused(code: int, headers: dict[str, str], body: bytes) -> None:
    """Jupyter turned the request away: 403, or a redirect to its login page."""
    assert code in (302, 403), (code, headers, body[:300])
    if code == 302:
        assert urlsplit(headers["location"]).path == f"{BASE}login", headers
    assert b"bokeh" not in body.lower()


# --------------------------------------------------------------------------------------------
# the link


def test_status_link_is_the_proxied_dashboard_under_the_base_url(lab: LabServer, link: str):
    """The sidebar and widgets show this link: a path under the base URL, to the real port."""
    assert link == f"{BASE}proxy/{dashboard_port(lab)}/status"


def test_kernel_started_by_the_server_gets_the_same_link(lab: LabServer, link: str):
    """Kernels format ``client.dashboard_link`` themselves, from the environment they got."""
    client = lab.start_kernel("lepton-cpu")
    try:
        out = execute(client, "import lepton_lab as ll\nprint('LINK', ll.attach().dashboard_link)")
    finally:
        client.stop_channels()
        lab.request("DELETE", f"api/kernels/{client.kernel_id}")
    assert f"LINK {link}\n" in out, out


# --------------------------------------------------------------------------------------------
# with the token


def test_dashboard_page_opens_through_jupyter_with_the_token(lab: LabServer, link: str):
    code, headers, body = fetch(lab, link)
    assert code == 200, (code, headers, body[:300])
    page = body.decode()
    assert "<title>Dask Diagnostic UI</title>" in page
    assert "Bokeh.embed.embed_items" in page  # the live plots, not an error page


def test_the_pages_relative_resources_resolve_under_the_proxy(lab: LabServer, link: str):
    """BokehJS, the dashboard's CSS and its plot list are fetched relative to the page's URL;
    each must come back through the proxy, not 404 at the Jupyter server's root."""
    _, _, body = fetch(lab, link)
    scripts = re.findall(r'src="(static/js/bokeh\.min\.js[^"]*)"', body.decode())
    assert scripts, body[:2000]
    for resource, kind in [
        (scripts[0], "javascript"),
        ("statics/css/status.css", "css"),
        ("individual-plots.json", "json"),
    ]:
        url = urljoin(link, resource)
        assert url.startswith(f"{BASE}proxy/"), url
        code, headers, data = fetch(lab, url)
        assert code == 200, (url, code, data[:300])
        assert kind in headers["content-type"], (url, headers)
        assert data
    code, _, plots = fetch(lab, urljoin(link, "individual-plots.json"))
    assert b"individual-task-stream" in plots


def test_token_in_the_query_string_opens_it_too(lab: LabServer, link: str):
    """A link pasted with ``?token=`` (as Jupyter prints its own URL) works like the header."""
    code, _, body = fetch(lab, f"{link}?token={quote(lab.token)}", token=None)
    assert code == 200, (code, body[:300])
    assert b"Bokeh.embed.embed_items" in body


def test_dashboard_root_redirects_inside_the_proxy(lab: LabServer, link: str):
    """Dask answers ``/`` with a redirect to its absolute ``/status``; the proxy must rewrite
    it under the base URL, or the browser lands on the Jupyter server's root."""
    root = link.rsplit("/", 1)[0] + "/"
    code, headers, _ = fetch(lab, root)
    assert code in (301, 302), (code, headers)
    assert urlsplit(headers["location"]).path == link


def test_bokeh_websocket_connects_through_the_proxy(lab: LabServer, link: str):
    """The plots update over Bokeh's websocket (``status/ws``): the proxy must carry it."""
    assert bokeh_websocket(lab, link, authorized=True) == "ACK"


# --------------------------------------------------------------------------------------------
# without it


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no-token", "wrong-token"])
def test_dashboard_is_refused_without_the_token(lab: LabServer, link: str, token: str | None):
    for url in (link, urljoin(link, "individual-plots.json"), urljoin(link, "static/js/")):
        assert_refused(*fetch(lab, url, token=token))


def test_refused_even_for_a_browser_that_asks_for_html(lab: LabServer, link: str):
    code, headers, body = fetch(lab, link, token=None, headers={"Accept": "text/html"})
    assert_refused(code, headers, body)


def test_bokeh_websocket_is_refused_without_the_token(lab: LabServer, link: str):
    assert bokeh_websocket(lab, link, authorized=False) in (302, 403)


def test_bokeh_websocket_is_refused_to_another_sites_page(lab: LabServer, link: str):
    """A page from elsewhere, open in a browser signed in to Jupyter (its cookie), must not
    read the dashboard's stream: Jupyter's origin check covers the proxied websocket too.
    (A token in the header is exempt: a foreign page cannot know it.)"""
    cookie = login_cookie(lab)
    own = f"http://127.0.0.1:{lab.port}"
    assert bokeh_websocket(lab, link, cookie=cookie, origin=own) == "ACK"
    assert bokeh_websocket(lab, link, cookie=cookie, origin="http://evil.example") == 403


def login_cookie(lab: LabServer) -> str:
    """The Cookie header of a browser that opened JupyterLab with ``?token=`` once."""
    conn = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=60)
    try:
        conn.request("GET", f"{BASE}lab?token={quote(lab.token)}")
        resp = conn.getresponse()
        resp.read()
        cookies = [v.split(";", 1)[0] for k, v in resp.getheaders() if k.lower() == "set-cookie"]
    finally:
        conn.close()
    assert any(c.startswith("username-") for c in cookies), cookies
    return "; ".join(cookies)


def test_proxy_does_not_relay_to_other_hosts(lab: LabServer):
    """Jupyter's token must not turn the server into an open relay: jupyter-server-proxy
    reaches 127.0.0.1/localhost only, unless the admin allows more hosts."""
    code, _, body = fetch(lab, f"{BASE}proxy/example.com:80/")
    assert code == 403, (code, body[:300])
    assert b"not allowed" in body


def bokeh_websocket(
    lab: LabServer,
    link: str,
    authorized: bool = False,
    cookie: str | None = None,
    origin: str | None = None,
) -> str | int:
    """Open the page's Bokeh websocket through the proxy as BokehJS does (its session token
    as a subprotocol). Returns the type of Bokeh's first message ("ACK"), or the HTTP status
    that refused the upgrade."""
    import asyncio
    import json

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    _, _, body = fetch(lab, link)  # a fresh Bokeh session and its token
    match = re.search(r'"token":"([^"]+)"', body.decode())
    assert match, body[:2000]
    headers = {"Authorization": f"token {lab.token}"} if authorized else {}
    if cookie is not None:
        headers["Cookie"] = cookie
    if origin is not None:
        headers["Origin"] = origin
    request = HTTPRequest(
        f"ws://127.0.0.1:{lab.port}{link}/ws", headers=headers, follow_redirects=False
    )

    async def first_message() -> str | int:
        try:
            conn = await asyncio.wait_for(
                websocket_connect(request, subprotocols=["bokeh", match.group(1)]), 60
            )
        except HTTPClientError as err:
            return err.code
        try:
            header = await asyncio.wait_for(conn.read_message(), 60)
            assert isinstance(header, str), header
            return json.loads(header)["msgtype"]
        finally:
            conn.close()

    return asyncio.run(first_message())


# --------------------------------------------------------------------------------------------
# the template, formatted by Dask itself


def format_with_dask(template: str, host: str = "127.0.0.1", port: int = 8787) -> str:
    with dask.config.set({"distributed.dashboard.link": template}):
        return format_dashboard_link(host, port)


def test_template_keeps_braces_in_the_base_url_literal():
    template = proxied_dashboard_link("/user/a{b}c/")
    assert template is not None
    assert format_with_dask(template) == "/user/a{b}c/proxy/8787/status"


@pytest.mark.parametrize(
    "base,expected",
    [
        ("/", "/proxy/8787/status"),
        ("", "/proxy/8787/status"),
        ("/user/alice", "/user/alice/proxy/8787/status"),
        ("/user/alice/", "/user/alice/proxy/8787/status"),
    ],
)
def test_template_is_one_path_under_any_base(base: str, expected: str):
    template = proxied_dashboard_link(base)
    assert template is not None
    assert format_with_dask(template) == expected


@pytest.mark.parametrize(
    "cluster,host,expected",
    [
        ("auto", "127.0.0.1", "/proxy/8787/status"),
        ("tcp://127.0.0.1:8786", "127.0.0.1", "/proxy/8787/status"),
        ("tcp://localhost:8786", "localhost", "/proxy/8787/status"),
        ("tcp://10.1.2.3:8786", "10.1.2.3", "/proxy/10.1.2.3:8787/status"),
        (
            "tls://scheduler.dask.svc:8786",
            "scheduler.dask.svc",
            "/proxy/scheduler.dask.svc:8787/status",
        ),
    ],
)
def test_a_scheduler_elsewhere_is_proxied_by_host_not_to_localhost(
    cluster: str, host: str, expected: str
):
    """``proxy/{port}`` always means the Jupyter server's localhost; a remote scheduler's
    dashboard needs its host in the path (and in ``c.ServerProxy.host_allowlist``)."""
    template = proxied_dashboard_link("/", cluster)
    assert template is not None
    assert format_with_dask(template, host) == expected


def test_a_link_the_user_configured_wins(monkeypatch: pytest.MonkeyPatch):
    own = "https://dask.example.org/{port}/status"
    monkeypatch.setenv(dashboard.ENV_LINK, own)
    assert proxied_dashboard_link("/user/alice/") is None
    monkeypatch.delenv(dashboard.ENV_LINK)
    with dask.config.set({"distributed.dashboard.link": own}):
        assert proxied_dashboard_link("/user/alice/") is None
    # Dask's default, or a template this module made earlier, is not the user's choice
    ours = proxied_dashboard_link("/user/bob/")
    with dask.config.set({"distributed.dashboard.link": ours}):
        assert proxied_dashboard_link("/user/alice/") == "/user/alice/proxy/{port}/status"
