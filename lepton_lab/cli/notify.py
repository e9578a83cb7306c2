"""``lepton-lab notify test | list`` and the ``--notify SPEC`` option of ``run``/``schedule``.

A SPEC is ``EVENTS:CHANNEL[:TARGET]``:

- EVENTS: comma-separated ``failed``, ``timed_out``, ``completed``, ``late=DURATION`` (a job
  still queued or running, or a schedule that has not fired, that long past its time);
- CHANNEL: an installed channel (``email``, ``webhook``, ``jupyterlab``); ``email+html``
  attaches the executed notebook's HTML (with ``--html``);
- TARGET: email: comma-separated addresses; webhook: the http(s) URL; jupyterlab: none.

Examples: ``failed,timed_out:email:ann@example.com,bob@example.com``,
``failed:webhook:https://hooks.slack.com/services/...``, ``late=2h:webhook:https://...``,
``completed,failed:jupyterlab``.
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

SPEC_HELP = (
    "tell someone when the job ends or runs late (repeatable). SPEC is EVENTS:CHANNEL[:TARGET]: "
    "EVENTS comma-separated failed, timed_out, completed, late=DURATION (e.g. late=2h); "
    "CHANNEL email (email+html attaches the notebook's HTML), webhook or jupyterlab; TARGET "
    "the addresses (comma-separated) or the webhook's http(s) URL. E.g. "
    "'failed,timed_out:email:ann@example.com,bob@example.com', "
    "'failed:webhook:https://hooks.slack.com/...', 'late=2h:webhook:https://...'"
)


class SpecError(ValueError):
    """A ``--notify`` SPEC that cannot be read (one line, exit status 2)."""


def parse_spec(spec: str) -> dict[str, Any]:
    """One ``--notify`` SPEC as a checked rule (a dict of ``NotifyRule``'s fields); a
    :class:`SpecError` naming the SPEC and what is wrong with it otherwise."""
    from lepton_lab.contract import parse
    from lepton_lab.contract.base import RequestError
    from lepton_lab.contract.notifications import NotifyRule

    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        raise SpecError(
            f"--notify {spec!r}: write EVENTS:CHANNEL[:TARGET], e.g. "
            "'failed:email:ann@example.com' or 'late=2h:webhook:https://...'"
        )
    events_text, channel = parts[0].strip(), parts[1].strip()
    target = parts[2].strip() if len(parts) == 3 else ""
    rule: dict[str, Any] = {"on": []}
    for item in events_text.split(","):
        event, sep, after = item.strip().partition("=")
        if sep:
            if event != "late":
                raise SpecError(
                    f"--notify {spec!r}: only 'late' takes a duration (late=2h), not {item!r}"
                )
            if not after:
                raise SpecError(f"--notify {spec!r}: 'late=' needs a duration, e.g. late=2h")
            rule["after"] = after
        rule["on"].append(event)
    if channel.endswith("+html"):
        channel = channel[: -len("+html")]
        rule["attach_html"] = True
    rule["channel"] = channel
    if target:
        if channel == "email":
            rule["to"] = [a.strip() for a in target.split(",") if a.strip()]
        elif channel == "webhook":
            rule["url"] = target
        else:
            rule["to"] = [target]  # the channel says whether it takes one
    try:
        checked = parse(NotifyRule, rule)
    except RequestError as exc:
        raise SpecError(f"--notify {spec!r}: {exc}") from None
    return checked.model_dump(exclude_none=True, exclude_defaults=True)


def parse_specs(specs: list[str] | None) -> list[dict[str, Any]]:
    return [parse_spec(spec) for spec in specs or []]


def add_notify_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notify", action="append", default=[], metavar="SPEC", help=SPEC_HELP)


# -- notify test / list --------------------------------------------------------------------


def _service() -> Any:
    from lepton_lab.config.settings import state_dir
    from lepton_lab.services.notifications import NotificationService
    from lepton_lab.store import open_store

    return NotificationService(open_store(), state_dir())


def cmd_notify_test(args: argparse.Namespace) -> int:
    import sys

    from lepton_lab.metering.ledger import current_user

    rule: dict[str, Any] = {"on": ["completed"], "channel": args.channel}
    if args.to:
        rule["to"] = args.to
    if args.url:
        rule["url"] = args.url
    row = _service().test(rule, current_user())
    if row["status"] == "sent":
        print(f"sent to {row['display']}")
        return 0
    if row["status"] == "sending":  # the lab's own sender took it first
        print(f"queued for {row['display']}: the lab's sender is sending it")
        return 0
    print(
        f"lepton-lab: error: {args.channel} to {row['display']} failed: {row['error']}",
        file=sys.stderr,
    )
    return 1


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def cmd_notify_list(args: argparse.Namespace) -> int:
    from lepton_lab.contract import parse
    from lepton_lab.contract.notifications import NotificationQuery

    fields = {"status": args.status, "channel": args.channel, "limit": args.limit}
    query = parse(NotificationQuery, {k: v for k, v in fields.items() if v is not None})
    rows = [n.model_dump() for n in _service().list(query).notifications]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'id':>5}  {'created':<19}  {'status':<7}  {'tries':>5}  {'event':<9}  "
        f"{'channel':<10}  {'about':<18}  to / error"
    )
    for n in rows:
        about = f"{n['subject_kind']} {n['subject_id']}"
        tries = f"{n['attempts']}/{n['max_attempts']}"
        tail = n["display"] + (f"  ({n['error']})" if n["error"] else "")
        print(
            f"{n['id']:>5}  {_when(n['created_at']):<19}  {n['status']:<7}  {tries:>5}  "
            f"{n['event']:<9}  {n['channel']:<10}  {about:<18}  {tail}"
        )
    return 0


def register(sub: Any) -> None:
    from lepton_lab.contract.notifications import NOTIFICATION_STATUSES

    notify = sub.add_parser("notify", help="notifications: send a test message, list the log")
    n_sub = notify.add_subparsers(dest="notify_command", required=True)
    test = n_sub.add_parser(
        "test",
        help="send one test message now on a channel",
        description="Send one test message now (from this process) and say whether it went.",
    )
    test.add_argument("channel", help="email, webhook, jupyterlab, or an installed plug-in")
    test.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="email: an address (repeatable)"
    )
    test.add_argument("--url", help="webhook: the http(s) URL to POST to")
    test.set_defaults(func=cmd_notify_test)
    ls = n_sub.add_parser("list", help="the notification log, newest first")
    ls.add_argument("--status", choices=NOTIFICATION_STATUSES)
    ls.add_argument("--channel", help="only this channel's")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_notify_list)
