"""The stale translations on Admin → Surveys, on a phone: the page never scrolls sideways and every column of
both tables stays within reach (the checks of test_browser_phones, on a survey folder with stale translations)."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager

from tests.browser import Watched, chromium, serve
from tests.conftest import PASSWORD, make_org, make_settings
from tests.test_browser_phones import PHONE, PROBLEMS, SCROLLERS
from tests.test_stale_translations import change_english, copy_surveys

pytestmark = pytest.mark.browser


async def test_the_stale_translations_fit_a_phone(database_url, tmp_path):
    from pulse.app import create_app

    folder = copy_surveys(tmp_path)
    change_english(folder)
    app = create_app(make_settings(database_url, PULSE_SURVEYS_DIR=str(folder)))
    async with LifespanManager(app):
        await make_org()
        async with serve(app) as base, chromium() as browser:
            context = await browser.new_context()
            page = Watched(await context.new_page())
            await page.page.set_viewport_size({"width": PHONE, "height": 800})
            await page.page.goto(f"{base}/login")
            await page.page.fill("#email", "alice@example.com")
            await page.page.fill("#password", PASSWORD)
            await page.page.click("button[type=submit]")
            await page.page.wait_for_url(f"{base}/dashboard")
            reply = await page.page.goto(f"{base}/admin/surveys")
            assert reply.status == 200
            await page.screenshot(f"phone-admin-surveys-stale-{PHONE}")
            assert await page.page.locator("#stale-translations table tbody tr").count() == 3
            assert await page.page.evaluate(PROBLEMS) == []
            for box in await page.page.evaluate(SCROLLERS):
                assert box["cue"], f"{box['what']} scrolls sideways with no shadow at its edge"
                assert box["focusable"], f"{box['what']} scrolls but is not a named region a keyboard can reach"
            assert page.errors == []
