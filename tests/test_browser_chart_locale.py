"""Charts in Polish in a real browser: Plotly names the months on its own date axis in Polish, writes hover dates
the Polish way and decimals with a comma (Plotly formats these itself, from the locale pulse.charts gives it)."""

from __future__ import annotations

import re

import pytest
from asgi_lifespan import LifespanManager
from babel.dates import get_month_names

from pulse.app import create_app
from pulse.demo import DEMO_PASSWORD, load_demo, load_engagement
from tests.browser import Watched, chromium, serve
from tests.conftest import make_settings

pytestmark = pytest.mark.browser
ENGLISH_MONTHS = set(get_month_names("abbreviated", locale="en").values()) - set(
    get_month_names("abbreviated", context="stand-alone", locale="pl").values()
)
POLISH_MONTHS = set(get_month_names("abbreviated", context="stand-alone", locale="pl").values())

# Text of a chart's x ticks, and of the hover label Plotly draws when the mouse is at (x, y).
TICKS = "(chart) => Array.from(chart.querySelectorAll('.xtick text')).map(t => t.textContent)"
HOVER = "() => Array.from(document.querySelectorAll('.hoverlayer text')).map(t => t.textContent).join(' | ')"


@pytest.fixture
async def site(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_QUIET_HOURS="off"), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=60, months=4, seed=5, timezone="UTC")
        await load_engagement(catalog, months=4, seed=3)
        async with serve(app) as base:
            yield base


async def hover_over(page, chart, selector: str) -> str:
    """Move the mouse onto the first of the chart's `selector` and return what the hover label says."""
    await chart.scroll_into_view_if_needed()
    box = await chart.locator(selector).first.bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.locator(".hoverlayer text").first.wait_for()  # (wait_for_function would need 'unsafe-eval')
    return await page.evaluate(HOVER)


async def test_a_chart_in_polish_has_polish_months_hover_dates_and_decimal_commas(site):
    base = site
    async with chromium() as browser:
        page = Watched(await browser.new_page(viewport={"width": 1280, "height": 900}))
        await page.page.goto(f"{base}/login?lang=pl")
        await page.page.fill("#email", "admin@pulse.local")
        await page.page.fill("#password", DEMO_PASSWORD)
        await page.page.click("button[type=submit]")
        await page.page.wait_for_url(f"{base}/dashboard*")
        await page.page.goto(f"{base}/engagement?lang=pl")
        charts = page.page.locator(".chart.js-plotly-plot")
        trend, scatter = charts.nth(0), charts.nth(1)
        await trend.locator(".xtick text").nth(1).wait_for()

        # the eNPS trend: date ticks Plotly chose and named itself
        ticks = await trend.evaluate(TICKS)
        words = {word for tick in ticks for word in re.findall(r"[^\W\d_]+\.?", tick)}
        assert words & POLISH_MONTHS, ticks
        assert not words & ENGLISH_MONTHS, ticks

        # its hover: the round's date in Polish ("5 lis 2026"), the value with a decimal comma
        said = await hover_over(page.page, trend, ".scatterlayer .trace:last-child .point")
        assert re.search(rf"\b\d{{1,2}} ({'|'.join(POLISH_MONTHS)}) \d{{4}}\b", said), said
        assert not set(re.findall(r"[A-Z][a-z]{2}", said)) & ENGLISH_MONTHS, said
        await page.screenshot("chart-locale-pl-trend")

        # EX beside CX: Plotly formats %{x:.1f} with the layout's separators
        await page.page.mouse.move(5, 5)
        await page.page.locator(".hoverlayer text").first.wait_for(state="detached")
        said = await hover_over(page.page, scatter, ".scatterlayer .point")
        assert re.search(r"eNPS -?\d+,\d\b", said), said
        assert not re.search(r"eNPS -?\d+\.\d\b", said), said
        await page.screenshot("chart-locale-pl-scatter")
        assert page.errors == [], page.errors
