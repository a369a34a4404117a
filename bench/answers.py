"""Answers under wrk: the no-JS answer form POSTed to `pulse serve --no-worker` (one process) and to a bare Starlette
endpoint (`bench/bare.py`) in the same run, at 64 connections (throughput) and 4 (latency); the server's CPU time
per request from /proc; optionally a py-spy profile.

Run: .venv/bin/python -m bench.answers [--engine sqlite|postgres] [--answers 12000] [--duration 3] [--runs 3]
     [--profile /tmp/answers]
Needs `wrk` (Debian: apt-get install -y wrk) and, for --profile, py-spy (.venv/bin/pip install py-spy; as root).
Targets (SQLite, issue #16): ratio >= 0.25 at 64 connections, p99 < 20 ms at 4 connections.

Every request answers an invitation no earlier request answered: the Lua script gives each wrk run and thread its
own slice of the prepared forms (a nonce rendered five seconds earlier, empty honeypot, score 4), and the reply is
the HTML thanks page. Every 2xx comes after the answer's COMMIT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.common import ROOT, database, free_port, serving
from pulse import db, tokens
from pulse.catalog import load_catalog
from pulse.models import Invitation, Response
from pulse.settings import load_settings
from pulse.touchpoints import ingest

SECRET = "bench-secret-key-0123456789"  # noqa: S105 - a throwaway benchmark database

LUA = """
local requests = %s
local threads = 0
local start, counter = 0, 0
id = 0 -- a global: setup() sets it in each thread's state
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  start = tonumber(args[1]) or 0
end
function request()
  -- each thread takes every other form from `start` on: a run answers invitations no earlier run answered
  local r = requests[((start + counter * 2 + id) %% #requests) + 1]
  counter = counter + 1
  return wrk.format("POST", r[1], {["Content-Type"] = "application/x-www-form-urlencoded"}, r[2])
end
function done(summary, latency, requests)
  local codes = string.format("non2xx=%%d", summary.errors.status)
  io.write(string.format("RESULT %%s p50=%%.2f p99=%%.2f\\n", codes, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
"""


async def prepare(url: str, count: int) -> list[tuple[str, dict]]:
    """`count` e-mailed invitations, and for each the path and form of its answer."""
    settings = load_settings(
        environ={
            "PULSE_DATABASE_URL": url,
            "PULSE_SECRET_KEY": SECRET,
            "PULSE_SURVEYS_DIR": "surveys",
            "PULSE_QUIET_HOURS": "off",
        },
        env_file=None,
    )
    catalog = load_catalog("surveys")
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    ids: list[int] = []
    async with db.connected(url):
        for start in range(0, count, 1000):
            events = [
                {
                    "external_id": f"E{n}",
                    "type": "support_ticket_closed",
                    "occurred_at": occurred,
                    "contact": {"external_id": f"C{n}", "email": f"c{n}@example.com", "locale": "en"},
                }
                for n in range(start, min(start + 1000, count))
            ]
            ids += [o.invitation_id for o in await ingest(events, catalog, settings)]
        await Invitation.filter(id__in=ids).update(status="sent", sent_at=datetime.now(UTC))
    rendered = time.time() - 5  # pages "rendered" five seconds ago: a person's pace
    return [
        (
            f"/s/{tokens.make_token(SECRET, 'survey', i)}",
            {"score": "4", "nonce": tokens.make_nonce(SECRET, f"invitation:{i}", rendered), "website": ""},
        )
        for i in ids
    ]


async def recorded(url: str) -> int:
    async with db.connected(url):
        return await Response.all().count()


def lua_script(requests: list[tuple[str, dict]], folder: Path) -> Path:
    table = "{" + ",".join(f"{{{json.dumps(path)},{json.dumps(urlencode(form))}}}" for path, form in requests) + "}"
    script = folder / "answers.lua"
    script.write_text(LUA % table)
    return script


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Wrk:
    """Runs wrk against one server; each run starts after the forms earlier runs sent."""

    def __init__(self, base: str, pid: int, script: Path) -> None:
        self.base, self.pid, self.script, self.sent = base, pid, script, 0

    def run(self, connections: int, duration: int) -> dict:
        command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(self.script)]
        before = cpu_seconds(self.pid)
        out = subprocess.run([*command, self.base, "--", str(self.sent)], capture_output=True, text=True, check=True)
        cpu = cpu_seconds(self.pid) - before
        count = int(re.search(r"(\d+) requests in", out.stdout).group(1))
        self.sent += count + 2 * connections
        result = re.search(r"RESULT non2xx=(\d+) p50=([\d.]+) p99=([\d.]+)", out.stdout)
        return {
            "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1)),
            "non2xx": int(result[1]),
            "p50": float(result[2]),
            "p99": float(result[3]),
            "cpu_ms": 1000 * cpu / max(count, 1),
        }


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """The bare Starlette endpoint under uvicorn, one process, as Pulse runs."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(port), "--log-level", "warning"], cwd=ROOT
    )
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def line(name: str, f: dict) -> str:
    return (
        f"{name:12} {f['rate']:8,.0f} req/s  p50 {f['p50']:6.1f} ms  p99 {f['p99']:6.1f} ms  "
        f"CPU {f['cpu_ms']:5.2f} ms/request  non-2xx {f['non2xx']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--answers", type=int, default=12000)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", help="py-spy raw (collapsed stacks) output: <prefix>.txt, of one more -c64 run")
    args = parser.parse_args()
    pulse: dict[str, list[dict]] = {"c64": [], "c4": []}
    bare: dict[str, list[dict]] = {"c64": [], "c4": []}
    with tempfile.TemporaryDirectory() as folder, database(args.engine) as url:
        requests = asyncio.run(prepare(url, args.answers))
        script = lua_script(requests, Path(folder))
        with serving(url, PULSE_SECRET_KEY=SECRET) as (base, pid), bare_server() as (bare_base, bare_pid):
            ours, theirs = Wrk(base, pid, script), Wrk(bare_base, bare_pid, script)
            ours.run(4, 1), theirs.run(4, 1)  # warm-up
            for _ in range(args.runs):  # interleaved: both see the same machine
                for connections in (64, 4):
                    pulse[f"c{connections}"].append(ours.run(connections, args.duration))
                    bare[f"c{connections}"].append(theirs.run(connections, args.duration))
            if args.profile:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(pid), "--duration", str(args.duration + 1), "--rate", "250",
                     "--format", "raw", "--output", f"{args.profile}.txt"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(0.5)
                ours.run(64, args.duration)
                spy.wait(timeout=60)
            sent = ours.sent
        stored = asyncio.run(recorded(url))
    print(f"engine {args.engine}; answers stored: {stored} (wrk sent at most {sent} of {len(requests)} forms)")
    ratios = []
    for run in range(args.runs):
        print(f"run {run + 1}")
        for connections in ("c64", "c4"):
            print("  " + line(f"pulse {connections}", pulse[connections][run]))
            print("  " + line(f"bare {connections}", bare[connections][run]))
        ratios.append(pulse["c64"][run]["rate"] / bare["c64"][run]["rate"])
        print(f"  ratio at 64 connections: {ratios[-1]:.3f}")
    p99 = [f["p99"] for f in pulse["c4"]]
    print(f"median ratio {statistics.median(ratios):.3f} (target >= 0.25); ", end="")
    print(f"p99 at 4 connections: median {statistics.median(p99):.1f} ms, worst {max(p99):.1f} ms (target < 20 ms)")


if __name__ == "__main__":
    main()
