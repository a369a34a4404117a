"""SMTP trouble is never silent: each failing connection and each permanent refusal is logged once with a count,
and the admin's Delivery page shows the last send, the last SMTP error, what is due and which workers loop."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiosmtpd.controller import Controller

from pulse import i18n, worker
from pulse.models import OutboxMessage
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from pulse.touchpoints import ingest
from tests.conftest import event, free_port, sign_in


async def queue(settings, catalog, count: int, start: int = 0) -> None:
    """`count` invitation e-mails due now."""
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    numbers = range(start, start + count)
    outcomes = await ingest([event(n, occurred_at=occurred) for n in numbers], catalog, settings)
    assert Counter(o.status for o in outcomes) == {"invited": count}


def outbox_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pulse.outbox" and r.levelno >= logging.WARNING]


async def test_each_failing_connection_to_the_relay_is_logged_with_a_count(mail_app, mail_settings, catalog, caplog):
    await queue(mail_settings, catalog, 3)
    port = free_port()  # nobody listens: every connection fails
    dispatcher = Dispatcher(mail_settings.replace(smtp_port=port), catalog, environment())
    assert await dispatcher.step() == 0
    # the circuit's wait is over, and the e-mails it gave back are due again: the next step tries again
    dispatcher.breaker_until = 0
    await OutboxMessage.filter(status="pending").update(next_attempt_at=datetime.now(UTC))
    assert await dispatcher.step() == 0
    await dispatcher.close()
    lines = outbox_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"SMTP relay 127.0.0.1:{port} unreachable (SMTPConnectError")
    assert lines[0].endswith("3 e-mails wait 30 s; 1 failed connection since the worker started")
    assert lines[1].endswith("3 e-mails wait 60 s; 2 failed connections since the worker started")
    assert dispatcher.connection_failures == 2


class SlowRelay:
    """Answers DATA only after the client has given up waiting."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(2)
        return "250 Message accepted"


async def test_a_relay_that_times_out_is_logged_once_per_connection(mail_app, mail_settings, catalog, caplog):
    await queue(mail_settings, catalog, 1)
    controller = Controller(SlowRelay(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = mail_settings.replace(smtp_port=controller.port, smtp_timeout=1)
        dispatcher = Dispatcher(settings, catalog, environment())
        assert await dispatcher.step() == 1
        await dispatcher.close()
    finally:
        controller.stop()
    [line] = outbox_lines(caplog)
    assert line.startswith(f"SMTP relay 127.0.0.1:{controller.port} failed while sending e-mail ")
    assert line.endswith("retried in 15 min or later; 1 failed connection since the worker started")
    assert "Timeout" in dispatcher.last_error
    assert dispatcher.last_error_at is not None


async def test_each_permanent_refusal_is_logged_once_with_a_count(mail_app, mail_settings, catalog, smtp, caplog):
    await queue(mail_settings, catalog, 3)
    smtp.rcpt_reply = "550 5.1.1 No such user"
    dispatcher = Dispatcher(mail_settings, catalog, environment())
    assert await dispatcher.step() == 3
    assert await dispatcher.step() == 0  # nothing more is tried, nothing more is logged
    await dispatcher.close()
    lines = outbox_lines(caplog)
    assert len(lines) == 3, lines
    for n, line in enumerate(lines, start=1):
        assert line.startswith("e-mail ")
        assert " refused permanently by the relay (550 5.1.1 No such user): the address is marked bounced; " in line
        assert line.endswith(f"{n} refused since the worker started")
    assert dispatcher.refused == 3


async def loops_for_a_moment(settings, catalog, seconds: float = 1.5) -> None:
    async with worker.running(settings, catalog):
        await asyncio.sleep(seconds)


async def test_the_delivery_page_shows_sends_errors_due_emails_and_workers(org, mail_app, mail_settings, catalog, smtp):
    fast = mail_settings.replace(worker_interval=1)
    await queue(fast, catalog, 1)
    await loops_for_a_moment(fast, catalog)  # sent
    assert await OutboxMessage.filter(status="sent").count() == 1
    await queue(fast, catalog, 2, start=10)
    await loops_for_a_moment(fast.replace(smtp_port=free_port()), catalog)  # the relay went away: nothing sent
    await OutboxMessage.filter(status="pending").update(next_attempt_at=datetime.now(UTC) - timedelta(minutes=7))
    name = f"{socket.gethostname()}:"
    async with sign_in(mail_app, org.admin.email) as admin:
        page = (await admin.get("/admin/delivery")).text
        polish = (await admin.get("/admin/delivery?lang=pl")).text
    assert "Last successful send:" in page
    assert "Last SMTP error" in page and "SMTPConnectError" in page
    assert "E-mails due now: 2; the oldest has waited 7 minutes." in page
    assert "Workers seen" in page and name in page
    assert "1 failed connection" in page
    assert i18n.translate("pl", "Workers seen") != "Workers seen"
    assert i18n.translate("pl", "Workers seen") in polish
    assert i18n.translate("pl", "Last SMTP error") in polish
