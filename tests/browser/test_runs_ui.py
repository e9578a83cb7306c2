"""Runs in the lab's UI, read from REST only (``labextension/src/runs.ts``): a real
``jupyter lab`` and headless Chromium.

1. the sidebar's worker table fits the default sidebar width (no column cut off);
2. a run started in a notebook (a lepton-cpu kernel, a 2-rank torch-style loop that reports
   ``loss`` and ``val_loss`` every 0.2 s) is listed in the sidebar's Runs section; opening it
   shows a main-area panel whose curves grow between two looks; closing the notebook's tab (its
   kernel, which drives the run, stays) keeps the panel live; Stop in the panel stops the run:
   "stopped" in the panel, in the sidebar and through ``GET runs/{id}``; after a reload the
   panel is restored with the layout.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    BrowserLab,
    browser,
    open_notebook,
    page,
    shot,
    wait_for,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PLUGIN = Path(__file__).parents[1] / "fixtures" / "executor_plugin"

RUN_NAME = "browser runs panel"
FIT_CELL = f"""\
import time
import lepton_lab as ll


def loop(config):
    ctx = ll.context()
    for step in range(config["steps"]):
        time.sleep(0.2)
        ctx.report(step=step, loss=1.0 / (step + 1), val_loss=1.2 / (step + 1))


run = ll.fit(loop, framework="torch", workers=2, config={{"steps": 1500}}, name={RUN_NAME!r})
print("run id:", run.id)"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own, with its own store (runs of this module only), and a job executor
    plug-in installed the way a package installs one (an entry point on its path)."""
    base = tmp_path_factory.mktemp("runs-lab")
    (base / "lepton").mkdir()
    lepton = dict(LEPTON, state_dir=str(base / "lepton"))
    env = {"PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])}
    browser_lab = BrowserLab(base / "root", base / "state", lepton=lepton, env=env)
    with browser_lab.serving(workers=2) as server:
        yield server


def open_sidebar(pg: Any) -> Any:
    from playwright.sync_api import expect

    sidebar = pg.locator("#lepton-sidebar")
    if not sidebar.is_visible():  # a click on the tab of an open panel would close it
        pg.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    expect(sidebar).to_be_visible()
    return sidebar


def run_record(lab: BrowserLab, run_id: str) -> dict:
    code, body = lab.request("GET", f"lepton-lab/api/runs/{run_id}")
    assert code == 200, (code, body)
    return body


def list_runs(lab: BrowserLab) -> list[dict]:
    code, body = lab.request("GET", "lepton-lab/api/runs?limit=10")
    assert code == 200, (code, body)
    return body["runs"]


def points(panel: Any, series: str) -> int:
    curve = panel.locator(f"path.lepton-run-curve[data-lepton-series='{series}']")
    if not curve.count():
        return 0
    return int(curve.get_attribute("data-lepton-points") or 0)


def test_worker_table_fits_the_default_sidebar(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    lab.wait_cluster(lambda s: s["status"] == "running" and len(s["workers"]) == 2)
    sidebar = open_sidebar(page)
    table = sidebar.locator("table.lepton-workers")
    expect(table.locator("tr.lepton-worker")).to_have_count(2)
    sizes = table.evaluate(
        """t => {
            const wrapper = t.parentElement, side = document.getElementById('lepton-sidebar');
            return {
                table: t.getBoundingClientRect().right,
                sidebar: side.getBoundingClientRect().right,
                scroll: wrapper.scrollWidth, client: wrapper.clientWidth,
                width: side.getBoundingClientRect().width,
                cells: [...t.querySelectorAll('td:not(:first-child), th')]
                    .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent),
            };
        }"""
    )
    print("worker table:", sizes)
    assert sizes["scroll"] <= sizes["client"], sizes  # no horizontal scrolling
    assert sizes["table"] <= sizes["sidebar"] + 0.5, sizes
    assert not sizes["cells"], sizes  # no clipped number or header
    shot(page, "runs-sidebar-workers.png")


def test_run_panel_follows_a_notebook_run_and_stops_it(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    name = "runs.ipynb"
    write_notebook(lab.root_dir / name, "lepton-cpu", FIT_CELL)
    notebook = open_notebook(page, lab, name)
    wait_for(lambda: lab.kernel_of(name) == ("lepton-cpu", "idle"), 60, "an idle lepton-cpu kernel")
    notebook.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
    expect(output.filter(has_text="run id:")).to_have_count(1, timeout=60_000)
    run_id = output.filter(has_text="run id:").inner_text().split("run id:")[1].split()[0]

    # the sidebar lists it, running, with its progress and Stop
    sidebar = open_sidebar(page)
    row = sidebar.locator(f"li.lepton-run[data-lepton-run='{run_id}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator(".lepton-run-name")).to_have_text(RUN_NAME)
    expect(row).to_have_attribute("data-lepton-run-status", "running", timeout=60_000)
    expect(row.locator(".lepton-run-status")).to_have_text("running")
    expect(row.locator("button.lepton-run-stop")).to_be_visible()

    # progress and the last metrics, from the server's list (`step` and `last_metrics`)
    def listed() -> dict | None:
        run = next(r for r in list_runs(lab) if r["id"] == run_id)
        return run if run["step"] is not None else None

    wait_for(listed, 30, "the run's step in GET runs")
    expect(row.locator(".lepton-run-progress")).to_have_text(re.compile(r"^step \d+"))
    expect(row.locator(".lepton-run-metrics")).to_contain_text("loss", timeout=10_000)
    print("sidebar row:", row.inner_text().replace("\n", " | "))

    # the Run-as-job dialog offers the server's executors, the plug-in's among them
    code, config = lab.request("GET", "lepton-lab/api/config")
    assert code == 200, config
    expected = [e["name"] for e in config["executors"]]
    assert expected[0] == "local" and {"dask", "marker"} <= set(expected)
    notebook.locator(".jp-NotebookPanel-toolbar .lepton-run-as-job").click()
    dialog = page.locator(".jp-Dialog.lepton-JobDialog")
    expect(dialog).to_be_visible()
    options = dialog.locator("select.lepton-job-executor option")
    expect(options).to_have_count(len(expected))
    assert [o.get_attribute("value") for o in options.all()] == expected
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    expect(dialog).to_have_count(0)

    # open its panel: curves for loss and val_loss on one chart, growing
    row.locator(".lepton-run-name").click()
    panel = page.locator(f".lepton-RunPanel[data-lepton-run='{run_id}']")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-lepton-run-status", "running")
    chart = panel.locator(".lepton-run-chart[data-lepton-metric='loss']")
    expect(chart).to_have_count(1, timeout=30_000)
    expect(chart.locator("path.lepton-run-curve")).to_have_count(2)
    expect(panel.locator(".lepton-run-chart")).to_have_count(1)  # val_loss shares it
    first = wait_for(lambda: points(panel, "loss") or None, 30, "the first points of the curve")
    later = wait_for(
        lambda: points(panel, "loss") if points(panel, "loss") > first else None,
        30,
        f"the curve to grow past {first} points",
    )
    print(f"curve: {first} then {later} points")
    expect(panel.locator("tr.lepton-run-rank")).to_have_count(2)
    expect(panel.locator(".lepton-run-event[data-kind='start']")).to_have_count(1)
    expect(panel.locator(".lepton-run-panel-progress")).to_contain_text("step")
    expect(page.locator(".lm-TabBar-tab").filter(has_text=f"Run: {RUN_NAME}")).to_have_count(1)
    shot(page, "runs-panel.png")

    # close the notebook's tab (saved first: no "unsaved changes" dialog); its kernel stays
    notebook.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(has_text=name)
    expect(tab).to_have_count(1)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    expect(page.locator(".jp-NotebookPanel")).to_have_count(0)
    assert lab.kernel_of(name) is not None, "closing the tab shut the kernel down"

    expect(panel).to_be_visible()
    after_close = points(panel, "loss")
    grown = wait_for(
        lambda: points(panel, "loss") if points(panel, "loss") > after_close else None,
        30,
        f"the curve to grow past {after_close} points after the notebook was closed",
    )
    print(f"after closing the notebook: {after_close} then {grown} points")
    assert run_record(lab, run_id)["status"] == "running"
    shot(page, "runs-panel-notebook-closed.png")

    # Stop in the panel
    stop = panel.locator("button.lepton-run-panel-stop")
    expect(stop).to_be_visible()
    stop.click()
    expect(panel).to_have_attribute("data-lepton-run-status", "stopped", timeout=60_000)
    expect(panel.locator(".lepton-run-panel-status")).to_have_text("stopped")
    expect(stop).to_be_hidden()
    expect(panel.locator(".lepton-run-event[data-kind='stopped']")).to_have_count(1, timeout=30_000)
    assert run_record(lab, run_id)["status"] == "stopped"
    # the sidebar follows: a neutral "stopped" badge and no Stop button
    expect(row).to_have_attribute("data-lepton-run-status", "stopped", timeout=30_000)
    expect(row.locator(".lepton-run-status")).to_have_class(re.compile(r"\blepton-mod-neutral\b"))
    expect(row.locator("button.lepton-run-stop")).to_be_hidden()
    expect(panel).to_have_attribute("data-lepton-run-complete", "true", timeout=30_000)
    shot(page, "runs-panel-stopped.png")

    # the panel comes back with the layout after a reload (its WidgetTracker restores it)
    page.goto(f"{lab.url}lab?token={lab.token}", wait_until="domcontentloaded")
    restored = page.locator(f".lepton-RunPanel[data-lepton-run='{run_id}']")
    expect(restored).to_have_attribute("data-lepton-run-status", "stopped", timeout=60_000)
    expect(restored.locator("path.lepton-run-curve")).to_have_count(2)
