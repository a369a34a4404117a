"""Throttling password guesses: limits that hold under concurrency and across processes, and that no guesser can
turn against the owner of an account.

Three counters, each a row of `signin_throttle`, counted over a window of WINDOW:

- a client address: at most MAX_PER_CLIENT attempts, whatever the accounts (password spraying);
- an account from one client: at most MAX_PER_ACCOUNT_CLIENT attempts (guessing one password);
- an account from every client: never a refusal, since that would let anyone lock the owner out. Once it has seen
  ACCOUNT_FREE_FAILURES attempts, its password checks are spaced out instead, the gap growing with the failures,
  and no request waits longer than MAX_WAIT: guessing from many addresses gets slow, the owner still gets in.

An attempt is counted *before* its password is checked, in one transaction that locks the rows it counts (FOR
UPDATE on PostgreSQL; on SQLite, BEGIN IMMEDIATE lets one writer in at a time), so forty parallel guesses cannot
all read a count of four. A right password gives its attempt back.

The e-mail is stripped and casefolded, so BOB@Example.com and bob@example.com are one account. Subjects are
stored as an HMAC with the secret key: the table holds no e-mail or address, and since IPv4 addresses and staff
e-mails are small spaces, a plain hash would not do (anyone with the table could hash every candidate).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from pulse.errors import TooManyRequests
from pulse.models import SignInThrottle

WINDOW = timedelta(minutes=15)
MAX_PER_CLIENT = 20
MAX_PER_ACCOUNT_CLIENT = 5
ACCOUNT_FREE_FAILURES = 5
FIRST_SPACING = timedelta(seconds=0.5)
MAX_SPACING = timedelta(seconds=8)
MAX_WAIT = timedelta(seconds=10)


def normalised(email: str) -> str:
    """The form of an e-mail that the throttle counts by."""
    return email.strip().casefold()


def spacing(failures: int) -> float:
    """Seconds between an account's password checks once it has seen `failures` attempts in the window: none at
    first, then FIRST_SPACING, doubling every ACCOUNT_FREE_FAILURES more, up to MAX_SPACING."""
    if failures < ACCOUNT_FREE_FAILURES:
        return 0.0
    doublings = min((failures - ACCOUNT_FREE_FAILURES) // ACCOUNT_FREE_FAILURES, 16)
    return min(FIRST_SPACING.total_seconds() * 2**doublings, MAX_SPACING.total_seconds())


def _subject(secret: str, kind: str, *parts: str) -> str:
    digest = hmac.new(secret.encode(), chr(0).join((kind, *parts)).encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest}"


@dataclass(frozen=True)
class Admission:
    """A counted attempt: the rows that counted it, and when its password may be checked."""

    client: str
    account: str
    pair: str
    check_at: datetime

    async def wait(self) -> None:
        """Sleep until this attempt's turn among the account's password checks."""
        delay = (self.check_at - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


async def admit(email: str, client: str, secret: str, now: datetime | None = None) -> Admission:
    """Count a sign-in attempt, or refuse it (429, with a sentence) when this client has tried too often."""
    now = now or datetime.now(UTC)
    email = normalised(email)
    found = Admission(
        _subject(secret, "client", client),
        _subject(secret, "account", email),
        _subject(secret, "pair", email, client),
        now,
    )
    subjects = sorted((found.client, found.account, found.pair))  # one locking order for every request
    for _ in range(3):  # a stale row may be swept between its insert and the lock: then take a fresh one
        await SignInThrottle.bulk_create(
            [SignInThrottle(subject=s, attempts=0, window_start=now) for s in subjects], ignore_conflicts=True
        )
        async with in_transaction():
            locked = await SignInThrottle.filter(subject__in=subjects).order_by("subject").select_for_update()
            rows = {row.subject: row for row in locked}
            if len(rows) == len(subjects):
                return replace(found, check_at=await _count(rows, found, now))
    raise RuntimeError("sign-in throttle rows keep disappearing")


async def _count(rows: dict[str, SignInThrottle], found: Admission, now: datetime) -> datetime:
    """Inside the locking transaction: refuse, or count the attempt and give it its turn."""
    for row in rows.values():
        if row.window_start <= now - WINDOW:
            row.attempts, row.window_start = 0, now
    if rows[found.client].attempts >= MAX_PER_CLIENT:
        raise TooManyRequests("Too many failed sign-ins from this network. Wait 15 minutes and try again.")
    if rows[found.pair].attempts >= MAX_PER_ACCOUNT_CLIENT:
        raise TooManyRequests("Too many failed sign-ins for this account. Wait 15 minutes, or reset the password.")
    account = rows[found.account]
    check_at = min(max(account.next_at or now, now), now + MAX_WAIT)
    account.next_at = check_at + timedelta(seconds=spacing(account.attempts))
    for row in rows.values():
        row.attempts += 1
        await row.save(update_fields=["attempts", "window_start", "next_at"])
    return check_at


async def settle(admission: Admission, succeeded: bool, now: datetime | None = None) -> None:
    """After the check: a right password gives the attempt back and clears this client's count for the account;
    a wrong one stays counted. Rows nobody has used for a window are swept then."""
    if not succeeded:
        return
    now = now or datetime.now(UTC)
    await SignInThrottle.filter(subject=admission.pair).update(attempts=0)
    await SignInThrottle.filter(subject__in=(admission.client, admission.account), attempts__gt=0).update(
        attempts=F("attempts") - 1
    )
    await SignInThrottle.filter(Q(next_at=None) | Q(next_at__lt=now), window_start__lt=now - WINDOW).delete()
