"""Shapes of notifications: the rules a job, a schedule or the lab's settings hold
(``notify=[...]``), and the log (``GET /notifications``). How they are sent:
docs/guide/notifications.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lepton_lab.contract.base import Request, View

NOTIFY_EVENTS = ("failed", "timed_out", "completed", "late")
NotifyEvent = Literal[NOTIFY_EVENTS]  # type: ignore[valid-type]
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed")
NotificationStatus = Literal[NOTIFICATION_STATUSES]  # type: ignore[valid-type]
#: at most this many rules on one job or schedule, and addresses in one rule
MAX_RULES = 10
MAX_ADDRESSES = 20


class NotifyRule(Request):
    """When to tell whom, and how: ``{"on": ["failed"], "channel": "email", "to":
    ["ann@example.com"]}``, ``{"on": ["failed", "completed"], "channel": "webhook", "url":
    "https://hooks.slack.com/..."}``, ``{"on": ["late"], "after": "2h", ...}``.

    Each channel (an installed plug-in, ``GET /config``) checks the fields it needs. The lab's
    own rules (``c.LeptonLab.notifications``) may also choose which jobs, runs and schedules
    they are about (``tags``, ``schedule``, ``notebook``, ``kinds``)."""

    on: list[NotifyEvent] = Field(
        min_length=1, max_length=len(NOTIFY_EVENTS), description="events that send it"
    )
    channel: str = Field(min_length=1, max_length=64, description="email, webhook, jupyterlab...")
    to: list[str] | None = Field(None, max_length=MAX_ADDRESSES, description="email: the addresses")
    url: str | None = Field(
        None, max_length=2000, description="webhook: the http(s) URL (stored encrypted)"
    )
    after: str | None = Field(
        None,
        max_length=32,
        description="'late': how long a job may stay queued or running, or a schedule may go "
        "without firing past its time ('30m', '2h', '1d')",
    )
    attach_html: bool = Field(False, description="email: attach the executed notebook's HTML")
    tags: list[str] | None = Field(None, description="lab rules: jobs or runs with any of these")
    schedule: str | None = Field(None, description="lab rules: this schedule's jobs (its id)")
    notebook: str | None = Field(None, description="lab rules: notebooks matching this glob")
    kinds: list[Literal["job", "run", "schedule"]] | None = Field(
        None, description="lab rules: what they are about (default: jobs and schedules)"
    )

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        from lepton_lab.notify.rules import check_rule

        return check_rule(value, NOTIFY_EVENTS)


class Notification(View):
    """One message of the log (``GET /notifications``); its target as shown (a webhook's
    host, never its URL)."""

    id: int
    event: str
    channel: str
    display: str
    subject_kind: str
    subject_id: str
    user: str
    title: str
    message: dict[str, Any] = Field(
        {}, description="text, link and the record it is about (the job, run or schedule)"
    )
    status: NotificationStatus
    attempts: int
    max_attempts: int
    next_attempt_at: float
    error: str | None = None
    created_at: float
    sent_at: float | None = None


class NotificationList(View):
    notifications: list[Notification]
    last_id: int = Field(description="the newest id in the log: a cursor for `since`")


class NotificationQuery(Request):
    """``GET /notifications``: newest first, or with ``since`` the ones after that id."""

    status: NotificationStatus | None = None
    channel: str | None = Field(None, max_length=64)
    since: int | None = Field(None, ge=0, description="only ids above this, oldest first")
    mine: bool | None = Field(None, description="only those for the calling user")
    limit: int = Field(100, ge=1, le=1000)
