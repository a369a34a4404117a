"""Database configuration: the Tortoise config for a settings object, SQLite pragmas, migrations."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as migrate_api
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor

# WAL lets readers run beside the one writer; FULL makes a commit survive power loss (an acknowledged
# write is durable); the busy timeout turns a brief lock by another process into a wait, not an error.
SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "synchronous": "FULL",
    "foreign_keys": "ON",
    "busy_timeout": "5000",
    # Tortoise's default (16 KiB) truncates the log each time it restarts, so the next commit grows the file again
    # (a costlier sync); 64 MiB keeps a busy log's file in place and still bounds what stays on disk.
    "journal_size_limit": str(64 * 1024 * 1024),
}


def database_url(url: str) -> str:
    """The URL Tortoise opens: SQLite gets our pragmas unless the URL sets them itself."""
    if not url.startswith("sqlite://"):
        return url.replace("postgresql://", "postgres://", 1)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in SQLITE_PRAGMAS.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def tortoise_config(url: str) -> dict[str, Any]:
    """The Tortoise config dict for a database URL, through our engines: pulse.sqlite_engine (BEGIN IMMEDIATE,
    and safe when the file fails) and pulse.postgres_engine (safe when a transaction cannot begin)."""
    connection: str | dict = database_url(url)
    if url.startswith("sqlite://") and ":memory:" not in url:
        private_sqlite_files(url)  # every path that opens the database comes through here first
        connection = {**expand_db_url(connection), "engine": "pulse.sqlite_engine"}
    elif not url.startswith("sqlite://"):
        connection = {**expand_db_url(connection), "engine": "pulse.postgres_engine"}
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": ["pulse.models"],
                "default_connection": "default",
                "migrations": "pulse.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def private_sqlite_files(url: str) -> None:
    """Make the SQLite file owner-only (0600) before SQLite opens it, whatever the umask, as pulse.secret is: it
    holds every answer, comment and address. SQLite creates the -wal and -shm with the file's own mode; existing
    ones are tightened too. Errors are left for SQLite to report when it opens the file."""
    file = Path(url[len("sqlite://") :].split("?")[0])
    with contextlib.suppress(OSError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode
            if stat.S_ISREG(mode) and stat.S_IMODE(mode) != 0o600:
                path.chmod(0o600)


async def migrate(url: str, target: str | None = None) -> list[str]:
    """Apply every pending migration (or those up to `target`, e.g. "models.0004_pulse_rounds"); return their names."""
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await migrate_api(config=tortoise_config(url), target=target, progress=progress)
    finally:
        await Tortoise.close_connections()
    return applied


async def pending_migrations(url: str) -> list[str]:
    """The migrations not yet applied to this database."""
    config = tortoise_config(url)
    await Tortoise.init(config=config, init_connections=False)
    try:
        executor = MigrationExecutor(connections.get("default"), config["apps"])
        steps = await executor.plan(None)
    finally:
        await Tortoise.close_connections()
    return [f"{step.migration.app_label}.{step.migration.name}" for step in steps if not step.backward]


def thread_client() -> Any | None:
    """The SQLite client that can run a function in its thread (pulse.sqlite_engine), when the default connection
    is one and no transaction of this task is open; None otherwise (PostgreSQL, or inside `in_transaction`)."""
    from pulse.sqlite_engine import ImmediateSqliteClient

    client = connections.get("default")
    return client if isinstance(client, ImmediateSqliteClient) else None


def reader() -> Any:
    """The connection for a read that need not see this task's uncommitted writes and must not wait for another
    task's transaction: on SQLite, in a long-running process, its second connection (pulse.sqlite_engine.serving);
    otherwise, and inside a transaction of this task, the default one."""
    from pulse import sqlite_engine

    client = connections.get("default")
    second = sqlite_engine.READER
    if second is not None and isinstance(client, sqlite_engine.ImmediateSqliteClient):
        if second.filename == client.filename:
            return second
    return client


async def point_read(sql: str, params: list | tuple = ()) -> list[tuple]:
    """Rows of a small raw query by key, of the last committed state: on SQLite, in a long-running process and
    outside a transaction of this task, on the event loop's own connection (pulse.sqlite_engine.LoopReader), with
    no hop to a database thread; otherwise, or when that read cannot run at once, as `fetch` reads them. Only for
    reads of a few pages: the event loop waits for it."""
    here = loop_reader()
    if here is not None:
        rows = here.rows(sql, params)
        if rows is not None:
            return rows
    return await fetch(sql, params)


def loop_reader() -> Any | None:
    """The event loop's read-only connection to the default SQLite file (pulse.sqlite_engine.LoopReader), in a
    long-running process and outside a transaction of this task (which must see its own writes); None otherwise
    (PostgreSQL, no `serving`)."""
    from pulse import sqlite_engine

    here = sqlite_engine.LOOP_READER
    client = thread_client()
    return here if here is not None and client is not None and here.path == client.filename else None


def writer_process() -> Any | None:
    """The child process that writes ingest batches on SQLite (pulse.sqlite_writer), when it runs and answers, in
    a long-running process and outside a transaction of this task; None otherwise (it is then started in the
    background, when it is wanted and may run)."""
    from pulse import sqlite_engine

    here = sqlite_engine.WRITER
    client = thread_client()
    if here is None or client is None or here.path != client.filename or not sqlite_engine.WRITER_PROCESS:
        return None
    return here if here.usable() else None


async def read(sql: str, params: list | tuple = ()) -> list[tuple]:
    """Rows of a raw query written with `?` placeholders, through `reader()`."""
    client = reader()
    if client is connections.get("default"):
        return await fetch(sql, params)
    _, rows = await client.execute_query(sql, list(params))
    return [tuple(row) for row in rows]


def dialect() -> str:
    """'sqlite' or 'postgres' for the open default connection."""
    return connections.get("default").capabilities.dialect


async def model_changes() -> list[Any]:
    """Migration writers for model changes not yet in pulse/migrations (empty when they agree)."""
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        return await MigrationAutodetector(ctx.apps, config["apps"]).changes()


async def make_migrations() -> list[str]:
    """Write a migration for every pending model change; return the files written."""
    return [str(writer.write()) for writer in await model_changes()]


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[None]:
    """Open the database for a command-line task in the current task, close it after."""
    await Tortoise.init(config=tortoise_config(url))
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def allocate_ids(table: str, count: int) -> list[int]:
    """Reserve `count` primary keys of `table` for rows inserted in bulk by this transaction.

    PostgreSQL hands them out from the table's sequence, so concurrent writers never collide. SQLite has one
    writer: inside the caller's transaction the next ids after MAX(id) are free (tables use AUTOINCREMENT,
    so ids of deleted rows are never handed out again by SQLite either, and sqlite_sequence follows our max).
    """
    if count <= 0:
        return []
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        rows = await connection.execute_query_dict(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id FROM generate_series(1, $1)",
            [count],
        )
        return [row["id"] for row in rows]
    rows = await connection.execute_query_dict(TOP_ID.format(table=table), [table])
    top = rows[0]["top"] or 0
    return list(range(top + 1, top + 1 + count))


# SQLite: the largest id `table` has held (AUTOINCREMENT never hands out a deleted row's id again either)
TOP_ID = (
    "SELECT MAX(COALESCE((SELECT MAX(id) FROM {table}), 0),"
    " COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)) AS top"
)


def packed(columns: str) -> str:
    """SQLite: a select list that returns all the rows as one JSON array of arrays (read with `unpacked`)."""
    return f"json_group_array(json_array({columns}))"


def unpacked(raw: Any, sql: str, params: list | tuple) -> list[list]:
    """The rows of a query whose select list is `packed(...)`, on a raw sqlite3 connection in its thread.

    sqlite3 lets go of the GIL for each step of a query and must take it back after, one step a row; while the
    event loop runs Python, taking it back can wait up to the switch interval (5 ms). Packed, the whole result is
    one step and one JSON text."""
    return json.loads(raw.execute(sql, params).fetchone()[0])


def insert_sql(table: str, columns: tuple[str, ...], unless_exists: tuple[str, ...] = ()) -> str:
    """The INSERT of one row of `columns`, with `?` placeholders; ON CONFLICT DO NOTHING on `unless_exists`."""
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks(len(columns))})'
    if unless_exists:
        key = ", ".join(f'"{c}"' for c in unless_exists)
        sql += f" ON CONFLICT ({key}) DO NOTHING"
    return sql


def update_sql(table: str, columns: tuple[str, ...]) -> str:
    """The UPDATE of `columns` of one row by id, with `?` placeholders (the id last)."""
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    return f'UPDATE "{table}" SET {sets} WHERE "id" = ?'


async def insert_many(
    table: str, columns: tuple[str, ...], rows: list[tuple], *, unless_exists: tuple[str, ...] = ()
) -> None:
    """INSERT many rows at once, skipping model objects: the hot path of ingestion.

    Values must already be what the column stores: JSON as text, datetimes timezone-aware (UTC). With
    `unless_exists` (the columns of a unique key), a row whose key is already stored, or is being stored by a
    concurrent transaction, is skipped (ON CONFLICT DO NOTHING; PostgreSQL waits for that transaction to end).
    """
    if not rows:
        return
    connection = connections.get("default")
    sql = insert_sql(table, columns, unless_exists)
    if connection.capabilities.dialect == "postgres":
        sql = _numbered(sql)
    await connection.execute_many(sql, rows)


async def stored_ids(table: str, ids: list[int]) -> set[int]:
    """Which of these ids `table` holds. After an insert that skips existing keys, with ids from allocate_ids,
    these are the rows this transaction inserted: no other writer can have used those ids."""
    if not ids:
        return set()
    return {row[0] for row in await fetch(f'SELECT "id" FROM "{table}" WHERE "id" IN ({marks(len(ids))})', ids)}


async def update_many(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """UPDATE rows by id; each row is (value for each column..., id)."""
    if not rows:
        return
    connection = connections.get("default")
    sql = update_sql(table, columns)
    await connection.execute_many(_numbered(sql) if connection.capabilities.dialect == "postgres" else sql, rows)


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's $1, $2, … (our SQL has no literal question marks)."""
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, start=1))


async def fetch(sql: str, params: list | tuple = ()) -> list[tuple]:
    """Rows of a raw query written with `?` placeholders, on either engine, as tuples (also the rows of an
    UPDATE/INSERT/DELETE … RETURNING)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        sql = _numbered(sql)
    elif (client := thread_client()) is not None:  # one hop to SQLite's thread, not Tortoise's query machinery
        return await client.run_in_thread(lambda raw: [tuple(row) for row in raw.execute(sql, params).fetchall()])
    if sql.lstrip()[:6].upper() in ("UPDATE", "INSERT", "DELETE"):
        # Tortoise's asyncpg client drops the rows of a data-changing statement in execute_query
        return [tuple(row.values()) for row in await connection.execute_query_dict(sql, list(params))]
    _, rows = await connection.execute_query(sql, list(params))
    return [tuple(row) for row in rows]


async def execute(sql: str, params: list | tuple = ()) -> int:
    """Run a raw statement written with `?` placeholders, on either engine; returns the rows it changed."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        sql = _numbered(sql)
    count, _ = await connection.execute_query(sql, list(params))
    return count


def bound_time(value: datetime) -> datetime | str:
    """A timestamp as a parameter: on SQLite the text Tortoise's sqlite3 adapter makes of it (so a value bound to
    many rows is formatted once, not once per row), unchanged for asyncpg."""
    if connections.get("default").capabilities.dialect == "postgres":
        return value
    return value.isoformat(" ")


def marks(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)


def as_datetime(value: datetime | str | None) -> datetime | None:
    """A timestamp read by raw SQL: SQLite gives text, PostgreSQL a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# Parameters per statement of `insert_statements` and `update_statements` (SQLite's limit since 3.32): a
# 1,000-event batch writes each table in one statement
SQLITE_PARAMETERS = 32_766


def insert_statements(
    table: str, columns: tuple[str, ...], rows: list[tuple], unless_exists: tuple[str, ...] = ()
) -> list[tuple[str, list]]:
    """SQLite: the INSERT of many rows as a few multi-row statements, (sql, parameters) each; ON CONFLICT DO
    NOTHING on `unless_exists`.

    sqlite3 lets go of the GIL for each step of a statement and must take it back after. `executemany` steps once
    a row, and while the event loop runs Python each take-back waits for its turn at the GIL (bench/gil_convoy.py):
    a 1,000-row insert beside a busy event loop went from milliseconds to seconds. A statement of many rows is one
    step, and costs SQLite about what `executemany` does for them."""
    names = ", ".join(f'"{c}"' for c in columns)
    one = f"({marks(len(columns))})"
    key = ", ".join(f'"{c}"' for c in unless_exists)
    on_conflict = f" ON CONFLICT ({key}) DO NOTHING" if unless_exists else ""
    return [
        (
            f'INSERT INTO "{table}" ({names}) VALUES {", ".join([one] * len(chunk))}{on_conflict}',
            [value for row in chunk for value in row],
        )
        for chunk in _chunks(rows, len(columns))
    ]


def update_statements(table: str, columns: tuple[str, ...], rows: list[tuple]) -> list[tuple[str, list]]:
    """SQLite: the UPDATE by id of many rows, each (value for each column..., id), as a few statements of many
    rows each (see `insert_statements`)."""
    sets = ", ".join(f'"{c}" = row.column{n}' for n, c in enumerate(columns, start=1))
    one = f"({marks(len(columns) + 1)})"
    return [
        (
            f'UPDATE "{table}" SET {sets} FROM (VALUES {", ".join([one] * len(chunk))}) AS row'
            f' WHERE "{table}"."id" = row.column{len(columns) + 1}',
            [value for row in chunk for value in row],
        )
        for chunk in _chunks(rows, len(columns) + 1)
    ]


def _chunks(rows: list[tuple], width: int) -> list[list[tuple]]:
    """The rows in statements of at most SQLITE_PARAMETERS parameters: as many whole hundreds of rows as fit, then
    the rest. Preparing a 1,000-row statement costs SQLite about 3 ms, four times running it; sqlite3 keeps the
    statements it prepared (128 of them), and a few sizes, each a multiple of 100, come back batch after batch."""
    largest = SQLITE_PARAMETERS // width
    largest -= largest % 100 if largest >= 100 else 0
    chunks, start = [], 0
    while start < len(rows):
        left = len(rows) - start
        size = min(largest, left - left % 100) or left
        chunks.append(rows[start : start + size])
        start += size
    return chunks


async def run_sqlite_transaction(
    statements: list[tuple[str, list]], ready: Callable[[], bool], expect: Callable[[], tuple[int, int] | None]
) -> tuple[int, int] | None:
    """SQLite, outside a transaction of this task: BEGIN IMMEDIATE, the statements and COMMIT in one hop to
    aiosqlite's thread, under the writer's lock (as a transaction takes it), with the check of `_write_and_commit`
    against `expect()`. `ready()` is called once the lock is held, before the hop; when it says no, or there is
    nothing to expect, nothing runs.
    Returns what `run_sqlite_writes` returns, None when nothing was written."""
    import sqlite3

    from pulse.sqlite_engine import call_in_connection

    client = connections.get("default")
    async with client.acquire_connection() as connection:
        wanted = expect() if ready() else None
        if wanted is None:
            return None

        def run(raw: sqlite3.Connection) -> tuple[int, int] | None:
            raw.execute("BEGIN IMMEDIATE")
            try:
                result = _write_and_commit(raw, statements, wanted)
                if result is None:
                    raw.rollback()
                return result
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise

        return await call_in_connection(connection, run)


async def run_sqlite_writes(statements: list[tuple[str, list]]) -> tuple[int, int]:
    """SQLite, inside the caller's transaction: run each (sql, parameters) in order, then COMMIT, in one hop to
    aiosqlite's thread. After the COMMIT the transaction's own has nothing left to do and takes no hop
    (pulse.sqlite_engine.ImmediateTransaction). Errors become Tortoise's, as from a query.

    Returns the connection's `total_changes` after the COMMIT and its `PRAGMA data_version` before it: the state
    the next batch may have been decided from (pulse.touchpoints._store_in_line)."""
    from pulse.sqlite_engine import ImmediateTransaction, call_in_thread

    client = connections.get("default")  # under the transaction's own lock, as Tortoise's execute_many takes it
    result = await call_in_thread(client, lambda raw: _write_and_commit(raw, statements, None))
    assert result is not None
    if isinstance(client, ImmediateTransaction):
        client.committed_in_thread = True
    return result


def _write_and_commit(raw: Any, statements: list[tuple[str, list]], expect: tuple[int, int] | None) -> Any:
    """In SQLite's thread, inside a write transaction: the statements and the COMMIT; (`total_changes` after the
    COMMIT, `PRAGMA data_version` before it). With `expect`, such a pair, nothing is run and None returned unless
    this connection has changed no row since and no other connection has committed since."""
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    if expect is not None and (raw.total_changes, version) != expect:
        return None
    for sql, parameters in statements:
        raw.execute(sql, parameters)
    raw.commit()
    return raw.total_changes, version
