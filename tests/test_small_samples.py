"""Small samples do not look precise, and noise is not called significant: API fields and what a person reads."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pulse import rollups
from pulse.models import Response
from tests.conftest import make_key, sign_in

FEW = "Few answers: this value can change a lot with the next ones."
QUESTIONS = {"nps": "recommend", "csat": "satisfaction", "ces": "effort"}


async def answer(survey: str, score: int, day: date, team) -> None:
    await Response.create(
        survey_id=survey,
        question_id=QUESTIONS[survey],
        score=score,
        scores={QUESTIONS[survey]: score},
        comment="",
        locale="en",
        answered_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        day=day,
        confirmed=True,
        touchpoint_type="support_ticket_closed",
        team=team,
        channel="phone",
        stage="active",
        dimensions={},
    )


def today(settings) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date()


def figures(html: str) -> list[dict]:
    return [
        json.loads(block)
        for block in re.findall(r'<script type="application/json" class="figure">(.*?)</script>', html, re.S)
    ]


@pytest.fixture
async def key(mail_app) -> dict:
    return {"authorization": f"Bearer {await make_key('analytics:read')}"}


@pytest.fixture
async def few(mail_app, mail_settings, catalog, org):
    """Four effort answers in each of the last two 28-day windows, one NPS answer, NPS by team 12 and 2."""
    end = today(mail_settings)
    for score in (7, 7, 6, 7):
        await answer("ces", score, end - timedelta(days=35), org.warsaw)
    for score in (5, 5, 6, 5):
        await answer("ces", score, end - timedelta(days=3), org.warsaw)
    await answer("nps", 10, end - timedelta(days=3), org.milan)
    await answer("nps", 3, end - timedelta(days=2), org.milan)
    for score in (10, 9, 9, 8, 7, 6, 10, 10, 2, 9, 9, 10):
        await answer("nps", score, end - timedelta(days=2), org.warsaw)
    await rollups.rebuild(mail_settings.segment_attributes)
    return end


async def test_one_answer_has_an_interval_and_is_marked_small(mail_client, few, key):
    day = few - timedelta(days=3)
    reply = await mail_client.get(
        f"/api/v1/trends?survey=nps&team=support-milan&window=1d&interval=day&from={day}&to={day}", headers=key
    )
    [point] = reply.json()["groups"][0]["points"]
    assert (point["value"], point["n"], point["small_sample"]) == (100.0, 1, True)
    assert point["ci_low"] < point["ci_high"] == 100.0
    reply = await mail_client.get(
        f"/api/v1/trends?survey=nps&team=support-warsaw&window=7d&interval=day&from={few}&to={few}", headers=key
    )
    [point] = reply.json()["groups"][0]["points"]
    assert (point["n"], point["small_sample"]) == (12, False)


async def test_a_change_on_four_answers_is_too_few_to_tell(mail_client, few, key):
    a = f"{few - timedelta(days=55)}..{few - timedelta(days=28)}"
    b = f"{few - timedelta(days=27)}..{few}"
    reply = await mail_client.get(f"/api/v1/trends/compare?survey=ces&a={a}&b={b}", headers=key)
    [group] = reply.json()["groups"]
    assert group["difference"] == pytest.approx(-1.5)
    assert (group["significance"], group["p_value"], group["significant"]) == ("too_few", None, False)
    assert group["min_n"] == 30
    assert group["ci_low"] < group["difference"] < group["ci_high"]


async def test_the_overview_says_too_few_answers_and_greys_small_values(mail_app, few):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert (
        "Change vs the previous 28 days: -1.50, too few answers to tell "
        "(n = 4 and 4; at least 30 in each period are needed)." in text
    )
    assert "significant (p" not in text and "within the noise" not in text
    card = text.split('id="card-ces"')[1].split("</section>")[0]
    assert re.search(rf'<span class="big few muted" title="{re.escape(FEW)}">5.25</span>', card)
    assert f'<span class="visually-hidden">{FEW}</span>' in card


async def test_the_nps_chart_draws_the_interval_of_a_point_after_empty_weeks(mail_app, few):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard")
    nps = next(f for f in figures(page.text) if f["layout"]["yaxis"]["range"] == [-100, 100])
    line = nps["data"][-1]
    last = len(line["y"]) - 1
    assert line["y"][last] == pytest.approx(100 * (9 - 3) / 14)  # 9 promoters, 3 detractors of 14
    errors = line["error_y"]
    assert errors["array"][last] is not None and errors["array"][last] + errors["arrayminus"][last] > 0
    assert "few answers" not in line["text"][last]  # n = 14 is not small
    assert line["text"][last - 1].endswith("(n = 0)")


async def test_breakdown_greys_small_groups_and_its_sparklines_share_a_scale(mail_app, few):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard/breakdown?survey=nps&by=team&window=7d")
    assert page.status_code == 200
    rows = {
        re.search(r"<td>([^<]+)</td>", row).group(1): row for row in re.findall(r"<tr>(.*?)</tr>", page.text, re.S)[1:]
    }
    assert set(rows) == {"Customer Care", "Support Milan", "Support Warsaw"}  # the teams' names, not their slugs
    assert f'class="few muted" title="{FEW}"' in rows["Support Milan"]  # n = 2
    assert "few" not in rows["Support Warsaw"]  # n = 12
    ranges = {tuple(f["layout"]["yaxis"]["range"]) for f in figures(page.text)}
    assert len(ranges) == 1
    [(low, high)] = ranges
    assert low < 0 and high > 50  # Milan's 0 and Warsaw's 50 on one scale


async def test_with_thirty_answers_a_period_a_change_gets_its_p_value(mail_client, mail_settings, org, key):
    end = today(mail_settings)
    for number in range(30):
        await answer("nps", 2 if number < 15 else 9, end - timedelta(days=40), org.warsaw)
        await answer("nps", 10 if number < 25 else 2, end - timedelta(days=5), org.warsaw)
    await rollups.rebuild(mail_settings.segment_attributes)
    a = f"{end - timedelta(days=55)}..{end - timedelta(days=28)}"
    b = f"{end - timedelta(days=27)}..{end}"
    reply = await mail_client.get(f"/api/v1/trends/compare?survey=nps&a={a}&b={b}", headers=key)
    [group] = reply.json()["groups"]
    assert (group["a"]["n"], group["b"]["n"], group["difference"]) == (30, 30, pytest.approx(100 * 20 / 30))
    assert group["significance"] == "significant" and group["significant"] is True
    assert 0 < group["p_value"] < 0.05
