"""Tortoise's asyncpg backend, safe when a transaction cannot begin (PostgreSQL went away, a connection broke).

Tortoise 1.1.9 makes the transaction the task's current connection before BEGIN, and undoes that only when the
block ends: when BEGIN fails, the task keeps a transaction whose connection went back to the pool, and every later
query of that task fails ("connection has been released back to the pool") — a worker loop never recovers after
PostgreSQL comes back. Here a failed BEGIN hands the connection back and restores the task's connection.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections


class SafePooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.client._connection = await self.client._parent._pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            get_connections().reset(self.token)
            with contextlib.suppress(Exception):
                await self.client._parent._pool.release(self.client._connection)
            raise
        return self.client


class SafeAsyncpgClient(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return SafePooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = SafeAsyncpgClient
