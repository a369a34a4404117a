"""Overview in chromium with a cold browser cache: DOMContentLoaded, load, and every chart drawn (median of runs).

Run: .venv/bin/python -m bench.page_load [--engine sqlite|postgres] [--contacts 600] [--runs 7]
Target: DOMContentLoaded of Overview under 1 s on localhost with a cold cache (demo data, signed in as the admin).
Each run is a new browser context (empty cache), signed in through the API so the page itself is loaded cold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
from playwright.async_api import async_playwright

from bench.common import ROOT, database, environment, free_port
from pulse.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const plotly = performance.getEntriesByType('resource').find(r => r.name.includes('plotly'));
  return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, html: nav.transferSize,
          plotly: plotly ? plotly.transferSize : 0, plotlyDone: plotly ? plotly.responseEnd : 0};
}"""


@contextlib.contextmanager
def serving(url: str) -> Iterator[str]:
    """`pulse serve` (with its worker, as `make run` starts it) in its own process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pulse.cli", "serve", "--port", str(port)],
        env=environment(url), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def one_run(browser, base: str) -> dict[str, float]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        form = await context.request.get(f"{base}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text()).group(1)
        await context.request.post(
            f"{base}/login",
            form={"email": DEMO_ADMIN_EMAIL, "password": DEMO_PASSWORD, "csrf_token": token},
            max_redirects=0,
        )
        page = await context.new_page()
        await page.goto(f"{base}/dashboard", wait_until="load")
        figures = await page.evaluate("document.querySelectorAll('script.figure').length")
        await page.wait_for_function(
            "(n) => document.querySelectorAll('.js-plotly-plot').length >= n", arg=figures, timeout=60_000
        )
        drawn = await page.evaluate("performance.now()")
        return {**await page.evaluate(TIMING), "charts": drawn}
    finally:
        await context.close()


async def measure(base: str, runs: int) -> list[dict[str, float]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            await one_run(browser, base)  # the server compresses each file once, on its first request
            return [await one_run(browser, base) for _ in range(runs)]
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--contacts", type=int, default=600)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with database(args.engine) as url:
        subprocess.run(
            [sys.executable, "-m", "pulse.cli", "demo", "--contacts", str(args.contacts), "--quiet"],
            env=environment(url), cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with serving(url) as base:
            results = asyncio.run(measure(base, args.runs))
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(f"Overview, cold cache, {args.engine}, demo with {args.contacts} contacts, median of {args.runs} runs:")
    print(f"  DOMContentLoaded   {median['dcl']:7.0f} ms   (target < 1000 ms)")
    print(f"  load               {median['load']:7.0f} ms")
    print(f"  every chart drawn  {median['charts']:7.0f} ms")
    print(f"  plotly.js over the wire {median['plotly'] / 1e6:.2f} MB (4.8 MB uncompressed), done at "
          f"{median['plotlyDone']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
