"""SQLite: the ingest writes of a long-running process, run by a child process of their own.

A 1,000-event batch spends about 50 ms of CPU in SQLite's write, and the next batch is decided on the event loop
meanwhile (pulse.touchpoints._store_in_line). In one process both need the GIL: aiosqlite's thread takes it back
after each step of SQLite's, and each take-back waits for the event loop's switch interval, so the write took
77-89 ms of wall time for its 50-61 ms of CPU (bench/README.md, "Eighth pass"). Here the statements of a batch
decided ahead go over a pipe to a child that writes them with a connection of its own, and the parent's GIL is
free for the next batch.

The child writes a batch only if nothing else was written since the state it was decided from, checked inside
its write transaction with SQLite's own counters (`total_changes`, `PRAGMA data_version`), as the one-process
path does (pulse.db._write_and_commit):

- a batch decided over the batch before it (in the pipe just before it) is sent "chained": written only if that
  batch was written and nothing else committed since;
- any other batch first asks for the child's counters ("state"), then is decided from the last committed state,
  and is written only if those counters still hold.

Whatever the child does not write (the check failed, an error, the child gone) is decided again and written by
the caller through Tortoise's connection, as without the child: an error there is then Tortoise's, with the usual
answer (a 503 for a full disk). A child that dies after a COMMIT but before its answer leaves its batch stored:
decided again, its events are then found already stored (duplicates), and nothing is stored twice.

This file is also the child's program: run as a script (`python -I -S`), it imports nothing but the standard
library (about 0.1 s to its first answer; batches are written in the serving process meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import decimal
import itertools
import json
import logging
import math
import os
import pickle
import sqlite3
import struct
import sys
import time
from typing import Any

log = logging.getLogger("pulse.db")

HEADER = struct.Struct("!I")  # the length of each pickled message that follows
PROGRAM = os.path.abspath(__file__)  # the child's (this file, as a script)
PIPE_SIZE = 1 << 20  # bytes: Linux's default limit for a pipe of an unprivileged process


class WriterGone(Exception):
    """The child ended (or could not start) before it answered."""


class WriterProcess:
    """The parent's side: starts the child when first wanted, sends it requests and reads its answers in order.

    Every answer belongs to one incarnation of the child (`generation`): counters read from one are never
    compared by another, whose counters started afresh."""

    RESTART_AFTER = 1.0  # seconds after a child ended before another is started

    def __init__(self, path: str, pragmas: dict[str, Any]) -> None:
        self.path = path
        self.pragmas = dict(pragmas)
        self.generation = 0  # of the child that answers now; 0 while none does
        self.wrote = 0  # batches written by children (the tests look)
        self.child: dict[str, Any] = {}  # what the running child said when it started: its pid and its pragmas
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task | None = None
        self._reading: asyncio.Task | None = None
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._ended_at = -math.inf  # none has ended: a first start waits for nothing
        self._writes = 0  # write requests sent and not answered yet
        self._drained = asyncio.Event()  # set while there are none
        self._drained.set()
        self._holding = 0  # write transactions of this process's own connection waiting for their turn, or in it
        self._free = asyncio.Event()  # set while there are none
        self._free.set()

    def usable(self) -> bool:
        """True when a child is running and has answered; otherwise False, and a child is started in the
        background unless one is starting or one ended less than RESTART_AFTER ago."""
        if self.generation:
            return True
        if self._starting is None and time.monotonic() - self._ended_at >= self.RESTART_AFTER:
            self._starting = asyncio.ensure_future(self._start())
        return False

    async def started(self) -> bool:
        """Wait for a child to answer (starting one if none is, once RESTART_AFTER has passed); whether one does."""
        wait = self.RESTART_AFTER - (time.monotonic() - self._ended_at)
        if not self.generation and self._starting is None and wait > 0:
            await asyncio.sleep(wait)
        self.usable()
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        return bool(self.generation)

    def state(self) -> asyncio.Future:
        """The child's counters now, as a token `write` takes: (generation, total_changes, data_version); None
        when no child answers."""
        return self._send(("state",))

    def write(self, statements: list[tuple[str, list]], expect: tuple | None) -> asyncio.Future:
        """Run `statements` in one transaction of the child's, if the counters are still `expect` (a `state`
        token), or, with `expect` None, if the request sent just before this one was written and nothing else was
        committed since. Resolves to the counters after the COMMIT, or None when nothing was written."""
        if expect is not None and expect[0] != self.generation:
            return self._resolved(None)  # read from a child that has ended since
        if self._holding:
            return self._resolved(None)  # a write transaction of this process waits for its turn: it goes first
        future = self._send(("write", expect[1:] if expect else None, statements))
        if not future.done():
            self._writes += 1
            self._drained.clear()
            future.add_done_callback(self._written)
        return future

    def _written(self, _: asyncio.Future) -> None:
        self._writes -= 1
        if not self._writes:
            self._drained.set()

    async def hold(self) -> None:
        """Before a write transaction of this process's own connection (Tortoise's): wait until the child has no
        write left to run, and send it none until `release()`. Under a steady ingest the child holds SQLite's
        write lock almost all the time, with gaps of about a millisecond between batches; the transaction's BEGIN
        IMMEDIATE would poll for the lock (SQLite's busy handler sleeps up to 100 ms between tries) and an answer
        could wait seconds behind batches that came after it. This way it waits for at most the batches already
        sent; a batch that comes meanwhile waits for the transaction to end, then is decided from the state it
        leaves (pulse.touchpoints._ahead_in_process)."""
        self._holding += 1
        self._free.clear()
        try:
            await self._drained.wait()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """The transaction `hold()` waited for has ended."""
        self._holding -= 1
        if not self._holding:
            self._free.set()

    @property
    def held(self) -> bool:
        """Whether a write transaction of this process's own connection waits for its turn, or is in it."""
        return bool(self._holding)

    async def free(self) -> None:
        """Wait until no write transaction of this process's own connection waits for its turn or is in it."""
        await self._free.wait()

    def _resolved(self, value: Any) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.set_result(value)
        return future

    def _send(self, message: tuple) -> asyncio.Future:
        process = self._process
        if not self.generation or process is None or process.stdin is None or process.stdin.is_closing():
            return self._resolved(None)
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        process.stdin.write(HEADER.pack(len(data)) + data)  # buffered by the transport: never blocks the loop
        return future

    async def _start(self) -> None:
        process = None
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                PROGRAM,
                self.path,
                json.dumps(self.pragmas),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdin is not None and process.stdout is not None
            _widen(process.stdin.transport.get_extra_info("pipe"))
            kind, self.child = await _read(process.stdout)
            if kind != "ready":
                raise WriterGone(f"the writer process said {kind!r} first")
        except (OSError, WriterGone, asyncio.IncompleteReadError, EOFError) as error:
            log.warning("the ingest writer process could not start (ingest writes in this process): %s", error)
            if process is not None:
                await _stop(process)
            self._ended_at = time.monotonic()
            return
        finally:
            self._starting = None
        self._process = process
        self.generation = next(_generations)
        self._reading = asyncio.ensure_future(self._read_answers(process, self.generation))

    async def _read_answers(self, process: asyncio.subprocess.Process, generation: int) -> None:
        assert process.stdout is not None
        try:
            while True:
                kind, value = await _read(process.stdout)
                future = self._waiting.popleft()
                if kind == "wrote":
                    self.wrote += 1
                    result: Any = tuple(value)
                elif kind == "state":
                    result = (generation, *value)
                else:
                    result = None
                    if kind == "error":
                        log.info("the ingest writer process did not write a batch: %s", value)
                if not future.done():
                    future.set_result(result)
        except (asyncio.IncompleteReadError, EOFError, ConnectionError) as error:
            if self.generation == generation:
                log.warning("the ingest writer process ended (ingest writes in this process meanwhile): %r", error)
        finally:
            if self.generation == generation:
                self._ended(process)

    def _ended(self, process: asyncio.subprocess.Process) -> None:
        self.generation = 0
        self._process = None
        self._ended_at = time.monotonic()
        waiting, self._waiting = self._waiting, collections.deque()
        for future in waiting:
            if not future.done():
                future.set_result(None)  # not known to be written: the caller decides again
        with contextlib.suppress(Exception):
            if process.stdin is not None:
                process.stdin.close()

    async def close(self) -> None:
        """Stop the child and wait for it; a later `usable()` starts another at once."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        process, reading = self._process, self._reading
        if process is not None:
            self._ended(process)
            await _stop(process)
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading
        self._reading = None
        self._ended_at = -math.inf  # another may start at once


_generations = itertools.count(1)  # of the children of this process


def _widen(pipe: Any) -> None:
    """Let the pipe to the child hold a whole batch (a 1,000-event batch pickles to about 360 KB): the event loop
    hands it over in one write instead of 64 KB each time the loop comes round, while the child waited for the
    rest (about 10 ms a batch). Linux only; elsewhere, and past /proc/sys/fs/pipe-max-size, the pipe stays."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


async def _read(stream: asyncio.StreamReader) -> tuple[str, Any]:
    (size,) = HEADER.unpack(await stream.readexactly(HEADER.size))
    return pickle.loads(await stream.readexactly(size))  # noqa: S301 (from our own child, over its pipe)


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(Exception):
        if process.stdin is not None:
            process.stdin.close()  # the child ends at the end of its input
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# The child


def _counters(connection: sqlite3.Connection) -> tuple[int, int]:
    return connection.total_changes, connection.execute("PRAGMA data_version").fetchone()[0]


def serve(path: str, pragmas: dict[str, Any], source: Any, sink: Any) -> None:
    """The child: answer each request of `source` on `sink` until `source` ends."""
    os.umask(0o077)  # a log file it creates is as private as the database (pulse.db.private_sqlite_files)
    # the parameters are those Tortoise's connection binds: its adapters (tortoise.backends.sqlite.executor)
    sqlite3.register_adapter(decimal.Decimal, str)
    sqlite3.register_adapter(datetime.date, lambda value: value.isoformat())
    sqlite3.register_adapter(datetime.datetime, lambda value: value.isoformat(" "))
    connection = sqlite3.connect(path, isolation_level=None)
    for key, value in pragmas.items():
        connection.execute(f"PRAGMA {key} = {value}")

    def answer(kind: str, value: Any = None) -> None:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
        sink.write(HEADER.pack(len(data)) + data)
        sink.flush()

    settings = {key: connection.execute(f"PRAGMA {key}").fetchone()[0] for key in ("journal_mode", "synchronous")}
    answer("ready", {"pid": os.getpid(), **settings})
    last: tuple[int, int] | None = None  # the counters after the last request, when it was written
    while True:
        header = source.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        message = pickle.loads(source.read(HEADER.unpack(header)[0]))  # noqa: S301 (from the parent only)
        if message[0] == "state":
            answer("state", _counters(connection))
            continue
        _, expect, statements = message
        expect, last = (last if expect is None else tuple(expect)), None
        try:
            connection.execute("BEGIN IMMEDIATE")
            now = _counters(connection)  # inside the transaction: nobody can commit until it ends
            if expect is None or now != expect:
                connection.execute("ROLLBACK")
                answer("skipped")
                continue
            for sql, parameters in statements:
                connection.execute(sql, parameters)
            connection.execute("COMMIT")
            # data_version as read inside the transaction: our own COMMIT leaves it, another's after it does not
            last = (connection.total_changes, now[1])
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            answer("error", f"{type(error).__name__}: {error}")
            # a connection opened while the file could not be written stays read-only, a full disk may have left
            # it half-way: the parent starts a fresh child when it wants one
            return
        answer("wrote", last)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer, sys.stdout.buffer)
