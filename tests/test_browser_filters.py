"""Filters in a real browser, at 1280 and 390 px: chosen on Overview, kept by the navigation and the language switch,
the language kept on the next pages, the URL shared into a fresh session, and a bad range told beside its field."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.demo import DEMO_PASSWORD, load_demo
from tests.browser import Watched, chromium, serve
from tests.conftest import make_settings

pytestmark = pytest.mark.browser
SINCE, UNTIL = (date.today() - timedelta(days=90)).isoformat(), (date.today() - timedelta(days=1)).isoformat()
CHOSEN = {"team": ["support-warsaw"], "window": ["7d"], "interval": ["day"], "from": [SINCE], "to": [UNTIL]}


@pytest.fixture
async def site(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_QUIET_HOURS="off"), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=80, months=6, seed=3, timezone="UTC")
        async with serve(app) as base:
            yield base


def query(url: str) -> dict:
    return parse_qs(urlsplit(url).query)


async def form_values(page) -> dict:
    return {
        name: [await page.locator(f"form.filters [name={name}]").input_value()]
        for name in ("team", "window", "interval", "from", "to")
    }


async def sign_in_at(page, url: str) -> None:
    """Open `url` signed out: the sign-in comes first, then the page itself."""
    await page.goto(url)
    await page.fill("#email", "admin@pulse.local")
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(url)


async def test_filters_and_language_follow_the_manager_and_the_url(site):
    base = site
    async with chromium() as browser:
        for width, height in ((1280, 900), (390, 844)):
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = Watched(await context.new_page())
            await sign_in_at(page.page, f"{base}/dashboard?lang=en")
            await page.page.select_option("form.filters select[name=team]", "support-warsaw")
            await page.page.select_option("form.filters select[name=window]", "7d")
            await page.page.select_option("form.filters select[name=interval]", "day")
            await page.page.fill("form.filters input[name=from]", SINCE)
            await page.page.fill("form.filters input[name=to]", UNTIL)
            await page.page.click("form.filters button[type=submit]")
            await page.page.wait_for_url("**team=support-warsaw**")
            assert query(page.page.url) == CHOSEN

            await page.page.click("nav.main-nav >> text=Breakdown")
            await page.page.wait_for_url("**/dashboard/breakdown?**")
            assert query(page.page.url) == CHOSEN
            assert await form_values(page.page) == CHOSEN

            await page.page.click("nav.languages a[hreflang='it']")
            await page.page.wait_for_function("document.documentElement.lang === 'it'")
            assert {k: v for k, v in query(page.page.url).items() if k != "lang"} == CHOSEN
            assert await form_values(page.page) == CHOSEN
            await page.page.click("nav.main-nav a[href^='/dashboard/after-sale']")
            await page.page.wait_for_url("**/dashboard/after-sale?**")
            assert await page.page.get_attribute("html", "lang") == "it"  # kept after a new navigation
            assert query(page.page.url) == CHOSEN
            await page.screenshot(f"filters-kept-{width}px")

            shared = page.page.url
            fresh = await browser.new_context(viewport={"width": width, "height": height})
            other = Watched(await fresh.new_page())
            await sign_in_at(other.page, shared)
            assert await other.page.get_attribute("html", "lang") == "it"
            assert await form_values(other.page) == CHOSEN  # window and interval ride along hidden
            assert await other.page.locator("h1").inner_text() == await page.page.locator("h1").inner_text()
            await fresh.close()

            await page.page.goto(f"{base}/dashboard?lang=en")
            await page.page.fill("form.filters input[name=from]", UNTIL)
            await page.page.fill("form.filters input[name=to]", SINCE)
            await page.page.click("form.filters button[type=submit]")
            await page.page.wait_for_url(f"**to={SINCE}**")
            message = page.page.locator("#error-to")
            assert await message.is_visible()
            assert await message.inner_text() == "'Until' must be on or after 'Since'."
            assert await page.page.get_attribute("form.filters input[name=to]", "aria-invalid") == "true"
            assert await page.page.locator("nav.main-nav a", has_text="Breakdown").is_visible() or width < 600
            assert await page.page.locator("nav.main-nav").count() == 1
            await page.screenshot(f"filters-bad-range-{width}px")
            assert [e for e in page.errors + other.errors if "400" not in e] == []
            await context.close()
