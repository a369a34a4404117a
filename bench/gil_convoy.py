"""Why overlapping Python with SQLite writes inside one process gains nothing with executemany: the GIL convoy.

Run: .venv/bin/python -m bench.gil_convoy [--switch-ms 0.5]
Prints, for three ways to insert 1,000 rows a transaction (30 transactions, each way on a fresh WAL file with
synchronous FULL), the median wall and thread CPU time of one transaction: alone, and while another thread runs
pure Python (what the event loop does while it parses or decides the next batch).

sqlite3 lets go of the GIL around each sqlite3_step and must take it back after. `executemany` steps once a row;
while another thread holds the GIL, each take-back waits up to the switch interval (5 ms) before it forces a
switch. One JSON parameter expanded by json_each (one step a statement) or fixed-size multi-row VALUES (a few steps
a statement) let go of it once a statement instead. Figures in bench/README.md, "Sixth pass".
"""

# ruff: noqa: S608 - the SQL here is constant text and "?" marks
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

COLUMNS = 10
ROW = f"({', '.join('?' * COLUMNS)})"


def fresh(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INT, d TEXT, e TEXT, f TEXT, g TEXT, h INT, i TEXT)"
    )
    connection.execute("CREATE INDEX t_a ON t (a)")  # a random key, like a contact's
    connection.execute("CREATE UNIQUE INDEX t_b ON t (b, e)")  # like (source, external_id)
    connection.execute("CREATE INDEX t_h ON t (h, f)")
    return connection


def rows_for(start: int) -> list[tuple]:
    return [
        (start + i, f"a{(start + i) * 7919 % 100_000}", f"b{start + i}", i, "2026-12-01T10:00:00+00:00", "api",
         "x" * 30, "phone", (start + i) * 104_729 % 50_000, "{}")
        for i in range(1000)
    ]  # fmt: skip


def executemany(connection: sqlite3.Connection, rows: list[tuple]) -> None:
    connection.executemany(f"INSERT INTO t VALUES {ROW}", rows)


def json_each(connection: sqlite3.Connection, rows: list[tuple]) -> None:
    cells = ", ".join(f"json_extract(value, '$[{n}]')" for n in range(COLUMNS))
    connection.execute(f"INSERT INTO t SELECT {cells} FROM json_each(?)", (json.dumps(rows),))


def multi_values(connection: sqlite3.Connection, rows: list[tuple]) -> None:
    first = 0
    for size in (256, 64, 16, 4, 1):  # a few fixed statement sizes, so sqlite3's statement cache keeps them
        while len(rows) - first >= size:
            chunk = rows[first : first + size]
            first += size
            connection.execute(f"INSERT INTO t VALUES {', '.join([ROW] * size)}", [v for row in chunk for v in row])


def spin(stop: threading.Event) -> None:
    while not stop.is_set():
        total = 0
        for i in range(1000):
            total += i


def measure(folder: str, name: str, write: Callable, busy: bool) -> tuple[float, float]:
    connection = fresh(os.path.join(folder, f"{name}-{busy}.db"))
    found: list[tuple[float, float]] = []

    def transactions() -> None:
        for number in range(30):
            rows = rows_for(number * 1000)
            wall, cpu = time.perf_counter(), time.thread_time()
            connection.execute("BEGIN IMMEDIATE")
            write(connection, rows)
            connection.execute("COMMIT")
            found.append(((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000))

    stop = threading.Event()
    spinner = threading.Thread(target=spin, args=(stop,))
    if busy:
        spinner.start()
    writer = threading.Thread(target=transactions)
    writer.start()
    writer.join()
    stop.set()
    if busy:
        spinner.join()
    connection.close()
    return statistics.median(w for w, _ in found), statistics.median(c for _, c in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switch-ms", type=float, help="sys.setswitchinterval, in ms (default 5)")
    args = parser.parse_args()
    if args.switch_ms:
        sys.setswitchinterval(args.switch_ms / 1000)
    with tempfile.TemporaryDirectory() as folder:
        for name, write in (("executemany", executemany), ("json_each", json_each), ("multi-row VALUES", multi_values)):
            for busy in (False, True):
                wall, cpu = measure(folder, name.replace(" ", "_"), write, busy)
                beside = "beside a busy thread" if busy else "alone"
                print(f"{name:17s} {beside:21s} wall {wall:8.1f} ms  CPU {cpu:6.1f} ms per 1,000-row transaction")


if __name__ == "__main__":
    main()
