"""Tortoise's SQLite backend, with every transaction begun by BEGIN IMMEDIATE.

A deferred BEGIN takes the write lock only at the first write; when another process wrote in between, SQLite
cannot upgrade the read and fails at once with "database is locked", without waiting for the busy timeout. With
BEGIN IMMEDIATE the lock is taken up front, the busy timeout applies, and `pulse serve` and `pulse worker` (or
`pulse send-due`) can share one SQLite file: writers queue for each other instead of failing.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.exceptions import TransactionManagementError


class ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> SqliteTransactionContext:
        return SqliteTransactionContext(ImmediateTransaction(self), self._lock)


client_class = ImmediateSqliteClient
