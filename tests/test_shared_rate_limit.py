"""Limits per client hold across web processes: the public-link rate limit and the sign-in throttle are counted
in the database, so N processes do not give a client N times the limit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.models import RateLimit
from pulse.ratelimit import RateLimiter
from tests.conftest import make_org, make_settings, old_nonce
from tests.processes import serving, side_by_side

TOO_MANY = "Too many answers from this address. Please wait a minute."


@pytest.fixture
def limited_settings(database_url: str):
    return make_settings(database_url, PULSE_LINK_RATE_LIMIT="3")


@pytest.fixture
async def limited_app(limited_settings, catalog) -> AsyncIterator:
    application = create_app(limited_settings, catalog=catalog)
    async with LifespanManager(application):
        yield application


async def test_two_web_processes_share_one_link_rate_limit(limited_app, limited_settings, tmp_path: Path):
    """Answers posted alternately to this process and to a `pulse serve` beside it count against one limit."""
    await make_org()
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=limited_app), base_url="http://testserver")
    with serving(limited_settings, tmp_path / "server.log", PULSE_LINK_RATE_LIMIT="3") as base:
        async with local, httpx.AsyncClient(base_url=base, timeout=30) as remote:
            codes = []
            for n in range(6):
                client = (local, remote)[n % 2]
                data = {"score": "5", "nonce": old_nonce(limited_settings, "link:csat", seconds=2 + n)}
                codes.append((await client.post("/l/csat", data=data)).status_code)
            refused = await remote.post("/l/csat", data={"score": "5"}, headers={"accept": "application/json"})
    assert codes == [200, 200, 200, 429, 429, 429]
    assert refused.json() == {"error": TOO_MANY, "errors": []}


async def test_the_limit_comes_back_gradually_after_the_window(app, settings):
    limiter = RateLimiter(3, settings.secret_key, window=60)
    start = 6000.0  # the start of a window

    async def allowed(at: float, times: int, key: str = "203.0.113.7") -> list[bool]:
        return [await limiter.allow(key, now=at) for _ in range(times)]

    assert await allowed(start, 4) == [True, True, True, False]
    assert await allowed(start + 59, 1) == [False]
    assert await allowed(start, 1, key="198.51.100.1") == [True]  # another client has its own count
    # half-way through the next window, half of the previous window's three still count: one more fits
    assert await allowed(start + 90, 2) == [True, False]
    # after a window with a single answer, the whole limit but a share of it is back ...
    assert await allowed(start + 150, 3) == [True, True, False]
    # ... and after an idle window, all of it
    assert await allowed(start + 300, 4) == [True, True, True, False]


async def test_the_table_keeps_no_address_and_forgets_old_windows(app, settings):
    limiter = RateLimiter(3, settings.secret_key, window=60)
    for at in (6000.0, 6060.0, 6120.0, 6185.0):
        assert await limiter.allow("203.0.113.7", now=at)
    stored = await RateLimit.all().values_list("subject", flat=True)
    assert set(stored) == {limiter.digest("203.0.113.7")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) and "203.0.113.7" not in s for s in stored)
    assert limiter.digest("203.0.113.7") != RateLimiter(3, "another secret").digest("203.0.113.7")
    # each process sweeps at most once a window; what is older than the previous window is gone
    assert sorted(await RateLimit.all().values_list("window_start", flat=True)) == [6120, 6180]
    assert await limiter.allow("198.51.100.1", now=6250.0)
    assert sorted(await RateLimit.all().values_list("window_start", flat=True)) == [6180, 6240]


async def test_clients_racing_on_two_connections_never_pass_the_limit_together(app, settings):
    limiter = RateLimiter(10, settings.secret_key, window=60)

    async def burst() -> list[bool]:
        return [await limiter.allow("203.0.113.7", now=6000.0) for _ in range(10)]

    outcomes = await side_by_side(settings.database_url, burst, burst)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert sum(outcomes[0]) + sum(outcomes[1]) == 10


async def sign_in_attempt(client: httpx.AsyncClient, password: str) -> httpx.Response:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post("/login", data={"email": "alice@example.com", "password": password, "csrf_token": token})


async def test_the_sign_in_throttle_counts_guesses_made_through_two_processes(app, settings, tmp_path: Path):
    await make_org()
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    with serving(settings, tmp_path / "server.log") as base:
        async with local, httpx.AsyncClient(base_url=base, timeout=30) as remote:
            codes = [(await sign_in_attempt((local, remote)[n % 2], f"wrong {n}")).status_code for n in range(5)]
            refused = await sign_in_attempt(remote, "wrong again")
    assert codes == [400] * 5  # each password checked, and found wrong
    assert refused.status_code == 429
    assert "Too many failed sign-ins. Wait 15 minutes and try again." in refused.text
