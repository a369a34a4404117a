"""Empty states tell the truth: a team is shown a survey it has answers to, told which ones it has when it picks
one it has none for, and only an admin of a Pulse with no customer answers at all is sent to the API."""

from __future__ import annotations

import html
import re

import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.demo import DEMO_PASSWORD, load_demo
from pulse.models import Response
from tests.conftest import make_settings, sign_in

API_HINT = "POST /api/v1/touchpoints"


@pytest.fixture
async def demo(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_QUIET_HOURS="off"), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=80, months=6, seed=3, timezone="UTC")
        yield app


def selected(page: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return re.search(r'<option value="([^"]*)" selected>', select).group(1)


async def test_a_support_manager_starts_on_a_survey_their_team_has_answers_to(demo):
    csat = await Response.filter(survey_id="csat", team__slug="support-warsaw", confirmed=True).count()
    assert csat > 0, "the demo's support teams answer CSAT"
    async with sign_in(demo, "support-warsaw@pulse.local", DEMO_PASSWORD) as lead:
        for path in ("/dashboard/breakdown?lang=en", "/dashboard/after-sale"):
            page = await lead.get(path)
            assert page.status_code == 200, path
            assert selected(page.text, "survey") in ("csat", "ces"), path
            assert API_HINT not in page.text, path
            assert "has no answers" not in page.text, path


async def test_a_survey_the_team_never_sends_says_which_ones_it_has(demo):
    async with sign_in(demo, "support-warsaw@pulse.local", DEMO_PASSWORD) as lead:
        for path in ("/dashboard/breakdown", "/dashboard/after-sale"):
            page = await lead.get(f"{path}?survey=nps&window=7d&lang=en")
            assert page.status_code == 200
            text = html.unescape(page.text)
            assert "This team has no answers to Net Promoter Score (NPS) in this period." in text, path
            assert API_HINT not in text
            link = html.unescape(re.search(r'<a href="([^"]*survey=csat[^"]*)"', page.text).group(1))
            assert link.startswith(f"{path}?") and "window=7d" in link, link


async def test_the_overview_card_of_a_survey_without_answers_says_so(demo):
    async with sign_in(demo, "support-warsaw@pulse.local", DEMO_PASSWORD) as lead:
        page = await lead.get("/dashboard?lang=en")
    card = re.search(r'<section class="card chart-card" aria-labelledby="card-nps">(.*?)</section>', page.text, re.S)
    assert "This team has no answers to this survey in this period." in html.unescape(card.group(1))
    assert API_HINT not in page.text


async def test_only_an_admin_of_an_empty_pulse_is_sent_to_the_api(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        for path in ("/dashboard", "/dashboard/breakdown", "/dashboard/after-sale"):
            assert API_HINT in (await alice.get(path)).text, path
    async with sign_in(mail_app, "ana@example.com") as ana:
        for path in ("/dashboard", "/dashboard/breakdown", "/dashboard/after-sale"):
            page = await ana.get(path)
            assert API_HINT not in page.text, path
            assert "No customer has answered a survey yet." in page.text, path
