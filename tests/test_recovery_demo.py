"""The demo tells the recovery story: resolved cases with customers won back and customers not won back, worked
at each team's pace, so the report shows figures on first start."""

from __future__ import annotations

import httpx

from pulse import demo, followups
from pulse.models import FollowUpCase, Invitation, Response
from tests.conftest import make_key, sign_in


async def test_the_demo_has_recovered_and_unrecovered_customers_and_the_report_shows_them(app, catalog):
    await demo.load_demo(catalog, contacts=300, months=6)
    key = await make_key("cases:read")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.get("/api/v1/cases/recovery", headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 200, reply.text
    teams = {row["team"]: row for row in reply.json()["teams"]}
    for slug in ("support-warsaw", "support-ljubljana", "support-milan"):
        recovery = teams[slug]["recovery"]
        assert recovery["detractors"] >= 5, (slug, recovery)
        assert teams[slug]["first_contact"]["count"] >= 5 and teams[slug]["resolution"]["count"] >= 5
    total = reply.json()["total"]["recovery"]
    assert 0 < total["recovered"] < total["answered_again"]  # some won back, some not
    # Warsaw calls back within hours, Milan within days
    assert (
        teams["support-warsaw"]["first_contact"]["median_seconds"]
        < teams["support-milan"]["first_contact"]["median_seconds"]
    )
    # the follow-up answers are linked to their cases, and no complaint is left without a case
    linked = await FollowUpCase.exclude(recovery_invitation_id=None).values_list("recovery_invitation_id", flat=True)
    assert await Response.filter(invitation_id__in=linked).count() > 0
    assert await Invitation.filter(id__in=linked, status="skipped").count() < len(linked)
    assert await followups.orphans(catalog) == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}
    async with sign_in(app, demo.DEMO_ADMIN_EMAIL, demo.DEMO_PASSWORD) as admin:
        page = await admin.get("/cases/recovery")
    assert page.status_code == 200
    assert "Support Milan" in page.text and "%" in page.text
