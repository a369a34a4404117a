"""Answers under wrk: the no-JS answer form POSTed to `pulse serve --no-worker` (SQLite, one process) and to the
bare Starlette endpoint in the same run, at 64 connections (throughput) and 4 (latency); optionally py-spy.

Run: .venv/bin/python -m bench.answers_wrk [--answers 8000] [--duration 3] [--profile /tmp/answers]
Needs `wrk` (Debian: apt-get install -y wrk) and, for --profile, py-spy (pip install py-spy; run as root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.answers import SECRET, bare_server, prepare, recorded
from bench.common import ROOT, database, environment, free_port

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


def lua_script(requests: list[tuple[str, dict]], folder: Path) -> Path:
    table = "{" + ",".join(f"{{{json.dumps(path)},{json.dumps(urlencode(form))}}}" for path, form in requests) + "}"
    script = folder / "answers.lua"
    script.write_text(LUA % table)
    return script


SENT = [0]  # forms sent so far in this run: the next wrk run starts after them


def wrk(base: str, script: Path, connections: int, duration: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base]
    command += ["--", str(SENT[0])]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    SENT[0] += int(re.search(r"(\d+) requests in", out).group(1)) + 2 * connections
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result = re.search(r"RESULT non2xx=(\d+) p50=([\d.]+) p99=([\d.]+)", out)
    figures = {"rate": rate, "non2xx": int(result[1]), "p50": float(result[2]), "p99": float(result[3])}
    print(f"-c{connections}", base, figures, flush=True)
    return figures


@contextlib.contextmanager
def server(url: str, log: Path) -> Iterator[tuple[str, int]]:
    """`pulse serve --no-worker` like bench.common.server, but stderr goes to a file: wrk drops its open
    connections at the end of a run, each queued request logs a ClientDisconnect traceback, and an undrained
    stderr pipe fills after a few runs and blocks the server's event loop."""
    port = free_port()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "serve", "--no-worker", "--port", str(port)],
            env=environment(url, PULSE_SECRET_KEY=SECRET), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=8000)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--profile", help="py-spy raw (collapsed stacks) output: <prefix>.txt")
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder, database("sqlite") as url:
        requests = asyncio.run(prepare(url, args.answers))
        script = lua_script(requests, Path(folder))
        before = asyncio.run(recorded(url))
        with server(url, Path(folder) / "server.log") as (base, pid):
            wrk(base, script, 4, 1)  # warm-up
            figures["pulse c64"] = wrk(base, script, 64, args.duration)
            figures["pulse c4"] = wrk(base, script, 4, args.duration)
            if args.profile:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(pid), "--duration", str(args.duration + 1), "--rate", "250",
                     "--format", "raw", "--output", f"{args.profile}.txt"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(0.5)
                figures["pulse c64, profiled"] = wrk(base, script, 64, args.duration)
                spy.wait(timeout=60)
        stored = asyncio.run(recorded(url))
        disconnects = (Path(folder) / "server.log").read_text().count("ClientDisconnect\n")
        SENT[0] = 0
        with bare_server() as base:
            wrk(base, script, 4, 1)
            figures["bare c64"] = wrk(base, script, 64, args.duration)
            figures["bare c4"] = wrk(base, script, 4, args.duration)
    print(f"answers stored: {stored} of {len(requests)} invitations (before load: {before}); ", end="")
    print(f"ClientDisconnect tracebacks logged: {disconnects}")
    for name, f in figures.items():
        print(
            f"{name:22} {f['rate']:8,.0f} req/s  p50 {f['p50']:6.1f} ms  p99 {f['p99']:6.1f} ms  non-2xx {f['non2xx']}"
        )
    print(f"ratio at 64 connections: {figures['pulse c64']['rate'] / figures['bare c64']['rate']:.3f}")


if __name__ == "__main__":
    main()
