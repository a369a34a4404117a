"""Charts in a real browser, in both colour schemes: readable axis text and a visible 95% band in light and dark,
re-themed when the preference changes; plotly.js fetched only by pages that draw a chart, compressed and immutable."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.demo import DEMO_PASSWORD, load_demo
from tests.browser import Watched, chromium, serve
from tests.conftest import make_settings

pytestmark = pytest.mark.browser

# The first tick label of the first trend chart, and its 95% band as Plotly drew it.
LOOK = """() => {
  const chart = document.querySelector('.chart.js-plotly-plot');
  const tick = chart.querySelector('.ytick text');
  const band = chart.querySelector('.scatterlayer .js-fill');
  const style = band && getComputedStyle(band);
  return {tick: getComputedStyle(tick).fill, band: band && [style.fill, style.fillOpacity],
          bandTrace: chart.data.some(t => t.fill === 'toself' && t.x.length > 2)};
}"""


def channels(colour: str) -> list[float]:
    """[r, g, b, alpha] of a CSS 'rgb(...)' or 'rgba(...)' colour."""
    values = [float(v) for v in colour[colour.index("(") + 1 : -1].split(",")]
    return values + [1.0] * (4 - len(values))


def luminance(colour: str) -> float:
    r, g, b, _ = channels(colour)
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def band_opacity(band: list[str]) -> float:
    return channels(band[0])[3] * float(band[1])


@pytest.fixture
async def site(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_QUIET_HOURS="off"), catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=80, months=4, seed=5, timezone="UTC")
        async with serve(app) as base:
            yield base


async def signed_in(browser, base: str, scheme: str) -> Watched:
    context = await browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
    page = Watched(await context.new_page())
    await page.page.goto(f"{base}/login")
    await page.page.fill("#email", "admin@pulse.local")
    await page.page.fill("#password", DEMO_PASSWORD)
    await page.page.click("button[type=submit]")
    await page.page.wait_for_url(f"{base}/dashboard")
    return page


async def test_charts_read_well_in_light_and_dark_and_plotly_loads_only_to_draw(site):
    base = site
    async with chromium() as browser:
        for scheme in ("light", "dark"):
            page = await signed_in(browser, base, scheme)
            await page.page.wait_for_function("document.querySelectorAll('.chart.js-plotly-plot .ytick').length > 0")
            look = await page.page.evaluate(LOOK)
            assert look["bandTrace"], "the single-series trend keeps its band"
            assert look["band"], "Plotly drew the band"
            await page.screenshot(f"charts-{scheme}")
            assert page.errors == [], page.errors
            if scheme == "light":
                assert luminance(look["tick"]) < 0.45, look  # dark text on a light page
                assert band_opacity(look["band"]) >= 0.12, look
            else:
                assert luminance(look["tick"]) > 0.6, look  # light text on a dark page
                assert band_opacity(look["band"]) >= 0.25, look
                await page.page.emulate_media(color_scheme="light")  # the reader switches back
                await page.page.wait_for_function(
                    "(before) => getComputedStyle(document.querySelector('.chart .ytick text')).fill !== before",
                    arg=look["tick"],
                )
                assert luminance((await page.page.evaluate(LOOK))["tick"]) < 0.45
            await page.page.context.close()

        # plotly.js: not fetched by a page without charts; fetched once, compressed and immutable, by Overview
        page = await signed_in(browser, base, "light")
        fetched: list = []
        page.page.on("response", lambda r: fetched.append(r) if "plotly" in r.url else None)
        await page.page.goto(f"{base}/cases")
        await page.page.goto(f"{base}/admin/users")
        await page.page.wait_for_load_state("networkidle")
        assert fetched == []
        await page.page.goto(f"{base}/dashboard")
        await page.page.wait_for_function("document.querySelectorAll('.chart.js-plotly-plot').length > 0")
        assert len(fetched) <= 1  # the sign-in's Overview may have put it in the cache already
        script = page.page.locator("script[data-plotly]")
        assert await script.get_attribute("defer") is not None
        url = await script.get_attribute("data-plotly")
        reply = await page.page.request.get(base + url, headers={"accept-encoding": "gzip, br"})
        assert reply.headers["content-encoding"] in ("br", "gzip")
        assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert page.errors == [], page.errors
