"""The notifications facade: the log for REST, the CLI and the sidebar, and a test message
sent at once on a channel (``lepton-lab notify test``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from lepton_lab.contract import parse
from lepton_lab.contract.notifications import NotificationList, NotificationQuery, NotifyRule
from lepton_lab.notify.delivery import Deliverer, NotifySettings
from lepton_lab.notify.events import enqueue
from lepton_lab.notify.rules import store_rule
from lepton_lab.store import Store


class NotificationService:
    """The notification log of one store."""

    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store = store
        self.state_dir = Path(state_dir)

    def list(
        self, query: NotificationQuery | None = None, user: str | None = None
    ) -> NotificationList:
        query = query or NotificationQuery()
        rows = self.store.list_notifications(
            status=query.status,
            channel=query.channel,
            since=query.since,
            user=user if query.mine else None,
            limit=query.limit,
        )
        return NotificationList.model_validate(
            {"notifications": rows, "last_id": self.store.last_notification_id()}
        )

    def test(self, rule: dict[str, Any] | NotifyRule, user: str) -> dict[str, Any]:
        """Queue a test message for ``rule`` and send it now from this process: the row as it
        ended (``sent``, or ``pending``/``failed`` with the channel's error)."""
        rule = rule if isinstance(rule, NotifyRule) else parse(NotifyRule, rule)
        stored = store_rule(rule, self.state_dir)
        settings = NotifySettings.load(self.state_dir)
        message = {
            "kind": "test",
            "event": "test",
            "status": "test",
            "title": "[Lepton Lab] test notification",
            "text": f"A test message from Lepton Lab to {stored['display']}, sent by {user}.",
            "link": settings.lab_url,
            "record": {"sent_at": time.time()},
        }
        key = f"test:{uuid.uuid4().hex}"
        # one attempt: a test says now whether the channel works, and is not retried later
        row_id = enqueue(self.store, stored, key, message, "test", key[5:17], user, 1)
        holder = f"test-{uuid.uuid4().hex[:8]}"
        deliverer = Deliverer(self.store, holder, settings)
        row = self.store.claim_notification(row_id, holder, 60)
        if row is not None:  # else the lab's sender took it first: it is being sent
            deliverer.send(row)
        found = self.store.notification(row_id)
        assert found is not None
        return found
