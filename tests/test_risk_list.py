"""Customers at risk on the demo data, through the real app: the page (scoped by role), the API, the backtest and
its command. The demo's soured customers are on the list with their reasons; its steady customers are not."""

from __future__ import annotations

import asyncio

import pytest
from asgi_lifespan import LifespanManager

from pulse import cli, db, risk_backtest, risk_demo
from pulse.app import create_app, record_survey_versions
from pulse.demo import DEMO_PASSWORD, load_demo
from tests.conftest import make_key, make_settings, sign_in

CONTACTS = 60
TURNED_LATELY = {"CRM-900001": "Zofia Lewandowska", "CRM-900002": "Sara Romano"}  # Warsaw and Milan, 3 weeks ago


@pytest.fixture
async def demo(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_QUIET_HOURS="off"), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=CONTACTS, months=12, seed=3, timezone="UTC")
        yield app


async def api(app, query: str = "", key: str | None = None):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        headers = {"authorization": f"Bearer {key or await make_key('analytics:read')}"}
        return await client.get("/api/v1/insights/at-risk" + query, headers=headers)


async def test_the_demos_soured_customers_are_listed_and_its_steady_ones_are_not(demo):
    reply = await api(demo)
    assert reply.status_code == 200
    body = reply.json()
    listed = {person["external_id"]: person for person in body["customers"]}
    assert set(TURNED_LATELY) <= set(listed)
    assert not set(risk_demo.steady_ids(CONTACTS)) & set(listed)
    zofia = listed["CRM-900001"]
    assert zofia["name"] == "Zofia Lewandowska" and zofia["score"] >= body["threshold"] == 40
    signals = {reason["signal"]: reason for reason in zofia["reasons"]}
    assert {"score_drop", "detractor", "open_case", "complaints", "unanswered"} <= set(signals)
    assert signals["detractor"]["text"].startswith("Unhappy Customer Satisfaction (CSAT) score 1 on ")
    assert signals["complaints"]["data"] == {"complaints": 2, "type": "complaint_closed"}
    assert [p["score"] for p in body["customers"]] == sorted((p["score"] for p in body["customers"]), reverse=True)


async def test_the_api_takes_a_team_and_a_limit_and_refuses_bad_ones_with_a_sentence(demo):
    key = await make_key("analytics:read")
    warsaw = (await api(demo, "?team=support-warsaw", key)).json()
    assert "CRM-900001" in {p["external_id"] for p in warsaw["customers"]}
    assert "CRM-900002" not in {p["external_id"] for p in warsaw["customers"]}
    care = (await api(demo, "?team=customer-care&limit=1", key)).json()  # a parent team: its sub-teams included
    assert len(care["customers"]) == 1 and care["listed"] >= 2
    for query, message in (
        ("?limit=0", "limit must be a whole number from 1 to 1000."),
        ("?limit=many", "limit must be a whole number from 1 to 1000."),
        ("?team=nowhere", "No team has the slug 'nowhere'."),
    ):
        reply = await api(demo, query, key)
        assert (reply.status_code, reply.json()["error"]) == (400, message)
    assert (await api(demo, "?team=%00", key)).status_code == 400
    assert (await api(demo, "", await make_key("responses:read"))).status_code == 403


async def test_the_page_shows_each_customers_reasons_and_links_to_them(demo):
    async with sign_in(demo, "admin@pulse.local", DEMO_PASSWORD) as admin:
        page = await admin.get("/dashboard/at-risk")
        assert page.status_code == 200
        assert 'href="/contacts/CRM-900001"' in page.text and "Zofia Lewandowska" in page.text
        assert "Unhappy, not resolved" in page.text and "complaints after the sale" in page.text
        assert 'aria-current="page">At risk</a>' in page.text
        assert "CRM-950001" not in page.text
        contact = await admin.get("/contacts/CRM-900001")
        assert contact.status_code == 200
        refused = await admin.get("/dashboard/at-risk?team=nowhere")
        assert refused.status_code == 400 and "No team has this name." in refused.text


async def test_a_manager_sees_only_their_teams_customers(demo):
    async with sign_in(demo, "support-warsaw@pulse.local", DEMO_PASSWORD) as manager:
        page = await manager.get("/dashboard/at-risk")
        assert page.status_code == 200
        assert "CRM-900001" in page.text and "CRM-900002" not in page.text
        assert (await manager.get("/dashboard/at-risk?team=support-milan")).status_code == 403
    async with sign_in(demo, "support-milan@pulse.local", DEMO_PASSWORD) as milan:
        page = await milan.get("/dashboard/at-risk")
        assert "CRM-900002" in page.text and "CRM-900001" not in page.text
    async with sign_in(demo, "hr@pulse.local", DEMO_PASSWORD) as hr:
        assert (await hr.get("/dashboard/at-risk")).status_code == 403


async def test_with_nobody_at_risk_the_page_says_so(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as admin:
        page = await admin.get("/dashboard/at-risk")
        assert page.status_code == 200 and "No customer is at risk right now." in page.text
        page = await admin.get("/dashboard/at-risk?team=support-warsaw")
        assert "No customer of this team is at risk right now." in page.text
    assert (await api(mail_app)).json() == {"team": None, "threshold": 40, "listed": 0, "customers": []}


async def test_on_the_demo_the_flagged_go_bad_more_often_than_everyone(database_url, catalog):
    app = create_app(make_settings(database_url), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=300, months=12, seed=7, timezone="UTC")  # enough soured customers to count
        result = await risk_backtest.run(app.state.catalog, app.state.risk, 180, 90)
    print("\n".join(result.lines()))
    assert result.flagged > 0 and result.customers > result.flagged
    assert result.flagged_rate > 1.5 * result.base_rate
    assert result.lines()[-1].startswith("Lift: ")


def test_the_backtest_command_prints_the_figures(database_url, catalog, monkeypatch, capsys):
    async def load() -> None:
        async with db.connected(database_url):
            await record_survey_versions(catalog)
            await load_demo(catalog, contacts=CONTACTS, months=12, seed=3, timezone="UTC")

    asyncio.run(load())
    monkeypatch.setenv("PULSE_DATABASE_URL", database_url)
    monkeypatch.setenv("PULSE_SECRET_KEY", "test-secret-key-0123456789abcdef")
    assert cli.main(["insights", "backtest", "--days", "180", "--churn-days", "90"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("customers were flagged at risk.") and "(180 days ago)" in out[0]
    assert "no touchpoint for 90 days" in out[1] and out[3].startswith("Lift: ")
    assert cli.main(["insights", "backtest", "--days", "30", "--churn-days", "60"]) == 2
    assert "--churn-days (60) must not be more than --days (30)" in capsys.readouterr().err
