"""What queues a notification: a job's or run's end (called right after the end is stored),
and the "late" checks the sender runs. Each message is queued once per event and rule (the
row's unique key), whichever processes see the event."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lepton_lab.notify import rules as rulebook

log = logging.getLogger("lepton_lab.notify")

#: job statuses that are events
JOB_EVENTS = ("completed", "failed", "timed_out")
#: lines of a job's error that a message quotes (the failing cell and the exception)
ERROR_LINES = 12
#: the lab's own toast for what the user started, unless ``c.LeptonLab.notify_in_lab`` is off
IN_LAB = {
    "on": ["completed", "failed", "timed_out"],
    "channel": "jupyterlab",
    "digest": "lab",
    "display": "JupyterLab",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _link(kind: str, subject_id: str, lab_url: str | None) -> str | None:
    if not lab_url:
        return None
    return f"{lab_url.rstrip('/')}/lab?lepton-{kind}={subject_id}"


def _message(
    kind: str,
    subject_id: str,
    headline: str,
    event: str,
    status: str | None,
    lines: list[str],
    record: dict[str, Any],
    lab_url: str | None,
    html_path: str | None = None,
) -> dict[str, Any]:
    """What every channel gets: the title, the text, the link and the record."""
    return {
        "kind": kind,
        "event": event,
        "status": status,
        "text": "\n".join(lines),
        "link": _link(kind, subject_id, lab_url),
        "record": record,
        "html_path": html_path,
        "title": f"[Lepton Lab] {kind} {headline}",
    }


def job_record(job: dict[str, Any]) -> dict[str, Any]:
    """The job as a message carries it: no rules (their sealed secrets), no paths of this
    machine's private folders."""
    return {k: v for k, v in job.items() if k not in ("notify", "sealed_secrets", "secrets_key")}


def job_message(job: dict[str, Any], event: str, lab_url: str | None) -> dict[str, Any]:
    """Subject and text of a job's message: status, notebook, duration, the error's first
    lines with the failing cell, the last value of each metric, the link."""
    name = job.get("name") or Path(job.get("notebook") or "").name or job["id"]
    ended = job.get("ended_at") or time.time()
    started = job.get("started_at")
    lines = [
        f"Job {name} ({job['id']}) {event.replace('_', ' ')}.",
        f"Notebook: {job.get('notebook')}",
        f"Status: {job.get('status')}, attempt {job.get('attempt', 0)} of "
        f"{(job.get('retries') or 0) + 1}",
    ]
    if event == "late":
        since = job.get("created_at") or ended
        lines.append(
            f"It is still {job.get('status')} {_duration(time.time() - since)} after "
            "it was submitted."
        )
    else:
        lines.append(f"Duration: {_duration(ended - started if started else None)}")
    if job.get("error"):
        error = job["error"].strip().splitlines()
        if job.get("error_cell"):
            lines.append(f"Failing cell: {job['error_cell']}")
        lines.append("Error:")
        lines += [f"    {line}" for line in error[:ERROR_LINES]]
        if len(error) > ERROR_LINES:
            lines.append(f"    ... ({len(error) - ERROR_LINES} more lines in the job's log)")
    metrics: dict[str, float] = {}
    for row in job.get("metrics") or []:
        metrics[row["name"]] = row["value"]
    if metrics:
        lines.append("Metrics: " + ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())))
    html = Path(job.get("output_dir") or "/nonexistent") / "output.html"
    return _message(
        "job",
        job["id"],
        f"{name} {event.replace('_', ' ')}",
        event,
        job.get("status"),
        lines,
        job_record(job),
        lab_url,
        str(html) if html.is_file() else None,
    )


def run_message(run: dict[str, Any], event: str, lab_url: str | None) -> dict[str, Any]:
    name = run.get("name") or run["id"]
    started, ended = run.get("started_at"), run.get("ended_at") or time.time()
    lines = [
        f"Run {name} ({run['id']}, {run.get('framework')}, {run.get('world_size')} worker(s)) "
        f"{event.replace('_', ' ')}.",
        f"Duration: {_duration(ended - started if started else None)}",
    ]
    if run.get("error"):
        lines.append("Error:")
        lines += [f"    {line}" for line in run["error"].strip().splitlines()[:ERROR_LINES]]
    record = {k: v for k, v in run.items() if k not in ("events", "usage")}
    return _message(
        "run",
        run["id"],
        f"{name} {event.replace('_', ' ')}",
        event,
        run.get("status"),
        lines,
        record,
        lab_url,
    )


def enqueue(
    store: Any,
    rule: dict[str, Any],
    key: str,
    message: dict[str, Any],
    subject_kind: str,
    subject_id: str,
    user: str,
    max_attempts: int | None = None,
) -> int | None:
    """Queue one message for one rule; None when it was queued before."""
    html = message.pop("html_path", None)
    target = {"target": rule.get("target") or {}, "sealed": rule.get("sealed")}
    if html:
        target["html_path"] = html
    return store.enqueue_notification(
        key=f"{key}:{rule.get('digest') or rulebook.rule_key(rule)}",
        event=message["event"],
        channel=rule["channel"],
        target=target,
        display=rule.get("display", ""),
        subject_kind=subject_kind,
        subject_id=subject_id,
        user=user,
        title=message["title"],
        message=message,
        **({"max_attempts": max_attempts} if max_attempts else {}),
    )


def _safely(what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - a notification never fails the job or the run
        log.warning("Lepton Lab: could not queue the notifications of %s: %s", what, exc)


def job_ended(store: Any, job_id: str, status: str, settings: Any) -> None:
    """Queue what a job's final status calls for: its own rules, the lab's that match it,
    and the lab's toast for its user."""
    _safely(f"job {job_id}", _job_ended, store, job_id, status, settings)


def _job_ended(store: Any, job_id: str, status: str, settings: Any) -> None:
    if status not in JOB_EVENTS:
        return
    job = store.get_job(job_id)
    chosen = [r for r in job.get("notify") or [] if status in r["on"]]
    chosen += [r for r in settings.rules if status in r["on"] and rulebook.matches(r, "job", job)]
    if settings.in_lab:
        chosen.append(IN_LAB)
    for rule in chosen:
        message = job_message(job, status, settings.lab_url)
        key = f"job:{job_id}#{job.get('attempt', 0)}:{status}"
        enqueue(store, rule, key, message, "job", job_id, job.get("user") or "")


def run_ended(store: Any, run_id: str, status: str, settings: Any) -> None:
    """Queue what a run's end calls for: the lab's rules about runs, and the toast."""
    _safely(f"run {run_id}", _run_ended, store, run_id, status, settings)


def _run_ended(store: Any, run_id: str, status: str, settings: Any) -> None:
    from lepton_lab.metering.ledger import current_notebook, current_tags, current_user

    if status not in JOB_EVENTS:
        return
    run = store.get_run(run_id)
    about = dict(run, tags=current_tags(), notebook=current_notebook())
    chosen = [r for r in settings.rules if status in r["on"] and rulebook.matches(r, "run", about)]
    if settings.in_lab:
        chosen.append(IN_LAB)
    for rule in chosen:
        message = run_message(run, status, settings.lab_url)
        enqueue(store, rule, f"run:{run_id}:{status}", message, "run", run_id, current_user())


def check_late(store: Any, settings: Any, now: float | None = None) -> int:
    """Queue "late" messages: jobs queued or running longer than a late rule's ``after``,
    and schedules whose last fire time per their cron passed ``after`` ago without a fire
    (paused, or the lab was down). Each once. Returns how many were queued."""
    from croniter import croniter

    now = time.time() if now is None else now
    queued = 0
    active = [j for status in ("queued", "running") for j in store.list_jobs(status, 1000)]
    for job in active:
        rules = [r for r in job.get("notify") or [] if "late" in r["on"]]
        rules += [
            r for r in settings.rules if "late" in r["on"] and rulebook.matches(r, "job", job)
        ]
        for rule in rules:
            if now - (job.get("created_at") or now) > rule.get("after", 0):
                full = store.get_job(job["id"])
                message = job_message(full, "late", settings.lab_url)
                if enqueue(
                    store,
                    rule,
                    f"job:{job['id']}:late",
                    message,
                    "job",
                    job["id"],
                    job.get("user") or "",
                ):
                    queued += 1
    for sched in store.list_schedules():
        rules = [r for r in sched.get("notify") or [] if "late" in r["on"]]
        rules += [
            r
            for r in settings.rules
            if "late" in r["on"] and rulebook.matches(r, "schedule", sched)
        ]
        for rule in rules:
            after = rule.get("after", 0)
            due = _previous_fire(croniter, sched, now - after)
            if due is None or due < (sched.get("created_at") or now):
                continue
            if (sched.get("last_fired_at") or 0) >= due:
                continue
            message = schedule_message(sched, due, after, settings.lab_url)
            # once per lateness: until the schedule fires again (a paused every-minute
            # schedule is one message, not one a minute)
            key = f"schedule:{sched['id']}:late:{sched.get('last_fired_at') or 'never'}"
            if enqueue(store, rule, key, message, "schedule", sched["id"], sched.get("user") or ""):
                queued += 1
    return queued


def _previous_fire(croniter: Any, sched: dict[str, Any], before: float) -> float | None:
    """The schedule's last fire time per its cron at or before ``before``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        start = datetime.fromtimestamp(before, ZoneInfo(sched.get("timezone") or "UTC"))
        return float(croniter(sched["cron"], start).get_prev(float))
    except Exception:  # noqa: BLE001 - a cron the schedule code accepted; never fatal here
        return None


def schedule_message(
    sched: dict[str, Any], due: float, after: float, lab_url: str | None
) -> dict[str, Any]:
    from datetime import datetime, timezone

    name = sched.get("name") or Path(sched.get("notebook") or "").name or sched["id"]
    when = datetime.fromtimestamp(due, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    state = "paused" if not sched.get("active") else "active"
    lines = [
        f"Schedule {name} ({sched['id']}, cron {sched['cron']} {sched.get('timezone')}) did not "
        f"fire for {when}, {_duration(after)} ago.",
        f"It is {state}; it last fired "
        + (
            datetime.fromtimestamp(sched["last_fired_at"], tz=timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"
            )
            if sched.get("last_fired_at")
            else "never"
        )
        + ".",
    ]
    record = {k: v for k, v in sched.items() if k not in ("notify", "secrets")}
    return _message(
        "schedule", sched["id"], f"{name} is late", "late", state, lines, record, lab_url
    )


#: how far back the sender looks for ended jobs whose messages were never queued
CATCH_UP = 3600.0


#: how far before the previous look a later look goes back (a job's end is stored, then its
#: messages queued, within moments; this covers a slow database and clock steps)
CATCH_UP_OVERLAP = 60.0


def catch_up(
    store: Any, settings: Any, now: float | None = None, since: float | None = None
) -> None:
    """Queue the messages of jobs that ended in the last hour without them: a process killed
    between storing a job's end and queueing its messages (each is queued once by its key,
    so the ones already queued are not queued again). ``since``: when the caller last
    looked; only jobs ended after it (less CATCH_UP_OVERLAP) are looked at again, so the
    sender does not re-read every job of the last hour each LATE_EVERY seconds."""
    now = time.time() if now is None else now
    after = now - CATCH_UP
    if since is not None:
        after = max(after, since - CATCH_UP_OVERLAP)
    for status in JOB_EVENTS:
        for job in store.list_jobs(status, 100):
            if (job.get("ended_at") or 0) >= after:
                job_ended(store, job["id"], status, settings)
