"""Working the cases and the comments in chromium: filter the inbox on a laptop, open a case on a 390 px phone,
reassign it and see 'Saved.'; filter the responses explorer and download exactly its rows as CSV, and read it on
the phone."""

from __future__ import annotations

import csv
import io
import re

import pytest
from asgi_lifespan import LifespanManager

from pulse import i18n
from pulse.app import create_app
from pulse.demo import load_demo
from pulse.models import FollowUpCase, User
from tests.browser import Watched, chromium, serve
from tests.conftest import make_settings

pytestmark = pytest.mark.browser
PASSWORD = "pulse-demo-2026"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def site(database_url, catalog):
    settings = make_settings(database_url, PULSE_QUIET_HOURS="off")
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=60, months=3, seed=5, timezone="UTC")
        case = await FollowUpCase.filter(team__parent_id__not_isnull=True).order_by("-id").first()
        assert case is not None, "the demo has unhappy answers with cases"
        team = await case.team
        manager = await User.get(email=f"{team.slug}@pulse.local")
        await FollowUpCase.filter(id=case.id).update(status="open", owner_id=manager.id)
        async with serve(app) as base:
            yield base, case.id, team.slug


async def sign_in(page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/(dashboard|engagement).*"))


async def test_a_case_is_worked_on_a_phone_and_the_answers_downloaded_on_a_laptop(site, tmp_path):
    base, case_id, team = site
    async with chromium() as browser:
        # a laptop: filter the inbox in the form, and the filters land in the URL
        laptop = Watched(await (await browser.new_context(viewport=LAPTOP, accept_downloads=True)).new_page())
        await sign_in(laptop.page, base, "admin@pulse.local")
        await laptop.page.goto(f"{base}/cases")
        await laptop.page.select_option("select[name=status]", "any")
        await laptop.page.select_option("select[name=team]", team)
        await laptop.page.click("form.filters button[type=submit]")
        await laptop.page.wait_for_url(re.compile(rf".*/cases\?status=any&team={team}.*"))
        assert await laptop.page.locator(f"table.cases a[href='/cases/{case_id}']").count() == 1
        await laptop.screenshot("work-cases-filtered-1280px")

        # the explorer: answers with a comment, and the CSV of exactly those
        await laptop.page.goto(f"{base}/responses")
        await laptop.page.select_option("select[name=comment]", "1")
        await laptop.page.click("form.filters button[type=submit]")
        await laptop.page.wait_for_url(re.compile(r".*/responses\?.*comment=1.*"))
        count = await laptop.page.locator("#answer-count").inner_text()
        total = int(re.sub(r"\D", "", count))
        async with laptop.page.expect_download() as waiting:
            await laptop.page.click("#download-csv")
        download = await waiting.value
        target = tmp_path / download.suggested_filename
        await download.save_as(target)
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert total > 0 and len(rows) == total
        assert all(row["comment"] for row in rows)
        await laptop.screenshot("work-responses-1280px")
        assert laptop.errors == [], laptop.errors

        # a phone: the team's manager opens the case from the inbox, gives it to the admin, and is told it is saved
        phone = Watched(await (await browser.new_context(viewport=PHONE)).new_page())
        await sign_in(phone.page, base, f"{team}@pulse.local")
        await phone.page.goto(f"{base}/cases?owner=me")
        link = phone.page.locator(f"a[href='/cases/{case_id}']")
        await link.scroll_into_view_if_needed()
        assert await link.is_visible()
        box = await link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        await phone.screenshot("work-cases-390px")
        await link.click()
        await phone.page.wait_for_url(f"{base}/cases/{case_id}")
        await phone.page.select_option("#owner", "admin@pulse.local")
        await phone.page.fill("#note", "Over to you: needs a refund")
        await phone.page.click("form.stack button[type=submit]")
        await phone.page.wait_for_url(f"{base}/cases/{case_id}?saved=1")
        saved = phone.page.get_by_role("status")
        # in the manager's own language (the demo gives each team's manager the team's): which team's case is the
        # newest depends on the demo data
        language = await phone.page.evaluate("document.documentElement.lang")
        assert await saved.inner_text() == i18n.translate(language, "Saved.")
        assert await saved.is_visible()
        await phone.screenshot("work-case-saved-390px")
        overflow = await phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the case page is {overflow}px wider than a 390px phone"
        # and the explorer on the phone: every column of a row stays in reach, as a card
        await phone.page.goto(f"{base}/responses?comment=1")
        first = phone.page.locator("table.responses tbody tr").first
        for label in ("Date", "Survey", "Score", "Comment", "Team", "Touchpoint", "Language"):
            cell = first.locator(f"td[data-label='{i18n.translate(language, label)}']")
            assert await cell.is_visible(), label
            box = await cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], label
        await phone.screenshot("work-responses-390px")
        assert phone.errors == [], phone.errors
    case = await FollowUpCase.get(id=case_id).select_related("owner")
    assert case.owner.email == "admin@pulse.local"
