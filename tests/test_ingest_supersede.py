"""A higher-priority survey close to a scheduled one replaces it: the earlier invitation is skipped as superseded
and its e-mail cancelled, in a later batch, and nobody else's invitation or e-mail is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import rules
from pulse.models import Invitation, OutboxMessage
from tests.conftest import event, make_key

TWO_DAYS_AGO = (datetime.now(UTC) - timedelta(days=2)).isoformat()  # every survey's delay is over: send now


@pytest.fixture
async def key(mail_app) -> str:
    return await make_key("touchpoints:write")


async def post(client: httpx.AsyncClient, key: str, events: list[dict]) -> list[dict]:
    response = await client.post("/api/v1/touchpoints", json=events, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.text
    return response.json()["results"]


async def test_a_purchase_supersedes_the_scheduled_csat_of_the_same_person(mail_client: httpx.AsyncClient, key: str):
    purchase_id = next(f"P-{n}" for n in range(100) if rules.sample("nps", "C-1", f"api:P-{n}") < 0.5)
    first = await post(
        mail_client,
        key,
        [event(1, occurred_at=TWO_DAYS_AGO), event(2, occurred_at=TWO_DAYS_AGO)],  # C-1, and C-2 beside them
    )
    assert [r["status"] for r in first] == ["invited", "invited"]
    [second] = await post(
        mail_client, key, [event(1, external_id=purchase_id, type="purchase", occurred_at=TWO_DAYS_AGO)]
    )
    assert (second["status"], second["survey"]) == ("invited", "nps")

    replaced = await Invitation.get(id=first[0]["invitation_id"])
    assert (replaced.status, replaced.skip_reason) == ("skipped", rules.SUPERSEDED)
    assert [m.status for m in await OutboxMessage.filter(invitation_id=replaced.id)] == ["cancelled"]
    kept = await Invitation.get(id=first[1]["invitation_id"])  # another person's csat
    assert (kept.status, kept.skip_reason) == ("scheduled", None)
    assert [m.status for m in await OutboxMessage.filter(invitation_id=kept.id)] == ["pending"]
    new = await Invitation.get(id=second["invitation_id"])
    assert (new.status, new.survey_id) == ("scheduled", "nps")
    assert [m.status for m in await OutboxMessage.filter(invitation_id=new.id)] == ["pending"]
