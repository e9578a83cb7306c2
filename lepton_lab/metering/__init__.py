"""Usage metering: what runs, jobs, deployments and stored files cost, and who spent it.

- ``meter``: measures a process tree (CPU, memory, I/O, GPUs through NVML) while it works.
- ``ledger``: writes the records (``usage_records``) with user, notebook and tags.
- ``report``: sums records over a window by day, user, notebook, tag or kind, with prices.
- ``config``: ``c.LeptonLab.prices`` and ``c.LeptonLab.retention``, checked.
- ``retention``: deletes old job outputs, run checkpoints and unaliased model versions; their
  usage records stay.

``ll.usage(...)`` (:func:`usage`) is the notebook's way in.
"""

from __future__ import annotations

from typing import Any


def usage(
    start: str | None = None,
    end: str | None = None,
    by: str = "day",
    *,
    prices: dict[str, Any] | None = None,
    store: Any = None,
) -> Any:
    """Usage over [start, end) (ISO dates or times; default the last 7 days) grouped ``by``
    day, user, notebook, tag or kind: a pandas DataFrame (one row per group) when pandas is
    installed, else a list of dicts. Priced with ``prices``, else the lab's
    ``c.LeptonLab.prices``."""
    from lepton_lab.contract import parse
    from lepton_lab.contract.usage import UsageQuery
    from lepton_lab.metering.config import lab_prices, parse_prices
    from lepton_lab.services.usage import UsageService
    from lepton_lab.store import open_store

    query = parse(UsageQuery, {"from": start, "to": end, "group_by": by})
    priced = parse_prices(prices) if prices is not None else lab_prices()
    found = UsageService(store or open_store(), priced).report_dict(query)
    rows = [{by: g["key"], **{k: v for k, v in g.items() if k != "key"}} for g in found["groups"]]
    try:
        import pandas as pd
    except ImportError:
        return rows
    frame = pd.DataFrame(rows)
    if not priced and "cost" in frame:
        frame = frame.drop(columns="cost")
    frame.attrs["total"] = found["total"]
    return frame.set_index(by) if len(frame) else frame
