"""Dispatch: e-mails per second from the outbox to a local SMTP sink, against a bare aiosmtplib loop.

Run: .venv/bin/python -m bench.dispatch [--engine sqlite|postgres] [--messages 2000]
Both runs send the same rendered messages to the same aiosmtpd sink (its own process) over one connection.
Target: outbox rate / bare rate >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiosmtplib

from bench.common import database, smtp_sink
from pulse import db
from pulse.catalog import load_catalog
from pulse.models import OutboxMessage
from pulse.outbox import Dispatcher, load
from pulse.rendering import environment
from pulse.settings import load_settings
from pulse.touchpoints import ingest

ROOT_SURVEYS = "surveys"


async def run(url: str, port: int, count: int) -> tuple[float, float]:
    settings = load_settings(
        environ={"PULSE_DATABASE_URL": url, "PULSE_SECRET_KEY": "bench-secret-key-0123456789",
                 "PULSE_SMTP_PORT": str(port), "PULSE_QUIET_HOURS": "off", "PULSE_SURVEYS_DIR": ROOT_SURVEYS},
        env_file=None,
    )  # fmt: skip
    catalog = load_catalog(ROOT_SURVEYS)
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    async with db.connected(url):
        for start in range(0, count, 1000):
            events = [
                {"external_id": f"E{n}", "type": "support_ticket_closed", "occurred_at": occurred,
                 "contact": {"external_id": f"C{n}", "email": f"c{n}@example.com", "locale": "pl"}}
                for n in range(start, min(start + 1000, count))
            ]  # fmt: skip
            await ingest(events, catalog, settings)
        dispatcher = Dispatcher(settings, catalog, environment())
        # the same messages, rendered up front, for the bare loop
        ids = await OutboxMessage.all().values_list("id", flat=True)
        rendered = [dispatcher.render(row) for row in await load(list(ids))]

        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        start = time.perf_counter()
        for message in rendered:
            await smtp.sendmail(message.sender, [message.recipient], message.data)
        bare = len(rendered) / (time.perf_counter() - start)
        await smtp.quit()

        start = time.perf_counter()
        sent = 0
        while handled := await dispatcher.step():
            sent += handled
        outbox_rate = sent / (time.perf_counter() - start)
        await dispatcher.close()
        assert sent == count and await OutboxMessage.filter(status="sent").count() == count
    return outbox_rate, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    with database(args.engine) as url, smtp_sink() as port:
        outbox_rate, bare = asyncio.run(run(url, port, args.messages))
    print(f"engine: {args.engine}, messages: {args.messages}")
    print(f"outbox -> SMTP: {outbox_rate:,.0f} messages/s (claim, render, send, record)")
    print(f"bare aiosmtplib loop: {bare:,.0f} messages/s (pre-rendered)")
    print(f"ratio: {outbox_rate / bare:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
