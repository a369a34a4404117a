"""The responses explorer: every customer answer and only those, filtered, paged, scoped to a manager's teams,
and a CSV of exactly the rows the filters show, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pulse import i18n
from pulse.catalog import localized
from pulse.models import PulseAnswer, PulseRound, Response, User
from tests.conftest import sign_in

TODAY = datetime.now(UTC).date()
FORMULA = '=HYPERLINK("http://evil.example","click")'


async def answer(survey: str, score: int, comment: str = "", *, team=None, locale="en", days_ago=1, **more) -> int:
    day = TODAY - timedelta(days=days_ago)
    stored = await Response.create(
        survey_id=survey,
        question_id={"nps": "recommend", "csat": "satisfaction", "ces": "effort", "enps": "recommend_workplace"}[
            survey
        ],
        score=score,
        comment=comment,
        locale=locale,
        answered_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
        day=day,
        confirmed=more.pop("confirmed", True),
        touchpoint_type=more.pop("touchpoint_type", "support_ticket_closed"),
        team=team,
        **more,
    )
    return stored.id


@pytest.fixture
async def answers(mail_app, org):
    """Warsaw: three answers, one a formula; Milan: one; one from a public link with no team; and what must never
    show: an answer not yet confirmed, a discarded one, and employees' comments."""
    await User.filter(id=org.warsaw_lead.id).update(locale="en")
    org.great = await answer("nps", 9, "Great help, 100% happy", team=org.warsaw, days_ago=1)
    org.formula = await answer("csat", 1, FORMULA, team=org.warsaw, locale="pl", days_ago=2)
    org.silent = await answer("nps", 3, "", team=org.warsaw, locale="it", days_ago=3)
    org.milan_answer = await answer("csat", 2, "Milan secret comment", team=org.milan, locale="it", days_ago=4)
    org.no_team = await answer("ces", 6, "Came through the public link", days_ago=5, touchpoint_type=None)
    await answer("nps", 10, "Not confirmed yet", team=org.warsaw, confirmed=False)
    await answer("nps", 0, "Discarded answer", team=org.warsaw, discarded=True)
    await answer("enps", 2, "Employee in the response table", team=org.warsaw)
    now = datetime.now(UTC)
    pulse_round = await PulseRound.create(
        survey_id="enps", number=1, questions=["recommend_workplace"], opens_at=now, remind_at=now, closes_at=now
    )
    await PulseAnswer.create(
        id=uuid.uuid4(), round=pulse_round, question_id="recommend_workplace", score=1,
        comment="Employee secret about my boss", team=org.warsaw,
    )  # fmt: skip
    return org


NEVER = ("Not confirmed yet", "Discarded answer", "Employee in the response table", "Employee secret about my boss")


def shown(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="answer-(\d+)">', html)]


def csv_ids(text: str) -> list[int]:
    return [int(row["id"]) for row in csv.DictReader(io.StringIO(text))]


async def test_an_admin_sees_every_customer_answer_and_no_employee_answer(mail_app, catalog, answers):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/responses")
        download = await alice.get("/responses.csv")
    assert page.status_code == 200
    expected = [answers.great, answers.formula, answers.silent, answers.milan_answer, answers.no_team]  # newest first
    assert shown(page.text) == expected
    assert "5 answers" in page.text and 'href="/responses.csv"' in page.text
    for secret in NEVER:
        assert secret not in page.text and secret not in download.text
    assert sorted(csv_ids(download.text)) == sorted(expected)
    for survey in ("nps", "csat", "ces"):  # each survey by its title in the reader's language
        assert localized(catalog.get(survey).title, "en", "Acme") in page.text


async def test_a_manager_sees_only_their_teams_answers_in_the_page_and_the_csv(mail_app, answers):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/responses")
        download = await bob.get("/responses.csv")
        other = await bob.get("/responses?team=support-milan")
        other_csv = await bob.get("/responses.csv?team=support-milan")
    warsaw = [answers.great, answers.formula, answers.silent]
    assert shown(page.text) == warsaw
    assert sorted(csv_ids(download.text)) == sorted(warsaw)
    for text in (page.text, download.text):
        assert "Milan secret comment" not in text and "public link" not in text
    assert other.status_code == 400 and "Choose one of your teams." in other.text
    assert other_csv.status_code == 400 and "Milan" not in other_csv.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("survey=csat", ["formula", "milan_answer"]),
        ("team=support-milan", ["milan_answer"]),
        ("team=customer-care", ["great", "formula", "silent", "milan_answer"]),  # with its sub-teams
        ("min=0&max=2", ["formula", "milan_answer"]),
        ("min=7", ["great"]),
        ("comment=0", ["silent"]),
        ("comment=1&language=it", ["milan_answer"]),
        ("language=pl", ["formula"]),
        (f"from={TODAY - timedelta(days=3)}&to={TODAY - timedelta(days=2)}", ["formula", "silent"]),
        ("q=GREAT", ["great"]),  # case does not matter
        ("q=100%25", ["great"]),  # a % is a percent sign, not a wildcard
        ("q=%25", ["great"]),
        ("q=_", []),
        ("survey=nps&q=help&min=9&max=10&comment=1&language=en", ["great"]),
    ],
)
async def test_filters_narrow_the_page_and_the_csv_alike(mail_app, answers, query, expected):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get(f"/responses?{query}")
        link = re.search(r'href="(/responses\.csv[^"]*)"', page.text)
        download = await alice.get(link.group(1).replace("&amp;", "&")) if link else None
    assert page.status_code == 200
    ids = [getattr(answers, name) for name in expected]
    assert shown(page.text) == ids
    if expected:
        assert sorted(csv_ids(download.text)) == sorted(ids)  # exactly the filtered rows
    else:
        assert link is None and "No answers match these filters." in page.text


async def test_the_csv_is_formula_safe_and_uses_the_exports_columns(mail_app, answers):
    async with sign_in(mail_app, "alice@example.com") as alice:
        download = await alice.get("/responses.csv?language=pl")
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"].startswith('attachment; filename="pulse-responses-')
    [row] = list(csv.DictReader(io.StringIO(download.text)))
    assert row["comment"] == "'" + FORMULA  # a spreadsheet shows it as text and runs nothing
    assert (row["survey"], row["score"], row["team"], row["locale"]) == ("csat", "1", "support-warsaw", "pl")
    assert download.text.splitlines()[0].startswith("id,survey,question,score,band,comment,locale,answered_at,day")


async def test_answers_are_paged_by_25_keeping_the_filters(mail_app, answers):
    for n in range(30):
        await answer("nps", 8, f"Fine {n}", team=answers.warsaw, days_ago=10)
    async with sign_in(mail_app, "alice@example.com") as alice:
        first = await alice.get("/responses?survey=nps&comment=1")
        assert "Page 1 of 2" in first.text and "31 answers" in first.text
        link = re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1).replace("&amp;", "&")
        assert link == "/responses?survey=nps&comment=1&page=2"
        second = await alice.get(link)
        download = await alice.get("/responses.csv?survey=nps&comment=1&page=2")
    assert len(shown(first.text)) == 25 and len(shown(second.text)) == 6
    assert "Page 2 of 2" in second.text
    assert len(csv_ids(download.text)) == 31  # the CSV has every page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("survey=enps", "Choose a survey from the list."),
        ("survey=nope", "Choose a survey from the list."),
        ("min=11", "min must be a whole number from 0 to 10."),
        ("min=8&max=3", "The lowest score (min) must not be above the highest (max)."),
        ("from=2026-13-01", "from must be a date such as 2026-03-01"),
        ("from=2026-05-02&to=2026-05-01", "The first day (from) must not be after the last day (to)."),
        ("comment=maybe", "Choose whether the answer has a comment from the list."),
        ("language=%3Cb%3E", "Choose a language from the list."),
        ("page=abc", "page must be a whole number from 1 to"),
        ("q=a%00b", "The search must not contain control characters."),
    ],
)
async def test_bad_filters_are_a_400_that_says_what_is_wrong(mail_app, answers, query, message):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get(f"/responses?{query}")
        download = await alice.get(f"/responses.csv?{query}")
    assert page.status_code == 400 and message in page.text
    if "page=" not in query:  # the CSV has no pages
        assert download.status_code == 400 and message in download.text


async def test_hr_sees_no_customer_answers(mail_app, answers):
    async with sign_in(mail_app, "hana@example.com") as hana:
        assert (await hana.get("/responses")).status_code == 403
        download = await hana.get("/responses.csv")
    assert download.status_code == 403 and "Great help" not in download.text


async def test_an_empty_explorer_says_there_are_no_answers_yet(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/responses")
    assert page.status_code == 200
    assert "No answers yet." in page.text and "Download CSV" not in page.text


async def test_dates_and_survey_titles_are_in_the_readers_language(mail_app, catalog, answers):
    async with sign_in(mail_app, "marco@example.com") as marco:  # Italian, manager of Milan
        page = await marco.get("/responses")
    [row] = re.findall(r'<tr id="answer-\d+">(.*?)</tr>', page.text, re.S)
    day = TODAY - timedelta(days=4)
    answered = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    assert i18n.moment(answered, "it", "UTC", "short") in row
    assert localized(catalog.get("csat").title, "it", "Acme") in row
