""" "Late": a schedule paused past its fire time, and a job still queued past its rule's
``after``, each notify once however often the sender checks; the message reaches a real
webhook. The checks run at fixed times (``now``) so a minute boundary cannot split them."""

from __future__ import annotations

import math
import time
from pathlib import Path

from lepton_lab.notify.delivery import Deliverer, NotifySettings, parse_lab_rules
from lepton_lab.notify.events import check_late
from lepton_lab.services.jobs import JobService
from lepton_lab.services.schedules import ScheduleService
from tests.jobs.conftest import write_notebook
from tests.notify.conftest import LAB_URL, Hooks


def mid_minute() -> float:
    """30 s into the current minute (a cron of every minute fired 30 s ago)."""
    return math.floor(time.time() / 60) * 60 + 30


def late_rows(store, kind: str) -> list[dict]:
    return [
        r
        for r in store.list_notifications(limit=1000)
        if r["event"] == "late" and r["subject_kind"] == kind
    ]


def test_a_paused_schedule_past_its_window_notifies_once(
    store, state: Path, tmp_path: Path, notify_env, webhook_server: Hooks
):
    nb = write_notebook(tmp_path / "nightly.ipynb", "print(1)")
    url = webhook_server.url("/late-schedule/SECRET", [200])
    schedules = ScheduleService(JobService(store, state))
    rule = {"on": ["late"], "after": "1s", "channel": "webhook", "url": url}
    paused = schedules.create(
        {
            "path": str(nb),
            "kernel": "python3",
            "cron": "* * * * *",
            "active": False,
            "notify": [rule],
        }
    )
    # one that fired on time: never late
    fired = schedules.create(
        {"path": str(nb), "kernel": "python3", "cron": "* * * * *", "notify": [rule]}
    )
    now = mid_minute()
    for sched in (paused, fired):
        store.update_schedule(sched.id, created_at=now - 3600)
    store.update_schedule(fired.id, last_fired_at=now - 29)
    settings = NotifySettings.load(state)  # the lab URL and SMTP from notify_env

    queued = [check_late(store, settings, now=now + dt) for dt in (0, 1, 5, 20, 29)]
    assert queued == [1, 0, 0, 0, 0]
    (row,) = late_rows(store, "schedule")
    assert row["subject_id"] == paused.id and row["channel"] == "webhook"
    assert row["display"] == f"http://127.0.0.1:{webhook_server.port}/…"
    assert row["title"] == "[Lepton Lab] schedule nightly is late"

    deliverer = Deliverer(store, "test-sender", settings)
    assert deliverer.step() == 1
    assert deliverer.step() == 0
    (body,) = webhook_server.ok("/late-schedule/SECRET")
    assert body["event"] == "late" and body["kind"] == "schedule" and body["status"] == "paused"
    assert (
        "did not fire for" in body["text"] and "It is paused; it last fired never." in body["text"]
    )
    assert body["link"] == f"{LAB_URL.rstrip('/')}/lab?lepton-schedule={paused.id}"
    assert body["record"]["id"] == paused.id and "notify" not in body["record"]
    # checked again (as the sender does every few seconds), also after it has missed more
    # fire times: still one message, sent once, until the schedule fires again
    assert check_late(store, settings, now=now + 25) == 0
    store.update_schedule(fired.id, last_fired_at=now + 590)  # the other keeps firing
    for dt in (125, 600):
        check_late(store, settings, now=now + dt)
    assert [r["subject_id"] for r in late_rows(store, "schedule")] == [paused.id]
    store.update_schedule(paused.id, last_fired_at=now + 630)  # resumed, fired, paused again
    store.update_schedule(fired.id, last_fired_at=now + 699)
    assert check_late(store, settings, now=now + 700) == 1  # late again: a new message


def test_a_lab_rule_on_schedules_is_late_once_too_and_ignores_other_kinds(
    store, state: Path, tmp_path: Path, notify_env
):
    nb = write_notebook(tmp_path / "report.ipynb", "print(1)")
    sched = ScheduleService(JobService(store, state)).create(
        {"path": str(nb), "kernel": "python3", "cron": "* * * * *", "active": False}
    )
    now = mid_minute()
    store.update_schedule(sched.id, created_at=now - 3600)
    lab = [
        {"on": ["late"], "after": "5s", "channel": "jupyterlab", "kinds": ["schedule"]},
        {
            "on": ["late"],
            "after": "5s",
            "channel": "email",
            "to": ["x@example.com"],
            "kinds": ["run"],
        },
    ]
    settings = NotifySettings(state_dir=state, rules=parse_lab_rules(lab, state))
    assert [check_late(store, settings, now=now + dt) for dt in (0, 3, 10)] == [1, 0, 0]
    (row,) = late_rows(store, "schedule")
    assert row["channel"] == "jupyterlab" and row["subject_id"] == sched.id


def test_a_job_still_queued_past_after_notifies_once(
    store, state: Path, tmp_path: Path, notify_env, smtp_server
):
    nb = write_notebook(tmp_path / "waits.ipynb", "print(1)")
    jobs = JobService(store, state)
    late = jobs.submit(
        {
            "path": str(nb),
            "kernel": "python3",
            "notify": [
                {"on": ["late"], "after": "30s", "channel": "email", "to": ["ops@example.com"]}
            ],
        }
    )
    patient = jobs.submit(
        {
            "path": str(nb),
            "kernel": "python3",
            "notify": [
                {"on": ["late"], "after": "1h", "channel": "email", "to": ["ops@example.com"]}
            ],
        }
    )
    now = time.time()
    for job in (late, patient):
        store.update_job(job.id, created_at=now - 60)  # no job service: both still queued
    settings = NotifySettings.load(state)

    assert [check_late(store, settings, now=now + dt) for dt in (0, 5, 120, 600)] == [1, 0, 0, 0]
    (row,) = late_rows(store, "job")
    assert row["subject_id"] == late.id and row["display"] == "ops@example.com"

    before = len(smtp_server.to("ops@example.com"))
    deliverer = Deliverer(store, "test-sender", settings)
    assert deliverer.step() == 1 and deliverer.step() == 0
    (mail,) = smtp_server.to("ops@example.com")[before:]
    assert mail["Subject"] == "[Lepton Lab] job waits late"
    text = mail.get_content()
    assert f"Job waits ({late.id}) late." in text
    assert "It is still queued 1m" in text  # 60 s and counting since it was submitted
    assert store.get_job(late.id)["status"] == "queued"  # a message changes nothing
