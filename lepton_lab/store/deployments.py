"""Queries of deployments: one row per served version, written by the process that
supervises it and read by every surface (REST, the CLI, the sidebar)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lepton_lab.store.schema import DeploymentRow

#: statuses in which a deployment holds its port and has a supervisor
LIVE_STATUSES = ("starting", "ready")


class UnknownDeployment(KeyError):
    """No deployment with that id."""

    def __str__(self) -> str:
        return f"no deployment {self.args[0]!r}"


class DeploymentQueries:
    """A part of :class:`~lepton_lab.store.database.Store`, which gives it ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    def create_deployment(self, deployment_id: str, **fields: Any) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = DeploymentRow(id=deployment_id, status="starting", **fields)
            s.add(row)
            s.flush()
            return row.to_dict()

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(DeploymentRow, deployment_id)
            if row is None:
                raise UnknownDeployment(deployment_id)
            return row.to_dict()

    def list_deployments(self, status: str | None = None, limit: int = 100) -> list[dict]:
        with self.session() as s:
            query = select(DeploymentRow).order_by(DeploymentRow.created_at.desc()).limit(limit)
            if status is not None:
                query = query.where(DeploymentRow.status == status)
            return [row.to_dict() for row in s.scalars(query)]

    def update_deployment(
        self, deployment_id: str, expect: tuple[str, ...] | None = None, **fields: Any
    ) -> bool:
        """Set ``fields``; with ``expect``, only while the status is one of those (a
        compare-and-set, so a stop and a crash cannot both write the end)."""
        with self.session() as s, s.begin():
            query = update(DeploymentRow).where(DeploymentRow.id == deployment_id)
            if expect is not None:
                query = query.where(DeploymentRow.status.in_(expect))
            return s.execute(query.values(**fields)).rowcount == 1

    def end_deployment(self, deployment_id: str, status: str, error: str | None = None) -> bool:
        """``failed`` or ``stopped``, once: the port and pid are let go."""
        return self.update_deployment(
            deployment_id,
            expect=LIVE_STATUSES,
            status=status,
            error=error,
            pid=None,
            ended_at=time.time(),
        )

    def request_deployment_stop(self, deployment_id: str) -> dict[str, Any]:
        """Flag a live deployment for its supervisor. Raises ValueError for one that ended."""
        with self.session() as s, s.begin():
            row = s.get(DeploymentRow, deployment_id)
            if row is None:
                raise UnknownDeployment(deployment_id)
            if row.status not in LIVE_STATUSES:
                raise ValueError(f"deployment {deployment_id} has already ended ({row.status})")
            row.stop_requested = True
            s.flush()
            return row.to_dict()

    def deployment_stop_requested(self, deployment_id: str) -> bool:
        with self.session() as s:
            return bool(
                s.scalar(
                    select(DeploymentRow.stop_requested).where(DeploymentRow.id == deployment_id)
                )
            )

    def ports_in_use(self) -> set[int]:
        """Ports held by live deployments (so two starting at once do not pick the same)."""
        with self.session() as s:
            query = select(DeploymentRow.port).where(DeploymentRow.status.in_(LIVE_STATUSES))
            return {p for p in s.scalars(query) if p is not None}

    def live_deployments(self, supervisor: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            query = select(DeploymentRow).where(DeploymentRow.status.in_(LIVE_STATUSES))
            if supervisor is not None:
                query = query.where(DeploymentRow.supervisor == supervisor)
            return [row.to_dict() for row in s.scalars(query)]
