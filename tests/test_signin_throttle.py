"""Sign-in under attack: the limits hold under concurrency, and guessers cannot lock the owner out.

Each client address is a separate httpx client on the ASGI transport (the address the app sees). Every
attempt that is not refused with a 429 had its password checked, so the non-429 replies count the checks.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from pulse import throttle
from tests.conftest import PASSWORD


def address(n: int) -> str:
    return f"198.51.100.{n}"


class Browser:
    """One client address with its CSRF cookie and token."""

    def __init__(self, app, host: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.token = ""

    async def __aenter__(self) -> Browser:
        page = await self.http.get("/login")
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    async def sign_in(self, email: str, password: str) -> int:
        data = {"email": email, "password": password, "csrf_token": self.token}
        return (await self.http.post("/login", data=data)).status_code


async def test_forty_parallel_guesses_at_one_account_check_only_five_passwords(mail_app, org):
    async with Browser(mail_app, address(1)) as attacker:
        codes = await asyncio.gather(*(attacker.sign_in("bob@example.com", f"guess {n}") for n in range(40)))
    assert codes.count(400) == throttle.MAX_PER_ACCOUNT_CLIENT, codes
    assert codes.count(429) == 40 - throttle.MAX_PER_ACCOUNT_CLIENT


async def test_forty_parallel_guesses_from_one_client_check_only_twenty_passwords(mail_app, org):
    async with Browser(mail_app, address(1)) as sprayer:
        codes = await asyncio.gather(*(sprayer.sign_in(f"nobody{n}@example.com", "guess") for n in range(40)))
    assert codes.count(400) == throttle.MAX_PER_CLIENT, codes
    assert codes.count(429) == 40 - throttle.MAX_PER_CLIENT


async def test_guesses_from_five_addresses_do_not_lock_the_owner_out(mail_app, org):
    for n in range(5):
        async with Browser(mail_app, address(n)) as guesser:
            assert await guesser.sign_in("bob@example.com", "wrong password") == 400
    async with Browser(mail_app, address(99)) as owner:
        assert await owner.sign_in("bob@example.com", PASSWORD) == 303


async def test_upper_case_variants_count_toward_the_same_account(mail_app, org):
    variants = ["BOB@EXAMPLE.COM", "Bob@Example.com", " bob@EXAMPLE.com", "bOb@example.COM", "BOB@example.com "]
    async with Browser(mail_app, address(7)) as guesser:
        for email in variants:
            assert await guesser.sign_in(email, "wrong password") == 400
        assert await guesser.sign_in("bob@example.com", PASSWORD) == 429  # this client used up its guesses
    async with Browser(mail_app, address(8)) as owner:
        assert await owner.sign_in("Bob@Example.com", PASSWORD) == 303  # another client did not


async def test_many_guessing_addresses_slow_the_account_down_without_locking_it(mail_app, org):
    failures = 2 * throttle.ACCOUNT_FREE_FAILURES
    for n in range(failures):
        async with Browser(mail_app, address(n)) as guesser:
            assert await guesser.sign_in("bob@example.com", "wrong password") == 400
    gap = throttle.spacing(failures)
    assert gap > 0
    guessers = [await Browser(mail_app, address(100 + n)).__aenter__() for n in range(4)]
    started = time.monotonic()
    codes = await asyncio.gather(*(g.sign_in("bob@example.com", "wrong again") for g in guessers))
    elapsed = time.monotonic() - started
    for guesser in guessers:
        await guesser.__aexit__()
    assert codes == [400] * 4
    assert elapsed >= 3 * gap * 0.9, elapsed  # the four checks were spaced out, not run at once
    async with Browser(mail_app, address(200)) as owner:
        started = time.monotonic()
        assert await owner.sign_in("bob@example.com", PASSWORD) == 303
        assert time.monotonic() - started < throttle.MAX_WAIT.total_seconds() + 5


def test_the_spacing_grows_with_failures_and_has_a_ceiling():
    gaps = [throttle.spacing(n) for n in range(0, 200)]
    assert gaps[: throttle.ACCOUNT_FREE_FAILURES] == [0.0] * throttle.ACCOUNT_FREE_FAILURES
    assert gaps == sorted(gaps)
    assert gaps[throttle.ACCOUNT_FREE_FAILURES] > 0
    assert max(gaps) == throttle.MAX_SPACING.total_seconds()


async def test_the_table_names_no_address_or_account_that_hashing_every_candidate_would_find(mail_app, org):
    import hashlib

    from pulse.models import SignInThrottle

    async with Browser(mail_app, address(7)) as guesser:
        assert await guesser.sign_in("bob@example.com", "wrong") == 400
    stored = set(await SignInThrottle.all().values_list("subject", flat=True))
    assert len(stored) == 3  # the client, the account, the pair
    # an IPv4 address or a staff e-mail is a small space: a plain hash of one is found by hashing every candidate
    for kind, parts in (
        ("client", (address(7),)),
        ("account", ("bob@example.com",)),
        ("pair", ("bob@example.com", address(7))),
    ):
        plain = f"{kind}:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()}"
        assert plain not in stored, kind
    assert not any(address(7) in s or "bob@example.com" in s for s in stored)
