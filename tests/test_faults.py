"""Faults against real processes: `pulse worker` killed with SIGKILL, a full disk and a read-only file under
SQLite, PostgreSQL going away, a relay that is slow, hangs, or refuses for a while, two workers at once.

What must hold: no acknowledged e-mail is lost, duplicates stay within the messages in flight at each fault
(at most one per worker per fault, each with the same Message-ID), and nothing waits much past the claim's
staleness once the fault clears. The claim goes stale after PULSE_OUTBOX_CLAIM_SECONDS (3 s here, 60 s by
default), so every bound below is measured against that setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pulse.models import OutboxMessage
from pulse.outbox import AFTER_TIMEOUT, Dispatcher
from pulse.rendering import environment
from pulse.touchpoints import ingest
from tests.conftest import ENGINE, SmtpSink, event, free_port
from tests.faults import Proxy, fill, tmpfs

ROOT = Path(__file__).resolve().parent.parent
CLAIM = 3  # seconds: PULSE_OUTBOX_CLAIM_SECONDS for the workers of these tests


async def queue(settings, catalog, count: int, start: int = 0) -> None:
    """`count` invitation e-mails due now."""
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    for first in range(start, start + count, 500):
        numbers = range(first, min(first + 500, start + count))
        outcomes = await ingest([event(n, occurred_at=occurred) for n in numbers], catalog, settings)
        assert Counter(o.status for o in outcomes) == {"invited": len(numbers)}


def start_worker(settings, smtp_port: int, log: Path, database_url: str | None = None, **extra) -> subprocess.Popen:
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": database_url or settings.database_url,
        "PULSE_SECRET_KEY": settings.secret_key,
        "PULSE_SURVEYS_DIR": settings.surveys_dir,
        "PULSE_SMTP_PORT": str(smtp_port),
        "PULSE_SMTP_TIMEOUT": "2",
        "PULSE_OUTBOX_BATCH": "20",
        "PULSE_OUTBOX_CLAIM_SECONDS": str(CLAIM),
        "PULSE_WORKER_INTERVAL": "1",
        "PULSE_BASE_URL": "http://testserver",
        **extra,
    }
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "worker"], env=environ, cwd=ROOT, stdout=out, stderr=out
        )


async def wait_for(condition, seconds: float, every: float = 0.2) -> float:
    """Poll an async condition; the seconds it took, or fail after `seconds`."""
    began = time.monotonic()
    while not await condition():
        if time.monotonic() - began > seconds:
            pytest.fail(f"not within {seconds} s")
        await asyncio.sleep(every)
    return time.monotonic() - began


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def deliveries(smtp) -> Counter:
    with smtp.lock:
        return Counter(m["Message-ID"] for m in smtp.received)


def received(smtp, count: int):
    async def check() -> bool:
        return len(smtp.received) >= count

    return check


async def all_sent(count: int) -> bool:
    return await OutboxMessage.filter(status="sent").count() == count


async def test_three_kills_of_the_worker_resend_at_most_one_message_each(
    mail_app, mail_settings, catalog, smtp, tmp_path
):
    total = 150
    await queue(mail_settings, catalog, total)
    smtp.delay = 0.01
    log = tmp_path / "worker.log"
    kills = 0
    for _ in range(3):
        worker = start_worker(mail_settings, smtp.port, log)
        try:
            before = len(smtp.received)
            await wait_for(received(smtp, before + 20), 30)
        finally:
            worker.kill()  # SIGKILL: no chance to record or release anything
            worker.wait()
        kills += 1
    restarted = time.monotonic()
    worker = start_worker(mail_settings, smtp.port, log)
    try:
        await wait_for(lambda: all_sent(total), 60)
    finally:
        stop(worker)
    took = time.monotonic() - restarted
    counts = deliveries(smtp)
    assert len(counts) == total, log.read_text()[-3000:]  # nothing lost
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= kills, counts.most_common(5)  # at most the one message on the wire at each kill
    assert took < CLAIM + 30  # the dead workers' claims went stale and were taken over promptly
    assert await OutboxMessage.exclude(status="sent").count() == 0


async def test_two_healthy_workers_with_a_slow_relay_never_take_each_others_messages(
    mail_app, mail_settings, catalog, smtp, tmp_path
):
    # each batch (20 messages at 0.25 s) takes longer than a claim lives without its heartbeat
    total = 60
    await queue(mail_settings, catalog, total)
    smtp.delay = 0.25
    log = tmp_path / "workers.log"
    workers = [start_worker(mail_settings, smtp.port, log) for _ in range(2)]
    try:
        await wait_for(lambda: all_sent(total), 90)
    finally:
        for worker in workers:
            stop(worker)
    counts = deliveries(smtp)
    assert len(counts) == total and set(counts.values()) == {1}, counts.most_common(3)
    assert "claim passed to another worker" not in log.read_text()


@pytest.mark.skipif(ENGINE != "sqlite", reason="a disk fault of the SQLite file; PostgreSQL has its outage test")
async def test_a_full_disk_never_sends_what_it_cannot_record_and_loses_nothing(
    mail_app, mail_settings, catalog, smtp, tmp_path
):
    total = 120
    with tmpfs(tmp_path / "disk", size="8m") as disk:
        database = disk / "pulse.sqlite3"
        source = mail_settings.database_url.removeprefix("sqlite://").split("?")[0]
        await queue(mail_settings, catalog, total)
        from tortoise.connection import connections

        await connections.get("default").execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
        database.write_bytes(Path(source).read_bytes())
        smtp.delay = 0.02
        log = tmp_path / "worker.log"
        worker = start_worker(mail_settings, smtp.port, log, database_url=f"sqlite://{database}")
        try:
            await wait_for(received(smtp, 20), 30)
            filler = fill(disk)

            async def cannot_record() -> bool:
                return "outbox failing: database full" in log.read_text()

            # the write-ahead log's file keeps the space of earlier checkpoints, so some commits may still fit
            # after the fill: whatever it sends meanwhile is recorded first. Once a record fails, it sends nothing
            # it has not recorded: at any moment at most the one e-mail on the wire is not yet marked sent.
            await wait_for(cannot_record, 30)
            for _ in range(15):
                delivered = len(deliveries(smtp))
                with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as reader:
                    recorded = reader.execute("SELECT COUNT(*) FROM outbox_message WHERE status = 'sent'").fetchone()[0]
                assert delivered - recorded <= 1, "it sent what it could not record"
                await asyncio.sleep(0.2)
            filler.unlink()

            async def done() -> bool:
                return len(deliveries(smtp)) == total

            await wait_for(done, CLAIM + 40)
        finally:
            stop(worker)
        counts = deliveries(smtp)
        assert len(counts) == total, log.read_text()[-3000:]
        assert sum(n - 1 for n in counts.values()) <= 1, counts.most_common(3)


@pytest.mark.skipif(ENGINE != "postgres", reason="a PostgreSQL outage")
async def test_a_database_outage_stops_sending_and_loses_nothing(mail_app, mail_settings, catalog, smtp, tmp_path):
    from urllib.parse import urlsplit

    total = 120
    await queue(mail_settings, catalog, total)
    parts = urlsplit(mail_settings.database_url)
    proxy = Proxy(parts.port or 5432)
    await proxy.start()
    url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    smtp.delay = 0.02
    log = tmp_path / "worker.log"
    worker = start_worker(mail_settings, smtp.port, log, database_url=url)
    try:
        await wait_for(received(smtp, 20), 30)
        await proxy.cut()
        await asyncio.sleep(1)
        during = len(smtp.received)
        await asyncio.sleep(3)
        assert len(smtp.received) <= during + 1, "it kept sending what it could not record"
        await proxy.start()
        cleared = time.monotonic()
        await wait_for(lambda: all_sent(total), CLAIM + 40)
        assert time.monotonic() - cleared < CLAIM + 40
    finally:
        stop(worker)
        await proxy.cut()
    counts = deliveries(smtp)
    assert len(counts) == total, log.read_text()[-3000:]
    assert sum(n - 1 for n in counts.values()) <= 1, counts.most_common(3)


async def test_a_relay_that_hangs_opens_the_circuit_and_sigterm_still_stops_the_worker(
    mail_app, mail_settings, catalog, tmp_path
):
    await queue(mail_settings, catalog, 40)
    held: list[asyncio.StreamWriter] = []

    async def say_nothing(reader, writer) -> None:  # accepts the connection, never answers
        held.append(writer)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    log = tmp_path / "worker.log"
    worker = start_worker(mail_settings, port, log)
    try:

        async def tripped() -> bool:  # one connect timeout (2 s), then the circuit is open for 30 s
            return "unreachable" in log.read_text()

        await wait_for(tripped, 20)
        await asyncio.sleep(2)
        text = log.read_text()
        assert text.count("unreachable") == 1, text  # one line, not one per message
        assert await OutboxMessage.filter(status="sending").count() == 0  # the batch was given back
        assert await OutboxMessage.filter(attempts__gt=0).count() == 0  # and no attempt was charged
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        assert time.monotonic() - began < 5
    finally:
        stop(worker)
        silent.close()
        for writer in held:
            writer.transport.abort()
        await silent.wait_closed()


async def test_a_relay_answering_4xx_keeps_one_connection(mail_app, mail_settings, catalog, smtp):
    await queue(mail_settings, catalog, 20)
    smtp.data_reply = "451 4.3.0 Try again later"
    dispatcher = Dispatcher(mail_settings, catalog, environment())
    assert await dispatcher.step() == 20
    await dispatcher.close()
    assert len(smtp.peers) == 1  # RSET after each refusal, not a reconnect
    assert await OutboxMessage.filter(status="pending", attempts=1).count() == 20


async def test_a_relay_that_times_out_after_data_is_not_retried_before_its_queue_would_deliver(
    mail_app, mail_settings, catalog, smtp
):
    await queue(mail_settings, catalog, 1)
    smtp.delay = 3  # longer than the client waits: the relay may still deliver it from its queue
    dispatcher = Dispatcher(mail_settings.replace(smtp_timeout=1), catalog, environment())
    began = datetime.now(UTC)
    assert await dispatcher.step() == 1
    await dispatcher.close()
    [row] = await OutboxMessage.all()
    assert row.status == "pending" and "Timeout" in row.last_error
    assert row.next_attempt_at >= began + AFTER_TIMEOUT


class MoodySink(SmtpSink):
    """A relay having a bad day: busy (451) for a while, some addresses unknown (550), one connection dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = True

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bad"):
            return "550 5.1.1 No such user"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.busy:
            return "451 4.3.0 Busy, try again later"
        return await super().handle_DATA(server, session, envelope)


async def test_a_relay_having_a_bad_day_delivers_everything_once_and_bad_addresses_never_block(
    mail_app, mail_settings, catalog
):
    from aiosmtpd.controller import Controller

    sink = MoodySink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), decode_data=False)
    controller.start()
    try:
        settings = mail_settings.replace(smtp_port=controller.port, outbox_batch=10)
        occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
        bad = {3, 11, 17}
        events = [
            event(n, occurred_at=occurred, contact_email=f"{'bad' if n in bad else 'good'}{n}@example.com")
            for n in range(24)
        ]
        await ingest(events, catalog, settings)
        dispatcher = Dispatcher(settings, catalog, environment())
        for _ in range(3):  # busy: every good message is put back with backoff; unknown addresses bounce at once
            await dispatcher.step()
        rows = await OutboxMessage.all()
        assert {r.status for r in rows if r.to_email.startswith("good")} == {"pending"}
        assert all(r.next_attempt_at > datetime.now(UTC) for r in rows if r.status == "pending")  # backoff
        assert {r.status for r in rows if r.to_email.startswith("bad")} == {"failed"}
        sink.busy = False
        sink.drop_next = 1  # and one connection breaks off in the middle of DATA
        for _ in range(20):
            await OutboxMessage.filter(status="pending").update(next_attempt_at=datetime.now(UTC))
            dispatcher.breaker_until = 0  # time passes
            await dispatcher.step()
            if not await OutboxMessage.filter(status="pending").exists():
                break
        await dispatcher.close()
        counts = deliveries(sink)
        assert len(counts) == 21 and set(counts.values()) == {1}
        assert not any(m["To"].startswith("bad") for m in sink.received)
        assert await OutboxMessage.filter(status="sent").count() == 21
    finally:
        controller.stop()


async def test_a_wrong_smtp_host_is_named_at_start_up(mail_app, mail_settings, tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(mail_settings, free_port(), log)  # nothing listens there
    try:

        async def said() -> bool:
            return "cannot reach the SMTP relay" in log.read_text()

        await wait_for(said, 15)
    finally:
        stop(worker)
    line = next(line for line in log.read_text().splitlines() if "cannot reach the SMTP relay" in line)
    assert "PULSE_SMTP_HOST/PULSE_SMTP_PORT" in line and "127.0.0.1" in line
