"""Job, schedule and lease records: the queries the job queue, the scheduler, REST and CLI need.

Every state change is a compare-and-set on the row (``UPDATE ... WHERE status = ...``), so two
processes sharing one database (two servers, a server and the ``lepton-lab scheduler`` daemon)
never both claim a job or fire the same schedule time, even if a lease expires mid-step.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lepton_lab.store.schema import (
    JOB_ACTIVE_STATUSES,
    JOB_FINAL_STATUSES,
    JobEventRow,
    JobMetricRow,
    JobRow,
    LeaseRow,
    ScheduleRow,
)


class UnknownJob(KeyError):
    """No job with that id."""

    def __str__(self) -> str:
        return f"no job with id {self.args[0]!r}"


class UnknownSchedule(KeyError):
    """No schedule with that id."""

    def __str__(self) -> str:
        return f"no schedule with id {self.args[0]!r}"


class JobQueries:
    """Jobs, their events and metrics, schedules and leases. A part of
    :class:`~lepton_lab.store.database.Store`, which gives it ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    # -- jobs --------------------------------------------------------------------------------
    def create_job(self, job_id: str, message: str = "submitted", **fields: Any) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = JobRow(id=job_id, status="queued", **fields)
            s.add(row)
            s.flush()
            s.add(JobEventRow(job_id=job_id, status="queued", attempt=0, message=message))
            return row.to_dict()

    def get_job(self, job_id: str, details: bool = True) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise UnknownJob(job_id)
            out = row.to_dict()
            if details:
                out["events"] = [
                    e.to_dict()
                    for e in s.scalars(
                        select(JobEventRow)
                        .where(JobEventRow.job_id == job_id)
                        .order_by(JobEventRow.id)
                    )
                ]
                out["metrics"] = [
                    m.to_dict()
                    for m in s.scalars(
                        select(JobMetricRow)
                        .where(JobMetricRow.job_id == job_id)
                        .order_by(JobMetricRow.id)
                    )
                ]
            return out

    def list_jobs(
        self,
        status: str | None = None,
        limit: int = 100,
        schedule_id: str | None = None,
    ) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
            if status:
                query = query.where(JobRow.status == status)
            if schedule_id:
                query = query.where(JobRow.schedule_id == schedule_id)
            return [r.to_dict() for r in s.scalars(query)]

    def delete_job(self, job_id: str) -> dict[str, Any]:
        """Remove an ended job's record; an active job must be stopped first (ValueError)."""
        with self.session() as s, s.begin():
            row = s.get(JobRow, job_id)
            if row is None:
                raise UnknownJob(job_id)
            if row.status in JOB_ACTIVE_STATUSES:
                raise ValueError(f"job {job_id} is {row.status}; stop it before deleting it")
            out = row.to_dict()
            s.execute(delete(JobEventRow).where(JobEventRow.job_id == job_id))
            s.execute(delete(JobMetricRow).where(JobMetricRow.job_id == job_id))
            s.delete(row)
            return out

    def transition(
        self,
        job_id: str,
        status: str,
        message: str = "",
        expect: Iterable[str] | None = None,
        owner_is: str | None = None,
        **fields: Any,
    ) -> bool:
        """Set the status (and fields) if the job is in one of ``expect``; log the change.

        Returns False, changing nothing, when another process got there first.
        """
        values = dict(fields, status=status)
        if status in JOB_FINAL_STATUSES:
            values.setdefault("ended_at", time.time())
            values.setdefault("owner", None)
        with self.session() as s, s.begin():
            query = update(JobRow).where(JobRow.id == job_id)
            if expect is not None:
                query = query.where(JobRow.status.in_(list(expect)))
            if owner_is is not None:
                query = query.where(JobRow.owner == owner_is)
            if s.execute(query.values(**values)).rowcount == 0:
                if s.get(JobRow, job_id) is None:
                    raise UnknownJob(job_id)
                return False
            attempt = s.scalar(select(JobRow.attempt).where(JobRow.id == job_id)) or 0
            s.add(JobEventRow(job_id=job_id, status=status, attempt=attempt, message=message))
        return True

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self.session() as s, s.begin():
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**fields))

    def add_job_event(self, job_id: str, status: str, message: str, attempt: int = 0) -> None:
        with self.session() as s, s.begin():
            s.add(JobEventRow(job_id=job_id, status=status, attempt=attempt, message=message))

    def claim(self, job_id: str, owner: str) -> dict[str, Any] | None:
        """Take a queued job for this process (compare-and-set); None if someone else did.

        The record has ``sealed_secrets`` too (the Fernet token of the job's secrets, or
        None), for the executor that starts the attempt; other records never carry it.
        """
        now = time.time()
        with self.session() as s, s.begin():
            result = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued")
                .values(
                    status="running",
                    owner=owner,
                    heartbeat_at=now,
                    started_at=now,
                    ended_at=None,
                    attempt=JobRow.attempt + 1,
                    progress={},
                    error=None,
                    error_cell=None,
                )
            )
            if result.rowcount == 0:
                return None
            row = s.get(JobRow, job_id)
            assert row is not None
            s.add(
                JobEventRow(
                    job_id=job_id, status="running", attempt=row.attempt, message=f"on {owner}"
                )
            )
            # the one record that carries the sealed secrets: the executor opens them
            return dict(row.to_dict(), sealed_secrets=row.secrets)

    def runnable(self, limit: int) -> list[str]:
        """Ids of queued jobs whose backoff has passed, oldest first."""
        with self.session() as s:
            query = (
                select(JobRow.id)
                .where(JobRow.status == "queued", JobRow.not_before <= time.time())
                .order_by(JobRow.created_at, JobRow.id)
                .limit(limit)
            )
            return list(s.scalars(query))

    def running(self, owner: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(JobRow).where(JobRow.status == "running")
            if owner is not None:
                query = query.where(JobRow.owner == owner)
            return [r.to_dict() for r in s.scalars(query)]

    def count(self, status: str, schedule_id: str | None = None) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(JobRow).where(JobRow.status == status)
            if schedule_id is not None:
                query = query.where(JobRow.schedule_id == schedule_id)
            return int(s.scalar(query) or 0)

    def heartbeat(self, owner: str, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if ids:
            with self.session() as s, s.begin():
                s.execute(
                    update(JobRow)
                    .where(JobRow.id.in_(ids), JobRow.owner == owner)
                    .values(heartbeat_at=time.time())
                )

    def stop_requested(self, job_id: str) -> bool:
        with self.session() as s:
            return bool(s.scalar(select(JobRow.stop_requested).where(JobRow.id == job_id)))

    def request_stop(self, job_id: str) -> str:
        """Stop a queued job at once; flag a running one for its owner. Returns the status.

        Raises ValueError for a job that has already ended.
        """
        if self.transition(
            job_id, "stopped", "stopped while queued", expect=["queued"], stop_requested=True
        ):
            return "stopped"
        with self.session() as s, s.begin():
            result = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "running")
                .values(stop_requested=True)
            )
            if result.rowcount:
                return "running"
            row = s.get(JobRow, job_id)
            if row is None:
                raise UnknownJob(job_id)
            raise ValueError(f"job {job_id} has already ended ({row.status})")

    def add_job_metrics(self, job_id: str, attempt: int, rows: Iterable[dict[str, Any]]) -> int:
        batch = [
            {
                "job_id": job_id,
                "attempt": attempt,
                "name": r["name"],
                "value": r["value"],
                "time": r["time"],
            }
            for r in rows
        ]
        if batch:
            with self.session() as s, s.begin():
                s.execute(insert(JobMetricRow), batch)
        return len(batch)

    def sealed_secrets(self, job_id: str) -> str | None:
        """The job's secrets as stored: one Fernet token (``lepton_lab.store.secrets``)."""
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise UnknownJob(job_id)
            return row.secrets

    # -- schedules ---------------------------------------------------------------------------
    def schedule_sealed_secrets(self, schedule_id: str) -> str | None:
        """The schedule's secrets as stored (a Fernet token), which every job it fires gets."""
        with self.session() as s:
            row = s.get(ScheduleRow, schedule_id)
            if row is None:
                raise UnknownSchedule(schedule_id)
            return row.secrets

    def create_schedule(self, schedule_id: str, **fields: Any) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = ScheduleRow(id=schedule_id, **fields)
            s.add(row)
            s.flush()
            return row.to_dict()

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(ScheduleRow, schedule_id)
            if row is None:
                raise UnknownSchedule(schedule_id)
            return row.to_dict()

    def list_schedules(self, active: bool | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(ScheduleRow).order_by(ScheduleRow.created_at, ScheduleRow.id)
            if active is not None:
                query = query.where(ScheduleRow.active == active)
            return [r.to_dict() for r in s.scalars(query)]

    def update_schedule(self, schedule_id: str, **fields: Any) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = s.get(ScheduleRow, schedule_id)
            if row is None:
                raise UnknownSchedule(schedule_id)
            for key, value in fields.items():
                setattr(row, key, value)
            s.flush()
            return row.to_dict()

    def delete_schedule(self, schedule_id: str) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = s.get(ScheduleRow, schedule_id)
            if row is None:
                raise UnknownSchedule(schedule_id)
            out = row.to_dict()
            s.delete(row)
            return out

    def advance_schedule(
        self, schedule_id: str, expected_next: float, new_next: float | None, **fields: Any
    ) -> bool:
        """Move ``next_fire_at`` on, only if it still is ``expected_next``: the one step that
        decides which process fires a schedule time."""
        with self.session() as s, s.begin():
            result = s.execute(
                update(ScheduleRow)
                .where(ScheduleRow.id == schedule_id, ScheduleRow.next_fire_at == expected_next)
                .values(next_fire_at=new_next, **fields)
            )
            return result.rowcount == 1

    # -- leases ------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False if another holds it."""
        now = time.time()
        with self.session() as s, s.begin():
            result = s.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == name,
                    (LeaseRow.holder == holder) | (LeaseRow.expires_at < now),
                )
                .values(holder=holder, expires_at=now + ttl)
            )
            if result.rowcount == 1:
                return True
        try:
            with self.session() as s, s.begin():
                s.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
            return True
        except IntegrityError:
            return False

    def release_lease(self, name: str, holder: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))

    def lease_holder(self, name: str) -> str | None:
        """The live holder of ``name``, or None when nobody holds it."""
        with self.session() as s:
            row = s.get(LeaseRow, name)
            if row is None or row.expires_at < time.time():
                return None
            return row.holder
