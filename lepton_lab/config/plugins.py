"""Loading plug-ins from an entry-point group (job executors, notification channels), the way
papermill finds its engines: one that fails to load is logged and left out, so a broken
package never breaks the lab."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger("lepton_lab")


def load_group(group: str, what: str, first: str | None = None) -> dict[str, Any]:
    """The loaded objects of ``group`` by name, sorted (``first`` ahead of the rest)."""
    found: dict[str, Any] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name != first, e.name)):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the lab
            log.warning("Lepton Lab: %s %r (%s) failed to load: %s", what, ep.name, ep.value, exc)
    return found
