"""`pulse serve --no-worker` and a separate `pulse worker` on one SQLite file, under load: every write waits its
turn (BEGIN IMMEDIATE and the busy timeout) instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ENGINE, SmtpSink, free_port
from tests.test_logs_no_tokens import environment, pulse, serving

pytestmark = pytest.mark.skipif(ENGINE != "sqlite", reason="the SQLite file shared by two processes")


def batch(first: int, count: int) -> list[dict]:
    occurred = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    return [
        {
            "external_id": f"T-{n}",
            "type": "support_ticket_closed",
            "occurred_at": occurred,
            "contact": {"external_id": f"C-{n}", "email": f"c{n}@example.com", "locale": "en", "timezone": "UTC"},
            "channel": "phone",
        }
        for n in range(first, first + count)
    ]


def test_serve_and_a_separate_worker_share_one_sqlite_file_under_load(
    empty_database_url, smtp: SmtpSink, tmp_path: Path
):
    port = free_port()
    environ = environment(empty_database_url, smtp, port)
    log = tmp_path / "pulse.log"
    pulse(environ, tmp_path, "migrate")
    key = pulse(environ, tmp_path, "apikeys", "create", "--name", "crm", "--scope", "touchpoints:write")
    bearer = {"authorization": f"Bearer {key.splitlines()[-1]}"}
    with log.open("ab") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "worker"], env=environ, cwd=tmp_path, stdout=output, stderr=output
        )
    try:
        with serving(environ, tmp_path, port, log, "--no-worker"):

            async def post_events(client: httpx.AsyncClient) -> list[int]:
                statuses = []
                for first in range(0, 1200, 200):  # 24 batches of 50 events, four at a time
                    replies = await asyncio.gather(
                        *(
                            client.post("/api/v1/touchpoints", json=batch(start, 50), headers=bearer)
                            for start in range(first, first + 200, 50)
                        )
                    )
                    statuses += [r.status_code for r in replies]
                return statuses

            async def answer(client: httpx.AsyncClient) -> list[httpx.Response]:
                pages = []
                for message in list(smtp.received)[:40]:
                    link = re.search(
                        r"http://127\.0\.0\.1:\d+(/s/[^\s?]+)\?score=(\d)", message.get_body(("plain",)).get_content()
                    )
                    page = await client.get(f"{link.group(1)}?score={link.group(2)}")
                    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
                    pages.append((link.group(1), link.group(2), nonce))
                await asyncio.sleep(1.1)  # a person reads before answering
                json = {"accept": "application/json"}
                return await asyncio.gather(
                    *(client.post(path, data={"score": n, "nonce": nonce}, headers=json) for path, n, nonce in pages)
                )

            async def load() -> None:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                    statuses = await post_events(client)
                    assert statuses == [202] * 24, statuses
                    while len(smtp.received) < 40:  # noqa: ASYNC110 - the sink runs in its own thread
                        await asyncio.sleep(0.1)
                    replies = await answer(client)  # while the worker keeps sending and recording
                    assert [r.status_code for r in replies] == [200] * 40
                    assert all(r.json()["counts"] for r in replies), [r.text for r in replies]

            asyncio.run(asyncio.wait_for(load(), 60))
            deadline = time.monotonic() + 60
            while len(smtp.received) < 1200 and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(10)
    text = log.read_text(errors="replace")
    assert "database is locked" not in text, text[-3000:]
    assert " 500 " not in text and "Traceback" not in text, text[-3000:]
    assert len({m["Message-ID"] for m in smtp.received}) == 1200  # every invitation, once
