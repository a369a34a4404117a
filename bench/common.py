"""Shared set-up for benchmarks: a migrated database on either engine, a real server and SMTP sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from pulse import db

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("PULSE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def database(engine: str) -> Iterator[str]:
    """A fresh migrated database URL, removed afterwards."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite://{folder}/bench.sqlite3"
            asyncio.run(db.migrate(url))
            yield url
        return
    name = f"pulse_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(db.migrate(url))
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def environment(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PULSE_DATABASE_URL": url,
        "PULSE_SECRET_KEY": "bench-secret-key-0123456789",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        "PULSE_LOG_LEVEL": "warning",
        **extra,
    }


@contextlib.contextmanager
def server(url: str, **extra: str) -> Iterator[str]:
    """`pulse serve --no-worker` in its own process (one uvicorn worker); yields its base URL."""
    with serving(url, **extra) as (base, _):
        yield base


@contextlib.contextmanager
def serving(url: str, **extra: str) -> Iterator[tuple[str, int]]:
    """Like `server`, yielding the base URL and the server's process id (for py-spy and CPU counts)."""
    port = free_port()
    # stderr goes to a file, not a pipe: nobody reads a pipe during the load, and once it is full the server's
    # event loop blocks in its log handler (wrk's dropped connections each log a line at the end of a run)
    log = tempfile.NamedTemporaryFile(prefix="pulse-bench-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "pulse.cli", "serve", "--no-worker", "--port", str(port)],
        env=environment(url, **extra), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        print(f"server log: {log.name}", file=sys.stderr)


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """aiosmtpd's Sink handler in its own process: accepts and discards every message."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
