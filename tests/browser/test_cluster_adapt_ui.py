"""The sidebar's cluster scaling controls in a real lab: Adaptive on (0–2) shows in the status
and on the server, bad bounds show the server's 400 message and change nothing, and Scale to a
fixed size turns adaptive scaling off (issue #13)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    BrowserLab,
    browser,
    page,
    shot,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(200)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own: scaling it must not disturb the other browser tests' cluster."""
    base = tmp_path_factory.mktemp("adapt-lab")
    (base / "lepton").mkdir()
    lepton = dict(LEPTON, state_dir=str(base / "lepton"), max_workers=4)
    with BrowserLab(base / "root", base / "state", lepton=lepton).serving(workers=2) as server:
        yield server


def adapt_of(lab: BrowserLab) -> Any:
    code, status = lab.request("GET", "lepton-lab/api/cluster")
    assert code == 200, (code, status)
    return status["adapt"]


def test_sidebar_turns_adaptive_scaling_on_refuses_bad_bounds_and_scales_back(
    lab: BrowserLab,
    page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    section = page.locator("#lepton-sidebar .lepton-cluster")
    expect(section).to_be_visible()
    expect(section.locator(".lepton-worker-count")).to_have_text("2")
    expect(section.locator(".lepton-cluster-class")).to_have_text("distributed.LocalCluster")
    scaling = section.locator(".lepton-cluster-scaling")
    expect(scaling).to_have_text("fixed size")
    expect(scaling).to_have_attribute("data-lepton-adaptive", "false")

    # Adaptive 0–2, Apply
    toggle = section.locator("input.lepton-cluster-adapt-toggle")
    minimum = section.locator("input.lepton-cluster-adapt-min")
    maximum = section.locator("input.lepton-cluster-adapt-max")
    apply = section.locator("button.lepton-cluster-adapt-apply")
    error = section.locator(".lepton-cluster-control-error")
    expect(minimum).to_be_disabled()
    toggle.check()
    expect(minimum).to_be_enabled()
    minimum.fill("0")
    maximum.fill("2")
    apply.click()
    expect(scaling).to_have_text("adaptive 0–2")
    expect(scaling).to_have_attribute("data-lepton-adaptive", "true")
    expect(error).to_be_hidden()
    assert adapt_of(lab) == {"minimum": 0, "maximum": 2, "requested": 0}
    shot(page, "sidebar-cluster-adaptive.png")

    # min > max: the server's message in the section; the cluster stays adaptive 0–2
    minimum.fill("3")
    maximum.fill("1")
    apply.click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("'adapt' minimum (3) is more than its maximum (1)")
    expect(error).to_contain_text("HTTP 400")
    # what was typed stays for a fix, across the sidebar's next polls
    page.wait_for_timeout(2500)
    expect(minimum).to_have_value("3")
    expect(scaling).to_have_text("adaptive 0–2")
    assert adapt_of(lab) == {"minimum": 0, "maximum": 2, "requested": 0}
    shot(page, "sidebar-cluster-adapt-refused.png")

    # Scale to 1: a fixed size, adaptive scaling off
    workers = section.locator("input.lepton-cluster-workers-input")
    workers.fill("1")
    section.locator("button.lepton-cluster-scale").click()
    expect(scaling).to_have_text("fixed size", timeout=60_000)
    expect(error).to_be_hidden()
    expect(toggle).not_to_be_checked()
    # adaptive 0–2 may have retired both idle workers by now, so Scale to 1 starts a fresh
    # TLS worker: wait for the server to count it, then for the sidebar's next poll
    status = lab.wait_cluster(lambda s: len(s["workers"]) == 1)
    assert status["adapt"] is None
    expect(section.locator(".lepton-worker-count")).to_have_text("1", timeout=30_000)
    # off for good: the idle worker is not retired (adaptive 0–2 would drop it to 0)
    page.wait_for_timeout(4000)
    assert len(lab.wait_cluster()["workers"]) == 1
    expect(section.locator(".lepton-worker-count")).to_have_text("1")
