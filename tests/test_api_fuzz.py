"""Schemathesis against a real uvicorn serving the API: no request it derives from /api/v1/openapi.json, valid or
not, gets a server error. It runs against the test's own database, so PULSE_TEST_DB=postgres fuzzes PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pulse import engagement
from pulse.accounts import SCOPES
from pulse.models import Employee, PulseRound
from pulse.touchpoints import ingest
from tests.browser import serve
from tests.conftest import event, make_key, old_nonce, sent_invitation, survey_url

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
# bounded so the test stays well under a minute; PULSE_FUZZ_EXAMPLES=500 searches harder
MAX_EXAMPLES = int(os.environ.get("PULSE_FUZZ_EXAMPLES", "25"))


async def some_data(client, settings, catalog, org) -> None:
    """Contacts, an answer with its case and a closed pulse round, so generated requests reach more than 404s."""
    recent = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    await ingest([event(n, occurred_at=recent, contact_attributes={"plan": "gold"}) for n in (2, 3)], catalog, settings)
    invitation = await sent_invitation(settings, catalog)
    data = {"score": "1", "comment": "slow", "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    assert (await client.post(survey_url(settings, invitation.id), data=data)).status_code == 200
    for number in range(1, 6):
        await Employee.create(external_id=f"E-{number}", email=f"e{number}@example.com", team=org.warsaw)
    survey = engagement.programme(catalog)
    now = datetime.now(UTC)
    await engagement.run_schedule(catalog, settings, now=now)
    await engagement.run_schedule(catalog, settings, now=now + timedelta(days=survey.schedule.open_days))
    assert await PulseRound.filter(status="closed").count() == 1


async def test_schemathesis_finds_no_server_error(mail_app, mail_client, mail_settings, catalog, org, tmp_path):
    await some_data(mail_client, mail_settings, catalog, org)
    key = await make_key(*SCOPES)
    started = time.monotonic()
    async with serve(mail_app) as base:
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--header",
            f"Authorization: Bearer {key}",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = output.decode(errors="replace")
    print(report, f"schemathesis took {time.monotonic() - started:.1f} s", sep="\n")
    assert process.returncode == 0, report
    counted = re.search(r"([0-9]+) generated, ([0-9]+) passed", report)
    assert counted and counted.group(1) == counted.group(2), report
