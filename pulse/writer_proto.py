"""PROTOTYPE, measurement only: the ingest writes of a batch decided ahead run in a process of their own."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import multiprocessing
from typing import Any


def serve(path: str, pragmas: dict, conn: Any) -> None:
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    for key, value in pragmas.items():
        db.execute(f"PRAGMA {key} = {value}")
    db.execute("PRAGMA wal_autocheckpoint = 10000")
    while True:
        message = conn.recv()
        if message is None:
            break
        try:
            db.execute("BEGIN IMMEDIATE")
            for sql, params in message:
                db.execute(sql, params)
            db.commit()
            conn.send(("ok", (db.total_changes, 0)))
        except Exception as error:
            if db.in_transaction:
                db.rollback()
            conn.send(("error", repr(error)))


class Proto:
    def __init__(self, path: str, pragmas: dict) -> None:
        context = multiprocessing.get_context("spawn")
        self.parent, child = context.Pipe()
        self.process = context.Process(target=serve, args=(path, pragmas, child), daemon=True)
        self.process.start()
        self.waiters: collections.deque = collections.deque()
        self.sender = concurrent.futures.ThreadPoolExecutor(1)
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.parent.fileno(), self._readable)

    def send(self, statements: list) -> asyncio.Future:
        future = self.loop.create_future()
        self.waiters.append(future)
        self.sender.submit(self.parent.send, statements)
        return future

    def _readable(self) -> None:
        while self.parent.poll():
            status, value = self.parent.recv()
            future = self.waiters.popleft()
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(RuntimeError(value))

    def close(self) -> None:
        self.loop.remove_reader(self.parent.fileno())
        self.sender.submit(self.parent.send, None)
        self.sender.shutdown(wait=True)
        self.process.join(5)
