"""Storage faults: a full disk, a read-only file, a database locked or out of reach — told apart from bugs.

The web app answers them with 503, a sentence and Retry-After (pulse.web.errors); /healthz reports them; the
worker backs off on them; and a command that cannot use its database explains why in one sentence that names the
setting and the fix (`check_ready`, `explain`). Only the driver's own errors count: a constraint violation, a
missing row or a bug is never a 503.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
from tortoise.exceptions import BaseORMException, DBConnectionError, OperationalError, TransactionManagementError

from pulse import db
from pulse.errors import PulseError

FULL, READ_ONLY, LOCKED, UNAVAILABLE = "full", "read_only", "locked", "unavailable"
SENTENCES = {
    FULL: "The database's disk is full: nothing can be stored until space is freed. Try again later.",
    READ_ONLY: "The database is read-only: nothing can be stored until it is writable again. Try again later.",
    LOCKED: "The database is busy with another writer. Try again in a few seconds.",
    UNAVAILABLE: "The database cannot be reached. Try again later.",
}
RETRY_AFTER = {FULL: 30, READ_ONLY: 30, LOCKED: 5, UNAVAILABLE: 30}
SETTING = "PULSE_DATABASE_URL"
READY_TIMEOUT = 10.0  # seconds a command waits for the database at start-up

# SQLite says what went wrong only in words
SQLITE_WORDS = (
    ("disk is full", FULL),
    ("readonly", READ_ONLY),
    ("read-only", READ_ONLY),
    ("database is locked", LOCKED),
    ("database table is locked", LOCKED),
    ("unable to open database file", UNAVAILABLE),
    ("disk i/o error", UNAVAILABLE),
    ("file is not a database", UNAVAILABLE),
    ("database disk image is malformed", UNAVAILABLE),
)
POSTGRES_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (asyncpg.exceptions.DiskFullError, FULL),
    (asyncpg.exceptions.ReadOnlySQLTransactionError, READ_ONLY),
    (asyncpg.exceptions.LockNotAvailableError, LOCKED),
    (asyncpg.exceptions.DeadlockDetectedError, LOCKED),
    (asyncpg.exceptions.PostgresConnectionError, UNAVAILABLE),
    (asyncpg.exceptions.CannotConnectNowError, UNAVAILABLE),
    (asyncpg.exceptions.AdminShutdownError, UNAVAILABLE),
    (asyncpg.exceptions.CrashShutdownError, UNAVAILABLE),
    (asyncpg.exceptions.InsufficientResourcesError, UNAVAILABLE),
    (asyncpg.exceptions.InvalidCatalogNameError, UNAVAILABLE),
    (asyncpg.exceptions.InvalidAuthorizationSpecificationError, UNAVAILABLE),
)
DRIVERS = ("asyncpg", "aiosqlite", "sqlite3", "tortoise", "pulse.sqlite_engine", "pulse.postgres_engine")


@dataclass(frozen=True)
class Fault:
    """What is wrong with the database, in a category (full, read_only, locked, unavailable) and the driver's words."""

    kind: str
    detail: str

    @property
    def sentence(self) -> str:
        return SENTENCES[self.kind]

    @property
    def retry_after(self) -> int:
        return RETRY_AFTER[self.kind]


class NotReady(PulseError):
    """The database cannot be used by a command; the message names the setting and the fix."""


def _links(error: BaseException) -> Iterator[BaseException]:
    """The error, and the driver errors Tortoise wrapped in it."""
    current: BaseException | None = error
    for _ in range(5):
        if current is None:
            return
        yield current
        if not isinstance(current, BaseORMException):
            return
        inner = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = inner or current.__cause__ or current.__context__


def _from_driver(error: BaseException) -> bool:
    """An OSError counts only when a database driver raised it (not a template, a file, a socket of ours)."""
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(DRIVERS):
            return True
        tb = tb.tb_next
    return False


def _kind(error: BaseException) -> str | None:
    if isinstance(error, sqlite3.Error) or (
        isinstance(error, OperationalError | TransactionManagementError)
        and error.args
        and isinstance(error.args[0], str)
    ):
        words = str(error).lower()
        return next((kind for word, kind in SQLITE_WORDS if word in words), None)
    if isinstance(error, DBConnectionError):
        return UNAVAILABLE
    if isinstance(error, asyncpg.PostgresError):
        return next((kind for cls, kind in POSTGRES_KINDS if isinstance(error, cls)), None)
    if isinstance(error, asyncpg.InterfaceError):
        words = str(error).lower()
        return UNAVAILABLE if "closed" in words or "pool is closing" in words else None
    if isinstance(error, OSError) and _from_driver(error):
        return {errno.ENOSPC: FULL, errno.EROFS: READ_ONLY}.get(error.errno or 0, UNAVAILABLE)
    return None


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL or an in-memory database)."""
    if not url.startswith("sqlite://") or ":memory:" in url:
        return None
    return Path(unquote(url[len("sqlite://") :].split("?")[0])).expanduser().absolute()


def _file_system_condition(path: Path) -> str | None:
    """FULL or READ_ONLY when the file system holding `path` is so (SQLite's "unable to open" says neither)."""
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return READ_ONLY
    if stats.f_bavail == 0:
        return FULL
    return None


def fault(error: BaseException, database_url: str | None = None) -> Fault | None:
    """The storage fault `error` is, or None when it is something else (a bug, a constraint, a missing row)."""
    for link in _links(error):
        kind = _kind(link)
        if kind is None:
            continue
        path = sqlite_path(database_url or "")
        if kind == UNAVAILABLE and path is not None:
            kind = _file_system_condition(path) or kind
        return Fault(kind, str(link) or type(link).__name__)
    return None


def _where(url: str) -> tuple[str, str, str]:
    """host:port, database name and user of a PostgreSQL URL."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}", parts.path.lstrip("/"), parts.username or ""


def explain(error: BaseException, url: str) -> str | None:
    """One sentence that names the setting and the fix, for an error met while opening the database at `url`."""
    path = sqlite_path(url)
    if path is not None:
        return _explain_sqlite(error, path)
    where, name, user = _where(url)
    host = where.rsplit(":", 1)[0]
    for link in _links(error):
        if isinstance(link, asyncpg.exceptions.InvalidCatalogNameError) or (
            isinstance(link, DBConnectionError) and isinstance(link.__cause__, asyncpg.InvalidCatalogNameError)
        ):
            return f"{SETTING}: there is no database '{name}' on {where} — create it, then run `pulse migrate`."
        if isinstance(link, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
            return (
                f"{SETTING}: PostgreSQL at {where} refused user '{user}' ({link}) — check the user name and password."
            )
        if isinstance(link, asyncpg.exceptions.CannotConnectNowError):
            return f"{SETTING}: PostgreSQL at {where} is starting or stopping — try again in a moment."
        if isinstance(link, asyncpg.exceptions.TooManyConnectionsError):
            return f"{SETTING}: PostgreSQL at {where} has no free connection ({link}) — close some, or raise its limit."
        if isinstance(link, OSError) and not _from_driver(link):
            continue  # a socket or file of something else (an SMTP relay, a CSV file)
        if isinstance(link, socket.gaierror):
            return f"{SETTING}: unknown host '{host}' — correct the host name."
        if isinstance(link, TimeoutError):
            return f"{SETTING}: PostgreSQL at {where} did not answer — check the host, the port and the firewall."
        if isinstance(link, ConnectionRefusedError) or (
            isinstance(link, OSError) and "Connect call failed" in str(link)
        ):
            return (
                f"{SETTING}: cannot connect to PostgreSQL at {where} (connection refused) — start it, or correct "
                "the host and port."
            )
        if isinstance(link, OSError) and _from_driver(link):
            reason = link.strerror or str(link)
            return f"{SETTING}: cannot connect to PostgreSQL at {where} ({reason}) — check the host and port."
    found = fault(error, url)
    if found is not None:
        return f"{SETTING}: PostgreSQL at {where}: {found.sentence}"
    return None


def _explain_sqlite(error: BaseException | None, path: Path) -> str | None:
    if error is not None and not isinstance(error, PermissionError) and fault(error) is None:
        return None  # not the database's fault: say nothing about it
    if not path.parent.is_dir():
        return f"{SETTING}: the folder {path.parent} does not exist — create it, or correct the path."
    condition = _file_system_condition(path)
    found = fault(error, None) if error is not None else None
    kind = found.kind if found else None
    if condition == READ_ONLY or (isinstance(error, OSError) and error.errno == errno.EROFS):
        return f"{SETTING}: {path} is on a read-only file system — remount it read-write, or move the database."
    if kind == FULL or condition == FULL:
        return f"{SETTING}: the disk holding {path} is full — free some space, then try again."
    if isinstance(error, PermissionError) or (kind in (READ_ONLY, UNAVAILABLE) and not _may_write(path)):
        return f"{SETTING}: permission denied on {path} — let the user running Pulse read and write it and its folder."
    if kind == LOCKED:
        return (
            f"{SETTING}: {path} is locked by another process beyond the busy timeout — stop the other writer, "
            "or try again."
        )
    if found is not None and "not a database" in found.detail:
        return f"{SETTING}: {path} is not an SQLite database — correct the path."
    if found is not None:
        return f"{SETTING}: cannot open {path} ({found.detail}) — check the file and its folder."
    return None


def _may_write(path: Path) -> bool:
    """Whether this process may open the file (or create it in its folder) for writing, tried for real."""
    try:
        if path.exists():
            with path.open("r+b"):
                return True
        probe = path.parent / f".pulse-write-check-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        return False
    return True


def _check_sqlite_file(path: Path, *, must_exist: bool) -> None:
    """Faults of an SQLite file that SQLite would report only as "unable to open database file"."""
    if not path.parent.is_dir() or _file_system_condition(path) == READ_ONLY:
        raise NotReady(_explain_sqlite(None, path) or "")
    if must_exist and not path.exists():
        raise NotReady(f"{SETTING}: there is no database file {path} — run `pulse migrate` to create it.")
    if not _may_write(path):
        raise NotReady(_explain_sqlite(PermissionError(errno.EACCES, "Permission denied"), path) or "")


async def _pending(url: str) -> list[str]:
    # Tortoise reads "no migration applied" from any failure, a refused connection included: connect first
    async with db.connected(url):
        await db.fetch("SELECT 1")
    return await db.pending_migrations(url)


async def check_ready(url: str, *, migrated: bool = True, within: float = READY_TIMEOUT) -> None:
    """Raise NotReady with one sentence when the database at `url` cannot be opened, or (with `migrated`) has
    migrations pending."""
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path, must_exist=migrated)
    try:
        pending = await asyncio.wait_for(_pending(url), within)
    except TimeoutError as error:
        if path is not None:
            silent = f"{SETTING}: opening {path} took over {within:.0f} s — check the file system it is on."
        else:
            silent = (
                f"{SETTING}: PostgreSQL at {_where(url)[0]} did not answer within {within:.0f} s — check the host, "
                "the port and the firewall."
            )
        raise NotReady(explain(error, url) or silent) from error
    except Exception as error:
        sentence = explain(error, url)
        if sentence is None:
            raise
        raise NotReady(sentence) from error
    if migrated and pending:
        raise NotReady("The database is not migrated — run `pulse migrate`.")


@dataclass
class Run:
    """Identical failures in a row."""

    text: str
    began: float
    count: int = 0
    logged: float = 0.0
    last: float = 0.0
    sources: set[str] = field(default_factory=set)


class Repeats:
    """Repeated identical failures logged as a story, not a flood: the first in full (by the caller), then a
    summary with a count at most every `every` seconds while they last, and one line with the count when they
    clear. A run with no failure for `every` seconds is over: the next failure is a first again."""

    def __init__(self, log: logging.Logger, every: float = 300.0) -> None:
        self.log = log
        self.every = every
        self.runs: dict[str, Run] = {}

    def failed(self, source: str, key: str, text: str) -> bool:
        """Count one failure of `source`; True when it is the first of its run (the caller logs it in full)."""
        now = time.monotonic()
        run = self.runs.get(key)
        first = run is None or now - run.last >= self.every
        if first:
            run = self.runs[key] = Run(text, began=now, logged=now)
        assert run is not None
        run.count += 1
        run.last = now
        run.sources.add(source)
        if not first and now - run.logged >= self.every:
            run.logged = now
            self.log.warning(
                "still failing (%d times in %.0f s, in %s): %s",
                run.count,
                now - run.began,
                ", ".join(sorted(run.sources)),
                run.text,
            )
        return first

    def succeeded(self, source: str) -> None:
        """`source` works again: a run is over when none of its sources still fails."""
        for key, run in list(self.runs.items()):
            run.sources.discard(source)
            if not run.sources:
                del self.runs[key]
                if run.count > 1:
                    self.log.info(
                        "works again after %d failures in %.0f s: %s", run.count, time.monotonic() - run.began, run.text
                    )
