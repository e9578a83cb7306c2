"""Real servers for notification tests, all on this machine: an SMTP server (aiosmtpd) that
keeps what it receives, and an HTTP server whose answers each test scripts per path (500,
500, then 200...). Also the job fixtures of ``tests/jobs`` (a private store, job services)."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.jobs.conftest import service, state, store  # noqa: F401 - fixtures used here

#: what links in messages start with (``LEPTON_LAB_SERVER_URL``)
LAB_URL = "http://lab.example.test:8888/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received: (recipients, parsed message) per email."""

    port: int
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for rcpt, m in self.received if address in rcpt]

    def handler(self) -> Any:
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with mailbox.lock:
                    mailbox.received.append((list(envelope.rcpt_tos), message))
                return "250 OK"

        return Handler()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd in a thread of its own)."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox.handler(), hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


@dataclass
class Hooks:
    """A local HTTP server: ``url(path, [500, 500, 200])`` scripts the answers of a path (the
    last one repeats); ``hits[path]`` holds (answer, parsed JSON body) of each POST."""

    port: int
    scripts: dict[str, list[int]] = field(default_factory=dict)
    hits: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, answers: list[int]) -> str:
        with self.lock:
            self.scripts[path] = list(answers)
            self.hits[path] = []
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            script = self.scripts.get(path) or [404]
            code = script.pop(0) if len(script) > 1 else script[0]
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
            self.hits.setdefault(path, []).append((code, parsed))
            return code

    def ok(self, path: str) -> list[Any]:
        """The bodies answered 200."""
        with self.lock:
            return [body for code, body in self.hits.get(path, []) if code == 200]


@pytest.fixture(scope="session")
def webhook_server() -> Iterator[Hooks]:
    hooks = Hooks(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code = hooks.answer(self.path, body)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hooks
    server.shutdown()
    server.server_close()


def notify_environment(mp: pytest.MonkeyPatch, mailbox: Mailbox) -> None:
    """Channels' settings as a dispatcher (or the CLI) reads them from its environment: the
    test's SMTP server, the lab's URL for links, no lab rules from config files, fast
    retries."""
    from lepton_lab.notify import delivery

    mp.setenv("LEPTON_LAB_SMTP", json.dumps({"host": "127.0.0.1", "port": mailbox.port}))
    mp.setenv("LEPTON_LAB_SERVER_URL", LAB_URL)
    mp.setenv("LEPTON_LAB_NOTIFICATIONS", "[]")
    mp.delenv("LEPTON_LAB_NOTIFY_IN_LAB", raising=False)
    mp.setattr(delivery, "BACKOFF", 0.05)


@pytest.fixture
def notify_env(monkeypatch: pytest.MonkeyPatch, smtp_server: Mailbox) -> Mailbox:
    notify_environment(monkeypatch, smtp_server)
    return smtp_server
