"""Schedules: cron times, firing on time, pause, catch-up and overlap, and the lease that lets
exactly one process fire (a real server, the real daemon, one shared SQLite file)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lepton_lab as ll
from lepton_lab.config.settings import state_dir
from lepton_lab.jobs.dispatcher import LEASE
from lepton_lab.jobs.schedules import fire_due, next_fire
from lepton_lab.jobs.spec import validate_job
from lepton_lab.jobs.submission import create_job
from lepton_lab.services.jobs import JobService
from lepton_lab.services.schedules import ScheduleService
from tests.jobs.conftest import wait_for, write_notebook
from tests.support.labserver import LabServer

EVERY_2S = "* * * * * */2"


def make_schedule(store, path: Path, **body) -> dict:
    body = {"path": str(path), "kernel": "python3", "cron": EVERY_2S, **body}
    service = ScheduleService(JobService(store, state_dir(), None, lambda: {"python3"}))
    return service.create(body).model_dump()


def fire_times(store, schedule_id: str) -> list[float]:
    """The schedule time each of its jobs was fired for (from the job's first event)."""
    out = []
    for job in store.list_jobs(schedule_id=schedule_id, limit=1000):
        message = store.get_job(job["id"])["events"][0]["message"]
        match = re.search(r"for (\d+\.\d+)$", message)
        assert match, message
        out.append(float(match.group(1)))
    return sorted(out)


def test_next_fire_follows_cron_in_the_schedule_timezone():
    # 2026-03-29 is the night Paris moves to summer time (02:00 -> 03:00 local)
    after = 1774738800.0  # 2026-03-28 23:00 UTC = 2026-03-29 00:00 Paris
    assert next_fire("30 9 * * *", "Europe/Paris", after) == 1774769400.0  # 09:30 CEST
    assert next_fire("* * * * * */10", "UTC", 100.0) == 110.0


def test_a_seconds_level_schedule_fires_on_time_and_pause_stops_it(store, service, tmp_path):
    nb = write_notebook(tmp_path / "tick.ipynb", "print('tick')")
    sched = make_schedule(store, nb, overlap="queue")
    service(concurrency=1)
    wait_for(lambda: len(store.list_jobs(schedule_id=sched["id"])) >= 2, timeout=20)
    for job in store.list_jobs(schedule_id=sched["id"]):
        due = fire_times(store, sched["id"])
        # created within a second of its cron time
        assert any(0 <= job["created_at"] - d < 1.0 for d in due)
    ll.jobs.Schedule(sched["id"], store).pause()
    time.sleep(0.5)
    count = len(store.list_jobs(schedule_id=sched["id"]))
    time.sleep(4.5)
    assert len(store.list_jobs(schedule_id=sched["id"])) == count
    assert store.get_schedule(sched["id"])["next_fire_at"] is None
    ll.jobs.Schedule(sched["id"], store).resume()
    wait_for(lambda: len(store.list_jobs(schedule_id=sched["id"])) > count, timeout=10)


def _submitter(service_obj):
    return service_obj.submit_scheduled


def test_catch_up_once_fires_one_job_for_all_missed_times(store, service, tmp_path):
    nb = write_notebook(tmp_path / "c.ipynb", "print(1)")
    svc = service(concurrency=1)
    svc.close()  # only its submit function is used; nothing fires on its own
    sched = make_schedule(store, nb, cron="0 * * * *", catchup="once")
    store.update_schedule(sched["id"], next_fire_at=time.time() - 5 * 3600)  # 5 h of downtime
    created = fire_due(store, _submitter(svc))
    assert len(created) == 1
    after = store.get_schedule(sched["id"])
    assert after["next_fire_at"] > time.time() and after["fired"] == 1


def test_catch_up_none_skips_the_missed_times(store, service, tmp_path):
    nb = write_notebook(tmp_path / "c.ipynb", "print(1)")
    svc = service(concurrency=1)
    svc.close()
    sched = make_schedule(store, nb, cron="0 * * * *", catchup="none")
    store.update_schedule(sched["id"], next_fire_at=time.time() - 5 * 3600)
    assert fire_due(store, _submitter(svc)) == []
    after = store.get_schedule(sched["id"])
    assert after["skipped"] == 1 and after["fired"] == 0 and after["next_fire_at"] > time.time()


def test_overlap_skip_does_not_fire_while_the_previous_job_is_going(store, service, tmp_path):
    nb = write_notebook(tmp_path / "c.ipynb", "print(1)")
    svc = service(concurrency=1)
    svc.close()
    sched = make_schedule(store, nb, overlap="skip")
    now = time.time()
    store.update_schedule(sched["id"], next_fire_at=now - 1)
    assert len(fire_due(store, _submitter(svc), now=now)) == 1  # queued, never started
    due = store.get_schedule(sched["id"])["next_fire_at"]
    assert fire_due(store, _submitter(svc), now=due + 0.1) == []
    assert store.get_schedule(sched["id"])["skipped"] == 1
    store.update_schedule(sched["id"], overlap="queue")
    due = store.get_schedule(sched["id"])["next_fire_at"]
    assert len(fire_due(store, _submitter(svc), now=due + 0.1)) == 1


def test_the_lease_has_one_holder_until_it_expires(store):
    assert store.acquire_lease("x", "a", ttl=0.5)
    assert not store.acquire_lease("x", "b", ttl=0.5)
    assert store.acquire_lease("x", "a", ttl=0.5)  # renewal
    assert store.lease_holder("x") == "a"
    time.sleep(0.6)
    assert store.lease_holder("x") is None
    assert store.acquire_lease("x", "b", ttl=0.5)
    store.release_lease("x", "b")
    assert store.acquire_lease("x", "a", ttl=0.5)


def _daemon(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lepton_lab.cli.main", "scheduler", "--concurrency", "2"],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )


def test_daemon_and_server_together_fire_each_time_exactly_once(store, state, tmp_path):
    root = tmp_path / "root"
    nb = write_notebook(root / "tick.ipynb", "print('tick')")
    sched = make_schedule(store, nb, overlap="queue")
    env = dict(os.environ)
    daemon = _daemon(env, tmp_path / "daemon.log")
    server = LabServer(
        root,
        lepton={
            "cluster_mode": "local",
            "n_workers": 1,
            "dashboard_address": "127.0.0.1:0",
            "job_concurrency": 2,
        },
        app="jupyter_server",
    )
    try:
        server.start()
        t0 = time.time()
        # wait for the window's last time to fire rather than a fixed sleep: on a loaded
        # 2-core CI machine a tick can come late (CI once stopped 3 s before t0 + 12 fired)
        wait_for(lambda: (d := fire_times(store, sched["id"])) and d[-1] >= t0 + 12, timeout=60)
        holders = store.lease_holder(LEASE)
        assert holders is not None
        assert daemon.poll() is None and server.proc.poll() is None
    finally:
        server.stop()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    due = fire_times(store, sched["id"])
    assert len(due) == len(set(due)), "a schedule time fired twice"
    in_window = [d for d in due if t0 + 2 <= d <= t0 + 12]
    assert len(in_window) >= 5  # every 2 s for 10 s, none missed
    assert store.get_schedule(sched["id"])["fired"] == len(due)
    log = (tmp_path / "daemon.log").read_text()
    assert "lepton-lab scheduler:" in log


@pytest.mark.parametrize("retries", [0, 1])
def test_a_job_left_running_by_a_killed_server_is_reconciled_on_restart(
    store, state, tmp_path, retries
):
    root = tmp_path / "root"
    marker = tmp_path / "second-attempt"
    nb = write_notebook(
        root / "slow.ipynb",
        "import os, time\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    time.sleep(600)\n"
        "print('quick second attempt')",
    )
    config = {"cluster_mode": "local", "n_workers": 1, "dashboard_address": "127.0.0.1:0"}
    spec = validate_job({"path": str(nb), "retries": retries}, None, {"python3"})
    job = create_job(store, state, spec)
    server = LabServer(root, lepton=config, app="jupyter_server").start()
    try:
        wait_for(marker.exists, timeout=60)
        runner = store.get_job(job["id"])["runner_pid"]
        assert store.get_job(job["id"])["status"] == "running"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
    finally:
        server.stop()
    restarted = LabServer(root, lepton=config, app="jupyter_server").start()
    try:
        record = store.get_job(job["id"])
        events = [(e["status"], e["message"]) for e in record["events"]]
        assert any(s == "failed" and "interrupted by restart" in m for s, m in events), events
        wait_for(lambda: not psutil_alive(runner), timeout=15)  # the orphan runner was ended
        if retries:
            final = wait_for(
                lambda: (r := store.get_job(job["id"]))["status"] == "completed" and r,
                timeout=90,
            )
            assert final["attempt"] == 2
        else:
            assert record["status"] == "failed"
            assert "interrupted by restart" in record["error"]
    finally:
        restarted.stop()


def psutil_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
