"""A rate limiter per client address, shared through the database by every web process.

Each key counts its accepted events in fixed windows (one row of `rate_limit` per key and window); the limit is
checked on a sliding approximation, the current window's count plus the previous window's weighted by how much
of it still lies within the last `window` seconds. Fixed windows alone would let a client post twice the limit
across a boundary (a full window's worth at the end of one and again at the start of the next); an exact sliding
log would need a row per event and a lock per key. A client who used the whole limit gets it back gradually over
the next window, fully after two.

The counting statement is one atomic upsert that adds the event only while the count is below what the previous
window leaves free (`INSERT … ON CONFLICT … DO UPDATE … WHERE hits < ? RETURNING hits`), so processes and
machines that post at the same moment cannot both take the last place. A refused event is not counted, as before.

Keys are stored as an HMAC with the secret key: the table never holds an address, and rows older than two windows
are deleted (each process does it at most once a window).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from pulse import db


class RateLimiter:
    """At most `limit` events per `window` seconds per key, counted in the database for every process."""

    def __init__(self, limit: int, secret_key: str, window: int = 60, name: str = "link") -> None:
        self.limit = limit
        self.window = window
        self.name = name
        self._secret = secret_key.encode()
        self._pruned_at = 0.0

    def digest(self, key: str) -> str:
        """What the table stores for `key`: its HMAC, so no address is kept."""
        return hmac.new(self._secret, f"{self.name}:{key}".encode(), hashlib.sha256).hexdigest()

    async def allow(self, key: str, now: float | None = None) -> bool:
        """Count an event for `key` and return True, or return False (counting nothing) when over the limit."""
        now = time.time() if now is None else now  # wall-clock time: the windows are shared by every machine
        current = int(now // self.window) * self.window
        if now - self._pruned_at >= self.window:
            self._pruned_at = now
            await db.execute("DELETE FROM rate_limit WHERE window_start < ?", [current - self.window])
        digest = self.digest(key)
        [previous] = await db.fetch(
            "SELECT COALESCE(MAX(hits), 0) FROM rate_limit WHERE subject = ? AND window_start = ?",
            [digest, current - self.window],
        )
        weight = 1 - (now - current) / self.window
        room = math.floor(self.limit - previous[0] * weight + 1e-9)  # events this window may still hold in all
        if room <= 0:
            return False
        counted = await db.fetch(
            "INSERT INTO rate_limit (subject, window_start, hits) VALUES (?, ?, 1)"
            " ON CONFLICT (subject, window_start) DO UPDATE SET hits = rate_limit.hits + 1"
            " WHERE rate_limit.hits < ? RETURNING hits",
            [digest, current, room],
        )
        return bool(counted)
