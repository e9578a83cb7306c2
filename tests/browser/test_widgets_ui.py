"""The run monitor in a real ``jupyter lab`` and headless Chromium: a notebook starts a short
2-worker fit on the lab's cluster; the monitor renders with a bqplot chart and a progress bar
that moves while the kernel stays free; Stop ends the run. Screenshots go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    BrowserLab,
    browser,
    doc_shot,
    installed_labextension,
    open_notebook,
    page,
    shot,
    wait_for,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(200)]

FIT_CELL = """\
import time
import lepton_lab as ll


def loop(config):
    ctx = ll.context()
    for step in range(config["steps"]):
        time.sleep(0.05)
        ctx.report(step=step, loss=1.0 / (step + 1), val_loss=1.2 / (step + 1))
        ctx.progress(step + 1, config["steps"])


run = ll.fit(loop, framework="torch", workers=2, config={"steps": 1200}, name="browser monitor")
run"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own, with its own store (runs of this test only)."""
    base = tmp_path_factory.mktemp("widgets-lab")
    (base / "lepton").mkdir()
    lepton = dict(LEPTON, state_dir=str(base / "lepton"))
    with BrowserLab(base / "root", base / "state", lepton=lepton).serving(workers=2) as server:
        yield server


def progress_of(monitor: Any) -> float:
    """Width of the monitor's step bar, in percent (what the user sees move)."""
    style = monitor.locator(".lepton-step-bar .progress-bar").get_attribute("style") or ""
    match = re.search(r"width:\s*([\d.]+)%", style)
    return float(match.group(1)) if match else 0.0


def test_run_monitor_renders_moves_and_stops(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    name = "monitor.ipynb"
    write_notebook(lab.root_dir / name, "lepton-cpu", FIT_CELL)
    panel = open_notebook(page, lab, name)
    wait_for(lambda: lab.kernel_of(name) == ("lepton-cpu", "idle"), 60, "an idle lepton-cpu kernel")
    panel.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")

    monitor = panel.locator(".lepton-run-monitor")
    expect(monitor).to_be_visible(timeout=60_000)
    status = monitor.locator(".lepton-run-status")
    expect(status).to_have_text("running", timeout=60_000)
    chart = monitor.locator(".lepton-chart")
    expect(chart).to_have_count(1, timeout=30_000)  # loss and val_loss share one chart
    expect(chart.locator(".curve path.line")).to_have_count(2, timeout=30_000)
    expect(chart).to_contain_text("val_loss")

    first = wait_for(lambda: progress_of(monitor), 60, "the step bar to start moving")
    later = wait_for(
        lambda: progress_of(monitor) if progress_of(monitor) > first else None,
        30,
        f"the step bar to move past {first:.1f} %",
    )
    assert later < 100, later
    # the kernel is free while the monitor updates: the notebook's kernel is idle
    assert lab.kernel_of(name) == ("lepton-cpu", "idle")
    expect(monitor.locator("tr.lepton-rank")).to_have_count(2)
    Path(shot(page, "run-monitor.png"))
    doc_shot(monitor, "run-monitor.png")

    monitor.locator("button.lepton-stop").click()
    expect(status).to_have_text("stopped", timeout=60_000)
    expect(monitor.locator("button.lepton-stop")).to_be_disabled()
    expect(monitor.locator(".lepton-event[data-kind='stopped']")).to_have_count(1)
    shot(page, "run-monitor-stopped.png")
    stopped_at = progress_of(monitor)
    assert 0 < stopped_at < 100, stopped_at


def test_cluster_widget_in_a_lab_kernel_scales_the_labs_cluster(lab: BrowserLab) -> None:
    """The kernel does not own the lab's cluster: Scale goes through the lab's REST route."""
    from tests.support.labserver import execute

    lab.wait_cluster(lambda s: s["status"] == "running" and len(s["workers"]) == 2)
    kernel = lab.start_kernel("lepton-cpu")
    try:
        out = execute(
            kernel,
            "import lepton_lab as ll\ncw = ll.widgets.ClusterWidget()\n"
            "print(cw.status['mode'], cw.status['totals']['workers'], cw.scale_button.disabled)\n"
            "print(cw.status['dashboard_link'])",
        )
        assert out.splitlines()[0] == "local 2 False", out
        # through the Jupyter server, not 127.0.0.1 (docs/guide/dashboard.md)
        assert re.fullmatch(r"/proxy/\d+/status", out.splitlines()[1]), out
        out = execute(kernel, "cw.scale(3); cw.update(); print(cw.status['totals']['workers'])")
        assert out.strip() == "3", out
        assert len(lab.wait_cluster(lambda s: len(s["workers"]) == 3)["workers"]) == 3
        execute(kernel, "cw.close()")
    finally:
        kernel.stop_channels()
        code, body = lab.request("PATCH", "lepton-lab/api/cluster", {"workers": 2})
        assert code == 200, (code, body)
