"""Notification rules: checked once (for REST, the CLI, ``ll.jobs`` and the lab's settings),
stored with their secrets sealed, shown without them, and matched to what happened."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any

from lepton_lab.contract.base import RequestError

#: rule fields that only the lab's own rules (``c.LeptonLab.notifications``) use
FILTERS = ("tags", "schedule", "notebook", "kinds")


def check_rule(value: Any, events_known: tuple[str, ...]) -> Any:
    """The checks of one rule (a dict), each with a message that names what is wrong: an
    unknown event or channel, a bad address or URL, ``late`` without ``after``."""
    from lepton_lab.metering.config import parse_duration
    from lepton_lab.notify.channels import channel_class, channel_names

    if not isinstance(value, dict):
        raise RequestError(f"a notification rule must be an object, got {value!r}")
    events = value.get("on")
    if isinstance(events, str):
        events = [events]
    if isinstance(events, list):
        for event in events:
            if event not in events_known:
                raise RequestError(
                    f"unknown notification event {event!r}; accepted: {', '.join(events_known)}"
                )
    channel = value.get("channel")
    if channel not in channel_names():
        raise RequestError(
            f"unknown notification channel {channel!r}; installed: {', '.join(channel_names())}"
        )
    after = value.get("after")
    if isinstance(events, list) and "late" in events and after is None:
        raise RequestError("a 'late' rule needs 'after': how late is late (e.g. '2h')")
    if after is not None:
        try:
            parse_duration(after)
        except ValueError as exc:
            raise RequestError(f"'after': {exc}") from None
    channel_class(channel).check(value)
    return dict(value, on=events) if events is not None else value


def rule_key(rule: dict[str, Any]) -> str:
    """A short digest that tells two rules apart (a message is queued once per rule)."""
    text = json.dumps(rule, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def store_rule(rule: Any, state_dir: str | Path) -> dict[str, Any]:
    """A rule as a job or schedule row stores it: its channel's secret fields sealed with the
    state directory's key (as job secrets are), and what views show of its target."""
    from lepton_lab.metering.config import parse_duration
    from lepton_lab.notify.channels import channel_class
    from lepton_lab.store.secrets import seal

    data = rule.model_dump(exclude_none=True) if hasattr(rule, "model_dump") else dict(rule)
    cls = channel_class(data["channel"])
    secret = {k: data.pop(k) for k in cls.secret_fields if k in data}
    stored: dict[str, Any] = {
        "on": list(data.pop("on")),
        "channel": data.pop("channel"),
        "display": cls.display({**data, **secret}),
    }
    if "after" in data:
        stored["after"] = parse_duration(data.pop("after"))
    stored["target"] = data  # the channel's fields that are not secret, and any filters
    # what tells this rule apart from others, the same in every process (the sealed token
    # differs each time it is made); a truncated digest, which does not give the URL back
    stored["digest"] = rule_key({**stored, **secret})
    if secret:
        stored["sealed"] = seal(state_dir, secret)
    return stored


def view_rule(stored: dict[str, Any]) -> dict[str, Any]:
    """What REST and the CLI show of a stored rule: never a secret."""
    out = {"on": stored["on"], "channel": stored["channel"], "display": stored.get("display", "")}
    if stored.get("after") is not None:
        out["after"] = stored["after"]
    return out


def open_target(stored: dict[str, Any], key_file: str | Path) -> dict[str, Any]:
    """The channel's fields with the secret ones unsealed (only the sender does this)."""
    from lepton_lab.store.secrets import unseal

    target = dict(stored.get("target") or {})
    if stored.get("sealed"):
        target.update(unseal(key_file, stored["sealed"]))
    return target


def matches(rule: dict[str, Any], kind: str, record: dict[str, Any]) -> bool:
    """Whether a lab rule (``c.LeptonLab.notifications``) is about ``record`` (a job, run or
    schedule); the rules of a job or schedule are about it alone."""
    target = rule.get("target") or {}
    kinds = target.get("kinds") or ["job", "schedule"]
    if kind not in kinds:
        return False
    tags = target.get("tags")
    if tags and not set(tags) & set(record.get("tags") or []):
        return False
    schedule = target.get("schedule")
    if schedule and schedule not in (record.get("schedule_id"), record.get("id")):
        return False
    pattern = target.get("notebook")
    notebook = record.get("notebook") or ""
    if pattern and not (
        fnmatch.fnmatch(notebook, pattern) or fnmatch.fnmatch(Path(notebook).name, pattern)
    ):
        return False
    return True
