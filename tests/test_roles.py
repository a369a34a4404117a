"""Every role against every page: the server decides, and a manager never sees another team's data."""

from __future__ import annotations

import pytest

from pulse.models import Contact, FollowUpCase
from tests.conftest import old_nonce, sent_invitation, sign_in, survey_url

PAGES = ["/dashboard", "/dashboard/breakdown", "/dashboard/loyalty", "/dashboard/after-sale", "/dashboard/at-risk",
         "/dashboard/themes",
         "/contacts",
         "/contacts?q=person", "/cases", "/cases/recovery", "/responses", "/responses.csv", "/admin/users",
         "/admin/teams",
         "/admin/api-keys", "/admin/surveys", "/admin/delivery", "/account", "/engagement"]  # fmt: skip
DASHBOARD = {"/dashboard", "/dashboard/breakdown", "/dashboard/loyalty", "/dashboard/after-sale", "/dashboard/at-risk",
             "/dashboard/themes",
             "/contacts",
             "/contacts?q=person", "/cases", "/cases/recovery", "/responses", "/responses.csv"}  # fmt: skip
EXPECTED = {
    "alice@example.com": {page: 200 for page in PAGES},  # admin
    "ana@example.com": {page: 403 if page.startswith("/admin") else 200 for page in PAGES},  # analyst
    "bob@example.com": {page: 403 if page.startswith("/admin") else 200 for page in PAGES},  # manager
    "hana@example.com": {page: 200 if page in ("/account", "/engagement") else 403 for page in PAGES},  # hr
}


@pytest.fixture
async def answered(mail_app, mail_settings, catalog, org):
    """An unhappy answer in Warsaw and one in Milan, each with its case."""
    for number, team in ((1, "support-warsaw"), (2, "support-milan")):
        invitation = await sent_invitation(mail_settings, catalog, number, team=team)
        async with __import__("httpx").AsyncClient(
            transport=__import__("httpx").ASGITransport(app=mail_app), base_url="http://testserver"
        ) as client:
            data = {
                "score": "1",
                "comment": f"bad {team}",
                "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}"),
            }
            await client.post(survey_url(mail_settings, invitation.id), data=data)
    return org


@pytest.mark.parametrize("email", sorted(EXPECTED))
async def test_role_matrix(mail_app, answered, email):
    async with sign_in(mail_app, email) as client:
        for page, status in EXPECTED[email].items():
            reply = await client.get(page)
            assert reply.status_code == status, (email, page, reply.status_code)


async def test_anonymous_visitors_are_sent_to_sign_in(mail_client, answered):
    for page in PAGES:
        reply = await mail_client.get(page)
        assert reply.status_code == 303, page
        assert reply.headers["location"].startswith("/login?next=")


async def test_a_manager_cannot_reach_another_teams_data(mail_app, answered):
    milan_case = await FollowUpCase.get(team_id=answered.milan.id)
    warsaw_case = await FollowUpCase.get(team_id=answered.warsaw.id)
    milan_contact = await Contact.get(external_id="C-2")
    async with sign_in(mail_app, "bob@example.com") as bob:
        assert (await bob.get("/dashboard?team=support-milan")).status_code == 403
        assert (await bob.get("/dashboard/breakdown?team=support-milan")).status_code == 403
        assert (await bob.get(f"/cases/{milan_case.id}")).status_code == 404
        assert (await bob.get("/contacts/C-2")).status_code == 404
        assert milan_contact.name not in (await bob.get("/contacts?q=Person")).text
        assert (await bob.get(f"/cases/{warsaw_case.id}")).status_code == 200
        inbox = (await bob.get("/cases")).text
        assert "Person 1" in inbox and "Person 2" not in inbox
        breakdown = (await bob.get("/dashboard/breakdown?survey=csat&by=team")).text
        assert "support-milan" not in breakdown
    async with sign_in(mail_app, "carol@example.com") as carol:  # the parent team's manager sees both
        assert (await carol.get(f"/cases/{milan_case.id}")).status_code == 200
        assert (await carol.get("/dashboard?team=support-milan")).status_code == 200


async def test_an_analyst_reads_but_does_not_write(mail_app, answered):
    case = await FollowUpCase.get(team_id=answered.warsaw.id)
    async with sign_in(mail_app, "ana@example.com") as ana:
        page = await ana.get(f"/cases/{case.id}")
        assert page.status_code == 200 and 'name="note"' not in page.text
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        reply = await ana.post(f"/cases/{case.id}", data={"csrf_token": token, "note": "x", "status": "resolved"})
        assert reply.status_code == 403
    assert (await FollowUpCase.get(id=case.id)).status == "open"


async def test_a_manager_without_a_team_sees_nothing(mail_app, answered):
    from tests.conftest import persona

    await persona("lonely@example.com", "manager", "No Team")
    async with sign_in(mail_app, "lonely@example.com") as lonely:
        assert (await lonely.get("/dashboard")).status_code == 403
        assert (await lonely.get("/dashboard/breakdown?by=team")).status_code == 403
        assert "Person" not in (await lonely.get("/cases?show=all")).text
        assert (await lonely.get("/contacts/C-1")).status_code == 403  # the same "no team yet" page everywhere
