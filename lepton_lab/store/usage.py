"""Queries of the usage ledger (``usage_records``): written where the work is measured (a
run's driver, a job's supervisor, a deployment's supervisor, the registry, a download) and
read by the reports and by retention."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.orm import Session

from lepton_lab.store.schema import UsageRecordRow

_MISSING = object()

#: the columns a report sums (``lepton_lab.metering.report``), in this order (``tags`` last:
#: ``usage_rows`` decodes it itself)
REPORT_COLUMNS = (
    "kind",
    "user",
    "notebook",
    "started_at",
    "ended_at",
    "cpu_seconds",
    "gpu_seconds",
    "gpu_util_seconds",
    "gpu_model",
    "wall_seconds",
    "peak_memory",
    "gpu_peak_memory",
    "requests",
    "bytes",
    "deleted_at",
    "tags",
)


class UsageQueries:
    """A part of :class:`~lepton_lab.store.database.Store`, which gives it ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    def put_usage(self, kind: str, subject: str, **fields: Any) -> None:
        """The record of ``subject`` with ``fields``: written once, then updated in place as
        the thing it measures goes on (a deployment's requests, a version's bytes)."""
        with self.session() as s, s.begin():
            row_id = s.scalar(
                select(UsageRecordRow.id)
                .where(UsageRecordRow.kind == kind, UsageRecordRow.subject == subject)
                .limit(1)
            )
            if row_id is None:
                fields.setdefault("started_at", time.time())
                s.add(UsageRecordRow(kind=kind, subject=subject, **fields))
            elif fields:
                s.execute(
                    update(UsageRecordRow).where(UsageRecordRow.id == row_id).values(**fields)
                )

    def add_usage_record(self, kind: str, subject: str, **fields: Any) -> None:
        """One more record (a download: each is its own)."""
        fields.setdefault("started_at", time.time())
        with self.session() as s, s.begin():
            s.add(UsageRecordRow(kind=kind, subject=subject, **fields))

    def usage_record(self, kind: str, subject: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.scalars(
                select(UsageRecordRow).where(
                    UsageRecordRow.kind == kind, UsageRecordRow.subject == subject
                )
            ).first()
            return row.to_dict() if row is not None else None

    def usage_records(
        self, kind: str | None = None, subject_prefix: str | None = None
    ) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(UsageRecordRow).order_by(UsageRecordRow.id)
            if kind is not None:
                query = query.where(UsageRecordRow.kind == kind)
            if subject_prefix is not None:
                query = query.where(UsageRecordRow.subject.startswith(subject_prefix))
            return [row.to_dict() for row in s.scalars(query)]

    def usage_rows(self, start: float, end: float) -> list[tuple[Any, ...]]:
        """The records a report over [start, end) sums, as tuples of :data:`REPORT_COLUMNS`:
        work that began in the window, and stored things that existed during it."""
        # Read through the connection (no ORM loading) with the tags as their JSON text,
        # decoded here once per distinct list: ORM loading and a json.loads per row were
        # over half of this query's time over 100,000 records (bench/bench_usage.py).
        columns = [getattr(UsageRecordRow, name) for name in REPORT_COLUMNS[:-1]]
        columns.append(cast(UsageRecordRow.tags, Text))
        stored = UsageRecordRow.kind == "storage"
        # two queries, not one with an OR: each then uses its own index (the window's on
        # started_at, the kind's for stored things) where SQLite's plan for the OR read both
        work = select(*columns).where(
            UsageRecordRow.started_at >= start, UsageRecordRow.started_at < end, ~stored
        )
        kept = select(*columns).where(
            stored,
            UsageRecordRow.started_at < end,
            UsageRecordRow.deleted_at.is_(None) | (UsageRecordRow.deleted_at > start),
        )
        with self.session() as s:
            decoded: dict[str | None, Any] = {None: None}
            rows = []
            connection = s.connection()
            found = connection.execute(work).all() + connection.execute(kept).all()
            for *row, text in found:
                tags = decoded.get(text, _MISSING)
                if tags is _MISSING:
                    tags = decoded[text] = json.loads(text)
                rows.append((*row, list(tags) if isinstance(tags, list) else tags))
            return rows

    def count_usage(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count(UsageRecordRow.id))) or 0)

    def delete_usage_before(self, when: float) -> int:
        """Drop records that began before ``when`` (and stored things deleted before it)."""
        with self.session() as s, s.begin():
            stored = UsageRecordRow.kind == "storage"
            result = s.execute(
                delete(UsageRecordRow).where(
                    ((~stored) & (UsageRecordRow.started_at < when))
                    | (stored & (UsageRecordRow.deleted_at < when))
                )
            )
            return int(result.rowcount or 0)
