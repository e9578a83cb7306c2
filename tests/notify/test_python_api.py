"""``ll.jobs.submit(..., notify=[...])`` and ``ll.jobs.schedule(..., notify=[...])``: rules are
checked before anything is stored and kept sealed on the job and the schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lepton_lab as ll
from lepton_lab.contract.base import RequestError
from lepton_lab.jobs.dispatcher import LEASE
from tests.jobs.conftest import write_notebook

HOOK = "https://hooks.example.com/services/T0/B1/PYSECRET"


def test_submit_and_schedule_take_notify_rules(tmp_path: Path, state: Path, store):
    # another process holds the job service's lease: nothing here starts one or runs the job
    assert store.acquire_lease(LEASE, "elsewhere:1:test", 60)
    nb = write_notebook(tmp_path / "nb.ipynb", "print(1)")
    with pytest.raises(RequestError, match="unknown notification event 'crashed'"):
        ll.jobs.submit(nb, kernel="python3", notify=[{"on": ["crashed"], "channel": "jupyterlab"}])
    with pytest.raises(RequestError, match="a 'late' rule needs 'after'"):
        ll.jobs.schedule(
            nb,
            cron="0 3 * * *",
            kernel="python3",
            notify=[{"on": ["late"], "channel": "jupyterlab"}],
        )
    assert store.list_jobs() == [] and store.list_schedules() == []

    job = ll.jobs.submit(
        nb,
        kernel="python3",
        notify=[{"on": ["failed"], "channel": "webhook", "url": HOOK}],
    )
    (rule,) = store.get_job(job.id)["notify"]
    assert rule["on"] == ["failed"] and rule["channel"] == "webhook"
    assert rule["display"] == "https://hooks.example.com/…" and rule["sealed"]
    sched = ll.jobs.schedule(
        nb,
        cron="0 3 * * *",
        kernel="python3",
        notify=[
            {"on": ["late", "failed"], "after": "90m", "channel": "email", "to": "ann@example.com"}
        ],
    )
    (rule,) = sched.record()["notify"]
    assert rule["on"] == ["late", "failed"] and rule["after"] == 5400
    assert rule["display"] == "ann@example.com"
    # a job the schedule fires gets its rules as stored
    fired = sched.run_now()
    assert store.get_job(fired.id)["notify"] == sched.record()["notify"]
    assert "PYSECRET" not in json.dumps(store.list_jobs())
