"""Notification rules and the log through a real in-process Jupyter server (no cluster
workers, no job service: nothing runs): bad rules are 400s that store nothing, a stored rule
shows a webhook by its host only (its URL is nowhere on disk in clear), and
``GET /notifications`` lists the log with ``status``, ``mine`` and ``since``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.jobs.conftest import write_notebook

API = ("lepton-lab", "api")
SECRET = "T0000/B1111/XyZsEcReTpAtH42"
HOOK = f"https://hooks.example.com/services/{SECRET}"


@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    return {**lab_config, "n_workers": 0, "run_jobs": False}


async def call(jp_fetch: Any, method: str, *parts: str, body: Any = None, **params: str):
    try:
        response = await jp_fetch(
            *API,
            *parts,
            method=method,
            body=json.dumps(body) if body is not None else None,
            params=params,
        )
    except HTTPClientError as exc:
        assert exc.response is not None
        response = exc.response
    return response.code, json.loads(response.body) if response.body else None


BAD_RULES = [
    (
        {"on": ["failed"], "channel": "sms", "to": ["ann@example.com"]},
        "unknown notification channel 'sms'; installed: email, jupyterlab, webhook",
    ),
    (
        {"on": ["exploded"], "channel": "email", "to": ["ann@example.com"]},
        "unknown notification event 'exploded'; accepted: failed, timed_out, completed, late",
    ),
    (
        {"on": ["failed"], "channel": "email", "to": ["ann@example.com", "not an address"]},
        "'not an address' is not an email address",
    ),
    (
        {"on": ["failed"], "channel": "email", "to": ["ann@@example"]},
        "'ann@@example' is not an email address",
    ),
    (
        {"on": ["failed"], "channel": "webhook", "url": "ftp://hooks.example.com/x"},
        "a webhook URL must be http:// or https://",
    ),
    (
        {"on": ["failed"], "channel": "webhook", "url": "javascript:alert(1)"},
        "a webhook URL must be http:// or https://",
    ),
    (
        {"on": ["late"], "channel": "webhook", "url": HOOK},
        "a 'late' rule needs 'after'",
    ),
    (
        {"on": ["late"], "after": "soon", "channel": "jupyterlab"},
        "'after': cannot parse the duration 'soon'",
    ),
]


async def test_bad_rules_are_400s_with_the_message_and_store_nothing(
    jp_fetch, jp_root_dir, lab_app
):
    write_notebook(Path(jp_root_dir) / "nb.ipynb", "print(1)")
    store = lab_app.store
    # one schedule stored before, to PATCH with bad rules
    code, sched = await call(
        jp_fetch,
        "POST",
        "schedules",
        body={"path": "nb.ipynb", "kernel": "python3", "cron": "0 3 * * *"},
    )
    assert code == 201 or code == 200, sched
    jobs_before, schedules_before = len(store.list_jobs(limit=1000)), len(store.list_schedules())
    notifications_before = store.last_notification_id()
    for rule, message in BAD_RULES:
        job = {"path": "nb.ipynb", "kernel": "python3", "notify": [rule]}
        code, error = await call(jp_fetch, "POST", "jobs", body=job)
        assert code == 400 and message in error["message"], (rule, error)
        schedule = {**job, "cron": "* * * * *"}
        code, error = await call(jp_fetch, "POST", "schedules", body=schedule)
        assert code == 400 and message in error["message"], (rule, error)
        code, error = await call(
            jp_fetch, "PATCH", "schedules", sched["id"], body={"notify": [rule]}
        )
        assert code == 400 and message in error["message"], (rule, error)
    # one good rule next to a bad one: the whole request is refused
    mixed = [{"on": ["failed"], "channel": "jupyterlab"}, BAD_RULES[0][0]]
    code, error = await call(
        jp_fetch, "POST", "jobs", body={"path": "nb.ipynb", "kernel": "python3", "notify": mixed}
    )
    assert code == 400 and "unknown notification channel 'sms'" in error["message"]
    assert len(store.list_jobs(limit=1000)) == jobs_before == 0
    assert len(store.list_schedules()) == schedules_before == 1
    assert store.get_schedule(sched["id"])["notify"] == []  # the PATCHes changed nothing
    assert store.last_notification_id() == notifications_before
    assert not (Path(lab_app.state_dir) / "jobs").exists() or not any(
        (Path(lab_app.state_dir) / "jobs").iterdir()
    )


async def test_a_stored_webhook_shows_as_its_host_and_its_url_is_not_on_disk_in_clear(
    jp_fetch, jp_root_dir, lab_app
):
    write_notebook(Path(jp_root_dir) / "nb.ipynb", "print(1)")
    rules = [
        {"on": ["failed", "timed_out"], "channel": "webhook", "url": HOOK},
        {"on": ["late"], "after": "2h", "channel": "email", "to": ["ann@example.com"]},
    ]
    code, job = await call(
        jp_fetch, "POST", "jobs", body={"path": "nb.ipynb", "kernel": "python3", "notify": rules}
    )
    assert code in (200, 201), job
    shown = [
        {
            "on": ["failed", "timed_out"],
            "channel": "webhook",
            "display": "https://hooks.example.com/…",
            "after": None,
        },
        {"on": ["late"], "channel": "email", "display": "ann@example.com", "after": 7200.0},
    ]
    assert job["notify"] == shown
    code, again = await call(jp_fetch, "GET", "jobs", job["id"])
    assert code == 200 and again["notify"] == shown
    code, sched = await call(
        jp_fetch,
        "POST",
        "schedules",
        body={"path": "nb.ipynb", "kernel": "python3", "cron": "0 3 * * *", "notify": rules},
    )
    assert code in (200, 201) and sched["notify"] == shown
    code, listing = await call(jp_fetch, "GET", "schedules")
    assert SECRET not in json.dumps(listing) and SECRET not in json.dumps(again)

    # PATCH replaces the rules whole
    code, patched = await call(
        jp_fetch, "PATCH", "schedules", sched["id"], body={"notify": [rules[1]]}
    )
    assert code == 200 and patched["notify"] == shown[1:]

    # the webhook URL is sealed: not in the database's bytes, nor anywhere in the state dir
    state = Path(lab_app.state_dir)
    assert lab_app.store.get_job(job["id"])["notify"][0]["sealed"]
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name.startswith("lab.db") or p.suffix == ".db" for p in files), files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


async def test_the_log_lists_newest_first_by_status_mine_and_since(jp_fetch, jp_root_dir, lab_app):
    store = lab_app.store
    write_notebook(Path(jp_root_dir) / "nb.ipynb", "print(1)")
    code, job = await call(jp_fetch, "POST", "jobs", body={"path": "nb.ipynb", "kernel": "python3"})
    assert code in (200, 201), job
    me = store.get_job(job["id"])["user"]  # whom the server says this caller is

    def put(n: int, user: str, channel: str = "webhook") -> int:
        row_id = store.enqueue_notification(
            key=f"test:{n}",
            event="failed",
            channel=channel,
            target={},
            display=f"target {n}",
            subject_kind="job",
            subject_id=job["id"],
            user=user,
            title=f"message {n}",
            message={"text": f"message {n}"},
        )
        assert row_id is not None
        return row_id

    ids = [put(1, me), put(2, "someone-else"), put(3, me, "jupyterlab"), put(4, "someone-else")]
    # one sent, one failed (as a sender records them)
    claimed = store.claim_notification(ids[0], "tester", 60)
    assert claimed is not None and store.notification_done(ids[0], "tester")
    assert store.claim_notification(ids[1], "tester", 60)
    assert store.notification_done(ids[1], "tester", "the webhook answered HTTP 500")

    code, log = await call(jp_fetch, "GET", "notifications")
    assert code == 200
    assert [n["id"] for n in log["notifications"]] == ids[::-1] and log["last_id"] == ids[-1]
    first = log["notifications"][-1]
    assert first["status"] == "sent" and first["attempts"] == 1 and first["sent_at"]
    assert "target" not in first and "key" not in first  # never the sealed target
    code, log = await call(jp_fetch, "GET", "notifications", status="failed")
    (failed,) = log["notifications"]
    assert failed["id"] == ids[1] and failed["error"] == "the webhook answered HTTP 500"
    code, log = await call(jp_fetch, "GET", "notifications", status="pending")
    assert [n["id"] for n in log["notifications"]] == [ids[3], ids[2]]
    code, log = await call(jp_fetch, "GET", "notifications", mine="true")
    assert [n["id"] for n in log["notifications"]] == [ids[2], ids[0]]
    assert {n["user"] for n in log["notifications"]} == {me}
    code, log = await call(jp_fetch, "GET", "notifications", since=str(ids[1]))
    assert [n["id"] for n in log["notifications"]] == ids[2:]  # oldest first: a cursor
    code, log = await call(
        jp_fetch, "GET", "notifications", since=str(ids[0]), mine="true", channel="jupyterlab"
    )
    assert [n["id"] for n in log["notifications"]] == [ids[2]]
    code, log = await call(jp_fetch, "GET", "notifications", since=str(ids[-1]))
    assert log["notifications"] == [] and log["last_id"] == ids[-1]
    code, log = await call(jp_fetch, "GET", "notifications", limit="2")
    assert [n["id"] for n in log["notifications"]] == [ids[3], ids[2]]

    for params, message in [
        ({"status": "lost"}, "'status' must be one of"),
        ({"since": "-1"}, "'since'"),
        ({"limit": "0"}, "'limit'"),
        ({"mine": "perhaps"}, "'mine'"),
    ]:
        code, error = await call(jp_fetch, "GET", "notifications", **params)
        assert code == 400 and message in error["message"], (params, error)
