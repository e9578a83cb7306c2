"""Browser test of the notebook jobs UI: a real ``jupyter lab`` subprocess (started like
``test_lab_ui.py`` starts it) driven by headless Chromium.

One notebook with a ``parameters`` cell in the server's root; through the UI only (REST is
used to read the truth, never to act):

1. "Run as job" in the notebook toolbar: a parameter of the wrong type is refused by the
   server and the 400 message shows *in the dialog*, which stays open; the corrected request
   queues a job that the sidebar's Jobs section follows to "completed"; its log panel and its
   HTML output show what the notebook printed;
2. Stop on a running (sleeping) job makes it "stopped";
3. the palette's "Lepton: Schedule notebook" opens the dialog in schedule mode; the schedule
   shows in the Schedules section; Pause / Resume / Run now / Delete work.

DOM hooks: ``labextension/src/jobs.ts`` and ``labextension/src/jobdialog.ts``. Screenshots go
to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.test_lab_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    BrowserLab,
    shot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

NOTEBOOK = "params.ipynb"
LEPTON = {
    "cluster_mode": "local",
    "n_workers": 1,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
    "job_concurrency": 2,
}
JOB_TIMEOUT_MS = 90_000


def write_parameters_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(
        nbformat.v4.new_code_cell("n = 2\nseconds = 0", metadata={"tags": ["parameters"]})
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import time\nassert n >= 0, f'n must be >= 0, got {n}'\nprint('product', n * 21)"
        )
    )
    nb.cells.append(nbformat.v4.new_code_cell("time.sleep(seconds)\nprint('slept', seconds)"))
    nbformat.write(nb, str(path))


# --------------------------------------------------------------------------------------------
# fixtures: one lab, one browser page on the notebook for the whole module (the tests run in
# order and share it; a lab load costs seconds)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    base = tmp_path_factory.mktemp("browser-jobs")
    state = base / "lepton-state"
    server = BrowserLab(base / "root", base / "state", lepton={**LEPTON, "state_dir": state})
    server.root_dir.mkdir(parents=True, exist_ok=True)
    write_parameters_notebook(server.root_dir / NOTEBOOK)
    with server.serving():
        yield server


@pytest.fixture(scope="module")
def page(lab: BrowserLab, request: pytest.FixtureRequest) -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Install it with "
            "`apt-get update && apt-get install -y chromium` (or set LEPTON_LAB_CHROMIUM)."
        )
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            pg.goto(f"{lab.url}lab?reset&token={lab.token}", wait_until="domcontentloaded")
            pg.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
            pg.wait_for_selector(".jp-Launcher-body .jp-LauncherCard", timeout=UI_TIMEOUT_MS)
            pg.goto(
                f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}", wait_until="domcontentloaded"
            )
            panel = pg.locator(".jp-NotebookPanel").filter(has=pg.locator(".jp-Notebook"))
            panel.first.wait_for(state="visible", timeout=60_000)
            settle(pg)
            yield pg
            assert not errors, f"uncaught errors in the page: {errors}"
        finally:
            with contextlib.suppress(Exception):
                shot(pg, "jobs-last.png")
            context.close()
            browser.close()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest, page: Any) -> Iterator[None]:
    yield
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        with contextlib.suppress(Exception):
            shot(page, f"FAILED-{request.node.name}.png")


# --------------------------------------------------------------------------------------------
# helpers


def jobs(lab: BrowserLab, **query: str) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    code, body = lab.request("GET", f"lepton-lab/api/jobs?{qs}")
    assert code == 200, (code, body)
    return body["jobs"]


def schedules(lab: BrowserLab) -> list[dict]:
    code, body = lab.request("GET", "lepton-lab/api/schedules")
    assert code == 200, (code, body)
    return body["schedules"]


def settle(page: Any) -> None:
    """Let the just-opened notebook finish what opening it starts: its kernel comes up and
    writes its language info into the notebook (marking it unsaved), then save it, as a
    user would. "Run as job" saves an unsaved notebook before its dialog opens; on a loaded
    CI machine that save, racing the kernel's first metadata write, once kept the dialog
    from opening within the test's 30 s."""
    from playwright.sync_api import expect

    status = page.locator(".jp-StatusBar-TextItem").filter(has_text="| Idle")
    status.first.wait_for(state="visible", timeout=60_000)
    dirty = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
    if dirty.count():
        page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.click()
        page.keyboard.press("Control+s")
    expect(dirty).to_have_count(0, timeout=60_000)


def open_dialog(page: Any) -> Any:
    """Click the notebook toolbar's "Run as job"; return the dialog."""
    toolbar = page.locator(".jp-NotebookPanel:visible .jp-NotebookPanel-toolbar")
    button = toolbar.locator(".lepton-run-as-job")
    from playwright.sync_api import expect

    expect(button).to_have_count(1)
    expect(button).to_contain_text("Run as job")
    button.click()
    return wait_dialog(page)


def wait_dialog(page: Any) -> Any:
    dialog = page.locator(".jp-Dialog.lepton-JobDialog")
    dialog.wait_for(state="visible")
    return dialog


def submit(dialog: Any) -> None:
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()


def new_job_after(lab: BrowserLab, known: set[str], what: str) -> dict:
    return wait_for(lambda: next((j for j in jobs(lab) if j["id"] not in known), None), 30, what)


# --------------------------------------------------------------------------------------------
# tests


def test_run_as_job_refuses_bad_parameter_then_completes(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    dialog = open_dialog(page)
    parameters = dialog.locator("textarea.lepton-job-parameters")
    expect(parameters).to_have_value("{}")
    expect(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_contain_text("Run")
    schedule_box = dialog.locator("input.lepton-job-schedule")
    expect(schedule_box).not_to_be_checked()
    expect(dialog.locator("input.lepton-job-cron")).to_be_hidden()
    schedule_box.check()  # the same dialog makes a schedule: cron fields, "Schedule" button
    expect(dialog.locator("input.lepton-job-cron")).to_be_visible()
    expect(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_contain_text("Schedule")
    schedule_box.uncheck()
    expect(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_contain_text("Run")

    # a string for an int parameter: the server's 400 shows in the dialog, which stays open
    parameters.fill('{"n": "three"}')
    submit(dialog)
    error = dialog.locator(".lepton-job-form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("HTTP 400")
    expect(error).to_contain_text("'n'")
    print("400 in the dialog:", error.inner_text())
    shot(page, "jobs-dialog-400.png")
    assert jobs(lab) == [], "a refused request made a job"
    expect(dialog).to_be_visible()

    # a client-side check too: not a JSON object
    parameters.fill("[1, 2]")
    submit(dialog)
    expect(error).to_contain_text("must be a JSON object")

    parameters.fill('{"n": 3}')
    dialog.locator("input.lepton-job-retries").fill("1")
    submit(dialog)
    expect(dialog).to_have_count(0)
    job = wait_for(lambda: (jobs(lab) or [None])[0], 15, "the submitted job")
    assert job["parameters"] == {"n": 3}, job
    assert job["path"] == NOTEBOOK, job
    assert job["retries"] == 1, job
    assert set(job["output_formats"]) == {"ipynb", "html"}, job

    # a notification, and the sidebar opens on its own with the job in it
    expect(page.locator(".Toastify__toast").filter(has_text=job["id"])).to_have_count(1)
    sidebar = page.locator("#lepton-sidebar")
    expect(sidebar).to_be_visible()
    row = sidebar.locator(f"li.lepton-job[data-lepton-job='{job['id']}']")
    expect(row).to_be_visible()
    expect(row.locator(".lepton-job-name")).to_contain_text("params")
    expect(row.locator(".lepton-job-attempt")).to_have_text(re.compile(r"attempt 1/2"))
    expect(row).to_have_attribute("data-lepton-job-status", "completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".lepton-job-status")).to_have_text("completed")
    expect(row.locator(".lepton-job-stop")).to_be_hidden()
    expect(row.locator(".lepton-job-error")).to_be_hidden()
    shot(page, "jobs-sidebar-completed.png")

    # the log panel: papermill's log, cell outputs included, read to its end
    row.locator("button.lepton-job-log").click()
    log = page.locator(f".lepton-JobLog[data-lepton-job='{job['id']}']")
    expect(log).to_be_visible()
    expect(log).to_have_attribute("data-lepton-log-complete", "true", timeout=UI_TIMEOUT_MS)
    expect(log.locator("pre.lepton-job-log-text")).to_contain_text("product 63")

    # the executed notebook as HTML, in a new tab (the server's URL, no blob)
    output = row.locator("a.lepton-job-output")
    expect(output).to_be_visible()
    href = output.get_attribute("href") or ""
    assert f"lepton-lab/api/jobs/{job['id']}/output" in href and "format=html" in href, href
    with page.context.expect_page() as new_tab:
        output.click()
    tab = new_tab.value
    tab.wait_for_load_state()
    assert "product 63" in tab.content(), tab.content()[:2000]
    tab.close()
    ipynb = row.locator("a.lepton-job-output-ipynb")
    assert "format=ipynb" in (ipynb.get_attribute("href") or "")


def test_stop_a_running_job(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    known = {j["id"] for j in jobs(lab)}
    dialog = open_dialog(page)
    dialog.locator("textarea.lepton-job-parameters").fill('{"seconds": 120}')
    dialog.locator("input.lepton-job-timeout").fill("600")
    submit(dialog)
    expect(dialog).to_have_count(0)
    job = new_job_after(lab, known, "the sleeping job")
    assert job["timeout"] == 600, job

    row = page.locator(f"#lepton-sidebar li.lepton-job[data-lepton-job='{job['id']}']")
    expect(row).to_have_attribute("data-lepton-job-status", "running", timeout=JOB_TIMEOUT_MS)
    # per-cell progress while it sleeps in its last cell: "cell i/n · elapsed"
    progress = row.locator(".lepton-job-progress")
    expect(progress).to_have_text(re.compile(r"cell (\d+)/\1 · \d+ s"), timeout=JOB_TIMEOUT_MS)
    print("progress:", progress.inner_text())
    stop = row.locator("button.lepton-job-stop")
    expect(stop).to_be_visible()
    shot(page, "jobs-sidebar-running.png")
    stop.click()
    expect(row).to_have_attribute("data-lepton-job-status", "stopped", timeout=30_000)
    expect(stop).to_be_hidden()
    code, body = lab.request("GET", f"lepton-lab/api/jobs/{job['id']}")
    assert code == 200 and body["status"] == "stopped", (code, body)


def test_failed_job_shows_its_error(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    known = {j["id"] for j in jobs(lab)}
    dialog = open_dialog(page)
    dialog.locator("textarea.lepton-job-parameters").fill('{"n": -1}')
    submit(dialog)
    expect(dialog).to_have_count(0)
    job = new_job_after(lab, known, "the failing job")
    row = page.locator(f"#lepton-sidebar li.lepton-job[data-lepton-job='{job['id']}']")
    expect(row).to_have_attribute("data-lepton-job-status", "failed", timeout=JOB_TIMEOUT_MS)
    error = row.locator(".lepton-job-error")
    expect(error).to_be_visible()
    # the first line of the error only, with the failing cell
    expect(error).to_have_text(re.compile(r"^cell \d+ .*AssertionError: n must be >= 0, got -1$"))
    print("failed job's line:", error.inner_text())
    expect(row.locator("a.lepton-job-output")).to_be_visible()  # the partial notebook


def test_schedule_from_palette_pause_resume_run_delete(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    # the palette command opens the dialog in schedule mode
    page.locator(".jp-NotebookPanel:visible .jp-Notebook").first.click()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    expect(palette).to_be_visible()
    palette.locator("input").fill("Lepton: Schedule notebook")
    palette.locator(".lm-CommandPalette-item", has_text="Lepton: Schedule notebook").first.click()
    dialog = wait_dialog(page)
    expect(dialog.locator("input.lepton-job-schedule")).to_be_checked()
    expect(dialog.locator(".jp-Dialog-button.jp-mod-accept")).to_contain_text("Schedule")

    # a bad cron is the server's 400, in the dialog
    dialog.locator("input.lepton-job-cron").fill("not a cron")
    dialog.locator("input.lepton-job-timezone").fill("Europe/Paris")
    submit(dialog)
    expect(dialog.locator(".lepton-job-form-error")).to_contain_text("HTTP 400")
    assert schedules(lab) == []

    dialog.locator("textarea.lepton-job-parameters").fill('{"n": 5}')
    dialog.locator("input.lepton-job-cron").fill("0 6 1 1 *")  # far away: never fires here
    submit(dialog)
    expect(dialog).to_have_count(0)
    (schedule,) = wait_for(lambda: schedules(lab), 15, "the schedule")
    assert schedule["cron"] == "0 6 1 1 *" and schedule["timezone"] == "Europe/Paris", schedule
    assert schedule["parameters"] == {"n": 5} and schedule["active"] is True, schedule

    sidebar = page.locator("#lepton-sidebar")
    expect(sidebar).to_be_visible()
    row = sidebar.locator(f"li.lepton-schedule[data-lepton-schedule='{schedule['id']}']")
    expect(row).to_be_visible()
    expect(row.locator(".lepton-schedule-cron")).to_have_text("0 6 1 1 *")
    expect(row.locator(".lepton-schedule-timezone")).to_contain_text("Europe/Paris")
    expect(row.locator(".lepton-schedule-next")).not_to_have_text(re.compile("^–"))
    expect(row).to_have_attribute("data-lepton-schedule-active", "true")

    # Pause, then Resume
    toggle = row.locator("button.lepton-schedule-pause")
    expect(toggle).to_have_text("Pause")
    toggle.click()
    expect(row).to_have_attribute("data-lepton-schedule-active", "false")
    expect(toggle).to_have_text("Resume")
    expect(row.locator(".lepton-schedule-next")).to_contain_text("paused")
    assert schedules(lab)[0]["active"] is False
    shot(page, "jobs-sidebar-schedule-paused.png")
    toggle.click()
    expect(row).to_have_attribute("data-lepton-schedule-active", "true")
    assert schedules(lab)[0]["active"] is True

    # Run now: a job of this schedule, with its parameters, that completes
    known = {j["id"] for j in jobs(lab)}
    row.locator("button.lepton-schedule-run").click()
    job = new_job_after(lab, known, "the schedule's job")
    assert job["schedule_id"] == schedule["id"] and job["parameters"] == {"n": 5}, job
    job_row = sidebar.locator(f"li.lepton-job[data-lepton-job='{job['id']}']")
    expect(job_row).to_have_attribute("data-lepton-job-status", "completed", timeout=JOB_TIMEOUT_MS)
    shot(page, "jobs-sidebar.png")

    # Delete, after a confirmation
    row.locator("button.lepton-schedule-delete").click()
    confirm = page.locator(".jp-Dialog").filter(has_text="Delete schedule")
    expect(confirm).to_be_visible()
    confirm.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(row).to_have_count(0)
    assert schedules(lab) == []
    expect(sidebar.locator(".lepton-no-schedules")).to_be_visible()
    # its jobs stay
    assert any(j["id"] == job["id"] for j in jobs(lab)), json.dumps(jobs(lab))[:1000]
