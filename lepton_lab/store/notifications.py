"""Queries of the notification log: queued once per event and rule (a unique key), claimed
by one sender at a time (a compare-and-set with an expiry, so a killed sender's claim passes
to the next), then sent, retried or failed."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lepton_lab.store.schema import NotificationRow


def _full(row: NotificationRow) -> dict[str, Any]:
    """Every column, the private ones too (the sender needs the target)."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class NotificationQueries:
    """A part of :class:`~lepton_lab.store.database.Store`, which gives it ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    def enqueue_notification(self, **fields: Any) -> int | None:
        """Queue one message; None when its ``key`` is queued already (another process saw
        the same event first)."""
        try:
            with self.session() as s, s.begin():
                row = NotificationRow(status="pending", **fields)
                s.add(row)
                s.flush()
                return int(row.id)
        except IntegrityError:
            return None

    def claim_notifications(
        self, holder: str, ttl: float, limit: int = 20, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Take up to ``limit`` messages that are due (or whose sender's claim expired)."""
        now = time.time() if now is None else now
        due = or_(
            and_(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now),
            and_(NotificationRow.status == "sending", NotificationRow.claimed_until < now),
        )
        claimed = []
        with self.session() as s, s.begin():
            ids = list(
                s.scalars(
                    select(NotificationRow.id).where(due).order_by(NotificationRow.id).limit(limit)
                )
            )
            for row_id in ids:
                taken = s.execute(
                    update(NotificationRow)
                    .where(NotificationRow.id == row_id, due)
                    .values(status="sending", claimed_by=holder, claimed_until=now + ttl)
                ).rowcount
                if taken:
                    claimed.append(row_id)
            rows = s.scalars(select(NotificationRow).where(NotificationRow.id.in_(claimed)))
            return [_full(row) for row in rows]

    def claim_notification(
        self, notification_id: int, holder: str, ttl: float
    ) -> dict[str, Any] | None:
        """Take one pending message now (a test message is sent by the process that asked)."""
        with self.session() as s, s.begin():
            taken = s.execute(
                update(NotificationRow)
                .where(NotificationRow.id == notification_id, NotificationRow.status == "pending")
                .values(status="sending", claimed_by=holder, claimed_until=time.time() + ttl)
            ).rowcount
            row = s.get(NotificationRow, notification_id) if taken else None
            return _full(row) if row is not None else None

    def notification_done(
        self,
        notification_id: int,
        holder: str,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        """Record one attempt: sent (no ``error``), retried at ``retry_at``, or failed. Only
        the claim's holder may (a sender whose claim expired and passed on writes nothing)."""
        values: dict[str, Any] = {
            "attempts": NotificationRow.attempts + 1,
            "claimed_by": None,
            "claimed_until": None,
            "error": error,
        }
        if error is None:
            values.update(status="sent", sent_at=time.time())
        elif retry_at is not None:
            values.update(status="pending", next_attempt_at=retry_at)
        else:
            values.update(status="failed")
        with self.session() as s, s.begin():
            return (
                s.execute(
                    update(NotificationRow)
                    .where(
                        NotificationRow.id == notification_id,
                        NotificationRow.status == "sending",
                        NotificationRow.claimed_by == holder,
                    )
                    .values(**values)
                ).rowcount
                == 1
            )

    def list_notifications(
        self,
        status: str | None = None,
        channel: str | None = None,
        since: int | None = None,
        user: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; with ``since``, those after that id, oldest first (a cursor)."""
        with self.session() as s:
            query = select(NotificationRow)
            if status is not None:
                query = query.where(NotificationRow.status == status)
            if channel is not None:
                query = query.where(NotificationRow.channel == channel)
            if user is not None:
                query = query.where(NotificationRow.user == user)
            if since is not None:
                query = query.where(NotificationRow.id > since).order_by(NotificationRow.id)
            else:
                query = query.order_by(NotificationRow.id.desc())
            return [row.to_dict() for row in s.scalars(query.limit(limit))]

    def last_notification_id(self) -> int:
        with self.session() as s:
            found = s.scalar(select(NotificationRow.id).order_by(NotificationRow.id.desc()))
            return int(found or 0)

    def notification(self, notification_id: int) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(NotificationRow, notification_id)
            return row.to_dict() if row is not None else None
