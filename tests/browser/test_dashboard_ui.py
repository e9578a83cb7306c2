"""The sidebar's "Open dashboard" link in a real browser (issue #13): it opens the Dask dashboard
through the Jupyter server's URL under a JupyterHub-style base URL, signed in by the lab's own
cookie, with live Bokeh plots (so the websocket went through the proxy too); a browser that
never signed in to Jupyter lands on Jupyter's login page instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    UI_TIMEOUT_MS,
    BrowserLab,
    browser,
    page,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

BASE = "/user/alice/"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    base = tmp_path_factory.mktemp("dashboard-lab")
    (base / "lepton").mkdir()
    lepton = dict(LEPTON, n_workers=1, state_dir=str(base / "lepton"))
    server = BrowserLab(base / "root", base / "state", lepton=lepton, base_url=BASE)
    with server.serving(workers=1) as running:
        yield running


def test_sidebar_link_opens_the_dashboard_through_jupyter(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expected = lab.wait_cluster()["dashboard_link"]
    assert expected.startswith(f"{BASE}proxy/"), expected

    page.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    link = page.locator("#lepton-sidebar .lepton-dashboard-link")
    expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert link.get_attribute("href") == expected

    with page.context.expect_page(timeout=UI_TIMEOUT_MS) as opened:
        link.click()
    dashboard = opened.value
    try:
        dashboard.wait_for_load_state("domcontentloaded")
        assert urlsplit(dashboard.url).path == expected
        assert urlsplit(dashboard.url).netloc == urlsplit(lab.url).netloc
        expect(dashboard).to_have_title("Dask Diagnostic UI", timeout=UI_TIMEOUT_MS)
        # Bokeh draws its plots only once the document came over the websocket
        dashboard.locator("canvas").first.wait_for(state="attached", timeout=60_000)
        shot(dashboard, "dashboard-through-jupyter.png")
    finally:
        dashboard.close()


def test_a_browser_not_signed_in_to_jupyter_gets_the_login_page(
    lab: BrowserLab,
    browser: Any,  # noqa: F811
) -> None:
    link = lab.wait_cluster()["dashboard_link"]
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(f"http://127.0.0.1:{lab.port}{link}", wait_until="domcontentloaded")
        assert urlsplit(pg.url).path == f"{BASE}login", pg.url
        assert pg.locator("canvas").count() == 0
        assert "Dask" not in pg.title()
    finally:
        context.close()
