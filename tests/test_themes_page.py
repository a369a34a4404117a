"""The themes page and API: counts by score band, examples of customer comments only, a manager's own teams only,
an empty state, and a sentence (never a 500) for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulse.models import Response
from tests.conftest import make_key, sign_in

TODAY = datetime.now(UTC).date()


async def answer(survey: str, score: int, comment: str, *, team=None, locale="en", days_ago=1, **more) -> None:
    day = TODAY - timedelta(days=days_ago)
    await Response.create(
        survey_id=survey,
        question_id={"nps": "recommend", "csat": "satisfaction", "enps": "recommend_workplace"}[survey],
        score=score,
        comment=comment,
        locale=locale,
        answered_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
        day=day,
        confirmed=more.pop("confirmed", True),
        touchpoint_type="support_ticket_closed",
        team=team,
        **more,
    )


@pytest.fixture
async def comments(mail_app, org):
    """Warsaw: Polish and English NPS comments; Milan: an Italian one; and what must never show: an employee's
    comment in the response table, an unconfirmed and a discarded answer."""
    await answer("nps", 2, "Kurier spóźnił się trzy dni, a paczka była zgnieciona", team=org.warsaw, locale="pl")
    await answer("nps", 3, "Faktura błędna i nikt nie odpisał", team=org.warsaw, locale="pl", days_ago=9)
    await answer("nps", 10, "Delivery was fast and the courier friendly", team=org.warsaw, days_ago=3)
    await answer("nps", 8, "All fine", team=org.warsaw, days_ago=4)
    await answer("nps", 1, "Il prezzo è troppo alto, Milano segreto", team=org.milan, locale="it", days_ago=2)
    await answer("enps", 1, "Employee: my manager is rude and the pay is too low", team=org.warsaw)
    await answer("nps", 0, "Unconfirmed delivery complaint", team=org.warsaw, confirmed=False)
    await answer("nps", 0, "Discarded delivery complaint", team=org.warsaw, discarded=True)
    return org


NEVER = ("Employee: my manager", "Unconfirmed delivery complaint", "Discarded delivery complaint")


async def test_an_admin_sees_themes_by_band_with_examples(mail_app, comments):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard/themes?survey=nps")
    assert page.status_code == 200
    html = page.text
    assert 'href="/dashboard/themes' in html and 'aria-current="page">Themes</a>' in html  # the nav link
    assert "What the comments are about" in html
    assert "Unhappy scores (0–6)" in html and "Top scores (9–10)" in html
    assert "Kurier spóźnił się trzy dni" in html and 'lang="pl"' in html
    assert "Il prezzo è troppo alto" in html
    assert "Delivery was fast and the courier friendly" in html
    assert 'class="figure"' in html
    for text in NEVER:
        assert text not in html


async def test_a_manager_sees_only_their_teams_comments(mail_app, comments):
    async with sign_in(mail_app, "bob@example.com") as bob:
        own = await bob.get("/dashboard/themes?survey=nps&lang=pl")
        other = await bob.get("/dashboard/themes?survey=nps&team=support-milan")
    assert own.status_code == 200
    assert "Kurier spóźnił się" in own.text and "Dostawa" in own.text  # the theme's Polish label
    assert "Milano segreto" not in own.text
    assert other.status_code == 403


async def test_hr_may_not_open_the_themes_page(mail_app, comments):
    async with sign_in(mail_app, "hana@example.com") as hana:
        page = await hana.get("/dashboard/themes")
    assert page.status_code == 403


async def test_no_comments_shows_an_empty_state(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard/themes?survey=csat")
        team = await alice.get("/dashboard/themes?survey=csat&team=support-milan")
    assert page.status_code == 200
    assert "No comment on" in page.text and "in this period." in page.text
    assert "from this team in this period" in team.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("survey=enps", "Choose one of the offered surveys."),
        ("survey=nps&from=2026-13-01", "from"),
        ("survey=nps&from=2026-05-10&to=2026-05-01", "to"),
    ],
)
async def test_bad_filters_are_told_beside_the_field(mail_app, comments, query, message):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get(f"/dashboard/themes?{query}")
    assert page.status_code == 400
    assert 'aria-invalid="true"' in page.text
    assert "Employee: my manager" not in page.text


async def test_the_api_gives_counts_trend_and_examples(mail_client, comments):
    headers = {"authorization": f"Bearer {await make_key('analytics:read')}"}
    reply = await mail_client.get("/api/v1/insights/themes?survey=nps&team=support-warsaw", headers=headers)
    assert reply.status_code == 200
    body = reply.json()
    assert body["survey"] == "nps" and body["team"] == "support-warsaw"
    assert body["comments"] == {"unhappy": 2, "top": 1, "other": 1, "total": 4}
    assert body["untagged"] == {"unhappy": 0, "top": 0, "other": 1}
    delivery = next(theme for theme in body["themes"] if theme["id"] == "delivery")
    assert delivery["label"]["sl"] == "Dostava"
    assert delivery["counts"] == {"unhappy": 1, "top": 1, "other": 0}
    assert delivery["shares"]["unhappy"] == 0.5
    assert sum(point["count"] for point in delivery["trend"]) == 2
    assert {e["group"] for e in delivery["examples"]} == {"unhappy", "top"}
    assert set(delivery["examples"][0]) == {"text", "score", "band", "group", "language", "day"}  # nobody named
    assert "billing" in {theme["id"] for theme in body["themes"] if theme["total"]}
    text = reply.text
    assert "Milano segreto" not in text
    for never in NEVER:
        assert never not in text


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("survey=enps", 400, "survey must be one of the customer surveys: ces, csat, nps."),
        ("", 400, "survey must be one of the customer surveys: ces, csat, nps."),
        ("survey=nps&team=nowhere", 404, "No such team."),
        ("survey=nps&from=2026-05-10&to=2026-05-01", 400, "from must not be after to."),
        ("survey=nps&from=yesterday", 400, None),
        ("survey=nps&from=2020-01-01&to=2026-01-01", 400, "The period must not be longer than three years."),
    ],
)
async def test_the_api_refuses_bad_input_with_a_sentence(mail_client, org, query, status, error):
    headers = {"authorization": f"Bearer {await make_key('analytics:read')}"}
    reply = await mail_client.get(f"/api/v1/insights/themes?{query}", headers=headers)
    assert reply.status_code == status
    assert reply.json()["error"]
    if error:
        assert reply.json()["error"] == error


async def test_the_api_needs_the_analytics_scope(mail_client, org):
    assert (await mail_client.get("/api/v1/insights/themes?survey=nps")).status_code == 401
    headers = {"authorization": f"Bearer {await make_key('touchpoints:write')}"}
    assert (await mail_client.get("/api/v1/insights/themes?survey=nps", headers=headers)).status_code == 403
