"""Answers beside an ingest: wrk posts 1,000-event batches to `pulse serve --no-worker` while clients answer its
public NPS link (GET the page, POST a score a second later, as a person does); the POSTs' latency and the ingest's
events/s.

Run: .venv/bin/python -m bench.ingest_and_answers [--duration 12] [--connections 2] [--clients 6]
Needs `wrk` (Debian: apt-get install -y wrk). SQLite only: it measures the serving process's one writer shared by
both (the ingest's writer process and the answers' group commit), bench/README.md, "Ninth pass".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import database, server
from bench.ingest import LUA, batch, make_key


async def answer(base: str, stop: asyncio.Event, clients: int) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    failures: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def person(number: int) -> None:
            while not stop.is_set():
                page = await http.get(f"/l/nps?ref=bench{number}")
                nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
                await asyncio.sleep(1.05)  # a form posted sooner than a person could is refused
                start = time.perf_counter()
                reply = await http.post(
                    f"/l/nps?ref=bench{number}",
                    data={"score": "9", "nonce": nonce},
                    headers={"accept": "application/json"},
                )
                latencies.append((time.perf_counter() - start) * 1000)
                if reply.status_code != 200:
                    failures.append(reply.status_code)

        await asyncio.gather(*(person(n) for n in range(clients)))
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=12, help="seconds of the ingest")
    parser.add_argument("--connections", type=int, default=2, help="wrk connections (batches in flight)")
    parser.add_argument("--clients", type=int, default=6, help="people answering at once")
    args = parser.parse_args()
    rng = random.Random(1)
    now = datetime.now(UTC)
    bodies = [batch(n, rng, now) for n in range(20 + 15 * args.duration)]  # about 10 batches a second, and the warm-up
    with tempfile.TemporaryDirectory() as folder:
        lines = Path(folder) / "bodies.jsonl"
        lines.write_text("".join(json.dumps({"events": b}, separators=(",", ":")) + "\n" for b in bodies))
        with database("sqlite") as url:
            key = asyncio.run(make_key(url))
            script = Path(folder) / "ingest.lua"
            script.write_text(f'args_key = "{key}"\n' + LUA)
            with server(url, PULSE_LINK_RATE_LIMIT="100000") as base:
                warm = ["wrk", "-t1", "-c1", "-d1s", "-s", str(script), base, "--", str(lines), "0"]
                subprocess.run(warm, capture_output=True, check=True)  # imports, first contacts and teams
                command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "30s"]
                command += ["-s", str(script), base, "--", str(lines), "20"]
                load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

                async def run() -> tuple[list[float], list[int]]:
                    stop = asyncio.Event()
                    answering = asyncio.create_task(answer(base, stop, args.clients))
                    await asyncio.sleep(args.duration - 1)
                    stop.set()
                    return await answering

                latencies, failures = asyncio.run(run())
                out = load.communicate()[0]
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    latencies.sort()
    print(f"ingest, wrk -c{args.connections}: {requests * 1000 / seconds:,.0f} events/s")
    print(
        f"answers: {len(latencies)}, p50 {statistics.median(latencies):.1f} ms, "
        f"p90 {latencies[int(len(latencies) * 0.9)]:.1f} ms, max {latencies[-1]:.1f} ms, "
        f"not 200: {failures or 'none'}"
    )


if __name__ == "__main__":
    main()
