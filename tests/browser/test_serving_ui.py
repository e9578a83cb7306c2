"""Serving in the lab's UI (``labextension/src/deploymentsection.ts``, the version view's Serve
in ``modelview.ts``): a real ``jupyter lab``, its model server processes, and headless Chromium.

The registry is seeded the way a notebook fills it: a Python process on the lab's state dir
registers a small torch MLP as ``digits`` v1 (safetensors and ONNX; ``production`` points at
it) and v2 (safetensors only, which no deployment can serve). Then, in the browser:

1. the sidebar's Deployments section says how to start one;
2. the version view of v2 has Serve disabled; v1's Serve posts ``{"model": "digits:1"}``;
3. the sidebar lists the deployment, ``starting`` then ``ready``, with its endpoint: a link to
   the model's metadata through the lab's proxy and the local URL, both as REST says; the
   version view lists it next to Serve, with the same link;
4. that link, fetched with the page's Jupyter session, answers the model metadata (Open
   Inference Protocol ``GET v2/models/digits``);
5. the row's Log button shows the model server's log in a dialog (``serving digits v1
   (onnx)``), followed while the deployment is live;
6. Stop: the row reaches ``stopped``, loses its endpoint and Stop button, and the port is free;
   the version view no longer lists it, and its log reads as complete;
7. a deployment started by alias through REST (``digits@production``) shows ``@production``,
   and a stop through REST shows in the sidebar.

Model servers take ~3-10 s to start (longer on a loaded CI machine): every wait polls with a
generous timeout. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import errno
import http.client
import socket
import textwrap
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    BrowserLab,
    browser,
    page,
    shot,
    wait_for,
)
from tests.browser.test_models_ui import seed

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

MODEL = "digits"
READY_MS = 120_000  # a model server's start, on a loaded machine
STOP_MS = 60_000
SEED = textwrap.dedent(
    f"""\
    import torch
    import lepton_lab as ll

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    ).eval()
    x = torch.randn(8, 64)
    for formats in (["safetensors", "onnx"], ["safetensors"]):
        v = ll.models.register(
            net, {MODEL!r}, formats=formats, example_input=x, metrics={{"accuracy": 0.9}},
        )
        print("registered", v.version, v.formats, v.failed_formats)
    ll.models.set_alias({MODEL!r}, 1, "production")
    """
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own (its own store, artifacts and deployments), with the registry seeded
    by a Python process on the same state dir. At the end, any deployment still live is
    stopped (the server also stops its own at shutdown)."""
    base = tmp_path_factory.mktemp("serving-lab")
    state = base / "lepton"
    state.mkdir()
    lepton = dict(LEPTON, state_dir=str(state), n_workers=1)
    with BrowserLab(base / "root", base / "state", lepton=lepton).serving() as server:
        seed(state, base, SEED)
        try:
            yield server
        finally:
            for deployment in live_deployments(server):
                server.request("DELETE", f"lepton-lab/api/deployments/{deployment['id']}")


def live_deployments(lab: BrowserLab) -> list[dict]:
    code, body = lab.request("GET", "lepton-lab/api/deployments")
    if code != 200:
        return []
    return [d for d in body["deployments"] if d["status"] in ("starting", "ready")]


def get_deployment(lab: BrowserLab, deployment_id: str) -> dict:
    code, body = lab.request("GET", f"lepton-lab/api/deployments/{deployment_id}")
    assert code == 200, (code, body)
    return body


def deployment_log(lab: BrowserLab, deployment_id: str) -> str:
    code, body = lab.request("GET", f"lepton-lab/api/deployments/{deployment_id}/logs")
    return body.get("text", "")[-4000:] if code == 200 else f"{code} {body}"


def wait_status(lab: BrowserLab, deployment_id: str, status: str, timeout: float) -> dict:
    def reached() -> dict | None:
        deployment = get_deployment(lab, deployment_id)
        if deployment["status"] == "failed" and status != "failed":
            raise AssertionError(
                f"deployment {deployment_id} failed: {deployment['error']}\n"
                f"{deployment_log(lab, deployment_id)}"
            )
        return deployment if deployment["status"] == status else None

    return wait_for(reached, timeout, f"deployment {deployment_id} {status} in REST")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (as a new model server would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def status_without_session(lab: BrowserLab, path: str) -> int:
    """The status of a GET of a lab URL with neither token nor cookie (redirects not followed:
    the lab sends such a browser to its login page)."""
    connection = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=30)
    try:
        connection.request("GET", lab.base_url + path)
        return connection.getresponse().status
    finally:
        connection.close()


def open_sidebar(pg: Any) -> Any:
    from playwright.sync_api import expect

    sidebar = pg.locator("#lepton-sidebar")
    if not sidebar.is_visible():  # a click on the tab of an open panel would close it
        pg.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    expect(sidebar).to_be_visible()
    return sidebar


def open_log(row: Any, pg: Any, deployment_id: str) -> Any:
    """Click a deployment row's Log button: the log dialog's view."""
    from playwright.sync_api import expect

    row.locator("button.lepton-deployment-log").click()
    dialog = pg.locator(".lepton-DeploymentLogDialog")
    expect(dialog).to_be_visible(timeout=30_000)
    log = dialog.locator(f".lepton-DeploymentLog[data-lepton-deployment='{deployment_id}']")
    expect(log).to_be_visible()
    return log


def close_log(pg: Any) -> None:
    from playwright.sync_api import expect

    dialog = pg.locator(".lepton-DeploymentLogDialog")
    dialog.locator(".jp-Dialog-footer .jp-Dialog-button", has_text="Close").click()
    expect(dialog).to_have_count(0)


def expect_ready_row(row: Any, deployment: dict, base_url: str) -> None:
    """The row of a ready deployment shows its endpoint as REST says."""
    from playwright.sync_api import expect

    expect(row).to_have_attribute("data-lepton-status", "ready", timeout=READY_MS)
    expect(row.locator(".lepton-deployment-status")).to_have_text("ready")
    link = row.locator("a.lepton-deployment-url")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"{base_url}{deployment['proxy_path']}v2/models/{MODEL}")
    expect(row.locator(".lepton-deployment-local")).to_have_text(deployment["url"])
    expect(row.locator("button.lepton-deployment-stop")).to_be_visible()
    expect(row.locator(".lepton-deployment-error")).to_be_hidden()


def test_serve_from_the_version_view_and_stop(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    # 1. no deployment yet (this lab's first test): the section says how to start one
    sidebar = open_sidebar(page)
    section = sidebar.locator(".lepton-deployments")
    empty = section.locator(".lepton-no-deployments")
    code, listed = lab.request("GET", "lepton-lab/api/deployments")
    assert code == 200, (code, listed)
    if not listed["deployments"]:
        expect(empty).to_contain_text("lepton-lab serve name@alias", timeout=30_000)
    expect(section.locator(".lepton-deployments-error")).to_be_hidden()

    # 2. the version view: v2 (safetensors only) cannot be served, v1 (onnx) can
    model_row = sidebar.locator(f"li.lepton-model[data-lepton-model='{MODEL}']")
    expect(model_row).to_be_visible(timeout=30_000)
    model_row.locator(".lepton-model-name").click()
    panel = page.locator(f".lepton-ModelPanel[data-lepton-model='{MODEL}']")
    expect(panel).to_have_attribute("data-lepton-model-version", "2")
    serve = panel.locator("button.lepton-model-serve")
    expect(serve).to_be_visible()
    expect(serve).to_be_disabled()
    assert "no format a deployment can serve" in (serve.get_attribute("title") or "")
    panel.locator("select.lepton-model-version-select").select_option("1")
    expect(panel).to_have_attribute("data-lepton-model-version", "1")
    expect(serve).to_be_enabled()
    expect(serve).to_have_attribute("data-lepton-formats", "onnx")
    shot(page, "serving-version-view.png")
    with page.expect_response(
        lambda r: (
            r.request.method == "POST"
            and urlsplit(r.url).path.endswith("/lepton-lab/api/deployments")
        )
    ) as answer:
        serve.click()
    assert answer.value.status == 201, (answer.value.status, answer.value.text()[:500])
    created = answer.value.json()
    assert created["model"] == MODEL and created["version"] == 1, created
    assert created["ref"] == f"{MODEL}:1" and created["format"] == "onnx", created
    assert created["status"] in ("starting", "ready"), created
    deployment_id = created["id"]
    print("deployment", deployment_id, created["url"])

    # 3. the sidebar lists it (starting, then ready) with its endpoint
    sidebar = open_sidebar(page)
    row = sidebar.locator(f"li.lepton-deployment[data-lepton-deployment='{deployment_id}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_have_attribute("data-lepton-model", MODEL)
    expect(row.locator(".lepton-deployment-name")).to_have_text(f"{MODEL} v1")
    expect(row.locator(".lepton-deployment-ref")).to_be_hidden()
    expect(row.locator(".lepton-deployment-format")).to_have_text("onnx")
    expect(empty).to_be_hidden()
    deployment = wait_status(lab, deployment_id, "ready", READY_MS / 1000)
    port = deployment["port"]
    assert deployment["url"] == f"http://127.0.0.1:{port}", deployment
    assert deployment["proxy_path"] == f"proxy/{port}/", deployment
    expect_ready_row(row, deployment, lab.url)
    expect(row.locator(".lepton-deployment-restarts")).to_have_text(
        f"restarts 0/{deployment['max_restarts']}"
    )
    row.scroll_into_view_if_needed()
    shot(page, "serving-sidebar-ready.png")
    # ... and the version view (still v1) lists it next to Serve, with the same link
    live = panel.locator(f".lepton-model-deployment[data-lepton-deployment='{deployment_id}']")
    expect(live).to_have_attribute("data-lepton-status", "ready", timeout=READY_MS)
    expect(live.locator(".lepton-model-deployment-status")).to_have_text("ready")
    expect(live.locator("a.lepton-model-deployment-url")).to_have_attribute(
        "href", f"{lab.url}{deployment['proxy_path']}v2/models/{MODEL}"
    )
    expect(panel.locator(".lepton-model-deployment")).to_have_count(1)
    shot(page, "serving-version-view-live.png")

    # 4. the link answers the model's metadata through the lab, with the page's session
    href = row.locator("a.lepton-deployment-url").get_attribute("href")
    metadata = page.request.get(href)
    assert metadata.status == 200, (metadata.status, metadata.text()[:500])
    body = metadata.json()
    print("metadata:", body)
    assert body["name"] == MODEL, body
    assert body.get("inputs"), body
    # ... and only with a session: the proxy is authenticated like the lab
    code = status_without_session(lab, f"{deployment['proxy_path']}v2/models/{MODEL}")
    assert code in (302, 401, 403), code

    # 5. Log: the model server's log in a dialog, followed while the deployment is live
    log = open_log(row, page, deployment_id)
    expect(log.locator("pre.lepton-deployment-log-text")).to_contain_text(
        f"serving {MODEL} v1 (onnx)", timeout=60_000
    )
    expect(log).to_have_attribute("data-lepton-log-complete", "false")
    expect(log.locator(".lepton-deployment-log-status")).to_contain_text("following")
    shot(page, "serving-log-dialog.png")
    close_log(page)

    # 6. Stop: the row reaches `stopped`, without endpoint or Stop; the port is free
    row.locator("button.lepton-deployment-stop").click()
    expect(row).to_have_attribute("data-lepton-status", "stopped", timeout=STOP_MS)
    expect(row.locator(".lepton-deployment-status")).to_have_text("stopped")
    expect(row.locator("button.lepton-deployment-stop")).to_be_hidden()
    expect(row.locator("a.lepton-deployment-url")).to_be_hidden()
    expect(row.locator(".lepton-deployment-local")).to_be_hidden()
    stopped = get_deployment(lab, deployment_id)
    assert stopped["status"] == "stopped", stopped
    assert stopped["url"] is None and stopped["proxy_path"] is None, stopped
    assert port_is_free(port), f"port {port} is still taken after {deployment_id} stopped"
    row.scroll_into_view_if_needed()
    shot(page, "serving-sidebar-stopped.png")
    # the version view lists it no more; its log is complete (nothing more will be written)
    expect(live).to_have_count(0, timeout=30_000)
    expect(panel.locator(".lepton-model-deployments")).to_be_hidden()
    log = open_log(row, page, deployment_id)
    expect(log).to_have_attribute("data-lepton-log-complete", "true", timeout=30_000)
    expect(log.locator("pre.lepton-deployment-log-text")).to_contain_text(
        f"serving {MODEL} v1 (onnx)"
    )
    expect(log.locator(".lepton-deployment-log-status")).to_contain_text("has ended")
    close_log(page)


def test_alias_deployment_started_and_stopped_through_rest(
    lab: BrowserLab,
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    sidebar = open_sidebar(page)
    code, created = lab.request(
        "POST", "lepton-lab/api/deployments", {"model": f"{MODEL}@production"}
    )
    assert code == 201, (code, created)
    deployment_id = created["id"]
    row = sidebar.locator(f"li.lepton-deployment[data-lepton-deployment='{deployment_id}']")
    expect(row).to_be_visible(timeout=30_000)
    # newest first
    expect(sidebar.locator("li.lepton-deployment").first).to_have_attribute(
        "data-lepton-deployment", deployment_id
    )
    expect(row.locator(".lepton-deployment-name")).to_have_text(f"{MODEL} v1")
    expect(row.locator(".lepton-deployment-ref")).to_have_text("@production")
    deployment = wait_status(lab, deployment_id, "ready", READY_MS / 1000)
    expect_ready_row(row, deployment, lab.url)
    row.scroll_into_view_if_needed()
    shot(page, "serving-sidebar-alias.png")

    code, body = lab.request("DELETE", f"lepton-lab/api/deployments/{deployment_id}")
    assert code == 202, (code, body)
    expect(row).to_have_attribute("data-lepton-status", "stopped", timeout=STOP_MS)
    expect(row.locator("button.lepton-deployment-stop")).to_be_hidden()
    stopped = wait_status(lab, deployment_id, "stopped", 5)
    assert port_is_free(deployment["port"]), stopped
