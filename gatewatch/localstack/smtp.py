"""A local SMTP server that keeps what Alertmanager sends: in memory, and in a mailbox file.

Why a real SMTP server: the operator is paged by e-mail, so a stack without the operator's mail
server (a first start, a rehearsal, a test) still runs the whole path, rule → Alertmanager route →
SMTP delivery, and the messages can be read: ``mailbox`` is an mbox file any mail reader opens
(``mail -f FILE``, mutt, Thunderbird) and plain text besides.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from gatewatch.localstack.net import free_port


@dataclass
class ReceivedMail:
    """One delivered message with the time it arrived (time.time())."""

    received_at: float
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The plain-text part (Alertmanager sends text and HTML alternatives)."""
        part = self.message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return str(part.get_content()) if part is not None else ""


class MailSink:
    """``with MailSink() as sink: ... sink.mails``: an SMTP server on 127.0.0.1 (no TLS, no login).

    ``port`` None picks a free one. With ``mailbox_path`` every message is also appended there.
    """

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", mailbox_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.mailbox_path = mailbox_path
        self._mails: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller = Controller(self, hostname=host, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(time.time(), str(envelope.mail_from), list(envelope.rcpt_tos), parsed)
        with self._cond:
            if self.mailbox_path is not None:
                box = mailbox.mbox(self.mailbox_path)
                try:
                    box.lock()
                    box.add(content)
                    box.flush()
                finally:
                    box.unlock()
                    box.close()
            self._mails.append(mail)
            self._cond.notify_all()
        return "250 OK"

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.mailbox_path is not None:
            self.mailbox_path.parent.mkdir(parents=True, exist_ok=True)
            self.mailbox_path.touch()
        self._controller.start()

    def stop(self) -> None:
        """Stop the server; safe when it never started or already stopped."""
        self._controller.stop(no_assert=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    def matching(self, match: Callable[[ReceivedMail], bool], since: float = 0.0) -> list[ReceivedMail]:
        with self._cond:
            return [m for m in self._mails if m.received_at >= since and match(m)]

    def wait_for(self, match: Callable[[ReceivedMail], bool], timeout: float, what: str,
                 since: float = 0.0) -> ReceivedMail:
        """The first message received at or after ``since`` that ``match`` accepts; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mail in self._mails:
                    if mail.received_at >= since and match(mail):
                        return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [m.subject for m in self._mails]
                    raise TimeoutError(f"no e-mail {what} within {timeout:.0f} s; received: {subjects}")
                self._cond.wait(remaining)
