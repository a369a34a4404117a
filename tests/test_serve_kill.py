"""kill -9 of `pulse serve` while clients post touchpoint batches and answers: every request that got a 2xx is
stored exactly once, and Pulse starts again cleanly on the same database."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import ENGINE, ROOT, free_port
from tests.test_logs_no_tokens import pulse


def environ_for(database_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        "PULSE_BASE_URL": f"http://127.0.0.1:{port}",
        "PULSE_QUIET_HOURS": "off",
        "PULSE_LINK_RATE_LIMIT": "100000",
    }


def start(environ: dict[str, str], port: int, log: Path, cwd: Path) -> subprocess.Popen:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "serve", "--no-worker", "--port", str(port)],
            env=environ,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503):
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "pulse serve did not start"
        time.sleep(0.1)


def events(batch: int) -> list[dict]:
    occurred = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    return [
        {
            "external_id": f"B{batch}-{i}",
            "type": "purchase",
            "occurred_at": occurred,
            "contact": {"external_id": f"K{batch}-{i}", "email": f"k{batch}.{i}@example.com", "locale": "en"},
        }
        for i in range(20)
    ]


async def clients(port: int, key: str, stop: asyncio.Event) -> tuple[list[int], list[str]]:
    """Post batches and public-link answers until stopped; return what was acknowledged."""
    batches: list[int] = []
    nonces: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

        async def post_batches(first: int) -> None:
            number = first
            while not stop.is_set():
                try:
                    reply = await http.post(
                        "/api/v1/touchpoints", json=events(number), headers={"authorization": f"Bearer {key}"}
                    )
                    if reply.status_code == 202:
                        batches.append(number)
                except httpx.TransportError:
                    return
                number += 2

        async def answer() -> None:
            while not stop.is_set():
                try:
                    page = await http.get("/l/nps?ref=kill")
                    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
                    await asyncio.sleep(1.05)
                    reply = await http.post(
                        "/l/nps?ref=kill", data={"score": "9", "nonce": nonce}, headers={"accept": "application/json"}
                    )
                    if reply.status_code == 200 and reply.json()["counts"]:
                        nonces.append(nonce)
                except httpx.TransportError:
                    return

        await asyncio.gather(post_batches(0), post_batches(1), *(answer() for _ in range(4)))
    return batches, nonces


def writers_of(database_url: str) -> list[int]:
    """The pids of ingest writer processes (pulse.sqlite_writer) running on this database file."""
    path = database_url.removeprefix("sqlite://").split("?")[0]
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"sqlite_writer.py") for a in arguments) and path.encode() in arguments:
            found.append(int(entry.name))
    return found


def test_kill_9_of_serve_loses_no_acknowledged_write(empty_database_url, tmp_path: Path):
    port = free_port()
    environ = environ_for(empty_database_url, port)
    log = tmp_path / "serve.log"
    pulse(environ, tmp_path, "migrate")
    key = pulse(environ, tmp_path, "apikeys", "create", "--name", "shop", "--scope", "touchpoints:write")
    key = key.splitlines()[-1]
    server = start(environ, port, log, tmp_path)

    writers: list[int] = []

    async def run() -> tuple[list[int], list[str]]:
        stop = asyncio.Event()
        load = asyncio.create_task(clients(port, key, stop))
        await asyncio.sleep(3)
        writers.extend(writers_of(empty_database_url))
        server.send_signal(signal.SIGKILL)  # mid-flight: requests are open on both kinds of endpoint
        await asyncio.sleep(0.2)
        stop.set()
        return await load

    batches, nonces = asyncio.run(run())
    server.wait()
    # the child that wrote the ingest batches (pulse.sqlite_writer) ends with its parent: nothing holds the file
    deadline = time.monotonic() + 10
    while writers_of(empty_database_url):
        assert time.monotonic() < deadline, "the ingest writer process outlived `pulse serve`"
        time.sleep(0.05)
    assert batches and nonces, "the load ran before the kill"
    assert bool(writers) == (ENGINE == "sqlite"), "on SQLite, a child wrote the batches"
    server = start(environ, port, log, tmp_path)  # the same database opens cleanly
    try:

        async def check() -> None:
            from pulse import db
            from pulse.models import Response, Touchpoint

            async with db.connected(empty_database_url):
                for batch in batches:
                    ids = [e["external_id"] for e in events(batch)]
                    assert await Touchpoint.filter(source="api", external_id__in=ids).count() == 20, batch
                keys = [hashlib.sha256(n.encode()).hexdigest() for n in nonces]
                stored = await Response.filter(link_key__in=keys).values_list("link_key", flat=True)
                assert sorted(stored) == sorted(keys)  # each acknowledged answer once
                # a replay of an acknowledged batch is recognised, never stored twice
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                reply = await http.post(
                    "/api/v1/touchpoints", json=events(batches[0]), headers={"authorization": f"Bearer {key}"}
                )
                assert reply.status_code == 202
                assert {r["status"] for r in reply.json()["results"]} == {"duplicate"}, reply.text

        asyncio.run(check())
    finally:
        server.terminate()
        server.wait(10)
