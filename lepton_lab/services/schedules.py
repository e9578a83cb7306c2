"""The schedules facade: create, edit (pause/resume), delete, run now, list."""

from __future__ import annotations

import time
from typing import Any

from lepton_lab.contract import NotFound, RequestError, parse
from lepton_lab.contract.jobs import (
    SCHEDULE_EDITABLE,
    TIMING_FIELDS,
    Job,
    Schedule,
    ScheduleList,
    SchedulePatch,
    ScheduleRequest,
    ScheduleTiming,
)
from lepton_lab.jobs.schedules import upcoming
from lepton_lab.jobs.spec import check_timing, job_request, resolve_job, schedule_fields
from lepton_lab.jobs.submission import new_id, new_schedule_fields, secret_fields
from lepton_lab.jobs.submission import submit_scheduled as queue_scheduled
from lepton_lab.metering.ledger import current_user
from lepton_lab.notify.rules import store_rule
from lepton_lab.services.jobs import JobService, relative_path
from lepton_lab.store import UnknownSchedule

#: How many next fire times a single schedule's view lists.
UPCOMING = 3


class ScheduleService:
    """Schedules, seen as the jobs facade sees jobs: same store, root (which confines
    notebook paths), kernels and default executor; the jobs they fire go through it."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.state_dir = jobs.state_dir
        self.root = jobs.root
        self.kernels = jobs.kernels
        self.default_executor = jobs.default_executor

    def record(self, schedule_id: str) -> dict[str, Any]:
        try:
            return self.store.get_schedule(schedule_id)
        except UnknownSchedule as exc:
            raise NotFound(str(exc)) from None

    def view(self, record: dict[str, Any], with_upcoming: bool = False) -> Schedule:
        out = dict(record, path=relative_path(record.get("notebook"), self.root))
        if with_upcoming:
            out["upcoming"] = (
                upcoming(record["cron"], record["timezone"], time.time(), UPCOMING)
                if record["active"]
                else []
            )
        return Schedule.model_validate(out)

    def get(self, schedule_id: str) -> Schedule:
        return self.view(self.record(schedule_id), with_upcoming=True)

    def list(self) -> ScheduleList:
        return ScheduleList(schedules=[self.view(s) for s in self.store.list_schedules()])

    def create(self, body: dict[str, Any] | ScheduleRequest, user: str | None = None) -> Schedule:
        """Validate and store a schedule; its first fire time is computed now."""
        request = body if isinstance(body, ScheduleRequest) else parse(ScheduleRequest, body)
        timing = check_timing(request)  # a ScheduleRequest is a ScheduleTiming
        job = resolve_job(request, self.root, self.kernels(), self.default_executor)
        record = self.store.create_schedule(
            new_id(),
            notebook=str(job.notebook),
            cwd=str(job.cwd),
            **schedule_fields(job),
            **secret_fields(self.state_dir, job.secrets),
            **new_schedule_fields(timing),
            user=user or current_user(),
            notify=[store_rule(r, self.state_dir) for r in job.notify],
        )
        return self.view(record, with_upcoming=True)

    def changes(
        self, current: dict[str, Any], body: Any, now: float | None = None
    ) -> dict[str, Any]:
        """The field updates for an edit of schedule ``current``.

        Job fields are checked again against the notebook as it is now (an edit cannot store
        a parameter the notebook would reject); parameters stored earlier are not re-judged
        unless the edit replaces them. ``secrets`` sent replace the stored ones whole.
        ``next_fire_at`` is recomputed when cron, timezone or ``active`` change; pausing
        clears it.
        """
        patch = body if isinstance(body, SchedulePatch) else parse(SchedulePatch, body)
        sent = patch.model_fields_set - {"allow_unknown"}
        if not sent:
            raise RequestError(
                f"nothing to change; send one or more of {', '.join(sorted(SCHEDULE_EDITABLE))}"
            )
        changes: dict[str, Any] = {}
        job_keys = sent - set(TIMING_FIELDS)
        if job_keys:
            merged = job_request(current)
            merged.update({k: getattr(patch, k) for k in job_keys - {"notify"}})
            allow = patch.allow_unknown if "allow_unknown" in patch.model_fields_set else None
            merged["allow_unknown"] = allow if allow is not None else "parameters" not in sent
            job = resolve_job(
                parse(ScheduleRequest, {**merged, "cron": current["cron"]}),
                None,
                self.kernels(),
                self.default_executor,
            )
            changes.update(schedule_fields(job))
            if "secrets" in sent:  # replaced whole ({} removes them); absent: kept as they are
                changes.update(secret_fields(self.state_dir, job.secrets))
            if "notify" in sent:  # replaced whole, as secrets are
                changes["notify"] = [store_rule(r, self.state_dir) for r in patch.notify]
        timing_keys = sent & set(TIMING_FIELDS)
        if timing_keys:
            timing = ScheduleTiming.model_validate(
                {k: (getattr(patch, k) if k in timing_keys else current[k]) for k in TIMING_FIELDS}
            )
            fields = new_schedule_fields(check_timing(timing), now)
            if not timing_keys & {"cron", "timezone", "active"}:
                del fields["next_fire_at"]  # overlap/catchup alone leave the next time as it is
            changes.update(fields)
        return changes

    def update(self, schedule_id: str, body: Any) -> Schedule:
        """Edit a schedule (``{"active": false}`` pauses, ``true`` resumes); ``body`` is a
        dict or a parsed :class:`SchedulePatch`."""
        changes = self.changes(self.record(schedule_id), body)
        try:
            record = self.store.update_schedule(schedule_id, **changes)
        except UnknownSchedule as exc:
            raise NotFound(str(exc)) from None
        return self.view(record, with_upcoming=True)

    def pause(self, schedule_id: str) -> Schedule:
        return self.update(schedule_id, {"active": False})

    def resume(self, schedule_id: str) -> Schedule:
        return self.update(schedule_id, {"active": True})

    def delete(self, schedule_id: str) -> None:
        """Remove the schedule; the jobs it fired stay."""
        try:
            self.store.delete_schedule(schedule_id)
        except UnknownSchedule as exc:
            raise NotFound(str(exc)) from None

    def run_now(self, schedule_id: str) -> Job:
        """Queue the schedule's notebook now, outside its cron times."""
        schedule = self.record(schedule_id)
        record = queue_scheduled(self.store, self.state_dir, self.kernels(), schedule)
        self.store.update_schedule(schedule_id, last_job_id=record["id"])
        return self.jobs.view(record)
