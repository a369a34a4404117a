"""Any number of workers: each due e-mail is claimed by exactly one of them and sent exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pulse.models import Invitation, OutboxMessage
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from pulse.touchpoints import ingest
from tests.conftest import event

ROOT = Path(__file__).resolve().parent.parent


async def schedule(settings, catalog, count: int) -> None:
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    outcomes = await ingest([event(n, occurred_at=occurred) for n in range(count)], catalog, settings)
    assert Counter(o.status for o in outcomes) == {"invited": count}


async def test_two_worker_tasks_share_the_work_without_double_sends(mail_app, mail_settings, catalog, smtp):
    await schedule(mail_settings, catalog, 60)
    settings = mail_settings.replace(outbox_batch=7)
    workers = [Dispatcher(settings, catalog, environment()) for _ in range(2)]

    async def drain(worker: Dispatcher) -> int:
        total = 0
        while handled := await worker.step():
            total += handled
        return total

    done = await asyncio.gather(*(drain(w) for w in workers))
    assert sum(done) == 60
    assert all(n > 0 for n in done), done  # both really worked
    ids = Counter(m["Message-ID"] for m in smtp.received)
    assert len(ids) == 60 and set(ids.values()) == {1}
    assert await OutboxMessage.filter(status="sent").count() == 60
    assert await Invitation.filter(status="sent").count() == 60


async def test_two_worker_processes_never_send_a_message_twice(mail_app, mail_settings, catalog, smtp):
    await schedule(mail_settings, catalog, 120)
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": mail_settings.database_url,
        "PULSE_SECRET_KEY": mail_settings.secret_key,
        "PULSE_SURVEYS_DIR": mail_settings.surveys_dir,
        "PULSE_SMTP_PORT": str(smtp.port),
        "PULSE_OUTBOX_BATCH": "5",
    }
    command = [sys.executable, "-m", "pulse.cli", "send-due"]
    processes = [
        subprocess.Popen(command, env=environ, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    handled = [int(out.split()[1]) for out, _ in outputs]
    assert sum(handled) == 120
    ids = Counter(m["Message-ID"] for m in smtp.received)
    assert len(ids) == 120 and set(ids.values()) == {1}
    assert await OutboxMessage.filter(status="sent").count() == 120
