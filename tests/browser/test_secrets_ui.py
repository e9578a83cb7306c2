"""Browser test of job secrets in the UI: a real ``jupyter lab`` subprocess (as
``test_jobs_ui.py`` starts it) driven by headless Chromium.

1. "Run as job" on a notebook: the dialog's Secrets section refuses a bad name under the field,
   then a secret ``API_TOKEN`` (a fresh random value) is typed into its password field and the
   job submitted. The job completes, which proves its kernel received the value (the notebook
   asserts the value's SHA-256, passed as a parameter, and prints the value). The job's row in
   the sidebar shows ``Secrets: API_TOKEN``, its log panel is open, and the value appears
   nowhere in the page's HTML, in no URL the page requested, in the REST view of the job, nor
   in its log or HTML output (which the server redacts).
2. The same dialog in schedule mode: the schedule's row shows the secret's name, and "Run now"
   makes a job that gets the secret too.

DOM hooks: ``labextension/src/jobdialog.ts`` and ``labextension/src/jobs.ts``. Screenshots go
to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nbformat
import pytest

from tests.browser.test_jobs_ui import (
    JOB_TIMEOUT_MS,
    LEPTON,
    jobs,
    new_job_after,
    open_dialog,
    schedules,
    submit,
)
from tests.browser.test_lab_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    BrowserLab,
    shot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

NOTEBOOK = "secret.ipynb"
#: a fresh value per test session: found nowhere unless it leaked
VALUE = f"tok-{secrets.token_hex(12)}"
VALUE_SHA = hashlib.sha256(VALUE.encode()).hexdigest()


def write_secret_notebook(path: Path) -> None:
    """A notebook that fails unless ``API_TOKEN`` holds the value whose SHA-256 it is given,
    and that prints the value (the server redacts it from the log and the output)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_code_cell("want_sha = ''", metadata={"tags": ["parameters"]}))
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import hashlib, os\n"
            "token = os.environ.get('API_TOKEN')\n"
            "assert token is not None, 'API_TOKEN is not set'\n"
            "got = hashlib.sha256(token.encode()).hexdigest()\n"
            "assert got == want_sha, f'API_TOKEN has another value (sha {got[:12]})'\n"
            "print('token ok, length', len(token))\n"
            "print('the token is', token)"
        )
    )
    nbformat.write(nb, str(path))


# --------------------------------------------------------------------------------------------
# fixtures: one lab, one page on the notebook (the tests share them, in order)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    base = tmp_path_factory.mktemp("browser-secrets")
    state = base / "lepton-state"
    server = BrowserLab(base / "root", base / "state", lepton={**LEPTON, "state_dir": state})
    server.root_dir.mkdir(parents=True, exist_ok=True)
    write_secret_notebook(server.root_dir / NOTEBOOK)
    with server.serving():
        yield server


@pytest.fixture(scope="module")
def requested() -> list[str]:
    """Every URL the page requested (and every page it opened)."""
    return []


@pytest.fixture(scope="module")
def page(lab: BrowserLab, requested: list[str]) -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Install it with "
            "`apt-get update && apt-get install -y chromium` (or set LEPTON_LAB_CHROMIUM)."
        )
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        context.on("request", lambda request: requested.append(request.url))
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", lambda message: console.append(message.text))
        try:
            pg.goto(f"{lab.url}lab?reset&token={lab.token}", wait_until="domcontentloaded")
            pg.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
            pg.wait_for_selector(".jp-Launcher-body .jp-LauncherCard", timeout=UI_TIMEOUT_MS)
            pg.goto(
                f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}", wait_until="domcontentloaded"
            )
            panel = pg.locator(".jp-NotebookPanel").filter(has=pg.locator(".jp-Notebook"))
            panel.first.wait_for(state="visible", timeout=60_000)
            yield pg
            assert not errors, f"uncaught errors in the page: {errors}"
            logged = [line for line in console if VALUE in line]
            assert not logged, f"the secret's value was logged in the browser console: {logged}"
        finally:
            with contextlib.suppress(Exception):
                shot(pg, "secrets-last.png")
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


def add_secret(dialog: Any, name: str, value: str) -> Any:
    """Add a row to the dialog's Secrets section and type into it; return the row."""
    from playwright.sync_api import expect

    section = dialog.locator(".lepton-job-secrets")
    rows = section.locator(".lepton-job-secret")
    before = rows.count()
    section.locator("button.lepton-job-secret-add").click()
    expect(rows).to_have_count(before + 1)
    row = rows.nth(before)
    value_input = row.locator("input.lepton-job-secret-value")
    expect(value_input).to_have_attribute("type", "password")
    expect(value_input).to_have_attribute("autocomplete", "off")
    row.locator("input.lepton-job-secret-name").fill(name)
    value_input.fill(value)
    return row


def assert_nowhere_in_page(page: Any, requested: list[str]) -> None:
    html = page.content()
    assert VALUE not in html, "the secret's value is in the page's HTML"
    # and in no frame (output iframes, if any)
    for frame in page.frames:
        with contextlib.suppress(Exception):
            assert VALUE not in frame.content(), f"the secret's value is in frame {frame.url}"
    assert VALUE not in page.url
    leaked = [url for url in requested if VALUE in url or VALUE_SHA[:12] in url]
    assert not leaked, f"the secret's value went into URLs: {leaked}"


def assert_nowhere_on_server(lab: BrowserLab, job_id: str) -> None:
    """The job's REST view, log and outputs: names only, the printed value redacted."""
    code, body = lab.request("GET", f"lepton-lab/api/jobs/{job_id}")
    assert code == 200, (code, body)
    assert body["secret_names"] == ["API_TOKEN"], body
    assert "secrets" not in body, body
    for path in (
        f"lepton-lab/api/jobs/{job_id}/logs",
        f"lepton-lab/api/jobs/{job_id}/output?format=html",
        f"lepton-lab/api/jobs/{job_id}/output?format=ipynb",
    ):
        code, answer = lab.request("GET", path)
        assert code == 200, (path, code, str(answer)[:500])
        text = answer if isinstance(answer, str) else str(answer)
        assert "token ok" in text, (path, text[:2000])
        assert VALUE not in text, f"the secret's value is in {path}"


# --------------------------------------------------------------------------------------------
# tests


def test_run_as_job_with_a_secret(lab: BrowserLab, page: Any, requested: list[str]) -> None:
    from playwright.sync_api import expect

    dialog = open_dialog(page)
    dialog.locator("textarea.lepton-job-parameters").fill(f'{{"want_sha": "{VALUE_SHA}"}}')

    # a bad name: the message under the field, and nothing is sent
    row = add_secret(dialog, "1API-TOKEN", VALUE)
    message = row.locator(".lepton-job-secret-error")
    expect(message).to_be_visible()
    expect(message).to_contain_text("environment variable name")
    submit(dialog)
    expect(dialog.locator(".lepton-job-form-error")).to_contain_text("Secret 1")
    expect(dialog.locator(".lepton-job-form-error")).not_to_contain_text(VALUE)
    assert jobs(lab) == [], "a refused secret made a job"
    shot(page, "secrets-dialog-bad-name.png")

    row.locator("input.lepton-job-secret-name").fill("API_TOKEN")
    expect(message).to_be_hidden()
    assert VALUE not in page.content(), "a typed value shows in the page's HTML"
    shot(page, "secrets-dialog.png")
    known = {j["id"] for j in jobs(lab)}
    with page.expect_request(
        lambda r: r.method == "POST" and urlparse(r.url).path.endswith("/lepton-lab/api/jobs")
    ) as posted:
        submit(dialog)
    body = posted.value.post_data_json
    assert body["secrets"] == {"API_TOKEN": VALUE}, "the value is sent once, in the body"
    expect(dialog).to_have_count(0)
    job = new_job_after(lab, known, "the job with a secret")

    sidebar = page.locator("#lepton-sidebar")
    expect(sidebar).to_be_visible()
    job_row = sidebar.locator(f"li.lepton-job[data-lepton-job='{job['id']}']")
    expect(job_row).to_be_visible()
    # the notebook asserts the value: completed means the kernel received it
    expect(job_row).to_have_attribute("data-lepton-job-status", "completed", timeout=JOB_TIMEOUT_MS)
    names = job_row.locator(".lepton-job-secrets")
    expect(names).to_be_visible()
    expect(names).to_have_text("Secrets: API_TOKEN")

    # its log, on screen: what the job printed, with the value redacted
    job_row.locator("button.lepton-job-log").click()
    log = page.locator(f".lepton-JobLog[data-lepton-job='{job['id']}']")
    expect(log).to_have_attribute("data-lepton-log-complete", "true", timeout=UI_TIMEOUT_MS)
    expect(log.locator("pre.lepton-job-log-text")).to_contain_text("token ok")
    shot(page, "secrets-job-completed.png")

    assert_nowhere_in_page(page, requested)
    assert_nowhere_on_server(lab, job["id"])


def test_schedule_keeps_its_secret(lab: BrowserLab, page: Any, requested: list[str]) -> None:
    from playwright.sync_api import expect

    dialog = open_dialog(page)
    dialog.locator("input.lepton-job-schedule").check()
    dialog.locator("input.lepton-job-cron").fill("0 6 1 1 *")  # far away: never fires here
    dialog.locator("textarea.lepton-job-parameters").fill(f'{{"want_sha": "{VALUE_SHA}"}}')
    add_secret(dialog, "API_TOKEN", VALUE)
    submit(dialog)
    expect(dialog).to_have_count(0)
    (schedule,) = wait_for(lambda: schedules(lab), 15, "the schedule")
    assert schedule["secret_names"] == ["API_TOKEN"], schedule
    assert "secrets" not in schedule, schedule

    sidebar = page.locator("#lepton-sidebar")
    row = sidebar.locator(f"li.lepton-schedule[data-lepton-schedule='{schedule['id']}']")
    expect(row).to_be_visible()
    expect(row.locator(".lepton-schedule-secrets")).to_have_text("Secrets: API_TOKEN")

    # Run now: the fired job gets the stored secret, and shows its name
    known = {j["id"] for j in jobs(lab)}
    row.locator("button.lepton-schedule-run").click()
    job = new_job_after(lab, known, "the schedule's job")
    job_row = sidebar.locator(f"li.lepton-job[data-lepton-job='{job['id']}']")
    expect(job_row).to_have_attribute("data-lepton-job-status", "completed", timeout=JOB_TIMEOUT_MS)
    expect(job_row.locator(".lepton-job-secrets")).to_have_text("Secrets: API_TOKEN")
    shot(page, "secrets-schedule.png")

    assert_nowhere_in_page(page, requested)
    assert_nowhere_on_server(lab, job["id"])
