"""Tortoise's SQLite backend, with every transaction begun by BEGIN IMMEDIATE, and safe when the file fails.

A deferred BEGIN takes the write lock only at the first write; when another process wrote in between, SQLite
cannot upgrade the read and fails at once with "database is locked", without waiting for the busy timeout. With
BEGIN IMMEDIATE the lock is taken up front, the busy timeout applies, and `pulse serve` and `pulse worker` (or
`pulse send-due`) can share one SQLite file: writers queue for each other instead of failing.

Tortoise 1.1.9 takes its connection lock before it opens the connection or begins the transaction, and gives it
back only when the block ends: when opening or BEGIN fails (a file that cannot be opened, a lock held past the
busy timeout, a read-only file), the lock is never released and every later query waits forever. Here a failed
start gives the lock back, a half-opened connection is closed, and a transaction whose COMMIT failed (a full
disk) is rolled back, so nothing of it can be committed later by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from tortoise.backends.base.client import ConnectionWrapper
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.connection import get_connections
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

from pulse.sqlite_writer import WriterProcess

T = TypeVar("T")
log = logging.getLogger("pulse.db")


class ImmediateTransaction(SqliteTransactionWrapper):
    committed_in_thread = False  # a call in SQLite's thread ended with the COMMIT (pulse.db.run_sqlite_writes)

    async def commit(self) -> None:
        if self.committed_in_thread and not self._finalized:
            self._finalized = True  # nothing is left to commit: no hop to the thread for a COMMIT that does nothing
            return
        await super().commit()

    async def begin(self) -> None:
        try:
            if self._connection.in_transaction:  # left open by a COMMIT that failed: never commit it now
                await self._connection.rollback()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class SafeConnectionWrapper(ConnectionWrapper):
    async def __aenter__(self) -> Any:
        await self._lock.acquire()
        try:
            await self.ensure_connection()
        except BaseException:
            self._lock.release()
            raise
        return self.connection


class SafeTransactionContext(SqliteTransactionContext):
    _writer: WriterProcess | None = None  # held for this transaction's turn (writer_turn)

    async def __aenter__(self) -> Any:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
        except BaseException:
            self._trxlock.release()
            raise
        try:
            self._writer = await hold_writer(self.connection._parent.filename)
            await self.connection.begin()
        except BaseException:
            self._release_writer()
            get_connections().reset(self.token)
            self._trxlock.release()
            raise
        return self.connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            await super().__aexit__(exc_type, exc_val, exc_tb)
        except BaseException:
            # the COMMIT (or ROLLBACK) failed: roll back what is left, under the lock, so the next one starts clean
            async with self._trxlock:
                with contextlib.suppress(Exception):
                    connection = self.connection._connection
                    if connection is not None and connection.in_transaction:
                        await connection.rollback()
            raise
        finally:
            self._release_writer()

    def _release_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()


async def hold_writer(filename: str) -> WriterProcess | None:
    """Before a write transaction on this process's own connection to `filename`: the ingest writer process of the
    file, once it has nothing left to write and is held (WriterProcess.hold), or None when there is none. The
    caller releases it when the transaction ends."""
    writer = WRITER
    if writer is None or writer.path != filename:
        return None
    await writer.hold()
    return writer


@contextlib.asynccontextmanager
async def writer_turn(filename: str) -> AsyncIterator[None]:
    """A write transaction's turn beside the ingest writer process (hold_writer), for one that begins itself in
    SQLite's thread (pulse.writer.GroupCommit). pulse.db.run_sqlite_transaction needs none: the ingest uses it
    only while no child answers, and then none has anything in flight."""
    writer = await hold_writer(filename)
    try:
        yield
    finally:
        if writer is not None:
            writer.release()


class ImmediateSqliteClient(SqliteClient):
    async def create_connection(self, with_db: bool) -> None:
        if self._connection is None:
            # Opened once here first: when the file cannot be opened, aiosqlite's failed connect leaves its thread
            # to stop after the event loop may have closed (a command that fails at once), which then prints a
            # second traceback under the sentence that says what is wrong.
            try:
                sqlite3.connect(self.filename).close()
            except sqlite3.Error as exc:
                raise OperationalError(exc) from exc
        try:
            await super().create_connection(with_db)
        except BaseException:
            # e.g. the file opened but a pragma failed (read-only): do not keep a half-configured connection
            connection, self._connection = self._connection, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(connection.close())
            raise

    def acquire_connection(self) -> ConnectionWrapper:
        return SafeConnectionWrapper(self._lock, self)

    def _in_transaction(self) -> SqliteTransactionContext:
        return SafeTransactionContext(ImmediateTransaction(self), self._lock)

    async def run_in_thread(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Call `function` with the raw sqlite3 connection in aiosqlite's thread, under the connection lock that
        every Tortoise query and transaction takes: several statements for one hop to that thread and back, instead
        of a hop (and Tortoise's query machinery) per statement. sqlite3's errors become Tortoise's, as from a
        query."""
        return await call_in_thread(self, function)


async def call_in_thread(client: Any, function: Callable[[sqlite3.Connection], T]) -> T:
    """`function` with the raw sqlite3 connection in aiosqlite's thread, under `client`'s lock (the connection's,
    or an open transaction's); sqlite3's errors become Tortoise's, as from a query. aiosqlite has no public call
    for this; `_execute` is what its own methods use."""
    async with client.acquire_connection() as connection:
        return await call_in_connection(connection, function)


async def call_in_connection(connection: Any, function: Callable[[sqlite3.Connection], T]) -> T:
    """`function` with the raw sqlite3 connection in the thread of an aiosqlite connection the caller holds (as
    `client.acquire_connection()` gives it); sqlite3's errors become Tortoise's."""
    try:
        return await connection._execute(function, connection._conn)
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc) from exc
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc


client_class = ImmediateSqliteClient


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file in a thread of its own, so that a COMMIT of a
    long-running process (`pulse serve`, `pulse worker`) only appends its pages to the log and syncs it.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the log past `wal_autocheckpoint` pages (1,000
    by default): that commit also copies every logged page back, syncs the database file, and only then returns.
    A 1,000-event ingest writes more than 1,000 pages, so each of its commits paid for a checkpoint (about 60 % of
    its COMMIT). Here a second connection checkpoints PASSIVE (it neither waits for nor blocks the writer) a moment
    after the log changed, and every 2 s anyway; a page written by several commits in that time is copied back
    once. Durability is unchanged: every COMMIT still syncs the log (synchronous=FULL), and the checkpoint syncs
    the file as SQLite's own does. The serving connection keeps its automatic checkpoint as a backstop, at
    BACKSTOP pages, should this thread fall behind or stop.
    """

    BACKSTOP = 10_000  # pages (40 MB of log at 4 KiB a page)
    INTERVAL = 0.25  # seconds between looks at the log
    SURE_EVERY = 8  # looks: a checkpoint at least every 2 s while the log exists, changed or not

    def __init__(self, path: str, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # checkpoints that copied pages back (the tests look)
        # held while a look has the file open; it holds nothing between looks (a file system can be remounted)
        self.busy = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pulse-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _log_state(self) -> tuple[int, int] | None:
        """When the log was last written, and its size: changed means something new to copy back. Only stat():
        opening and closing a file of the database in a process that has it open drops that process's POSIX locks
        on it (SQLite's own connections are safe). A file system's timestamps are coarse, so a commit in the same
        tick as the last look can leave them unchanged: every SURE_EVERY looks, the checkpoint runs anyway."""
        try:
            status = os.stat(f"{self.path}-wal")
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_size)

    def _run(self) -> None:
        seen = self._log_state()
        failing = False  # said once, not four times a second
        looks = 0
        while not self._stop.wait(self.interval):
            now = self._log_state()
            looks += 1
            if now is None or (now == seen and looks < self.SURE_EVERY):
                continue
            seen, looks = now, 0
            try:
                with self.busy:
                    connection = sqlite3.connect(self.path, isolation_level=None)
                    try:
                        connection.execute("PRAGMA synchronous = FULL")  # the file is synced before the log restarts
                        *_, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    finally:
                        connection.close()
                if copied > 0:
                    self.checkpoints += 1
                failing = False
            except sqlite3.Error as error:  # e.g. a full disk: the writer's own checkpoint remains
                if not failing:
                    log.warning("could not checkpoint the write-ahead log: %s", error)
                failing, seen = True, None  # try again at the next look


class LoopReader:
    """A read-only connection used on the event loop's own thread, for a point read on a hot path (a few pages
    found by key: the invitation behind an answer link), with no hop to a database thread.

    Each hop to aiosqlite's thread and back costs the event loop a wake-up, and the thread must take the GIL back
    from it; under load that cost more than the read. A read of a few pages takes tens of microseconds here, about
    what the hop's own bookkeeping takes. It sees the last committed state (WAL), and it never waits: with no
    busy timeout, a read SQLite cannot start at once (the log being reset, say) and any other error give None, and
    the caller reads through the usual path instead (pulse.db.point_read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def rows(self, sql: str, params: list | tuple) -> list[tuple] | None:
        try:
            if self._connection is None:
                # sqlite3 checks that only this thread (the event loop's: `serving` runs there) uses it
                connection = sqlite3.connect(self.path, isolation_level=None)
                connection.execute("PRAGMA query_only = ON")
                connection.execute("PRAGMA busy_timeout = 0")
                self._connection = connection
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.Error:
            return None

    def snapshot(self, read: Callable[[sqlite3.Connection], T]) -> T | None:
        """`read(connection)` in one read transaction: every query of it sees the same committed state. None if
        it cannot run at once or fails."""
        if self.rows("SELECT 1", ()) is None:  # opens the connection
            return None
        assert self._connection is not None
        try:
            self._connection.execute("BEGIN")
            try:
                return read(self._connection)
            finally:
                self._connection.execute("ROLLBACK")
        except sqlite3.Error:
            return None

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


# The second connection of a long-running process (see `serving`): reads that must not queue behind another
# task's write transaction go there (pulse.db.reader).
# The GIL switch interval of a serving process, against Python's 5 ms: bench/README.md, "Seventh pass"
SWITCH_INTERVAL = 0.0005
READER: ImmediateSqliteClient | None = None
LOOP_READER: LoopReader | None = None  # the third, on the event loop's thread (pulse.db.point_read)
CHECKPOINTER: WalCheckpointer | None = None  # its `busy` lock keeps it between looks (a test remounts the disk)
# the child process that writes ingest batches decided ahead (pulse.sqlite_writer), started when first wanted;
# WRITER_PROCESS False keeps those writes in this process (a test compares the two ways)
WRITER: WriterProcess | None = None
WRITER_PROCESS = True


@contextlib.asynccontextmanager
async def serving(client: Any, *, interval: float = WalCheckpointer.INTERVAL) -> AsyncIterator[WalCheckpointer | None]:
    """What a long-running process (`pulse serve`, `pulse worker`) adds on SQLite while the block runs: a
    WalCheckpointer, a second, read-only connection to the file, a third for point reads on the event loop's
    thread (LoopReader), and a child process for the ingest writes, started when first wanted (WRITER). Tortoise
    has one connection per database, and a transaction holds it from BEGIN to COMMIT: a request's first lookups
    (its API key, say) waited for whatever transaction was open, a whole 1,000-event ingest among them. Through
    the second connection they read the last committed state at once (WAL lets readers run beside the writer).
    Nothing for PostgreSQL (a pool) or :memory:.

    It also shortens the interpreter's switch interval (SWITCH_INTERVAL): aiosqlite's thread lets go of the GIL
    for each step of SQLite's and takes it back after; while the event loop runs Python, each take-back waits up
    to that interval, and a batch's writes run beside the next batch's decisions (pulse.touchpoints)."""
    global READER, CHECKPOINTER, LOOP_READER, WRITER
    if not isinstance(client, ImmediateSqliteClient) or client.filename == ":memory:":
        yield None
        return
    await call_in_thread(client, lambda raw: raw.execute(f"PRAGMA wal_autocheckpoint = {WalCheckpointer.BACKSTOP}"))
    checkpointer = WalCheckpointer(client.filename, interval=interval)
    checkpointer.start()
    reader = ImmediateSqliteClient(client.filename, connection_name="reader", **{**client.pragmas, "query_only": "ON"})
    previous, READER = READER, reader
    previous_checkpointer, CHECKPOINTER = CHECKPOINTER, checkpointer
    previous_loop_reader, LOOP_READER = LOOP_READER, LoopReader(client.filename)
    writer = WriterProcess(client.filename, {**client.pragmas, "wal_autocheckpoint": WalCheckpointer.BACKSTOP})
    previous_writer, WRITER = WRITER, writer
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))
    try:
        yield checkpointer
    finally:
        sys.setswitchinterval(switch_interval)
        LOOP_READER.close()
        READER, CHECKPOINTER, LOOP_READER = previous, previous_checkpointer, previous_loop_reader
        WRITER = previous_writer
        await writer.close()
        with contextlib.suppress(Exception):
            await reader.close()
        await asyncio.to_thread(checkpointer.stop)
