"""A local SMTP server that keeps the alert e-mails Alertmanager sends during a rehearsal.

Why a real SMTP server and not a webhook: the operator is paged by e-mail, so the rehearsal shows
the same path end to end (rule, Alertmanager route, SMTP delivery) without reaching anyone.
"""

from __future__ import annotations

import email
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class ReceivedMail:
    at: float
    subject: str


@dataclass
class _Collector:
    mails: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message: Message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.mails.append(ReceivedMail(time.time(), str(message.get("Subject", ""))))
        return "250 OK"


class MailSink:
    """``with MailSink(port) as sink: ... sink.mails``: an SMTP server on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=port)

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._collector.lock:
            return list(self._collector.mails)
