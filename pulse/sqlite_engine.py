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
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from tortoise.backends.base.client import ConnectionWrapper
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.connection import get_connections
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

T = TypeVar("T")


class ImmediateTransaction(SqliteTransactionWrapper):
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
    async def __aenter__(self) -> Any:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
        except BaseException:
            self._trxlock.release()
            raise
        try:
            await self.connection.begin()
        except BaseException:
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
        try:
            return await connection._execute(function, connection._conn)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(exc) from exc
        except sqlite3.OperationalError as exc:
            raise OperationalError(exc) from exc


client_class = ImmediateSqliteClient
