"""Two processes' worth of state on one database: a real `pulse serve` beside the test's own app, and jobs that
run at the same moment on connections of their own, as separate workers do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from tortoise.context import TortoiseContext

from pulse import db
from pulse.settings import Settings
from tests.conftest import ROOT, free_port


@contextlib.contextmanager
def serving(settings: Settings, log_path: Path, **environ: str) -> Iterator[str]:
    """`pulse serve --no-worker` in its own process on the settings' database; yields its base URL."""
    port = free_port()
    variables = {
        **os.environ,
        "PULSE_DATABASE_URL": settings.database_url,
        "PULSE_SECRET_KEY": settings.secret_key,
        "PULSE_SURVEYS_DIR": settings.surveys_dir,
        "PULSE_BASE_URL": settings.base_url,
        "PULSE_LOG_LEVEL": "warning",
        **environ,
    }
    log = log_path.open("w+")
    command = [sys.executable, "-m", "pulse.cli", "serve", "--no-worker", "--port", str(port)]
    process = subprocess.Popen(command, env=variables, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.seek(0)
        print(log.read())  # shown by pytest when the test fails: the server's traceback of a 500
        log.close()


async def side_by_side(database_url: str, *jobs: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the jobs at once, each on a database connection of its own (as separate processes would), and return
    their results or the exceptions they raised."""

    ready = asyncio.Barrier(len(jobs))

    async def alone(job: Callable[[], Awaitable[Any]]) -> Any:
        async with TortoiseContext() as context:  # this task's own connection, not the test app's
            await context.init(config=db.tortoise_config(database_url))
            await db.fetch("SELECT 1")  # connected before the start
            await ready.wait()
            return await job()

    return await asyncio.gather(*(asyncio.create_task(alone(job)) for job in jobs), return_exceptions=True)


async def two_workers(settings: Settings, job: Callable[[], Awaitable[Any]]) -> list[Any]:
    """The results of `job` run by two workers at once on their own connections; neither may raise."""
    outcomes = await side_by_side(settings.database_url, job, job)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    return outcomes
