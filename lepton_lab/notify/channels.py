"""Notification channels are plug-ins: classes on the ``lepton_lab.notification_channels``
entry-point group, found the way the job executors are (``jobs/plugins.py``).

A channel class has a ``name``, a one-line ``description``, ``secret_fields`` (rule fields
stored sealed), and:

- ``check(rule)`` (classmethod): raise a ValueError naming what is wrong with a rule's fields;
- ``display(fields)`` (classmethod): what views show of the target (no secret);
- ``send(message, target)``: deliver one message, raising on failure (the sender retries).

It is built with the lab's :class:`Settings` (SMTP, the lab's URL).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from lepton_lab.config.plugins import load_group
from lepton_lab.contract.base import RequestError

log = logging.getLogger("lepton_lab.notify")

GROUP = "lepton_lab.notification_channels"
#: seconds a channel waits for its server (SMTP, the webhook) before it counts as a failure
TIMEOUT = 10.0


#: a pragmatic address check: one @, a dotted domain, no spaces or brackets; what the SMTP
#: server accepts is its own business (``email.utils`` parses far more than a person types)
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_address(text: Any) -> str:
    if not isinstance(text, str) or not _ADDRESS.match(text.strip()):
        raise RequestError(f"'{text}' is not an email address (name@example.com)")
    return text.strip()


def check_url(text: Any) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text) if isinstance(text, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestError(f"a webhook URL must be http:// or https:// with a host, got {text!r}")
    return text


@dataclass
class Settings:
    """What channels need from the lab: ``c.LeptonLab.smtp`` and where the lab answers."""

    smtp: dict[str, Any] = field(default_factory=dict)
    lab_url: str | None = None

    @classmethod
    def from_environment(cls) -> Settings:
        from lepton_lab.config.settings import ENV_SMTP
        from lepton_lab.metering.config import lab_setting

        return cls(smtp=lab_setting("smtp", ENV_SMTP) or {}, lab_url=lab_url())


def lab_url() -> str | None:
    """The lab's URL for links: the server's own (exported to its processes), else a running
    Jupyter server's from its runtime files; never with its token."""
    from lepton_lab.config.settings import ENV_SERVER_URL

    if os.environ.get(ENV_SERVER_URL):
        return os.environ[ENV_SERVER_URL]
    try:
        from jupyter_server.serverapp import list_running_servers

        for info in list_running_servers():
            return str(info["url"])
    except Exception:  # noqa: BLE001 - no runtime dir, no server: no link
        return None
    return None


class EmailChannel:
    """Email over SMTP (``c.LeptonLab.smtp``: host, port, starttls or ssl, username,
    ``password_env``, sender)."""

    name = "email"
    description = "an email over SMTP to the rule's addresses"
    secret_fields: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def check(cls, rule: dict[str, Any]) -> None:
        to = rule.get("to")
        if isinstance(to, str):
            to = [to]
        if not to or not isinstance(to, list):
            raise RequestError("an email rule needs 'to': a list of addresses")
        for address in to:
            check_address(address)
        if rule.get("url") is not None:
            raise RequestError("an email rule takes 'to', not 'url'")
        rule["to"] = [a.strip() for a in to]

    @classmethod
    def display(cls, fields: dict[str, Any]) -> str:
        return ", ".join(fields.get("to") or [])

    def send(self, message: dict[str, Any], target: dict[str, Any]) -> None:
        import smtplib
        import ssl

        smtp = self.settings.smtp
        host, port = smtp.get("host", "localhost"), int(smtp.get("port", 25))
        sender = smtp.get("sender") or f"lepton-lab@{socket.gethostname()}"
        email = EmailMessage()
        email["Subject"] = message["title"]
        email["From"] = sender
        email["To"] = ", ".join(target["to"])
        body = message["text"]
        if message.get("link"):
            body += f"\n\nOpen it in the lab: {message['link']}"
        email.set_content(body)
        html = message.get("html_path")
        if target.get("attach_html") and html and Path(html).is_file():
            # as text with its charset: bytes under text/* carry none, and mail readers
            # then show the notebook's non-ASCII characters as mojibake
            email.add_attachment(
                Path(html).read_text(encoding="utf-8", errors="replace"),
                subtype="html",
                filename=Path(html).name,
            )
        context = ssl.create_default_context()
        if smtp.get("ssl"):
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with client:
            if smtp.get("starttls") and not smtp.get("ssl"):
                client.starttls(context=context)
            if smtp.get("username"):
                password = os.environ.get(smtp.get("password_env") or "", "")
                client.login(smtp["username"], password)
            client.send_message(email)


class WebhookChannel:
    """A POST of a JSON body: Slack- and Teams-compatible ``text``/``title``/``summary``, the
    event, the link, and the full record of the job, run or schedule."""

    name = "webhook"
    description = "an HTTP POST of a JSON body (Slack and Teams read its text)"
    #: a Slack or Teams webhook URL is itself the credential
    secret_fields = ("url",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def check(cls, rule: dict[str, Any]) -> None:
        if rule.get("url") is None:
            raise RequestError("a webhook rule needs 'url': where to POST")
        check_url(rule["url"])
        if rule.get("to") is not None:
            raise RequestError("a webhook rule takes 'url', not 'to'")

    @classmethod
    def display(cls, fields: dict[str, Any]) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(fields.get("url") or "")
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"

    def send(self, message: dict[str, Any], target: dict[str, Any]) -> None:
        import urllib.error
        import urllib.request

        text = f"*{message['title']}*\n{message['text']}"
        if message.get("link"):
            text += f"\n<{message['link']}|Open it in the lab>"
        body = {
            "text": text,
            "title": message["title"],
            "summary": message["title"],
            "event": message.get("event"),
            "status": message.get("status"),
            "link": message.get("link"),
            "kind": message.get("kind"),
            "record": message.get("record"),
        }
        request = urllib.request.Request(
            target["url"],
            data=json.dumps(body, default=str).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "lepton-lab"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
                answer.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"the webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise RuntimeError(f"the webhook could not be reached: {exc.reason}") from None


class JupyterLabChannel:
    """A toast in every open lab of the user (JupyterLab's ``Notification``): the lab reads
    the log (``GET /notifications?channel=jupyterlab&mine=true&since=N``); sending is
    publishing the row."""

    name = "jupyterlab"
    description = "a notification in the user's open JupyterLab windows"
    secret_fields: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def check(cls, rule: dict[str, Any]) -> None:
        if rule.get("to") is not None or rule.get("url") is not None:
            raise RequestError("a jupyterlab rule takes no 'to' or 'url': it goes to the user")

    @classmethod
    def display(cls, fields: dict[str, Any]) -> str:
        return "JupyterLab"

    def send(self, message: dict[str, Any], target: dict[str, Any]) -> None:
        return None


@functools.lru_cache(maxsize=1)
def channel_classes() -> dict[str, type[Any]]:
    """Installed channels by name. One that fails to load is logged and left out."""
    return load_group(GROUP, "notification channel")


def channel_names() -> tuple[str, ...]:
    return tuple(channel_classes())


def channel_class(name: str) -> type[Any]:
    classes = channel_classes()
    if name not in classes:
        raise RequestError(
            f"unknown notification channel {name!r}; installed: {', '.join(classes)}"
        )
    return classes[name]


def describe_channels() -> list[dict[str, str]]:
    return [
        {"name": name, "description": str(getattr(cls, "description", "") or cls.__doc__ or "")}
        for name, cls in channel_classes().items()
    ]
