"""The usage facade: reports over the ledger for REST, the CLI, ``ll.usage`` and the sidebar,
and retention's clean-up (``lepton_lab.metering.retention``)."""

from __future__ import annotations

from typing import Any

from lepton_lab.contract import parse
from lepton_lab.contract.usage import UsageQuery, UsageReport
from lepton_lab.metering import ledger, report
from lepton_lab.metering.config import Prices
from lepton_lab.store import Store


class UsageService:
    """Reports of one store, priced with the lab's prices (None: units only)."""

    def __init__(self, store: Store, prices: Prices | None = None) -> None:
        self.store = store
        self.prices = prices

    def report_dict(self, query: UsageQuery | dict[str, Any] | None = None) -> dict[str, Any]:
        if not isinstance(query, UsageQuery):
            query = parse(UsageQuery, query or {})
        start, end = report.window(query.start, query.end)
        rows = self.store.usage_rows(start, end)
        return report.build(rows, start, end, query.group_by, self.prices)

    def report(self, query: UsageQuery | dict[str, Any] | None = None) -> UsageReport:
        return UsageReport.model_validate(self.report_dict(query))

    def csv(self, query: UsageQuery | dict[str, Any] | None = None) -> str:
        return report.to_csv(self.report_dict(query))

    def gc(
        self,
        dry_run: bool = True,
        retention: dict[str, float] | None = None,
        artifact_dir: str | None = None,
    ) -> list[dict[str, Any]]:
        """Retention's clean-up with the lab's ``c.LeptonLab.retention`` (or ``retention``,
        kind -> seconds): what is (``dry_run``) or was deleted, one dict per item. Nothing is
        configured: nothing to do. A bad setting raises ValueError naming the entry."""
        from lepton_lab.metering import retention as policy
        from lepton_lab.metering.config import lab_retention

        keep = lab_retention() if retention is None else retention
        if not keep:
            return []
        items = policy.plan(self.store, keep, artifact_dir=artifact_dir)
        if not dry_run:
            items = policy.apply(self.store, items, artifact_dir=artifact_dir)
        return [item.as_dict() for item in items]

    def record_download(self, subject: str, size: int, user: str) -> None:
        """Data moved: one artifact download through the REST API."""
        ledger.record_download(self.store, subject, size, user)
