"""What several ``lepton-lab`` subcommands share: the one-line error and status printing."""

from __future__ import annotations

from typing import Any


class CLIError(Exception):
    """A failure to report as one line and exit status 2."""


def database_unavailable(exc: BaseException) -> str:
    """The line for a database error that the store did not translate itself: the configured
    database (password hidden) and the driver's first line, never a traceback."""
    from lepton_lab.config.settings import database_url
    from lepton_lab.store.database import unavailable

    return str(unavailable(database_url(), exc))


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def format_status(status: dict[str, Any]) -> str:
    """The cluster status as a short table, the way `lepton-lab cluster status` prints it."""
    lines = [
        f"mode:       {status['mode']} ({status['reason']})",
        f"status:     {status['status']}" + (f" - {status['error']}" if status["error"] else ""),
        f"scheduler:  {status['scheduler_address']}",
        f"dashboard:  {status['dashboard_link'] or '-'}",
        f"workers:    {status['totals']['workers']}   threads: {status['totals']['threads']}   "
        f"memory: {_human_bytes(status['totals']['memory_used'])} / "
        f"{_human_bytes(status['totals']['memory_limit'])}   gpus: {status['totals']['gpus']}",
    ]
    if status.get("cluster_class"):
        lines.insert(1, f"class:      {status['cluster_class']}")
    adapt = status.get("adapt")
    if adapt:
        waiting = f"; runs asking for {adapt['requested']}" if adapt.get("requested") else ""
        lines.append(f"adaptive:   {adapt['minimum']}..{adapt['maximum']} workers{waiting}")
    if status["workers"]:
        lines.append(f"  {'name':<8} {'address':<24} {'threads':>7} {'memory':>22} {'gpu'}")
        for w in status["workers"]:
            gpu = w["gpu"]["name"] if w["gpu"] else "-"
            mem = f"{_human_bytes(w['memory_used'])} / {_human_bytes(w['memory_limit'])}"
            lines.append(f"  {w['name']:<8} {w['address']:<24} {w['nthreads']:>7} {mem:>22} {gpu}")
    return "\n".join(lines)
