"""Trends, comparisons, insights and the CSV export, checked against numbers computed by hand."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime

import httpx
import pytest

from pulse import loyalty, rollups
from pulse.models import Contact, Invitation, Response
from tests.conftest import make_key

Z = 1.959963984540054


async def answer(survey, question, score, day, team, *, contact=None, comment="", days_since_sale=None, plan=None):
    invitation = None
    if contact is not None:
        invitation = await Invitation.create(survey_id=survey, contact=contact, locale="en", status="answered")
    dims = {}
    if days_since_sale is not None:
        dims["days_since_sale"] = days_since_sale
    if plan:
        dims["plan"] = plan
    response = await Response.create(
        survey_id=survey,
        question_id=question,
        score=score,
        scores={question: score},
        comment=comment,
        locale="en",
        answered_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        day=day,
        confirmed=True,
        touchpoint_type="support_ticket_closed",
        team=team,
        channel="phone",
        stage="active",
        dimensions=dims,
        invitation=invitation,
    )
    await loyalty.record(response)  # counted, as the answer path would
    return response


@pytest.fixture
async def history(mail_app, mail_settings, org):
    for score in (10, 10, 9, 7, 3):
        await answer("nps", "recommend", score, date(2026, 6, 29), org.warsaw, days_since_sale=10, plan="pro")
    for score in (0, 0):
        await answer("nps", "recommend", score, date(2026, 6, 1), org.warsaw, days_since_sale=400, plan="basic")
    for score in (10, 6):
        await answer("nps", "recommend", score, date(2026, 6, 30), org.milan, days_since_sale=200, plan="basic")
    await rollups.rebuild(mail_settings.segment_attributes)
    return org


@pytest.fixture
async def key(mail_app) -> dict:
    return {"authorization": f"Bearer {await make_key('analytics:read', 'responses:read')}"}


async def get(client, url, key):
    reply = await client.get(url, headers=key)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_a_weekly_rolling_nps_with_its_interval(mail_client: httpx.AsyncClient, history, key):
    data = await get(
        mail_client, "/api/v1/trends?survey=nps&window=7d&interval=week&from=2026-06-16&to=2026-06-30", key
    )
    assert (data["metric"], data["window_days"], data["interval"]) == ("nps", 7, "week")
    [group] = data["groups"]
    assert group["key"] == {}
    assert [p["date"] for p in group["points"]] == ["2026-06-16", "2026-06-23", "2026-06-30"]
    empty, _, last = group["points"]
    assert (empty["value"], empty["n"]) == (None, 0)
    # 06-24..06-30: promoters 10,10,9,10; passive 7; detractors 3,6 -> (4 - 2) / 7
    assert last["n"] == 7
    assert last["value"] == pytest.approx(200 / 7)
    # adjusted Wald: n' = 10, p = 4.75 / 10, d = 2.75 / 10, centre 20, Var = 0.75 - 0.04
    se = 100 * math.sqrt(0.71 / 10)
    assert last["ci_low"] == pytest.approx(20 - Z * se)
    assert last["ci_high"] == pytest.approx(20 + Z * se)
    assert last["small_sample"] is True
    assert (last["promoters"], last["passives"], last["detractors"]) == (4, 1, 2)


async def test_groups_by_team_include_sub_teams(mail_client, history, key):
    data = await get(
        mail_client, "/api/v1/trends?survey=nps&window=30d&interval=month&from=2026-06-30&to=2026-06-30&by=team", key
    )
    values = {g["key"]["team"]: (g["points"][0]["value"], g["points"][0]["n"]) for g in data["groups"]}
    assert values["support-warsaw"] == (pytest.approx(0.0), 7)  # 3 promoters, 1 passive, 3 detractors
    assert values["support-milan"] == (pytest.approx(0.0), 2)
    assert values["customer-care"] == (pytest.approx(0.0), 9)  # the parent holds both: 4 promoters, 4 detractors


async def test_a_team_broken_down_and_a_value_split_by_team(mail_client, history, key):
    base = "/api/v1/trends?survey=nps&window=30d&interval=day&from=2026-06-30&to=2026-06-30"
    by_plan = await get(mail_client, f"{base}&team=support-warsaw&by=plan", key)
    plans = {g["key"]["plan"]: g["points"][0]["n"] for g in by_plan["groups"]}
    assert plans == {"basic": 2, "pro": 5}
    assert by_plan["groups"][0]["key"]["team"] == "support-warsaw"
    basic = await get(mail_client, f"{base}&plan=basic&by=team", key)
    assert {g["key"]["team"]: g["points"][0]["n"] for g in basic["groups"]} == {
        "customer-care": 4,
        "support-milan": 2,
        "support-warsaw": 2,
    }
    one = await get(mail_client, f"{base}&team=support-milan&plan=basic", key)
    assert one["groups"][0]["points"][0]["n"] == 2


async def test_comparing_two_periods(mail_client, history, key):
    data = await get(
        mail_client,
        "/api/v1/trends/compare?survey=nps&team=support-warsaw&a=2026-06-01..2026-06-15&b=2026-06-16..2026-06-30",
        key,
    )
    [group] = data["groups"]
    assert (group["a"]["value"], group["a"]["n"]) == (-100.0, 2)
    assert (group["b"]["value"], group["b"]["n"]) == (pytest.approx(40.0), 5)
    assert group["difference"] == pytest.approx(140.0)
    # each side's adjusted Wald variance: a (n' = 5) 0.54 / 5, b (n' = 8) 0.625 / 8
    se = 100 * math.sqrt(0.54 / 5 + 0.625 / 8)
    assert group["ci_low"] == pytest.approx(140 - Z * se)
    # 2 and 5 answers: too few to tell, whatever the difference looks like
    assert (group["significance"], group["p_value"], group["significant"]) == ("too_few", None, False)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("survey=nope", "Unknown survey 'nope'; the surveys are ces, csat, enps, nps."),
        ("", "survey is required; the surveys are ces, csat, enps, nps."),
        ("survey=enps", "Employee pulses are reported under /api/v1/engagement, which protects anonymity."),
        (
            "survey=nps&by=colour",
            "Unknown dimension 'colour' for by; use one of touchpoint, team, channel, stage, lifecycle, plan, region.",
        ),
        (
            "survey=nps&colour=red",
            "Unknown dimension 'colour'; filter by one of touchpoint, team, channel, stage, lifecycle, plan, region.",
        ),
        ("survey=nps&from=2026-13-01", "from must be a date such as 2026-03-01, not '2026-13-01'."),
        ("survey=nps&from=2026-06-02&to=2026-06-01", "from must not be after to."),
        (
            "survey=nps&interval=day&from=2020-01-01&to=2026-01-01",
            "That is more than 1000 points: shorten the range or use a longer interval.",
        ),
        ("survey=nps&window=4w", "window must be a number of days such as 28d (1d to 730d)."),
        ("survey=nps&interval=hour", "interval must be one of day, week, month."),
        ("survey=nps&plan=pro&stage=active", "Filter by team and at most one other dimension at a time."),
    ],
)
async def test_bad_queries_are_400_with_a_sentence(mail_client, history, key, query, message):
    reply = await mail_client.get(f"/api/v1/trends?{query}", headers=key)
    assert reply.status_code == 400
    assert reply.json()["error"] == message


async def test_lifecycle_shows_where_loyalty_erodes(mail_client, history, key):
    data = await get(mail_client, "/api/v1/insights/lifecycle?survey=nps&from=2026-01-01&to=2026-06-30", key)
    buckets = {g["lifecycle"]: (g["value"], g["n"]) for g in data["by_days_since_sale"]}
    assert buckets["0-30"] == (pytest.approx(40.0), 5)
    assert buckets["181-365"] == (pytest.approx(0.0), 2)
    assert buckets["365+"] == (-100.0, 2)
    assert buckets["31-90"] == (None, 0)
    assert [g["stage"] for g in data["by_stage"]] == ["active"]


async def test_the_satisfied_but_not_loyal_are_named(mail_client, mail_app, org, key):
    people = {}
    for external_id, csat_score, nps_score in (("K-1", 5, 7), ("K-2", 2, 10), ("K-3", 4, 9), ("K-4", 4, 8)):
        contact = await Contact.create(external_id=external_id, email=f"{external_id}@example.com", name=external_id)
        people[external_id] = contact
        await answer("csat", "satisfaction", 1, date(2026, 5, 1), org.warsaw, contact=contact)  # older, superseded
        await answer("csat", "satisfaction", csat_score, date(2026, 6, 1), org.warsaw, contact=contact)
        await answer("nps", "recommend", nps_score, date(2026, 6, 2), org.milan, contact=contact)
    data = await get(mail_client, "/api/v1/insights/loyalty-quadrant", key)
    assert data["counts"] == {"loyal": 1, "satisfied_not_loyal": 2, "loyal_not_satisfied": 1, "at_risk": 0}
    assert data["shares"]["satisfied_not_loyal"] == 50.0
    assert sorted(p["external_id"] for p in data["satisfied_not_loyal"]) == ["K-1", "K-4"]
    assert {p["team"] for p in data["satisfied_not_loyal"]} == {"support-milan"}


FORMULAS = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\tTab",
    "\rReturn",
    "plain, with comma",
    'quote " inside',
    "zażółć gęślą jaźń",
]


async def test_the_csv_export_neutralises_formulas_and_streams(mail_client, history, key):
    for number, comment in enumerate(FORMULAS):
        await answer("csat", "satisfaction", 1 + number % 5, date(2026, 6, 10), history.warsaw, comment=comment)
    reply = await mail_client.get("/api/v1/responses.csv?survey=csat&bom=1", headers=key)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith('attachment; filename="pulse-responses-')
    assert reply.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert table[0] == [
        "id",
        "survey",
        "question",
        "score",
        "band",
        "comment",
        "locale",
        "answered_at",
        "day",
        "touchpoint_type",
        "team",
        "channel",
        "stage",
        "plan",
        "region",
    ]
    comments = [row[5] for row in table[1:]]
    assert comments == ["'" + c if c[0] in "=+-@\t\r" else c for c in FORMULAS]
    assert all(row[10] == "support-warsaw" for row in table[1:])
    everything = await mail_client.get("/api/v1/responses.csv", headers=key)
    assert len(list(csv.reader(io.StringIO(everything.text)))) == 1 + 9 + len(FORMULAS)
    assert (await mail_client.get("/api/v1/responses.csv?survey=enps", headers=key)).status_code == 400
    assert (await mail_client.get("/api/v1/responses.csv?since=soon", headers=key)).status_code == 400
