"""Ingest under wrk: 1,000-event JSON batches POSTed to /api/v1/touchpoints of `pulse serve --no-worker`, and a raw
sqlite3 loop inserting the same four rows per event in the same run; events/s of both and the ratio.

Run: .venv/bin/python -m bench.ingest [--engine sqlite|postgres] [--duration 5] [--connections 2] [--batches 400]
     [--profile /tmp/ingest]
Needs `wrk` (Debian: apt-get install -y wrk) and, for --profile, py-spy (pip install py-spy; run as root).
Target (issue #16, SQLite): Pulse >= 0.5 of the raw loop, every 202 after the commit.

The raw loop is the ceiling of a durable ingest in Python on this disk: stdlib sqlite3 on an identically migrated
database, the pragmas Pulse opens SQLite with (WAL, synchronous=FULL, foreign keys on), one transaction per
1,000 events, and per event an upsert of its contact, a touchpoint, an invitation and an outbox row
(executemany of parameterised statements, no validation, no rules, no lookups, no HTTP). It is printed twice: on
a fresh file, as the issue measured it, and over the same batches as Pulse's measured run, after inserting the
ones Pulse's file held before that run (inserts slow down as a file grows: the two files then match in size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import database, server
from pulse import db
from pulse.accounts import create_api_key

TYPES = ["support_ticket_closed", "purchase", "onboarding_visit", "renewal", "return_processed", "complaint_closed"]
TEAMS = ["support-a", "support-b", "sales"]
BATCH = 1000

# Each wrk connection takes the next body of the file: every request carries events no earlier request carried.
LUA = """
local bodies = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  counter = tonumber(args[2]) or 0
end
function request()
  counter = counter + 1
  local body = bodies[((counter - 1) % #bodies) + 1]
  return wrk.format("POST", "/api/v1/touchpoints",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args_key}, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT non2xx=%d p50=%.2f p99=%.2f\\n", summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


async def make_key(url: str) -> str:
    async with db.connected(url):
        _, secret = await create_api_key("bench", ["touchpoints:write"])
    return secret


async def stored(url: str) -> int:
    async with db.connected(url):
        return (await db.fetch("SELECT COUNT(*) FROM touchpoint"))[0][0]


def batch(number: int, rng: random.Random, now: datetime) -> list[dict]:
    events = []
    for i in range(BATCH):
        person = rng.randrange(200_000)  # people come back: some events hit known contacts and fatigue
        events.append({
            "external_id": f"B{number}-{i}",
            "type": rng.choice(TYPES),
            "occurred_at": (now - timedelta(minutes=rng.randrange(60 * 24 * 3))).isoformat(),
            "contact": {"external_id": f"P{person}", "email": f"p{person}@example.com",
                        "locale": rng.choice(["en", "pl", "it", "sl"]), "timezone": "Europe/Warsaw"},
            "team": rng.choice(TEAMS),
            "channel": "phone",
        })  # fmt: skip
    return events


def wrk(base: str, script: Path, bodies: Path, start: int, connections: int, duration: int) -> tuple[int, dict]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency"]
    command += ["-s", str(script), base, "--", str(bodies), str(start)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    result = re.search(r"RESULT non2xx=(\d+) p50=([\d.]+) p99=([\d.]+)", out)
    figures = {
        "events/s": requests * BATCH / seconds,
        "requests": requests,
        "non2xx": int(result[1]),
        "p50 ms": float(result[2]),
        "p99 ms": float(result[3]),
    }
    print(f"wrk -c{connections} -d{duration}s:", figures, flush=True)
    return requests, figures


def raw_loop(path: Path, batches: list[list[dict]], untimed: int = 0) -> float:
    """Events/s of stdlib sqlite3 inserting the four rows of each event, one transaction per batch; the first
    `untimed` batches are inserted before the clock starts (the file then holds as many rows as Pulse's did)."""
    connection = sqlite3.connect(path, isolation_level=None)
    for name, value in db.SQLITE_PRAGMAS.items():
        connection.execute(f"PRAGMA {name} = {value}")
    created = datetime.now(UTC).isoformat()
    connection.executemany(
        "INSERT INTO team (slug, name, created_at) VALUES (?, ?, ?)", [(t, t, created) for t in TEAMS]
    )
    teams = dict(connection.execute("SELECT slug, id FROM team"))
    contacts: dict[str, int] = {}
    ids = {"touchpoint": 0, "invitation": 0}
    start = time.perf_counter()
    for number, events in enumerate(batches):
        if number == untimed:
            start = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        contact_rows, touchpoint_rows, invitation_rows, outbox_rows = [], [], [], []
        for event in events:
            person = event["contact"]
            contact_id = contacts.setdefault(person["external_id"], len(contacts) + 1)
            ids["touchpoint"] += 1
            ids["invitation"] += 1
            tp, inv = ids["touchpoint"], ids["invitation"]
            contact_rows.append(
                (contact_id, person["external_id"], person["email"], "", person["locale"], person["timezone"], "{}",
                 now, now)
            )  # fmt: skip
            touchpoint_rows.append(
                (tp, "api", event["external_id"], event["type"], event["occurred_at"],
                 contact_id, teams[event["team"]], event["channel"], "{}", now)
            )  # fmt: skip
            invitation_rows.append((inv, "csat", contact_id, tp, person["locale"], "scheduled", now, now))
            outbox_rows.append(
                ("invitation", inv, person["email"], person["locale"], "{}", "pending", 0, now,
                 f"<invitation-{inv}@bench>", now)
            )  # fmt: skip
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO contact (id, external_id, email, name, locale, timezone, attributes, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (external_id) DO UPDATE SET email = excluded.email,"
            " locale = excluded.locale, timezone = excluded.timezone, updated_at = excluded.updated_at",
            contact_rows,
        )
        connection.executemany(
            "INSERT INTO touchpoint (id, source, external_id, type, occurred_at, contact_id, team_id, channel,"
            " attributes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            touchpoint_rows,
        )
        connection.executemany(
            "INSERT INTO invitation (id, survey_id, contact_id, touchpoint_id, locale, status, send_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            invitation_rows,
        )
        connection.executemany(
            "INSERT INTO outbox_message (kind, invitation_id, to_email, locale, payload, status, attempts,"
            " next_attempt_at, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            outbox_rows,
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    assert connection.execute("SELECT COUNT(*) FROM touchpoint").fetchone()[0] == BATCH * len(batches)
    connection.close()
    return BATCH * (len(batches) - untimed) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=2, help="wrk connections (batches in flight)")
    parser.add_argument("--batches", type=int, default=400, help="distinct 1,000-event bodies prepared for wrk")
    parser.add_argument("--raw-batches", type=int, default=40, help="batches the raw sqlite3 loop inserts")
    parser.add_argument("--profile", help="py-spy raw (collapsed stacks) output: <prefix>.txt")
    args = parser.parse_args()
    rng = random.Random(1)
    now = datetime.now(UTC)
    bodies = [batch(n, rng, now) for n in range(args.batches)]
    with tempfile.TemporaryDirectory() as folder:
        lines = Path(folder) / "bodies.jsonl"
        lines.write_text("".join(json.dumps({"events": b}, separators=(",", ":")) + "\n" for b in bodies))
        with database(args.engine) as url:
            key = asyncio.run(make_key(url))
            script = Path(folder) / "ingest.lua"
            script.write_text(f'args_key = "{key}"\n' + LUA)
            with server(url) as base:
                sent, _ = wrk(base, script, lines, 0, 1, 1)  # warm-up: imports, first contacts and teams
                sent += args.connections  # a request cut off at the end of a run may still have been stored
                before = sent  # bodies Pulse's file held (at most) when the measured run began
                sent_pulse, pulse = wrk(base, script, lines, sent, args.connections, args.duration)
                sent += sent_pulse + args.connections
                if args.profile:
                    pattern = f"serve --no-worker --port {base.rsplit(':', 1)[1]}"
                    found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True, check=True)
                    pid = int(found.stdout.split()[0])
                    spy = subprocess.Popen(
                        ["py-spy", "record", "--pid", str(pid), "--duration", str(args.duration + 1), "--rate",
                         "250", "--format", "raw", "--threads", "--nonblocking", "--output", f"{args.profile}.txt"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    time.sleep(0.5)
                    sent_profiled, _ = wrk(base, script, lines, sent, args.connections, args.duration)
                    sent += sent_profiled + args.connections
                    spy.wait(timeout=60)
            if sent > args.batches:
                raise SystemExit(f"wrk sent {sent} bodies of {args.batches}: some were replays; raise --batches")
            rows = asyncio.run(stored(url))
        with database("sqlite") as raw_url:
            raw = raw_loop(Path(raw_url.removeprefix("sqlite://")), bodies[: args.raw_batches])
        # the same loop over the bodies Pulse stored, timed over the batches of Pulse's measured run: both files
        # then grow through the same sizes (a fresh file takes its first batches at about twice the speed)
        with database("sqlite") as raw_url:
            same = raw_loop(Path(raw_url.removeprefix("sqlite://")), bodies[: before + sent_pulse], untimed=before)
    print(f"engine: {args.engine}; touchpoints stored: {rows:,}")
    print(f"Pulse, wrk -c{args.connections}: {pulse['events/s']:,.0f} events/s ({pulse['requests']} batches, "
          f"non-2xx {pulse['non2xx']}, batch p50 {pulse['p50 ms']:.0f} ms, p99 {pulse['p99 ms']:.0f} ms)")  # fmt: skip
    print(f"raw sqlite3 loop: {raw:,.0f} events/s ({args.raw_batches} transactions of {BATCH} events)")
    print(f"ratio: {pulse['events/s'] / raw:.3f}")
    print(f"raw sqlite3 loop on a file as large as Pulse's: {same:,.0f} events/s (batches {before + 1} to "
          f"{before + sent_pulse}, after {before} untimed); ratio {pulse['events/s'] / same:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
