"""Export: rows per second and peak memory of `pulse export responses` over a 1M-answer database.

Run: .venv/bin/python -m bench.export [--engine sqlite|postgres] [--size 1000000] [--repeat 3]
Target: >= 100,000 rows/s and < 150 MB peak RSS (the export streams in constant memory).

Each run is a new process, so its time includes the process start (imports, settings, the catalog, opening the
database). That fixed cost is measured apart, as the same command over an empty database, and the rows/s is
printed both with it and without it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import ROOT, database, environment


def export_run(url: str) -> tuple[float, float, float]:
    """Wall time (s), CPU time (s) and peak RSS (MB) of one `pulse export responses --out /dev/null` process."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "export", "responses", "--out", "/dev/null"],
            env=environment(url), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(errors.read().decode())
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def build_apart(url: str, size: int) -> None:
    """Build the answers in a process of its own: a child's peak RSS counts the memory of the process that started
    it (Linux keeps it across exec), so this one must stay small for the export's peak to be its own."""
    code = f"import asyncio; from bench.trends import build; asyncio.run(build({url!r}, {size}))"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="exports timed (the median is printed)")
    args = parser.parse_args()
    with database(args.engine) as empty:
        starts = [export_run(empty)[0] for _ in range(args.repeat)]
    with database(args.engine) as url:
        build_apart(url, args.size)
        runs, cpus, peaks = zip(*(export_run(url) for _ in range(args.repeat)), strict=True)
    peak_mb = max(peaks)
    elapsed, start = statistics.median(runs), statistics.median(starts)
    each = ", ".join(f"{r:.1f}" for r in runs)
    print(
        f"{args.engine}: exported {args.size:,} rows in {elapsed:.1f} s (median of {each})"
        f" = {args.size / elapsed:,.0f} rows/s with the process start; the start alone (same command, empty database)"
        f" {start:.2f} s, so {args.size / (elapsed - start):,.0f} rows/s without it; CPU (user + system) of an export"
        f" {statistics.median(cpus):.1f} s (a busy machine stretches the wall time, less the CPU time);"
        f" peak RSS of an export process {peak_mb:.0f} MB; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
