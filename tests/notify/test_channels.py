"""Email and webhook notifications of real jobs: a real job service (papermill runner
processes) runs a planted failing notebook and a good one; their messages go to a real SMTP
server (aiosmtpd) and a local HTTP server that fails on purpose. The two jobs run once for
the module; each test reads what they left."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lepton_lab.jobs.dispatcher import Dispatcher
from lepton_lab.services.jobs import JobService
from lepton_lab.store import Store, open_store
from tests.jobs.conftest import wait_ended, write_notebook
from tests.notify.conftest import LAB_URL, Hooks, Mailbox, notify_environment
from tests.support.polling import wait_for

FINAL = ("sent", "failed")


@dataclass
class Ended:
    store: Store
    failed: dict[str, Any]
    completed: dict[str, Any]
    flaky: str  # the webhook path that answers 500, 500, then 200
    dead: str  # the webhook path that always answers 500
    dead_ok: str  # the completed job's always-500 webhook


@pytest.fixture(scope="module")
def ended(
    tmp_path_factory: pytest.TempPathFactory, smtp_server: Mailbox, webhook_server: Hooks
) -> Iterator[Ended]:
    tmp = tmp_path_factory.mktemp("notify-channels")
    with pytest.MonkeyPatch.context() as mp:
        state = tmp / "state"
        state.mkdir()
        mp.setenv("LEPTON_LAB_STATE_DIR", str(state))
        mp.setenv("LEPTON_LAB_DATABASE_URL", f"sqlite:///{state / 'lab.db'}")
        notify_environment(mp, smtp_server)
        store = open_store()
        jobs = JobService(store, state)
        bad = write_notebook(tmp / "fail.ipynb", "x = 1", "raise ValueError('boom')")
        good = write_notebook(tmp / "good.ipynb", "import lepton_lab as ll", "print('fine')")
        flaky = webhook_server.url("/flaky/T0/SECRET-flaky", [500, 500, 200])
        dead = webhook_server.url("/dead/T0/SECRET-dead", [500])
        dead_ok = webhook_server.url("/dead-ok/T0/SECRET-dead-ok", [500])
        failed = jobs.submit(
            {
                "path": str(bad),
                "kernel": "python3",
                "output_formats": ["ipynb", "html"],
                "notify": [
                    {
                        "on": ["failed", "timed_out"],
                        "channel": "email",
                        "to": ["ann@example.com"],
                        "attach_html": True,
                    },
                    {"on": ["failed"], "channel": "email", "to": ["bob@example.com"]},
                    {"on": ["completed"], "channel": "email", "to": ["nobody@example.com"]},
                    {"on": ["failed"], "channel": "webhook", "url": flaky},
                    {"on": ["failed"], "channel": "webhook", "url": dead},
                ],
            }
        )
        completed = jobs.submit(
            {
                "path": str(good),
                "kernel": "python3",
                "notify": [{"on": ["completed"], "channel": "webhook", "url": dead_ok}],
            }
        )
        dispatcher = Dispatcher(store, state, concurrency=2, name="notify-test", tick=0.1)
        dispatcher.start()
        try:
            ids = (failed.id, completed.id)
            for job_id in ids:
                wait_ended(store, job_id, timeout=120)

            def settled() -> bool:
                rows = store.list_notifications(limit=1000)
                # failed job: 2 emails + 2 webhooks + the toast; completed: 1 webhook + toast
                return len(rows) == 7 and all(r["status"] in FINAL for r in rows)

            wait_for(settled, 60, "every message sent or failed")
            yield Ended(
                store=store,
                failed=store.get_job(failed.id),
                completed=store.get_job(completed.id),
                flaky="/flaky/T0/SECRET-flaky",
                dead="/dead/T0/SECRET-dead",
                dead_ok="/dead-ok/T0/SECRET-dead-ok",
            )
        finally:
            dispatcher.close()


def rows_of(ended: Ended, job_id: str, channel: str) -> list[dict[str, Any]]:
    return [
        r
        for r in ended.store.list_notifications(channel=channel, limit=1000)
        if r["subject_id"] == job_id
    ]


def test_the_failure_email_holds_the_failing_cell_error_the_link_and_the_html(
    ended: Ended, smtp_server: Mailbox
):
    job = ended.failed
    assert job["status"] == "failed"
    assert "cell 2 (In [2]) raised ValueError: boom" in job["error"]

    (mail,) = smtp_server.to("ann@example.com")
    assert mail["Subject"] == "[Lepton Lab] job fail failed"
    assert mail["To"] == "ann@example.com"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert f"Job fail ({job['id']}) failed." in text
    assert "cell 2 (In [2]) raised ValueError: boom" in text
    assert "Failing cell: 2" in text
    assert "Duration: " in text
    link = f"{LAB_URL.rstrip('/')}/lab?lepton-job={job['id']}"
    assert f"Open it in the lab: {link}" in text

    # attach_html: the executed notebook's HTML, with the traceback in it
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/html"
    assert attachment.get_filename() == "output.html"
    # as text with its charset, so the notebook's non-ASCII characters survive
    assert attachment.get_content_charset() == "utf-8"
    html = attachment.get_content().replace("\r\n", "\n")
    assert html == (Path(job["output_dir"]) / "output.html").read_text(encoding="utf-8")
    assert "boom" in html and "<html" in html.lower()

    # the rule without attach_html: the same text, no attachment
    (plain,) = smtp_server.to("bob@example.com")
    assert "cell 2 (In [2]) raised ValueError: boom" in plain.get_content()
    assert list(plain.iter_attachments()) == []
    # a rule on "completed" sends nothing for a failed job
    assert smtp_server.to("nobody@example.com") == []

    emails = rows_of(ended, job["id"], "email")
    assert sorted(r["display"] for r in emails) == ["ann@example.com", "bob@example.com"]
    assert all(r["status"] == "sent" and r["attempts"] == 1 for r in emails)


def test_a_webhook_that_answers_500_twice_then_200_gets_exactly_one_message_after_3_attempts(
    ended: Ended, webhook_server: Hooks
):
    hits = webhook_server.hits[ended.flaky]
    assert [code for code, _ in hits] == [500, 500, 200]
    (delivered,) = webhook_server.ok(ended.flaky)
    job = ended.failed
    assert delivered["event"] == "failed" and delivered["status"] == "failed"
    assert delivered["kind"] == "job"
    assert delivered["record"]["id"] == job["id"]
    assert delivered["record"]["status"] == "failed"
    assert "notify" not in delivered["record"]  # never the rules (their sealed URLs)
    assert "cell 2 (In [2]) raised ValueError: boom" in delivered["text"]
    assert delivered["title"] == delivered["summary"] == "[Lepton Lab] job fail failed"
    assert delivered["link"] == f"{LAB_URL.rstrip('/')}/lab?lepton-job={job['id']}"

    (row,) = [r for r in rows_of(ended, job["id"], "webhook") if r["status"] == "sent"]
    assert row["status"] == "sent" and row["attempts"] == 3 and row["error"] is None
    assert row["display"] == f"http://127.0.0.1:{webhook_server.port}/…"  # never the path


def test_a_webhook_that_always_fails_ends_failed_after_max_attempts_and_the_jobs_keep_status(
    ended: Ended, webhook_server: Hooks
):
    failed_rows = ended.store.list_notifications(status="failed", limit=1000)
    assert len(failed_rows) == 2
    by_job = {r["subject_id"]: r for r in failed_rows}
    assert set(by_job) == {ended.failed["id"], ended.completed["id"]}
    for row in failed_rows:
        assert row["channel"] == "webhook"
        assert row["attempts"] == row["max_attempts"] == 5
        assert row["error"] == "the webhook answered HTTP 500"
        assert row["sent_at"] is None
    assert [code for code, _ in webhook_server.hits[ended.dead]] == [500] * 5
    assert [code for code, _ in webhook_server.hits[ended.dead_ok]] == [500] * 5
    # the gaps doubled (BACKOFF 0.05 s): the 5th attempt came 0.05+0.1+0.2+0.4 s after the 1st
    row = by_job[ended.completed["id"]]
    assert row["next_attempt_at"] - row["created_at"] >= 0.75

    # a channel's failure never changes the job
    assert ended.store.get_job(ended.failed["id"])["status"] == "failed"
    completed = ended.store.get_job(ended.completed["id"])
    assert completed["status"] == "completed" and completed["error"] is None


def test_each_job_gets_one_toast_for_its_user(ended: Ended):
    for job in (ended.failed, ended.completed):
        (toast,) = rows_of(ended, job["id"], "jupyterlab")
        assert toast["status"] == "sent" and toast["event"] == job["status"]
        assert toast["user"] == job["user"]
        assert toast["display"] == "JupyterLab"
        assert toast["message"]["link"] == f"{LAB_URL.rstrip('/')}/lab?lepton-job={job['id']}"
