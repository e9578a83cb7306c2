"""The runs facade: list, look up, page metrics, stop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lepton_lab.config.processes import gone
from lepton_lab.contract import Conflict, NotFound
from lepton_lab.contract.base import Unavailable
from lepton_lab.contract.runs import (
    MetricsPage,
    MetricsQuery,
    Run,
    RunList,
    RunQuery,
    StopAccepted,
)
from lepton_lab.store import Store, UnknownRun
from lepton_lab.store.schema import FINAL_STATUSES


class RunService:
    """Runs in one store. ``client()`` gives the cluster's ``distributed.Client`` (or None
    while there is none), which stopping a run needs."""

    def __init__(self, store: Store, client: Callable[[], Any]) -> None:
        self.store = store
        self.client = client

    def record(self, run_id: str) -> dict[str, Any]:
        try:
            return self.store.get_run(run_id)
        except UnknownRun as exc:
            raise NotFound(str(exc)) from None

    def reconcile(self) -> list[str]:
        """Fail the runs of this host whose driver process is gone (a kernel, job or script
        killed mid-run): their ranks were stopped with it, and nothing else would end them."""
        failed = []
        for run in self.store.driven_runs():
            pid = gone(run["driver"])
            if pid is not None and self.store.fail_driverless_run(
                run["id"],
                f"its driver (pid {pid}, the process that called ll.fit) ended before the run did",
            ):
                failed.append(run["id"])
        return failed

    def get(self, run_id: str) -> Run:
        """One run with its usage per rank, its events and its progress summary."""
        self.reconcile()
        record = self.record(run_id)
        record.update(self._summaries([run_id]).get(run_id, {}))
        return Run.model_validate(record)

    def list(self, query: RunQuery | None = None) -> RunList:
        """Runs, newest first, each with the highest step reported and its last metrics."""
        query = query or RunQuery()
        self.reconcile()
        records = self.store.list_runs(query.status, query.limit)
        summaries = self._summaries([r["id"] for r in records])
        return RunList(
            runs=[Run.model_validate({**r, **summaries.get(r["id"], {})}) for r in records]
        )

    def _summaries(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Progress of each run, and the model versions it registered."""
        if not run_ids:
            return {}
        summaries = self.store.run_summaries(run_ids)
        for run_id, refs in self.store.model_refs(run_ids=run_ids).items():
            summaries.setdefault(run_id, {})["models"] = refs
        return summaries

    def metrics(self, run_id: str, query: MetricsQuery | None = None) -> MetricsPage:
        query = query or MetricsQuery()
        try:
            page = self.store.metrics(run_id, query.since, query.limit)
        except UnknownRun as exc:
            raise NotFound(str(exc)) from None
        return MetricsPage.model_validate(page)

    def stop(self, run_id: str) -> StopAccepted:
        """Ask the run's ranks to stop (they do at their next report)."""
        from lepton_lab.training.context import request_stop

        record = self.record(run_id)
        if record["status"] in FINAL_STATUSES:
            raise Conflict(f"run {run_id} has already ended ({record['status']})")
        from lepton_lab.services.cluster import SCHEDULER_TIMEOUT, scheduler_unreachable

        client = self.client()
        if client is None:
            raise Conflict("the cluster is not running, so the run cannot be reached")
        try:
            request_stop(run_id, client, timeout=SCHEDULER_TIMEOUT)
        except Exception as exc:
            # the stop travels through the scheduler: without it the ranks cannot hear it
            problem = scheduler_unreachable(client, timeout=1.0) or (
                f"the cluster's scheduler did not take the stop: {type(exc).__name__}: {exc}"
            )
            raise Unavailable(f"{problem}; run {run_id} was not stopped") from exc
        return StopAccepted(id=run_id, status=record["status"])
