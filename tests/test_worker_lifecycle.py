"""`pulse worker` as an operator runs it: it refuses to start on a database it cannot use, backs off when the
database fails while it runs (one line, then a summary, not thousands), and always stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pulse import db
from pulse.models import WorkerHeartbeat
from tests.conftest import ENGINE, free_port
from tests.test_health_faults import Proxy

ROOT = Path(__file__).resolve().parent.parent


def start_worker(database_url: str, log: Path) -> subprocess.Popen:
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        "PULSE_WORKER_INTERVAL": "1",
        "PULSE_SMTP_PORT": str(free_port()),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "worker"], env=environ, cwd=ROOT, stdout=out, stderr=out
        )


def ended(process: subprocess.Popen, seconds: float, log: Path | None = None) -> float:
    """Seconds the process took to end, or fail (and kill it) when it is still alive after `seconds`."""
    began = time.monotonic()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running after {seconds} s" + (f":\n{log.read_text()}" if log else ""))
    return time.monotonic() - began


@pytest.mark.skipif(ENGINE != "sqlite", reason="an SQLite path")
def test_the_worker_stops_at_once_when_the_sqlite_folder_is_missing(tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(f"sqlite://{tmp_path}/missing/pulse.sqlite3", log)
    ended(worker, 15)
    assert worker.returncode == 1
    assert log.read_text().splitlines() == [
        f"Error: PULSE_DATABASE_URL: the folder {tmp_path}/missing does not exist — create it, or correct the path."
    ]


async def test_the_worker_stops_at_once_when_the_database_is_not_fully_migrated(empty_database_url, tmp_path):
    await db.migrate(empty_database_url, target="models.0004_pulse_rounds")
    log = tmp_path / "worker.log"
    worker = start_worker(empty_database_url, log)
    ended(worker, 15)
    assert worker.returncode == 1
    assert log.read_text().splitlines()[-1] == "Error: The database is not migrated — run `pulse migrate`."
    assert len(log.read_text().splitlines()) <= 2  # at most the note about SQLite before it


def test_the_worker_stops_at_once_when_postgresql_cannot_be_reached(tmp_path):
    log = tmp_path / "worker.log"
    port = free_port()
    worker = start_worker(f"postgres://postgres@127.0.0.1:{port}/pulse", log)
    ended(worker, 15)
    assert worker.returncode == 1
    assert log.read_text().splitlines() == [
        f"Error: PULSE_DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused) — "
        "start it, or correct the host and port."
    ]


async def test_sigterm_stops_the_worker_while_the_database_does_not_answer(tmp_path):
    held: list[asyncio.StreamWriter] = []

    async def say_nothing(reader, writer) -> None:  # a database host that accepts connections and never answers
        held.append(writer)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    log = tmp_path / "worker.log"
    worker = start_worker(f"postgres://postgres@127.0.0.1:{port}/pulse", log)
    try:
        await asyncio.sleep(2)
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        # the silent server must keep serving while the worker stops: wait for it in a thread
        took = await asyncio.to_thread(ended, worker, 10, log)
        assert took < 3
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        silent.close()
        for writer in held:
            writer.transport.abort()
        await silent.wait_closed()
    assert "Traceback" not in log.read_text()


async def heartbeat_written() -> bool:
    return await WorkerHeartbeat.exists()


async def wait_until(condition, seconds: float, log: Path) -> None:
    began = time.monotonic()
    while not await condition():
        assert time.monotonic() - began < seconds, f"not within {seconds} s:\n{log.read_text()}"
        await asyncio.sleep(0.1)


async def test_a_database_fault_while_running_is_logged_once_then_summarised_and_sigterm_stops_it(
    app, database_url, tmp_path
):
    """SQLite: another process holds the write lock past the busy timeout. PostgreSQL: the server goes away."""
    log = tmp_path / "worker.log"
    proxy = None
    if ENGINE == "sqlite":
        worker = start_worker(database_url + "?busy_timeout=200", log)
    else:
        parts = urlsplit(database_url)
        proxy = Proxy(parts.port or 5432)
        await proxy.start()
        worker = start_worker(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl(), log)
    holder = None
    try:
        await wait_until(heartbeat_written, 20, log)
        before = len(log.read_text().splitlines())
        if proxy is not None:
            await proxy.cut()
        else:
            holder = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        await asyncio.sleep(6)  # six loops at a 1 s interval: hundreds of attempts without a backoff
        if proxy is not None:
            await proxy.start()
        else:
            holder.execute("ROLLBACK")
        await asyncio.sleep(3)
        assert worker.poll() is None, log.read_text()
        lines = log.read_text().splitlines()[before:]
        worker.send_signal(signal.SIGTERM)
        # at most: 3 s for a step to finish, 1.5 s of cancelling one that hangs on the database, 2 s to close
        assert ended(worker, 10, log) < 7
        assert worker.returncode == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if holder is not None:
            holder.close()
        if proxy is not None:
            await proxy.cut()
    text = "\n".join(lines)
    assert "Traceback" not in text
    failing = [line for line in lines if "failing" in line]
    assert len(failing) == 1, text  # the first failure, once for all the loops
    cleared = [line for line in lines if "works again after" in line]
    assert len(cleared) == 1, text  # and a summary with its count when it clears
    assert len(lines) <= 6, text
