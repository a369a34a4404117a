"""The development mail catcher: an aiosmtpd sink that keeps the last messages in memory."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class CaughtMail:
    id: int
    received_at: datetime
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        return str(self.message.get("subject", ""))

    def part(self, subtype: str) -> str | None:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None


class MailCatcher:
    """Accepts every message on 127.0.0.1:`port` and keeps the newest `keep` of them."""

    def __init__(self, port: int, keep: int = 500) -> None:
        self.port = port
        self._mails: deque[CaughtMail] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = CaughtMail(
            id=next(self._ids),
            received_at=datetime.now(UTC),
            mail_from=str(envelope.mail_from),
            recipients=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
        )
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, decode_data=False)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mails(self) -> list[CaughtMail]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._mails))

    def forget(self, address: str) -> int:
        """Drop every kept message to `address` (an erased person); returns how many."""
        address = address.lower()
        with self._lock:
            kept = [m for m in self._mails if address not in (r.lower() for r in m.recipients)]
            dropped = len(self._mails) - len(kept)
            self._mails.clear()
            self._mails.extend(kept)
        return dropped

    def get(self, mail_id: int) -> CaughtMail | None:
        with self._lock:
            return next((m for m in self._mails if m.id == mail_id), None)
