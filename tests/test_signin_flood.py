"""A flood of sign-ins does not stall the server: password checks run beside the event loop, not on it.

A real uvicorn serves the app; 50 sign-ins (each from its own address, through X-Forwarded-For from
127.0.0.1, which uvicorn trusts by default) run while /healthz is asked every 50 ms.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time

import httpx

from tests.browser import serve

SIGN_INS = 50


async def test_healthz_stays_fast_while_fifty_sign_ins_run(mail_app, org):
    async with serve(mail_app) as base, httpx.AsyncClient(base_url=base, timeout=120) as http:
        page = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

        async def sign_in(n: int) -> int:
            reply = await http.post(
                "/login",
                data={"email": f"nobody{n}@example.com", "password": "a guess", "csrf_token": token},
                headers={"x-forwarded-for": f"203.0.113.{n}"},
            )
            return reply.status_code

        latencies: list[float] = []

        async def probe(done: asyncio.Event) -> None:
            while not done.is_set():
                started = time.monotonic()
                await http.get("/healthz")  # its verdict does not matter here, only how soon it comes
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)

        done = asyncio.Event()
        prober = asyncio.create_task(probe(done))
        codes = await asyncio.gather(*(sign_in(n) for n in range(SIGN_INS)))
        done.set()
        await prober
    assert codes == [400] * SIGN_INS  # every password was checked (and found wrong)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98] if len(latencies) > 1 else latencies[0]
    assert p99 < 1.0, f"/healthz p99 {p99:.2f} s over {len(latencies)} probes, slowest {max(latencies):.2f} s"
