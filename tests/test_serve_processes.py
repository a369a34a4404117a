"""`pulse serve` in production: N web processes on one port, forwarded headers believed only from trusted proxies,
and /livez for load balancers. Real `pulse serve` subprocesses, driven over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pulse import throttle
from pulse.models import WorkerHeartbeat
from pulse.settings import SettingsError, load_settings
from tests.conftest import ENGINE, SmtpSink, free_port
from tests.faults import Proxy
from tests.test_health_faults import AWAY, within
from tests.test_health_faults import serving as serving_app
from tests.test_logs_no_tokens import environment, serving

TOKEN = "Zm9yLXRoZS1sb2ctdGVzdC1vbmx5.ab12CD34"  # what a survey link's token looks like; any token is hidden


def children(parent: int) -> list[int]:
    """The web processes uvicorn's supervisor spawned (multiprocessing's spawn_main), by their parent's pid."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
    return found


def owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the server side of the TCP connection 127.0.0.1:client_port → server_port."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local, remote) == (server_port, client_port):
            inode = fields[9]
    for pid in pids:
        with contextlib.suppress(OSError):
            if any(link.readlink().name == f"socket:[{inode}]" for link in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
    return None


def live(port: int) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200
    return False


def ask_for_link(port: int) -> socket.socket:
    """A kept-alive connection that has followed a survey link once."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(f"GET /s/{TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = connection.recv(65536)
    assert head.startswith(b"HTTP/1.1 "), head[:200]
    return connection


@pytest.mark.skipif(ENGINE != "postgres", reason="more than one web process needs PostgreSQL")
def test_two_web_processes_answer_on_one_port_log_no_token_and_stop_together(
    database_url, smtp: SmtpSink, tmp_path: Path
):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as output:
        parent = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "serve", "--port", str(port), "--processes", "2"],
            env=environment(database_url, smtp, port),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    connections: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 20
        while len(pids := children(parent.pid)) < 2 or not live(port):
            assert parent.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "two web processes did not answer /livez within 20 s"
            time.sleep(0.2)
        assert len(pids) == 2

        # 1. Each process answers: connections are accepted by whichever process is free, until both have served.
        served: set[int] = set()
        while served != set(pids):
            assert len(connections) < 60, f"only {served} of {pids} answered 60 connections"
            connections.append(ask_for_link(port))
            served.add(owner(port, connections[-1].getsockname()[1], pids))

        # 2. SIGTERM to the parent stops every process within a few seconds, cleanly.
        started = time.monotonic()
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=10) == 0
        while any(Path(f"/proc/{pid}").exists() for pid in pids):
            assert time.monotonic() - started < 10, "a web process outlived its parent"
            time.sleep(0.05)
        assert time.monotonic() - started < 5
    finally:
        for connection in connections:
            connection.close()
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)

    # 3. Every process wrote its access log through the redaction: the route, never the token.
    text = log.read_text(errors="replace")
    assert TOKEN not in text
    assert text.count('"GET /s/… HTTP/1.1"') >= len(connections)
    assert len(set(re.findall(r"Started server process \[(\d+)\]", text))) == 2
    assert "start `pulse worker`" in text


def test_more_than_one_process_on_sqlite_is_refused_with_what_to_do(tmp_path: Path, smtp: SmtpSink):
    environ = environment(f"sqlite://{tmp_path / 'pulse.sqlite3'}", smtp, free_port())
    done = subprocess.run(
        [sys.executable, "-m", "pulse.cli", "serve", "--processes", "2"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "Error: 2 web processes need PostgreSQL: on SQLite one `pulse serve` does the work (its writers take turns "
        "on one file), so run it with --processes 1, or set PULSE_DATABASE_URL to a postgres:// database to scale "
        "out."
    )


def _failed_sign_ins(client: httpx.Client, email: str, forwarded_for: str, count: int) -> list[int]:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {"email": email, "password": "not-the-password", "csrf_token": token}
    return [
        client.post("/login", data=data, headers={"x-forwarded-for": forwarded_for}).status_code for _ in range(count)
    ]


def test_a_trusted_proxy_names_the_client_and_an_untrusted_peer_cannot(database_url, smtp: SmtpSink, tmp_path: Path):
    guesses = throttle.MAX_PER_ACCOUNT_CLIENT
    port = free_port()
    environ = environment(database_url, smtp, port)  # trusts 127.0.0.1 by default: the test's own address
    with serving(environ, tmp_path, port, tmp_path / "trusted.log", "--no-worker") as client:
        assert 429 not in _failed_sign_ins(client, "ann@example.com", "203.0.113.7", guesses)
        assert _failed_sign_ins(client, "ann@example.com", "203.0.113.7", 1) == [429]  # that client used up its guesses
        assert _failed_sign_ins(client, "ann@example.com", "203.0.113.8", 1) != [
            429
        ]  # another client behind the same proxy has not

    port = free_port()
    environ = {**environment(database_url, smtp, port), "PULSE_FORWARDED_ALLOW_IPS": "10.0.0.0/8"}
    with serving(environ, tmp_path, port, tmp_path / "untrusted.log", "--no-worker") as client:
        assert 429 not in _failed_sign_ins(client, "bea@example.com", "198.51.100.1", guesses)
        # the header from a peer that is not a trusted proxy is ignored: every guess came from 127.0.0.1
        assert _failed_sign_ins(client, "bea@example.com", "198.51.100.2", 1) == [429]


@pytest.mark.parametrize("value", ["10.0.0.300", "proxy.internal", "10.0.0.0/8;rm"])
def test_a_trusted_proxy_that_is_not_an_address_stops_start_up(value):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"PULSE_SECRET_KEY": "x" * 32, "PULSE_FORWARDED_ALLOW_IPS": value}, env_file=None)
    assert str(caught.value) == (
        "PULSE_FORWARDED_ALLOW_IPS must list IP addresses or networks separated by commas (such as "
        f"127.0.0.1,10.0.0.0/24), or *, not {value!r}."
    )


def test_trusted_proxies_are_read_as_a_list_and_empty_trusts_none():
    base = {"PULSE_SECRET_KEY": "x" * 32}
    assert load_settings(environ=base, env_file=None).forwarded_allow_ips == ("127.0.0.1", "::1")
    listed = {**base, "PULSE_FORWARDED_ALLOW_IPS": " 10.0.0.0/24, 192.0.2.1 "}
    assert load_settings(environ=listed, env_file=None).forwarded_allow_ips == ("10.0.0.0/24", "192.0.2.1")
    assert load_settings(environ={**base, "PULSE_FORWARDED_ALLOW_IPS": ""}, env_file=None).forwarded_allow_ips == ()


async def test_livez_stays_up_while_healthz_reports_a_stale_worker(client):
    now = datetime.now(UTC)
    old = now - timedelta(hours=1)
    await WorkerHeartbeat.create(name="gone:1", started_at=old, last_loop_at=old)
    health = await client.get("/healthz")
    assert health.status_code == 503 and "No worker has finished a loop" in health.json()["problems"][0]
    live = await client.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert live.headers["cache-control"] == "no-store"


@pytest.mark.skipif(ENGINE != "postgres", reason="a PostgreSQL outage")
async def test_livez_says_within_seconds_when_the_database_is_away_and_recovers(database_url, catalog):
    parts = urlsplit(database_url)
    proxy = Proxy(parts.port or 5432)
    await proxy.start()
    try:
        async with serving_app(
            parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl(), catalog
        ) as http:
            assert (await http.get("/livez")).status_code == 200
            await proxy.cut()
            loop = asyncio.get_running_loop()
            began = loop.time()
            live = await within(10, http.get("/livez"))
            assert loop.time() - began < 4  # bounded: a balancer must get an answer
            assert (live.status_code, live.json()) == (503, {"status": "unavailable", "problems": [AWAY]})
            await proxy.start()
            assert (await within(10, http.get("/livez"))).status_code == 200
    finally:
        await proxy.cut()
