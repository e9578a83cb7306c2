"""The usage facade: reports over the ledger for REST, the CLI, ``ll.usage`` and the sidebar,
and retention's clean-up (``lepton_lab.metering.retention``)."""

from __future__ import annotations

from typing import Any

from lepton_lab.contract import parse
from lepton_lab.contract.usage import UsageQuery, UsageReport
from lepton_lab.metering import report
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
