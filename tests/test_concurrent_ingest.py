"""Two batches posted at the same moment to a real server: both succeed, nothing is stored twice, and a replay
is reported as a duplicate, as it is when the batches come one after the other.

On PostgreSQL the two transactions really overlap (one of them used to end in a 500 on a unique key); SQLite runs
them one after the other, and the answers must be the same."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pulse import db
from pulse.models import Contact, Invitation, OutboxMessage, Team, Touchpoint
from pulse.touchpoints import ingest
from tests.conftest import event, free_port, make_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(app, settings, tmp_path: Path) -> Iterator[str]:
    """`pulse serve` in its own process on the test's database: requests really run side by side."""
    port = free_port()
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": settings.database_url,
        "PULSE_SECRET_KEY": settings.secret_key,
        "PULSE_SURVEYS_DIR": settings.surveys_dir,
        "PULSE_BASE_URL": settings.base_url,
        "PULSE_LOG_LEVEL": "warning",
    }
    log = (tmp_path / "server.log").open("w+")
    command = [sys.executable, "-m", "pulse.cli", "serve", "--no-worker", "--port", str(port)]
    process = subprocess.Popen(command, env=environ, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.seek(0)
        print(log.read())  # shown by pytest when the test fails: the server's traceback of a 500
        log.close()


async def post_together(base: str, key: str, *batches: list[dict]) -> list[list[dict]]:
    """Post each batch on its own connection, all at once; the results of each, in order."""
    clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in batches]
    try:
        for client in clients:  # connect first, so the posts leave together
            assert (await client.get("/healthz")).status_code == 200
        replies = await asyncio.gather(
            *(
                client.post("/api/v1/touchpoints", json={"events": batch}, headers={"authorization": f"Bearer {key}"})
                for client, batch in zip(clients, batches, strict=True)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    assert [r.status_code for r in replies] == [202] * len(batches), [r.text[:300] for r in replies]
    return [r.json()["results"] for r in replies]


def recent() -> str:
    return (datetime.now(UTC) - timedelta(minutes=90)).isoformat()


async def stored_once() -> None:
    """No touchpoint has two invitations, no invitation two e-mails."""
    touchpoints = Counter(
        await Invitation.filter(touchpoint_id__not_isnull=True).values_list("touchpoint_id", flat=True)
    )
    assert not [t for t, n in touchpoints.items() if n > 1]
    messages = Counter(await OutboxMessage.all().values_list("invitation_id", flat=True))
    assert not [m for m, n in messages.items() if n > 1]


@pytest.mark.parametrize("people", ["new", "known"])
async def test_the_same_batch_posted_twice_at_once_is_stored_once_and_the_replay_says_duplicate(
    server, app, settings, catalog, people
):
    key = await make_key("touchpoints:write")
    if people == "known":  # the batches then meet at the touchpoints, not at the contacts and the team
        earlier = [event(n, external_id=f"E-{n}", type="profile_updated") for n in range(1000)]
        assert {o.status for o in await ingest(earlier, catalog, settings)} == {"skipped"}
    batch = [event(n, occurred_at=recent()) for n in range(1000)]
    first, second = await post_together(server, key, batch, batch)
    for a, b in zip(first, second, strict=True):
        assert a["external_id"] == b["external_id"]
        assert sorted([a["status"], b["status"]]) == ["duplicate", "invited"], (a, b)
    invited = [r for r in first + second if r["status"] == "invited"]
    assert len({r["invitation_id"] for r in invited}) == 1000
    assert await Touchpoint.filter(external_id__startswith="T-").count() == 1000
    assert await Contact.all().count() == 1000
    assert await Team.filter(slug="support-warsaw").count() == 1
    assert sorted(await Invitation.all().values_list("id", flat=True)) == sorted(r["invitation_id"] for r in invited)
    assert await OutboxMessage.all().count() == 1000
    await stored_once()


async def test_two_sources_naming_the_same_new_people_at_once_both_store_and_ask_each_person_once(server, app):
    key = await make_key("touchpoints:write")
    crm = [event(n, source="crm", occurred_at=recent()) for n in range(200)]
    helpdesk = [event(n, source="helpdesk", occurred_at=recent()) for n in range(200)]
    first, second = await post_together(server, key, crm, helpdesk)
    for a, b in zip(first, second, strict=True):
        # whichever came second sees the other's invitation, exactly as if the batches had come one by one
        assert sorted([(a["status"], a["reason"]), (b["status"], b["reason"])]) == [
            ("invited", None),
            ("skipped", "fatigue"),
        ], (a, b)
        assert a["invitation_id"] and b["invitation_id"]  # a skip is kept on the contact's timeline too
    assert await Touchpoint.all().count() == 400
    assert await Contact.all().count() == 200
    assert Counter(await Invitation.all().values_list("status", flat=True)) == {"scheduled": 200, "skipped": 200}
    assert await OutboxMessage.all().count() == 200
    await stored_once()
    rows = await db.fetch(
        "SELECT contact_id, COUNT(*) FROM invitation WHERE status = ? GROUP BY contact_id", ["scheduled"]
    )
    assert {n for _, n in rows} == {1}
