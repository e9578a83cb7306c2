"""``lepton-lab usage``: what was used over a window, grouped and priced, as a table, JSON or
CSV; ``lepton-lab gc``: retention by hand (the service that holds the job lease runs it hourly).

Deletes job outputs, run checkpoints and unaliased model versions older than
``c.LeptonLab.retention``; ``--dry-run`` lists them and deletes nothing. The usage commands of
this module share its store and printing helpers; each adds itself in :func:`register`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lepton_lab.cli.common import _human_bytes


def _store() -> Any:
    from lepton_lab.store import open_store

    return open_store()


def format_gc(items: list[dict[str, Any]], dry_run: bool) -> str:
    """What would go (``dry_run``) or went: one row per item, and a total line."""
    from lepton_lab.models.api import Table

    rows = [
        [
            item["kind"],
            item["subject"],
            f"{item['age_days']:.1f}",
            _human_bytes(item["bytes"]),
            "would delete" if dry_run else ("deleted" if item["deleted"] else item["error"]),
        ]
        for item in items
    ]
    lines = [str(Table(["kind", "subject", "age (days)", "size", "result"], rows))]
    if dry_run:
        total = sum(item["bytes"] for item in items)
        lines.append(f"total: {len(items)} item(s), {_human_bytes(total)} would be deleted")
    else:
        gone = [item for item in items if item["deleted"]]
        total = sum(item["bytes"] for item in gone)
        line = f"total: {len(gone)} item(s), {_human_bytes(total)} deleted"
        if len(gone) < len(items):
            line += f"; {len(items) - len(gone)} could not be deleted"
        lines.append(line)
    return "\n".join(lines)


def cmd_gc(args: argparse.Namespace) -> int:
    from lepton_lab.metering.config import lab_retention
    from lepton_lab.metering.retention import span
    from lepton_lab.services.usage import UsageService

    retention = lab_retention()  # a bad setting: ValueError, one line and status 2 in main()
    if not retention:
        print(
            "no retention configured (c.LeptonLab.retention): nothing to delete",
            file=sys.stderr,
        )
        if args.json:
            print("[]")
        return 0
    items = UsageService(_store()).gc(dry_run=args.dry_run, retention=retention)
    if args.json:
        print(json.dumps(items, indent=2))
    elif not items:
        kept = ", ".join(f"{kind} {span(seconds)}" for kind, seconds in retention.items())
        print(f"nothing older than the retention ({kept})")
    else:
        print(format_gc(items, args.dry_run))
    return 0 if all(item["error"] is None for item in items) else 1


def format_usage(report: dict[str, Any]) -> str:
    """A line per group, then the total; cost only when the lab has prices."""
    from lepton_lab.models.api import Table

    priced = report["priced"]
    head = [report["group_by"], "records", "CPU h", "GPU h", "GPU busy h", "peak mem"]
    head += ["uptime h", "requests", "stored", "moved"] + (["cost"] if priced else [])

    def row(key: str, g: dict[str, Any]) -> list[str]:
        cells = [
            key,
            str(g["records"]),
            f"{g['cpu_hours']:.3f}",
            f"{g['gpu_hours']:.3f}",
            f"{g['gpu_util_hours']:.3f}",
            _human_bytes(g["peak_memory"]),
            f"{g['uptime_hours']:.2f}",
            str(g["requests"]),
            _human_bytes(g["storage_bytes"]),
            _human_bytes(g["moved_bytes"]),
        ]
        return cells + ([f"{g['cost']:.2f}"] if priced else [])

    rows = [row(g["key"], g) for g in report["groups"]]
    rows.append(row("total", report["total"]))
    return str(Table(head, rows))


def cmd_usage(args: argparse.Namespace) -> int:
    from lepton_lab.metering.config import lab_prices
    from lepton_lab.services.usage import UsageService

    prices = lab_prices()  # a bad setting: ValueError, one line and status 2 in main()
    service = UsageService(_store(), prices)
    query = {"from": args.start, "to": args.end, "group_by": args.by}
    if args.csv:
        sys.stdout.write(service.csv(query))
    elif args.json:
        print(json.dumps(service.report_dict(query), indent=2))
    else:
        print(format_usage(service.report_dict(query)))
    return 0


def register(sub: Any) -> None:
    from lepton_lab.contract.usage import USAGE_GROUPS

    usage = sub.add_parser(
        "usage",
        help="CPU and GPU hours, memory, storage and data moved, by day, user, notebook...",
        description="Usage of runs, jobs, deployments, stored files and downloads over a "
        "window (default: the last 7 days), grouped, and priced with c.LeptonLab.prices. "
        "Dates are UTC; --to includes that day.",
    )
    usage.add_argument("--from", dest="start", help="start: 2026-11-01 or an ISO time")
    usage.add_argument("--to", dest="end", help="end: 2026-11-30 (that whole day) or an ISO time")
    usage.add_argument(
        "--by", default="day", help=f"group by {', '.join(USAGE_GROUPS)} (default: day)"
    )
    form = usage.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--json", action="store_true", help="print JSON")
    usage.set_defaults(func=cmd_usage)

    gc = sub.add_parser(
        "gc",
        help="delete job outputs, run checkpoints and model versions older than the retention",
        description="Delete what c.LeptonLab.retention says is old: ended jobs' output "
        "folders, ended runs' checkpoints, and model versions without an alias. Job and run "
        "records and usage records stay.",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    gc.add_argument("--json", action="store_true", help="print JSON")
    gc.set_defaults(func=cmd_gc)
