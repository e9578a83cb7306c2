"""Schedule times (croniter, in the schedule's timezone) and the rules for firing them.

Only the process holding the dispatcher lease fires, and each fire first moves the schedule's
``next_fire_at`` on with a compare-and-set: a time is fired once even when two processes (two
servers, or a server and the ``lepton-lab scheduler`` daemon) look at it together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from lepton_lab.store import Store

log = logging.getLogger("lepton_lab.jobs")

#: A fire time this late (seconds) counts as missed during downtime, not as merely late.
MISSED_AFTER = 30.0


def next_fire(cron: str, timezone: str, after: float) -> float:
    """The first time strictly after ``after`` (a Unix time) that ``cron`` names."""
    start = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return float(croniter(cron, start).get_next(float))


def upcoming(cron: str, timezone: str, after: float, count: int = 3) -> list[float]:
    start = datetime.fromtimestamp(after, ZoneInfo(timezone))
    it = croniter(cron, start)
    return [float(it.get_next(float)) for _ in range(count)]


def fire_due(
    store: Store,
    submit: Callable[[dict[str, Any], float], str],
    now: float | None = None,
) -> list[str]:
    """Fire every active schedule whose time has come; returns the ids of the jobs created.

    Catch-up after downtime: ``once`` fires a single job for all the missed times, ``none``
    fires nothing and waits for the next time. Overlap: ``skip`` does not fire while the
    schedule's previous job is still queued or running, ``queue`` fires anyway.
    """
    now = time.time() if now is None else now
    created: list[str] = []
    for sched in store.list_schedules(active=True):
        due = sched["next_fire_at"]
        if due is None or due > now:
            continue
        following = next_fire(sched["cron"], sched["timezone"], now)
        missed = now - due > MISSED_AFTER
        busy = sched["overlap"] == "skip" and (
            store.count("running", sched["id"]) + store.count("queued", sched["id"]) > 0
        )
        if (missed and sched["catchup"] == "none") or busy:
            if store.advance_schedule(sched["id"], due, following, skipped=sched["skipped"] + 1):
                why = "missed during downtime" if not busy else "its previous job is still going"
                log.info("Lepton Lab: schedule %s skipped %.0f (%s)", sched["id"], due, why)
            continue
        if not store.advance_schedule(
            sched["id"], due, following, last_fired_at=now, fired=sched["fired"] + 1
        ):
            continue  # another process fired this time
        try:
            job_id = submit(sched, due)
        except Exception as exc:  # noqa: BLE001 - the schedule says why; the loop goes on
            store.update_schedule(sched["id"], last_error=str(exc))
            log.warning("Lepton Lab: schedule %s could not submit its job: %s", sched["id"], exc)
            continue
        store.update_schedule(sched["id"], last_job_id=job_id, last_error=None)
        created.append(job_id)
    return created
