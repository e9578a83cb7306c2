"""The sender: the process that holds the dispatcher lease claims due messages, sends each on
its channel, and records the attempt: sent, retried after a backoff that doubles, or failed
after its last attempt with the channel's error. A claim expires, so a sender killed in the
middle leaves its messages to the next one; one that is sent is never sent again."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lepton_lab.notify.channels import Settings, channel_classes
from lepton_lab.notify.rules import open_target

log = logging.getLogger("lepton_lab.notify")

#: seconds before the first retry; doubles each attempt, up to MAX_BACKOFF
BACKOFF = 2.0
MAX_BACKOFF = 300.0
#: how long a claim holds a message: longer than one channel's timeout
CLAIM_TTL = 60.0
#: seconds between two "late" checks
LATE_EVERY = 5.0


@dataclass
class NotifySettings:
    """The lab's side of notifications: its rules, its toasts, the channels' settings."""

    state_dir: Path
    rules: list[dict[str, Any]] = field(default_factory=list)
    in_lab: bool = True
    channels: Settings = field(default_factory=Settings)

    @property
    def lab_url(self) -> str | None:
        return self.channels.lab_url

    @classmethod
    def load(cls, state_dir: str | Path) -> NotifySettings:
        """From the lab's settings as this process can read them (the server's exports, or
        the Jupyter config files); a bad rule is a ValueError naming it."""
        import os

        off = os.environ.get("LEPTON_LAB_NOTIFY_IN_LAB", "1") in ("0", "false", "no")
        return cls(
            state_dir=Path(state_dir),
            rules=lab_rules(state_dir),
            in_lab=not off,
            channels=Settings.from_environment(),
        )


class Deliverer:
    """Sends due messages of one store, from one process (``holder``)."""

    def __init__(self, store: Any, holder: str, settings: NotifySettings) -> None:
        from lepton_lab.store.secrets import key_path

        self.store = store
        self.holder = holder
        self.settings = settings
        self.key_file = key_path(settings.state_dir)
        self._channels: dict[str, Any] = {}

    def channel(self, name: str) -> Any:
        if name not in self._channels:
            classes = channel_classes()
            if name not in classes:
                raise RuntimeError(f"the channel {name!r} is not installed in this process")
            self._channels[name] = classes[name](self.settings.channels)
        return self._channels[name]

    def step(self, limit: int = 20) -> int:
        """Send what is due now; returns how many were sent."""
        sent = 0
        for row in self.store.claim_notifications(self.holder, CLAIM_TTL, limit):
            sent += self.send(row)
        return sent

    def send(self, row: dict[str, Any]) -> bool:
        """One attempt of one claimed message."""
        error = None
        try:
            stored = row["target"] or {}
            target = open_target(stored, self.key_file)
            if stored.get("html_path"):
                target.setdefault("attach_html", False)
            message = dict(row["message"], html_path=stored.get("html_path"))
            self.channel(row["channel"]).send(message, target)
        except Exception as exc:  # noqa: BLE001 - a channel's failure is the message's, only
            error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        attempts = row["attempts"] + 1
        retry_at = None
        if error is not None and attempts < row["max_attempts"]:
            retry_at = time.time() + min(MAX_BACKOFF, BACKOFF * 2 ** (attempts - 1))
        self.store.notification_done(row["id"], self.holder, error, retry_at)
        if error is not None:
            how = f"retry {attempts} of {row['max_attempts'] - 1}" if retry_at else "gave up"
            log.warning(
                "Lepton Lab: notification %s (%s to %s) failed: %s (%s)",
                row["id"],
                row["channel"],
                row["display"],
                error,
                how,
            )
        return error is None


class Sender:
    """The sender's thread in a dispatcher: while its process holds the lease, it checks for
    late jobs and schedules and sends what is due, off the dispatcher's own loop (an SMTP
    server that hangs must not stop the job queue)."""

    def __init__(self, store: Any, holder: str, settings: NotifySettings, tick: float = 0.2):
        self.deliverer = Deliverer(store, holder, settings)
        self.store = store
        self.settings = settings
        self.tick = tick
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._last_late = 0.0
        #: when this sender last looked for ended jobs without messages (None: not since it
        #: gained the lease, so the first look covers events.CATCH_UP)
        self._caught_up_at: float | None = None
        self._thread = threading.Thread(target=self._loop, name="lepton-notify", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def close(self, timeout: float = 15) -> None:
        self._stop.set()
        if self._thread.is_alive():  # a dispatcher closed without being started has none
            self._thread.join(timeout)

    def _loop(self) -> None:
        from lepton_lab.notify.events import catch_up, check_late

        while not self._stop.wait(self.tick):
            if not self.leading.is_set():
                self._caught_up_at = None
                continue
            try:
                now = time.monotonic()
                if now - self._last_late >= LATE_EVERY:
                    self._last_late = now
                    check_late(self.store, self.settings)
                    looked = time.time()
                    catch_up(self.store, self.settings, since=self._caught_up_at)
                    self._caught_up_at = looked
                self.deliverer.step()
            except Exception as exc:  # noqa: BLE001 - the database is down: try again later
                log.warning("Lepton Lab: notifications wait: %s", exc)
                self._stop.wait(5.0)


def lab_rules(state_dir: str | Path) -> list[dict[str, Any]]:
    """``c.LeptonLab.notifications``, checked and in stored form (a bad entry: ValueError)."""
    from lepton_lab.config.settings import ENV_NOTIFICATIONS
    from lepton_lab.metering.config import lab_setting

    raw = lab_setting("notifications", ENV_NOTIFICATIONS) or []
    return parse_lab_rules(raw, state_dir)


def parse_lab_rules(raw: Any, state_dir: str | Path) -> list[dict[str, Any]]:
    from lepton_lab.contract import parse
    from lepton_lab.contract.base import RequestError
    from lepton_lab.contract.notifications import NotifyRule
    from lepton_lab.notify.rules import store_rule

    if not isinstance(raw, list):
        raise ValueError(f"notifications must be a list of rules, got {raw!r}")
    rules = []
    for i, item in enumerate(raw):
        try:
            rules.append(store_rule(parse(NotifyRule, item), state_dir))
        except RequestError as exc:
            raise ValueError(f"notifications[{i}]: {exc}") from None
    return rules
