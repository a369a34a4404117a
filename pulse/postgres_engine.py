"""Tortoise's asyncpg backend, safe when a transaction cannot begin or its connection is lost as it ends
(PostgreSQL went away, a connection broke).

Tortoise 1.1.9 makes the transaction the task's current connection before BEGIN, and undoes that only when the
block ends, after the pool took the connection back: when BEGIN fails, or the pool's reset of the connection
fails once the transaction is over, the task keeps a transaction whose connection went back to the pool, and every
later query of that task fails ("connection has been released back to the pool"): a worker loop never recovers
after PostgreSQL comes back. Here a failed BEGIN hands the connection back and restores the task's connection;
and the block's end always restores it, and does not report a connection lost after the COMMIT (the pool closes
it and opens another): what was committed is stored.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class SafePooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.client._connection = await self.client._parent._pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            await self._hand_back()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:  # a failed BEGIN or COMMIT has nothing to undo
                    await self.client.rollback()
        finally:
            await self._hand_back()

    async def _hand_back(self) -> None:
        """Give the task its own connection again, then the transaction's connection back to the pool. The pool
        resets a connection as it takes it back; if that fails, it closes the connection and replaces it: nothing
        of the transaction is lost by then, and the failure is not the caller's."""
        get_connections().reset(self.token)
        if self.client._parent._pool:
            with contextlib.suppress(Exception):
                await self.client._parent._pool.release(self.client._connection)


class SafeAsyncpgClient(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return SafePooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = SafeAsyncpgClient
