"""Contacts: a list a page at a time without having to search first, each with their last score, team and open
cases; search by name, e-mail or CRM id; a manager sees only the customers (and the parts) of their teams."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.connection import connections

from pulse.catalog import localized
from pulse.models import Contact, FollowUpCase, Invitation, Response, Touchpoint, User
from tests.conftest import sign_in

NOW = datetime.now(UTC)


async def served(number: int, team, *, survey: str | None = None, score: int = 0, days_ago: int = 1, case=None):
    """Customer C-<number> served by `team`, answering `survey` with `score` if given, with a case if `case`."""
    person, _ = await Contact.get_or_create(
        external_id=f"C-{number}", defaults={"email": f"person{number}@example.com", "name": f"Person {number:03d}"}
    )
    at = NOW - timedelta(days=days_ago)
    touchpoint = await Touchpoint.create(
        source="crm", external_id=f"T-{number}-{team.slug}-{days_ago}", type="support_ticket_closed",
        occurred_at=at, contact=person, team=team,
    )  # fmt: skip
    if survey is None:
        return person
    invitation = await Invitation.create(
        survey_id=survey, contact=person, touchpoint=touchpoint, locale="en", status="answered"
    )
    response = await Response.create(
        survey_id=survey, question_id="q", score=score, locale="en", answered_at=at, day=at.date(), confirmed=True,
        invitation=invitation, team=team,
    )  # fmt: skip
    if case is not None:
        await FollowUpCase.create(
            response=response, contact=person, team=team, status=case, due_at=NOW + timedelta(days=2), score=score
        )
    return person


@pytest.fixture
async def customers(mail_app, org):
    """Person 001: Warsaw (NPS 9, then CSAT 1 with an open case) and later Milan (CSAT 2, open case);
    Person 002: Milan only; Person 003: Warsaw, never answered."""
    await User.filter(id=org.warsaw_lead.id).update(locale="en")
    await served(1, org.warsaw, survey="nps", score=9, days_ago=5)
    await served(1, org.warsaw, survey="csat", score=1, days_ago=3, case="open")
    await served(1, org.milan, survey="csat", score=2, days_ago=1, case="in_progress")
    await served(2, org.milan, survey="nps", score=4, days_ago=2, case="resolved")
    await served(3, org.warsaw)
    return org


def rows(html: str) -> list[list[str]]:
    """Each row of the contacts table as its cells' text."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    if body is None:
        return []
    return [
        [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


async def test_everyone_is_listed_without_a_search_with_last_score_team_and_open_cases(mail_app, catalog, customers):
    csat = localized(catalog.get("csat").title, "en", "Acme")
    nps = localized(catalog.get("nps").title, "en", "Acme")
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/contacts")
    assert page.status_code == 200 and "3 contacts" in page.text
    assert rows(page.text) == [
        ["Person 001", "person1@example.com", "C-1", f"2 {csat}", "Support Milan", "2"],
        ["Person 002", "person2@example.com", "C-2", f"4 {nps}", "Support Milan", "0"],
        ["Person 003", "person3@example.com", "C-3", "no answer yet", "Support Warsaw", "0"],
    ]
    assert 'data-label="Last score"' in page.text


async def test_a_manager_sees_their_teams_customers_and_only_their_part(mail_app, catalog, customers):
    csat = localized(catalog.get("csat").title, "en", "Acme")
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/contacts")
        search = await bob.get("/contacts?q=person2")
    assert rows(page.text) == [
        ["Person 001", "person1@example.com", "C-1", f"1 {csat}", "Support Warsaw", "1"],  # not Milan's answer or case
        ["Person 003", "person3@example.com", "C-3", "no answer yet", "Support Warsaw", "0"],
    ]
    assert "Person 002" not in page.text and "Support Milan" not in page.text
    assert rows(search.text) == [] and "Nobody matches person2." in search.text


@pytest.mark.parametrize(
    ("q", "expected"),
    [("person 002", "C-2"), ("PERSON3@EXAMPLE", "C-3"), ("c-1", "C-1"), ("_", None), ("%", None)],  # no wildcards
)
async def test_search_by_name_email_or_crm_id(mail_app, customers, q, expected):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/contacts", params={"q": q})
    assert [row[2] for row in rows(page.text)] == ([expected] if expected else [])


async def test_contacts_come_fifty_to_a_page_and_the_search_stays_on_the_next(mail_app, customers):
    for n in range(10, 70):
        await served(n, customers.warsaw)
    async with sign_in(mail_app, "alice@example.com") as alice:
        first = await alice.get("/contacts")
        assert "63 contacts" in first.text and "Page 1 of 2" in first.text and len(rows(first.text)) == 50
        second = await alice.get("/contacts?page=2")
        assert len(rows(second.text)) == 13 and "Page 2 of 2" in second.text
        searched = await alice.get("/contacts?q=example.com")
        link = re.search(r'<a href="([^"]+)" rel="next">', searched.text).group(1).replace("&amp;", "&")
        assert link == "/contacts?q=example.com&page=2"
        bad = await alice.get("/contacts?page=-1")
    assert {row[2] for row in rows(first.text)}.isdisjoint(row[2] for row in rows(second.text))
    assert bad.status_code == 400 and "page must be a whole number from 1 to" in bad.text


async def test_a_page_of_fifty_takes_no_more_queries_than_a_page_of_three(mail_app, customers, monkeypatch):
    """Last score, team and open cases are read for the whole page at once, not once per row."""
    client = type(connections.get("default"))
    counted: list[str] = []
    for name in ("execute_query", "execute_query_dict"):
        original = getattr(client, name)

        async def counting(self, sql, *args, _original=original, **kwargs):
            counted.append(sql)
            return await _original(self, sql, *args, **kwargs)

        monkeypatch.setattr(client, name, counting)

    async def queries() -> int:
        async with sign_in(mail_app, "bob@example.com") as bob:
            counted.clear()
            page = await bob.get("/contacts")
            assert page.status_code == 200
            return len(counted)

    few = await queries()
    assert few >= 5  # the count, the page, and one each for scores, teams and cases (plus the session)
    for n in range(10, 70):
        await served(n, customers.warsaw, survey="csat", score=n % 5 + 1, case="open")
    assert await queries() == few


async def test_an_empty_contacts_page_says_where_customers_come_from(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/contacts")
    assert "No customers yet." in page.text and "<table" not in page.text
