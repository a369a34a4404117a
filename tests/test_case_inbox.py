"""The case inbox as a manager works it: filters in the URL, sorting, paging, reassigning, and a manager kept to
their own teams."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import followups
from pulse.catalog import localized
from pulse.models import CaseNote, FollowUpCase, Team, User
from tests.conftest import make_settings, old_nonce, persona, sent_invitation, sign_in, survey_url

WORKFLOW = ["open", "in_progress", "resolved", "closed_no_action"]


@pytest.fixture
def mail_settings(database_url, smtp):
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_FATIGUE_DAYS="0")


async def answer(app, settings, catalog, number: int, team: str, score: int, comment: str) -> FollowUpCase:
    invitation = await sent_invitation(settings, catalog, number, team=team)
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.post(
            survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"}
        )
        assert reply.status_code == 200, reply.text
    return await FollowUpCase.get(contact__external_id=f"C-{number}")


@pytest.fixture
async def worked(mail_app, mail_settings, catalog, org):
    """Warsaw: an open case of Bob's, a resolved one, an overdue one nobody owns; Milan: an open case of Marco's.
    Bob reads English here, so the tests read the sentences as written."""
    await User.filter(id=org.warsaw_lead.id).update(locale="en")
    org.waiting = await answer(mail_app, mail_settings, catalog, 1, "support-warsaw", 1, "Warsaw kept me waiting")
    org.parcel = await answer(mail_app, mail_settings, catalog, 2, "support-milan", 2, "Milan lost my parcel")
    org.rude = await answer(mail_app, mail_settings, catalog, 3, "support-warsaw", 1, "A rude agent")
    org.late = await answer(mail_app, mail_settings, catalog, 4, "support-warsaw", 2, "Nobody called back")
    await FollowUpCase.filter(id=org.rude.id).update(status="resolved")
    await FollowUpCase.filter(id=org.late.id).update(owner_id=None, due_at=datetime.now(UTC) - timedelta(days=2))
    await CaseNote.create(case_id=org.rude.id, body="Offered a voucher")
    for case, score in ((org.rude, 0), (org.waiting, 1), (org.parcel, 2), (org.late, 3)):  # distinct, for sorting
        await FollowUpCase.filter(id=case.id).update(score=score)
        case.score = score
    return org


def case_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'href="/cases/(\d+)"', html)]


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"', select)


async def test_a_manager_opens_their_own_open_cases_by_default(mail_app, catalog, worked):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/cases")
    assert case_ids(page.text) == [worked.waiting.id]
    row = re.search(r"<tbody>(.*?)</tbody>", page.text, re.S).group(1)
    assert localized(catalog.get("csat").title, "en", "Acme") in row  # the survey by its title, not its id
    assert 'data-label="Customer"' in row and 'class="table-wrap"' in page.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=resolved&owner=anyone", ["rude"]),
        ("status=any&owner=anyone&sort=created", ["waiting", "rude", "late"]),
        ("owner=none", ["late"]),
        ("owner=anyone&overdue=1", ["late"]),
        ("owner=anyone&q=WAITING", ["waiting"]),  # the answer's comment, whatever the case
        ("status=any&owner=anyone&q=person3@", ["rude"]),  # the customer's e-mail
        ("status=any&owner=anyone&q=C-4", ["late"]),  # the customer's CRM id
        ("status=any&owner=anyone&q=voucher", ["rude"]),  # a note
        ("status=any&owner=anyone&q=parcel", []),  # Milan's: not Bob's to see
        ("show=all", ["late", "waiting"]),  # the old tabs' links still work; overdue first
    ],
)
async def test_the_inbox_filters_by_status_owner_overdue_and_text(mail_app, worked, query, expected):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(f"/cases?{query}")
    assert page.status_code == 200
    assert case_ids(page.text) == [getattr(worked, name).id for name in expected]
    if not expected:
        assert "No cases match these filters." in page.text


async def test_the_team_filter_offers_only_the_users_teams(mail_app, worked):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/cases?owner=anyone")
        assert options(page.text, "team") == ["", "support-warsaw"]
        refused = await bob.get("/cases?team=support-milan&owner=anyone")
        assert refused.status_code == 400 and "Choose one of your teams." in refused.text
        by_owner = await bob.get(f"/cases?status=any&owner={worked.milan_lead.id}")
        assert case_ids(by_owner.text) == []
    async with sign_in(mail_app, "alice@example.com") as alice:
        milan = await alice.get("/cases?team=support-milan")
        care = await alice.get("/cases?team=customer-care&status=any&sort=created")  # a team and its sub-teams
    assert case_ids(milan.text) == [worked.parcel.id]
    assert case_ids(care.text) == [c.id for c in (worked.waiting, worked.parcel, worked.rude, worked.late)]


async def test_statuses_are_listed_in_workflow_order(mail_app, worked):
    async with sign_in(mail_app, "bob@example.com") as bob:
        inbox = await bob.get("/cases")
        case = await bob.get(f"/cases/{worked.waiting.id}")
        by_status = await bob.get("/cases?status=any&owner=anyone&sort=status")
    assert options(inbox.text, "status") == ["active", *WORKFLOW, "any"]
    assert options(case.text, "status") == WORKFLOW
    assert case_ids(by_status.text) == [worked.late.id, worked.waiting.id, worked.rude.id]  # then by due date


async def test_sorting_by_score_either_way(mail_app, worked):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/cases?status=any&sort=score")
        assert 'href="/cases?status=any&amp;sort=-score"' in page.text  # the header's link turns the order round
        reverse = await alice.get("/cases?status=any&sort=-score")
    scores = [0, 1, 2, 3]
    ids = [c.id for c in sorted((worked.rude, worked.waiting, worked.parcel, worked.late), key=lambda c: c.score)]
    assert [(await FollowUpCase.get(id=i)).score for i in case_ids(page.text)] == scores
    assert case_ids(page.text) == ids
    assert case_ids(reverse.text) == ids[::-1]


async def test_the_inbox_pages_by_25_and_keeps_the_filters(mail_app, worked):
    due = datetime.now(UTC) + timedelta(days=3)
    for n in range(30):
        await FollowUpCase.create(team=worked.warsaw, owner=worked.warsaw_lead, status="open", due_at=due, score=n % 4)
    async with sign_in(mail_app, "bob@example.com") as bob:
        first = await bob.get("/cases?owner=me&sort=created")
        assert len(case_ids(first.text)) == 25
        assert "Page 1 of 2" in first.text and "31 cases" in first.text
        link = re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1).replace("&amp;", "&")
        assert link == "/cases?owner=me&sort=created&page=2"
        second = await bob.get(link)
        assert "Page 2 of 2" in second.text and 'rel="prev"' in second.text and 'rel="next"' not in second.text
        assert len(case_ids(second.text)) == 6
        assert set(case_ids(first.text)).isdisjoint(case_ids(second.text))
        beyond = await bob.get("/cases?owner=me&sort=created&page=99")
        assert beyond.status_code == 200 and case_ids(beyond.text) == case_ids(second.text)  # the last page
        garbage = await bob.get("/cases?page=abc")
        assert garbage.status_code == 400 and "page must be a whole number from 1 to" in garbage.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=shipped", "Choose a status from the list."),
        ("owner=somebody", "Choose an owner from the list."),
        ("overdue=yes", "Overdue is either on (1) or off."),
        ("sort=colour", "Sort by due date, created, score, team or status."),
        ("page=0", "page must be a whole number from 1 to"),
        ("q=%00", "The search must not contain control characters."),
    ],
)
async def test_bad_filters_are_a_400_that_says_what_is_wrong(mail_app, worked, query, message):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(f"/cases?{query}")
    assert page.status_code == 400
    assert message in page.text


async def csrf(client, path: str) -> str:
    page = await client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def test_a_case_is_given_to_someone_who_may_see_its_team_and_save_says_so(mail_app, worked):
    path = f"/cases/{worked.waiting.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get(path)
        # who may own a Warsaw case: its team's and the parent team's managers, and the admin; not Milan's
        assert sorted(options(page.text, "owner")) == ["alice@example.com", "bob@example.com", "carol@example.com"]
        reply = await bob.post(path, data={"csrf_token": await csrf(bob, path), "owner": "carol@example.com"})
        assert reply.status_code == 303 and reply.headers["location"] == f"{path}?saved=1"
        saved = await bob.get(reply.headers["location"])
        assert re.search(r'<p class="notice" role="status" id="saved">Saved.</p>', saved.text)
        assert "Saved." not in (await bob.get(path)).text
    case = await FollowUpCase.get(id=worked.waiting.id)
    assert case.owner_id == worked.care_lead.id and case.status == "open"
    assert await CaseNote.filter(case_id=case.id, kind="owner", data={"user_id": worked.care_lead.id}).exists()


async def test_a_case_is_not_given_to_someone_who_may_not_see_its_team(mail_app, worked):
    path = f"/cases/{worked.waiting.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        token = await csrf(bob, path)
        for owner, message in (
            ("marco@example.com", "marco@example.com cannot see the team of this case (support-warsaw)."),
            ("ana@example.com", "ana@example.com cannot work on cases: the role Analyst does not allow it."),
            ("nobody@example.com", "No active user has the e-mail nobody@example.com."),
        ):
            reply = await bob.post(path, data={"csrf_token": token, "owner": owner, "note": "over to you"})
            assert reply.status_code == 400, owner
            assert message in reply.text
    case = await FollowUpCase.get(id=worked.waiting.id)
    assert case.owner_id == worked.warsaw_lead.id
    assert not await CaseNote.filter(case_id=case.id, body="over to you").exists()  # refused whole


async def test_status_and_note_in_one_save(mail_app, worked):
    path = f"/cases/{worked.waiting.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        token = await csrf(bob, path)
        nothing = await bob.post(path, data={"csrf_token": token, "status": "open", "owner": "bob@example.com"})
        assert nothing.status_code == 400 and "Write a note, choose a new status or a new owner." in nothing.text
        reply = await bob.post(
            path, data={"csrf_token": token, "status": "in_progress", "owner": "bob@example.com", "note": "On it"}
        )
        assert reply.status_code == 303
    case = await FollowUpCase.get(id=worked.waiting.id)
    assert (case.status, case.owner_id) == ("in_progress", worked.warsaw_lead.id)
    assert await CaseNote.filter(case_id=case.id, body="On it").exists()


async def test_a_manager_cannot_open_or_reassign_another_teams_case(mail_app, worked):
    path = f"/cases/{worked.parcel.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        token = await csrf(bob, "/cases")
        assert (await bob.get(path)).status_code == 404
        reply = await bob.post(path, data={"csrf_token": token, "owner": "bob@example.com"})
        assert reply.status_code == 404
    assert (await FollowUpCase.get(id=worked.parcel.id)).owner_id == worked.milan_lead.id


async def test_the_owner_list_is_exactly_who_the_rule_allows(mail_app, worked):
    """The page asks followups.may_own, the rule the API and the save apply, of everyone who might pass it."""
    kiosk = await Team.create(slug="warsaw-kiosk", name="Warsaw Kiosk", parent=worked.warsaw)
    await persona("kim@example.com", "manager", "Kim Kiosk", teams=(kiosk,))  # below Warsaw: not its cases
    owner_only = await persona("olga@example.com", "manager", "Olga Owner")  # owns Milan without being assigned
    await Team.filter(id=worked.milan.id).update(owner_id=owner_only.id)
    gone = await persona("gone@example.com", "admin", "Gone Admin")
    await User.filter(id=gone.id).update(is_active=False)
    homeless = await FollowUpCase.create(status="open", due_at=datetime.now(UTC) + timedelta(days=1))
    people = await User.all()
    async with sign_in(mail_app, "alice@example.com") as alice:
        for case in (worked.waiting, worked.parcel, homeless):
            page = await alice.get(f"/cases/{case.id}")
            stored = await FollowUpCase.get(id=case.id)
            allowed = [p.email for p in people if p.is_active and await followups.may_own(p, stored) is None]
            assert sorted(o for o in options(page.text, "owner") if o) == sorted(allowed), case.id
    assert "kim@example.com" not in allowed and "gone@example.com" not in allowed
