"""Managers see their own teams only: a contact's timeline, cases and who may own them, and a manager with no team."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from pulse import followups, i18n
from pulse.app import routes
from pulse.errors import BadRequest
from pulse.models import CaseNote, Contact, FollowUpCase, OutboxMessage, User
from tests.conftest import make_key, make_settings, old_nonce, persona, sent_invitation, sign_in, survey_url

NO_TEAM = "You are not assigned to a team yet, so there is nothing to show. Ask an administrator to add you to a team."


@pytest.fixture
def mail_settings(database_url, smtp):
    """No fatigue window, so one customer can be asked by two teams on the same day."""
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_FATIGUE_DAYS="0")


async def answer(app, settings, invitation, score: int, comment: str) -> None:
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.post(
            survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"}
        )
        assert reply.status_code == 200, reply.text


@pytest.fixture
async def served(mail_app, mail_settings, catalog, org):
    """Person 1 was served by Warsaw and by Milan, unhappy with both; Person 2 by Milan only."""
    warsaw = await sent_invitation(mail_settings, catalog, 1)
    await answer(mail_app, mail_settings, warsaw, 1, "Warsaw kept me waiting")
    milan = await sent_invitation(mail_settings, catalog, 1, external_id="T-1-milan", team="support-milan")
    await answer(mail_app, mail_settings, milan, 2, "Milan lost my parcel")
    only_milan = await sent_invitation(mail_settings, catalog, 2, team="support-milan")
    await answer(mail_app, mail_settings, only_milan, 1, "Milan again")
    org.warsaw_case = await FollowUpCase.get(team_id=org.warsaw.id)
    org.milan_case = await FollowUpCase.get(team_id=org.milan.id, contact__external_id="C-1")
    return org


def events(html: str, kind: str) -> int:
    return html.count(f'class="event {kind}"')


# --- 1. a contact's timeline -------------------------------------------------------------------------------------


async def test_a_manager_sees_only_their_teams_part_of_a_contacts_timeline(mail_app, served):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/contacts/C-1")
    assert page.status_code == 200
    assert "Warsaw kept me waiting" in page.text
    assert "Milan lost my parcel" not in page.text
    assert "support-milan" not in page.text
    assert f"/cases/{served.warsaw_case.id}" in page.text
    assert f"/cases/{served.milan_case.id}" not in page.text
    assert [events(page.text, kind) for kind in ("touchpoint", "invitation", "response", "case")] == [1, 1, 1, 1]


async def test_the_other_teams_manager_sees_the_other_part(mail_app, served):
    async with sign_in(mail_app, "marco@example.com") as marco:
        page = await marco.get("/contacts/C-1")
    assert page.status_code == 200
    assert "Milan lost my parcel" in page.text and "Warsaw kept me waiting" not in page.text
    assert f"/cases/{served.milan_case.id}" in page.text and f"/cases/{served.warsaw_case.id}" not in page.text


@pytest.mark.parametrize("email", ["alice@example.com", "ana@example.com", "carol@example.com"])
async def test_admins_analysts_and_the_parent_teams_manager_see_the_whole_timeline(mail_app, served, email):
    async with sign_in(mail_app, email) as client:
        page = await client.get("/contacts/C-1")
    assert page.status_code == 200
    assert "Warsaw kept me waiting" in page.text and "Milan lost my parcel" in page.text
    assert [events(page.text, kind) for kind in ("touchpoint", "invitation", "response", "case")] == [2, 2, 2, 2]


async def test_a_contact_with_nothing_in_a_managers_teams_is_not_found(mail_app, served):
    async with sign_in(mail_app, "bob@example.com") as bob:
        assert (await bob.get("/contacts/C-2")).status_code == 404
        assert (await bob.get("/contacts/C-404")).status_code == 404  # the same answer as for nobody at all
    async with sign_in(mail_app, "marco@example.com") as marco:
        assert (await marco.get("/contacts/C-2")).status_code == 200


async def test_a_contact_seen_only_through_another_teams_case_is_not_found(mail_app, served):
    """A case moved to Milan says nothing to Warsaw's manager, even if the customer once spoke to Warsaw."""
    lonely = await Contact.create(external_id="C-9", email="nine@example.com", name="Person 9", locale="en")
    await FollowUpCase.filter(id=served.milan_case.id).update(contact_id=lonely.id)
    async with sign_in(mail_app, "bob@example.com") as bob:
        assert (await bob.get("/contacts/C-9")).status_code == 404
    async with sign_in(mail_app, "marco@example.com") as marco:
        page = await marco.get("/contacts/C-9")
    assert page.status_code == 200 and f"/cases/{served.milan_case.id}" in page.text


async def test_the_contacts_search_finds_only_a_managers_customers(mail_app, served):
    async with sign_in(mail_app, "bob@example.com") as bob:
        found = (await bob.get("/contacts?q=person")).text
    assert "/contacts/C-1" in found and "/contacts/C-2" not in found
    async with sign_in(mail_app, "marco@example.com") as marco:
        found = (await marco.get("/contacts?q=person")).text
    assert "/contacts/C-1" in found and "/contacts/C-2" in found
    async with sign_in(mail_app, "ana@example.com") as ana:
        found = (await ana.get("/contacts?q=person")).text
    assert "/contacts/C-1" in found and "/contacts/C-2" in found


async def test_a_case_page_shows_only_the_managers_teams_part_of_the_timeline(mail_app, served):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(f"/cases/{served.warsaw_case.id}")
    assert page.status_code == 200
    assert "Warsaw kept me waiting" in page.text and "Milan lost my parcel" not in page.text
    assert f"/cases/{served.milan_case.id}" not in page.text


async def test_the_api_timeline_still_shows_everything(mail_client, served):
    key = await make_key("responses:read")
    reply = await mail_client.get("/api/v1/contacts/C-1/timeline", headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 200
    kinds = [e["kind"] for e in reply.json()["events"]]
    assert sorted(kinds) == sorted(["touchpoint", "invitation", "response", "case"] * 2)
    assert {e["comment"] for e in reply.json()["events"] if e["kind"] == "response"} == {
        "Warsaw kept me waiting",
        "Milan lost my parcel",
    }


# --- 2. cases on the dashboard, and who may own one --------------------------------------------------------------


async def test_a_managers_case_list_page_and_actions_stay_in_their_teams(mail_app, served):
    milan = served.milan_case
    async with sign_in(mail_app, "bob@example.com") as bob:
        inbox = (await bob.get("/cases?show=all")).text
        assert f"/cases/{served.warsaw_case.id}" in inbox and f"/cases/{milan.id}" not in inbox
        assert (await bob.get(f"/cases/{milan.id}")).status_code == 404
        page = await bob.get(f"/cases/{served.warsaw_case.id}")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        refused = await bob.post(f"/cases/{milan.id}", data={"csrf_token": token, "note": "x", "status": "resolved"})
        assert refused.status_code == 404
    assert (await FollowUpCase.get(id=milan.id)).status == "open"
    assert not await CaseNote.filter(case_id=milan.id).exists()


async def test_owning_a_case_of_another_team_does_not_open_it(mail_app, served):
    """An owner who has left the team (or never was in it) no longer reads its customers' answers."""
    await FollowUpCase.filter(id=served.milan_case.id).update(owner_id=served.warsaw_lead.id)
    async with sign_in(mail_app, "bob@example.com") as bob:
        assert f"/cases/{served.milan_case.id}" not in (await bob.get("/cases?show=mine")).text
        assert (await bob.get(f"/cases/{served.milan_case.id}")).status_code == 404


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        ("bob@example.com", "bob@example.com cannot see the team of this case (support-milan)."),
        ("lonely@example.com", "lonely@example.com cannot see the team of this case (support-milan)."),
        ("ana@example.com", "ana@example.com cannot work on cases: the role analyst does not allow it."),
        ("hana@example.com", "hana@example.com cannot work on cases: the role hr does not allow it."),
        ("gone@example.com", "No active user has the e-mail gone@example.com."),
    ],
)
async def test_a_case_is_not_given_to_someone_who_cannot_work_it(mail_client, served, owner, message):
    await persona("lonely@example.com", "manager", "No Team")
    gone = await persona("gone@example.com", "manager", "Gone", teams=(served.milan,))
    await User.filter(id=gone.id).update(is_active=False)
    case = served.milan_case
    notes, mails = await CaseNote.filter(case_id=case.id).count(), await OutboxMessage.all().count()
    key = await make_key("cases:write")
    reply = await mail_client.patch(
        f"/api/v1/cases/{case.id}",
        json={"owner": owner, "status": "in_progress", "note": "Yours now"},
        headers={"authorization": f"Bearer {key}"},
    )
    assert (reply.status_code, reply.json()["error"]) == (400, message)
    after = await FollowUpCase.get(id=case.id)
    assert (after.owner_id, after.status) == (served.milan_lead.id, "open")  # nothing changed
    assert await CaseNote.filter(case_id=case.id).count() == notes
    assert await OutboxMessage.all().count() == mails


@pytest.mark.parametrize("owner", ["carol@example.com", "alice@example.com", "marco@example.com"])
async def test_a_case_goes_to_a_manager_of_its_team_or_above_or_an_admin(mail_client, served, owner):
    key = await make_key("cases:write")
    reply = await mail_client.patch(
        f"/api/v1/cases/{served.milan_case.id}", json={"owner": owner}, headers={"authorization": f"Bearer {key}"}
    )
    assert (reply.status_code, reply.json()["owner"]) == (200, owner)


async def test_a_case_without_a_team_goes_only_to_someone_who_sees_every_team(mail_app, mail_settings, served):
    await FollowUpCase.filter(id=served.milan_case.id).update(team_id=None)
    case = await FollowUpCase.get(id=served.milan_case.id)
    with pytest.raises(BadRequest) as refused:
        await followups.update_case(case, mail_settings, owner_email="carol@example.com", author=served.admin)
    assert refused.value.message == "carol@example.com cannot see the team of this case (no team)."
    await followups.update_case(case, mail_settings, owner_email="alice@example.com", author=served.admin)
    assert (await FollowUpCase.get(id=case.id)).owner_id == served.admin.id


async def test_the_dashboard_and_the_api_share_one_rule_for_owners(mail_app, mail_settings, served):
    """The rule lives in followups.update_case, which every reassignment goes through."""
    case = await FollowUpCase.get(id=served.milan_case.id)
    with pytest.raises(BadRequest) as refused:
        await followups.update_case(case, mail_settings, owner_email="BOB@example.com ", author=served.milan_lead)
    assert refused.value.message == "bob@example.com cannot see the team of this case (support-milan)."
    assert (await FollowUpCase.get(id=case.id)).owner_id == served.milan_lead.id


# --- 3. a manager with no team -----------------------------------------------------------------------------------


DASHBOARD_PAGES = [
    "/dashboard",
    "/dashboard/breakdown",
    "/dashboard/loyalty",
    "/dashboard/loyalty.csv",
    "/dashboard/after-sale",
    "/dashboard/at-risk",
    "/contacts",
    "/contacts/{external_id}",
    "/cases",
    "/cases/{case_id}",
    "/responses",
    "/responses.csv",
    "/engagement",
    "/dashboard/themes",
]


DASHBOARD_MODULES = (
    "pulse.web.dashboard",
    "pulse.web.risk",
    "pulse.web.cases",
    "pulse.web.explore",
    "pulse.web.engagement",
    "pulse.web.themes",
)


def test_every_dashboard_page_of_the_route_table_is_listed_here():
    """A new dashboard page must join DASHBOARD_PAGES, so the test below covers it."""
    found = [
        route.path
        for route in routes(make_settings("sqlite://x.sqlite3"))
        if isinstance(route, Route)
        and route.endpoint.__module__ in DASHBOARD_MODULES
        and not route.path.startswith("/api/")
        and route.path not in ("/", "/account")  # the front door redirects; the account page is the person's own
    ]
    assert found == DASHBOARD_PAGES


@pytest.mark.parametrize("path", DASHBOARD_PAGES)
async def test_a_manager_without_a_team_gets_one_clear_page_everywhere(mail_app, served, path):
    await persona("lonely@example.com", "manager", "No Team")
    url = path.format(external_id="C-1", case_id=served.warsaw_case.id) + "?q=person&show=all&by=team"
    async with sign_in(mail_app, "lonely@example.com") as lonely:
        page = await lonely.get(url)
        assert page.status_code == 403
        assert NO_TEAM in page.text
        assert 'href="/account"' in page.text  # still inside the app: the account page and signing out work
        for secret in ("Person", "Warsaw kept me waiting", "Milan", "support-"):
            assert secret not in page.text, secret
        polish = await lonely.get(url.replace("?", "?lang=pl&"))
        assert polish.status_code == 403 and i18n.translate("pl", NO_TEAM) in polish.text


async def test_a_manager_without_a_team_cannot_act_on_a_case_and_keeps_their_account(mail_app, served):
    await persona("lonely@example.com", "manager", "No Team")
    case = served.warsaw_case
    async with sign_in(mail_app, "lonely@example.com") as lonely:
        account = await lonely.get("/account")
        assert account.status_code == 200
        token = account.text.split('name="csrf_token" value="')[1].split('"')[0]
        reply = await lonely.post(f"/cases/{case.id}", data={"csrf_token": token, "note": "x", "status": "resolved"})
        assert reply.status_code == 403 and NO_TEAM in reply.text
        api_style = await lonely.get("/dashboard", headers={"accept": "application/json"})
        assert (api_style.status_code, api_style.json()["error"]) == (403, NO_TEAM)
    assert (await FollowUpCase.get(id=case.id)).status == "open"
    assert not await CaseNote.filter(case_id=case.id).exists()
