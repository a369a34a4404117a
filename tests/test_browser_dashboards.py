"""Dashboards in a real browser: sign-in, every chart drawn with data, no console errors or CSP violations,
filters that change the chart, team scoping, escaped comments, the case inbox flow, and 360 px screens."""

from __future__ import annotations

import re

import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.demo import load_demo, load_engagement
from pulse.models import CaseNote, FollowUpCase, Response
from tests.browser import Watched, chromium, serve
from tests.conftest import PASSWORD, make_settings
from tests.test_charts import drawn_intervals

pytestmark = pytest.mark.browser
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def site(database_url, catalog):
    settings = make_settings(database_url, PULSE_QUIET_HOURS="off")
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=150, months=8, seed=3, timezone="UTC")
        await load_engagement(catalog, months=8, seed=3)
        case = (
            await FollowUpCase.filter(team__parent_id__not_isnull=True).order_by("-id").first().select_related("team")
        )
        assert case is not None, "the demo has unhappy answers with cases"
        await FollowUpCase.filter(id=case.id).update(status="open")
        await Response.filter(id=case.response_id).update(comment=XSS)
        async with serve(app) as base:
            yield base, case.id, case.team.slug


async def sign_in(page, base, email, password=PASSWORD):
    await page.goto(f"{base}/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def plots_with_data(page) -> int:
    return await page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => p.data && p.data.length).length"
    )


async def test_dashboards_sign_in_and_draw(site):
    base, case_id, _ = site
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await sign_in(page.page, base, "admin@pulse.local", "wrong password")
        assert "/login" in page.page.url
        assert await page.page.locator(".error").count() == 1
        await sign_in(page.page, base, "admin@pulse.local", "pulse-demo-2026")
        await page.page.wait_for_url(f"{base}/dashboard")
        for path, name in (("/dashboard", "overview"), ("/dashboard/breakdown?survey=csat&by=team", "breakdown"),
                           ("/dashboard/loyalty", "loyalty"), ("/dashboard/after-sale", "after-sale")):  # fmt: skip
            await page.page.goto(base + path)
            await page.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
            assert await plots_with_data(page.page) >= 1, path
            await page.screenshot(f"dashboard-{name}")
        # the filter changes the chart
        await page.page.goto(f"{base}/dashboard/breakdown?survey=nps&by=touchpoint")
        before = await page.page.locator("#breakdown tbody tr td:first-child").all_inner_texts()
        await page.page.select_option("select[name=by]", "lifecycle")
        await page.page.click("form.filters button[type=submit]")
        await page.page.wait_for_url("**by=lifecycle**")
        after = await page.page.locator("#breakdown tbody tr td:first-child").all_inner_texts()
        assert after and all(re.fullmatch(r"\d+–\d+ days|over \d+ days", text) for text in after), after
        assert before != after
        # a comment with markup is text, in the case page and the contact's timeline
        await page.page.goto(f"{base}/cases/{case_id}")
        assert XSS in await page.page.locator("blockquote.comment").first.inner_text()
        assert await page.page.evaluate("document.querySelectorAll('main img').length") == 0
        await page.screenshot("case")
        # no script errors, no CSP violations (the failed sign-in's 400 is the only resource error)
        assert [e for e in page.errors if "status of 400" not in e] == [], page.errors


async def test_the_case_inbox_flow(site):
    base, case_id, team = site
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await sign_in(page.page, base, f"{team}@pulse.local", "pulse-demo-2026")
        await page.page.goto(f"{base}/cases?show=all")
        await page.page.click(f"a[href='/cases/{case_id}']")
        await page.page.fill("#note", "Called the customer, refund agreed")
        await page.page.select_option("#status", "in_progress")
        await page.page.click("form.stack button[type=submit]")
        await page.page.wait_for_url(f"{base}/cases/{case_id}?saved=1")
        assert "Called the customer, refund agreed" in await page.page.locator("ol.notes").inner_text()
        assert page.errors == []
    case = await FollowUpCase.get(id=case_id)
    assert case.status == "in_progress"
    assert await CaseNote.filter(case_id=case_id, body="Called the customer, refund agreed").exists()


async def test_a_manager_is_kept_to_their_teams_and_pages_fit_360_px(site):
    base, _, team = site
    other = "support-warsaw" if team != "support-warsaw" else "support-milan"
    async with chromium() as browser:
        page = Watched(await browser.new_page(viewport={"width": 360, "height": 740}))
        await sign_in(page.page, base, f"{team}@pulse.local", "pulse-demo-2026")
        reply = await page.page.goto(f"{base}/dashboard?team={other}")
        assert reply.status == 403
        await page.page.goto(f"{base}/dashboard")
        await page.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        overflow = await page.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page is {overflow}px wider than a 360px screen"
        await page.screenshot("dashboard-360px")
        assert [e for e in page.errors if "403" not in e] == []


async def test_hr_sees_engagement_with_the_ex_cx_chart_and_small_teams_hidden(site):
    base, _, _ = site
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await sign_in(page.page, base, "hr@pulse.local", "pulse-demo-2026")
        await page.page.wait_for_url(f"{base}/engagement")
        await page.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2")
        assert await plots_with_data(page.page) >= 2  # eNPS per round, and eNPS against NPS by team
        row = page.page.locator("tr", has_text="Account Management").first
        assert "not enough answers" in await row.inner_text()  # three people: never shown
        await page.screenshot("engagement")
        assert page.errors == [], page.errors
        reply = await page.page.goto(f"{base}/dashboard")
        assert reply.status == 403  # HR sees engagement, not customer dashboards


async def test_small_samples_are_grey_and_every_interval_is_drawn(site):
    base, _, _ = site
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await sign_in(page.page, base, "admin@pulse.local", "pulse-demo-2026")
        await page.page.wait_for_url(f"{base}/dashboard")
        await page.page.wait_for_function("document.querySelectorAll('.chart.js-plotly-plot').length >= 3")
        charts = await page.page.evaluate(
            "Array.from(document.querySelectorAll('.chart.js-plotly-plot')).map(p => p.data)"
        )
        for data in charts:  # every point with answers shows its interval, in the band or as an error bar
            line = data[-1]
            answered = {x for x, y in zip(line["x"], line["y"], strict=True) if y is not None}
            drawn = drawn_intervals({"data": data})
            assert answered and answered <= set(drawn), answered - set(drawn)
            assert all(low < high for low, high in drawn.values())
        assert await page.page.locator(".chart .js-fill").count() >= 3  # Plotly drew the bands
        assert await page.page.get_by_text("too few answers to tell").count() >= 1  # the demo's 28 days are small
        await page.page.goto(f"{base}/dashboard/breakdown?survey=csat&by=team")
        await page.page.wait_for_function("document.querySelectorAll('.spark.js-plotly-plot').length > 1")
        ranges = await page.page.evaluate(
            "Array.from(document.querySelectorAll('.spark.js-plotly-plot')).map(p => p.layout.yaxis.range.join())"
        )
        assert len(set(ranges)) == 1, ranges  # one scale for the whole table
        few = page.page.locator("#breakdown td.few")
        assert await few.count() >= 1
        assert "Few answers" in await few.first.get_attribute("title")
        colours = await page.page.evaluate(
            "[getComputedStyle(document.querySelector('#breakdown td.few')).color,"
            " getComputedStyle(document.querySelector('#breakdown tbody td')).color]"
        )
        assert colours[0] != colours[1]  # greyed beside the group's name
        await page.screenshot("breakdown-small-samples")
        assert page.errors == [], page.errors
