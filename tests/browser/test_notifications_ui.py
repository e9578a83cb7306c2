"""Notifications in the lab (#18, ``labextension/src/notifications.ts`` and the Notify part of
``labextension/src/jobdialog.ts``): a real ``jupyter lab`` and headless Chromium, one lab for
the module (the tests run in order and share its jobs).

1. A job started from the Run-as-job dialog, with a Notify rule typed in the dialog (completed
   → a webhook on a closed port of this machine): the rule is stored with the job; when the job
   completes a success toast names the job and its status, and its **Open** opens the job's
   log; a second job that fails gets an error toast.
2. The webhook's delivery fails for real (connection refused, retried with backoff until its
   max attempts) and the sidebar's "Failed notifications" section lists it with its title,
   channel, target, error and attempts.
3. The link of an email or webhook (``/lab?lepton-job=<id>``) opens the job's log at load.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_jobs_ui import (
    JOB_TIMEOUT_MS,
    NOTEBOOK,
    open_dialog,
    settle,
    submit,
    write_parameters_notebook,
)
from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    UI_TIMEOUT_MS,
    BrowserLab,
    browser,
    open_notebook,
    page,
    shot,
    wait_for,
)
from tests.browser.test_models_ui import open_sidebar

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: what the tests learn and pass on (they run in order on one lab)
SEEN: dict[str, Any] = {}


def closed_port() -> int:
    """A port of this machine nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    base = tmp_path_factory.mktemp("notify-lab")
    state = base / "lepton"
    state.mkdir()
    lepton = dict(LEPTON, state_dir=str(state), n_workers=1, job_concurrency=2)
    server = BrowserLab(base / "root", base / "state", lepton=lepton)
    server.root_dir.mkdir(parents=True, exist_ok=True)
    write_parameters_notebook(server.root_dir / NOTEBOOK)
    with server.serving():
        yield server


def get(lab: BrowserLab, path: str) -> Any:
    code, body = lab.request("GET", f"lepton-lab/api/{path}")
    assert code == 200, (path, code, body)
    return body


def notifications(lab: BrowserLab, **query: str) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return get(lab, f"notifications?{qs}")["notifications"]


def new_job(lab: BrowserLab, known: set[str], what: str) -> dict:
    return wait_for(
        lambda: next((j for j in get(lab, "jobs?limit=20")["jobs"] if j["id"] not in known), None),
        30,
        what,
    )


def test_toast_when_a_job_from_the_dialog_ends(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    started = time.monotonic()
    open_notebook(page, lab, NOTEBOOK)
    settle(page)
    port = closed_port()
    hook = f"http://127.0.0.1:{port}/hook"

    # the Notify part: the server's channels but the lab's own, "after" only with late
    dialog = open_dialog(page)
    notify = dialog.locator(".lepton-job-notify")
    expect(notify).to_be_visible()
    channel = notify.locator("select.lepton-job-notify-channel")
    options = channel.locator("option")
    expect(options).to_have_count(2)
    assert sorted(options.all_inner_texts()) == ["email", "webhook"], options.all_inner_texts()
    after = notify.locator("input.lepton-job-notify-after")
    expect(after).to_be_hidden()
    late = notify.locator("input.lepton-job-notify-event[value='late']")
    late.check()
    expect(after).to_be_visible()
    late.uncheck()
    expect(after).to_be_hidden()

    # a client-side refusal shows in the dialog: a webhook without http(s)
    notify.locator("input.lepton-job-notify-event[value='completed']").check()
    channel.select_option("webhook")
    target = notify.locator("input.lepton-job-notify-target")
    target.fill("ftp://127.0.0.1/hook")
    dialog.locator("textarea.lepton-job-parameters").fill('{"n": 3}')
    submit(dialog)
    error = dialog.locator(".lepton-job-form-error")
    expect(error).to_contain_text("http:// or https://")
    assert get(lab, "jobs?limit=5")["jobs"] == [], "a refused form made a job"

    target.fill(hook)
    submit(dialog)
    expect(dialog).to_have_count(0)
    job = new_job(lab, set(), "the job with a webhook rule")
    rules = job.get("notify") or []
    assert [(r["on"], r["channel"]) for r in rules] == [(["completed"], "webhook")], job
    assert "127.0.0.1" in rules[0]["display"] and hook not in str(job), rules
    SEEN.update(job=job, hook_port=port)

    # the toast: success, naming the job and its status; Open opens the job's log
    toast = page.locator(".Toastify__toast").filter(has_text=f"({job['id']}) completed")
    expect(toast).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    text = toast.inner_text()
    assert job["name"] in text and "completed" in text, text
    expect(toast).to_have_class(class_pattern("Toastify__toast--success"))
    shot(page, "notify-toast-completed.png")
    rows = [
        n
        for n in notifications(lab, channel="jupyterlab")
        if n["subject_id"] == job["id"] and n["event"] == "completed"
    ]
    assert len(rows) == 1, rows
    toast.locator("button.jp-toast-button", has_text="Open").click()
    log = page.locator(f".lepton-JobLog[data-lepton-job='{job['id']}']")
    expect(log).to_be_visible()
    expect(log).to_have_attribute("data-lepton-log-complete", "true", timeout=UI_TIMEOUT_MS)
    expect(log.locator("pre.lepton-job-log-text")).to_contain_text("product 63")
    print(f"job {job['id']}: toast and its log after {time.monotonic() - started:.1f} s")

    # a job that fails: an error toast
    known = {job["id"]}
    dialog = open_dialog(page)
    dialog.locator("textarea.lepton-job-parameters").fill('{"n": -1}')
    submit(dialog)
    expect(dialog).to_have_count(0)
    failing = new_job(lab, known, "the failing job")
    toast = page.locator(".Toastify__toast").filter(has_text=f"({failing['id']}) failed")
    expect(toast).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    expect(toast).to_have_class(class_pattern("Toastify__toast--error"))
    assert failing["name"] in toast.inner_text(), toast.inner_text()
    shot(page, "notify-toast-failed.png")
    print(f"both toasts after {time.monotonic() - started:.1f} s")


def class_pattern(name: str) -> Any:
    """A regular expression that matches a class attribute holding ``name``."""
    import re

    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def test_failed_webhook_delivery_in_the_sidebar(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    job = SEEN.get("job")
    assert job, "the first test did not start its job"
    started = time.monotonic()

    # the real sender tries the closed port until its max attempts (backoff 2, 4, 8, 16 s)
    def failed_row() -> dict | None:
        for n in notifications(lab, status="failed"):
            if n["subject_id"] == job["id"] and n["channel"] == "webhook":
                return n
        return None

    row = wait_for(failed_row, 150, "the webhook delivery to fail", interval=1.0)
    assert row["attempts"] == row["max_attempts"] >= 1, row
    assert row["error"], row
    print(
        f"webhook delivery failed after {row['attempts']} attempts, "
        f"{time.monotonic() - started:.1f} s more: {row['error']}"
    )

    sidebar = open_sidebar(page)
    section = sidebar.locator("section.lepton-notifications")
    expect(section).to_be_visible(timeout=UI_TIMEOUT_MS)
    section.scroll_into_view_if_needed()
    item = section.locator(f"li.lepton-notification[data-lepton-notification-id='{row['id']}']")
    expect(item).to_be_visible()
    expect(item.locator(".lepton-notification-title")).to_contain_text(job["name"])
    expect(item.locator(".lepton-notification-title")).to_contain_text("completed")
    expect(item.locator(".lepton-notification-channel")).to_have_text(f"webhook → {row['display']}")
    first_error_line = next(line.strip() for line in row["error"].splitlines() if line.strip())
    expect(item.locator(".lepton-notification-error")).to_have_text(first_error_line)
    expect(item.locator(".lepton-notification-attempts")).to_have_text(
        f"{row['attempts']}/{row['max_attempts']} attempts"
    )
    expect(item.locator(".lepton-notification-time")).not_to_have_text("")
    # only failed deliveries: the in-lab toasts (sent) are not listed
    assert section.locator("li.lepton-notification").count() == len(
        notifications(lab, status="failed")
    )
    shot(page, "notify-sidebar-failed.png")


def test_link_opens_the_job(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    job = SEEN.get("job")
    assert job, "the first test did not start its job"
    page.goto(f"{lab.url}lab?lepton-job={job['id']}&token={lab.token}")
    log = page.locator(f".lepton-JobLog[data-lepton-job='{job['id']}']")
    expect(log).to_be_visible(timeout=60_000)
    expect(log.locator("pre.lepton-job-log-text")).to_contain_text("product 63")
    shot(page, "notify-link-opens-job.png")
