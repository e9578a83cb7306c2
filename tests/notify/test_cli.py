"""``lepton-lab run|schedule --notify SPEC`` and ``lepton-lab notify test|list`` as a user types
them (real subprocesses), against the test's SMTP and webhook servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_lab.cli.notify import SpecError, parse_spec
from tests.jobs.conftest import write_notebook
from tests.notify.conftest import Hooks, Mailbox


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lepton_lab.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        (
            "failed,timed_out:email:ann@example.com,bob@example.com",
            {
                "on": ["failed", "timed_out"],
                "channel": "email",
                "to": ["ann@example.com", "bob@example.com"],
            },
        ),
        (
            "failed:webhook:https://hooks.slack.com/services/T0/B1/x?a=b:c",
            {
                "on": ["failed"],
                "channel": "webhook",
                "url": "https://hooks.slack.com/services/T0/B1/x?a=b:c",
            },
        ),
        (
            "late=2h:webhook:http://127.0.0.1:9/hook",
            {"on": ["late"], "after": "2h", "channel": "webhook", "url": "http://127.0.0.1:9/hook"},
        ),
        (
            "completed, late=30m :jupyterlab",
            {"on": ["completed", "late"], "after": "30m", "channel": "jupyterlab"},
        ),
        (
            "failed:email+html:ann@example.com",
            {"on": ["failed"], "channel": "email", "to": ["ann@example.com"], "attach_html": True},
        ),
    ],
)
def test_good_specs_parse_to_rules(spec: str, rule: dict):
    assert parse_spec(spec) == rule


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("failed", "write EVENTS:CHANNEL[:TARGET]"),
        (":email:ann@example.com", "write EVENTS:CHANNEL[:TARGET]"),
        ("failed:sms:+4912345", "unknown notification channel 'sms'"),
        ("crashed:email:ann@example.com", "unknown notification event 'crashed'"),
        ("failed:email:ann", "'ann' is not an email address"),
        ("failed:email", "an email rule needs 'to'"),
        ("failed:webhook:ftp://x.example/y", "a webhook URL must be http:// or https://"),
        ("failed:webhook", "a webhook rule needs 'url'"),
        ("late:webhook:https://x.example/y", "a 'late' rule needs 'after'"),
        ("late=:jupyterlab", "'late=' needs a duration"),
        ("late=soon:jupyterlab", "cannot parse the duration 'soon'"),
        ("failed=1h:jupyterlab", "only 'late' takes a duration"),
        ("failed:jupyterlab:ann@example.com", "a jupyterlab rule takes no 'to'"),
    ],
)
def test_bad_specs_name_the_spec_and_the_mistake(spec: str, message: str):
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    text = str(info.value)
    assert text.startswith(f"--notify {spec!r}: ") and message in text, text
    assert "\n" not in text


def test_run_and_schedule_store_their_rules_and_a_bad_spec_stores_nothing(
    tmp_path: Path, state: Path, store, notify_env
):
    nb = write_notebook(tmp_path / "train.ipynb", "print(1)")
    bad = cli(
        "run",
        str(nb),
        "--kernel",
        "python3",
        "--notify",
        "failed:email:ann",
        "--notify",
        "completed:jupyterlab",
    )
    assert bad.returncode == 2
    assert bad.stderr == (
        "lepton-lab: error: --notify 'failed:email:ann': 'ann' is not an email address "
        "(name@example.com)\n"
    )
    bad = cli("schedule", str(nb), "--cron", "0 3 * * *", "--notify", "late:jupyterlab")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "a 'late' rule needs 'after'" in bad.stderr
    assert store.list_jobs() == [] and store.list_schedules() == []
    assert not (state / "jobs").exists() or not any((state / "jobs").iterdir())

    hook = "https://hooks.example.com/services/T0/B1/SECRETX"
    done = cli(
        "run",
        str(nb),
        "--kernel",
        "python3",
        "--notify",
        "failed,timed_out:email:ann@example.com,bob@example.com",
        "--notify",
        f"failed:webhook:{hook}",
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    shown = cli("jobs", "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["notify"] == [
        {
            "on": ["failed", "timed_out"],
            "channel": "email",
            "display": "ann@example.com, bob@example.com",
            "after": None,
        },
        {
            "on": ["failed"],
            "channel": "webhook",
            "display": "https://hooks.example.com/…",
            "after": None,
        },
    ]
    assert "SECRETX" not in shown.stdout

    done = cli("schedule", str(nb), "--cron", "0 3 * * *", "--notify", f"late=2h:webhook:{hook}")
    assert done.returncode == 0, done.stderr
    (sched,) = store.list_schedules()
    assert sched["id"] == done.stdout.strip()
    (rule,) = sched["notify"]
    assert rule["on"] == ["late"] and rule["after"] == 7200 and rule["sealed"]
    assert "SECRETX" not in json.dumps(sched)


def test_notify_test_sends_now_or_says_why_not_and_list_shows_the_log(
    state: Path, store, notify_env: Mailbox, webhook_server: Hooks
):
    ok = webhook_server.url("/cli/ok/SECRET", [200])
    done = cli("notify", "test", "webhook", "--url", ok)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sent to http://127.0.0.1:{webhook_server.port}/…\n"
    (body,) = webhook_server.ok("/cli/ok/SECRET")
    assert body["event"] == "test" and body["title"] == "[Lepton Lab] test notification"

    before = len(notify_env.to("ann@example.com"))
    done = cli("notify", "test", "email", "--to", "ann@example.com")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent to ann@example.com\n"
    (mail,) = notify_env.to("ann@example.com")[before:]
    assert mail["Subject"] == "[Lepton Lab] test notification"
    assert "A test message from Lepton Lab to ann@example.com" in mail.get_content()

    down = webhook_server.url("/cli/down/SECRET", [503])
    done = cli("notify", "test", "webhook", "--url", down)
    assert done.returncode == 1
    assert done.stderr == (
        f"lepton-lab: error: webhook to http://127.0.0.1:{webhook_server.port}/… failed: "
        "the webhook answered HTTP 503\n"
    )
    done = cli("notify", "test", "sms", "--to", "ann@example.com")
    assert done.returncode == 2 and "unknown notification channel 'sms'" in done.stderr
    done = cli("notify", "test", "webhook", "--url", "file:///etc/passwd")
    assert done.returncode == 2 and "must be http:// or https://" in done.stderr

    listed = cli("notify", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "created", "status", "tries"]
    assert len(lines) == 4  # the header and three messages (the refused ones were never queued)
    assert "sent" in lines[3] and "ann@example.com" not in lines[3]  # newest first
    assert "ann@example.com" in lines[2] and "sent" in lines[2]
    assert "failed" in lines[1] and "(the webhook answered HTTP 503)" in lines[1]
    assert "SECRET" not in listed.stdout

    as_json = cli("notify", "list", "--json", "--status", "sent")
    rows = json.loads(as_json.stdout)
    assert [r["channel"] for r in rows] == ["email", "webhook"]
    assert all(r["event"] == "test" and r["status"] == "sent" for r in rows)
    bad = cli("notify", "list", "--limit", "0")
    assert bad.returncode == 2 and "'limit'" in bad.stderr and bad.stderr.count("\n") == 1
