"""First contact and the admin's user editing in chromium, at 1280 and 390 px: `/` shows the sign-in, an admin
changes a user's role and teams, the last admin is kept, and admin tables fit a phone."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.models import User, UserTeam
from tests.browser import Watched, chromium, serve
from tests.conftest import PASSWORD, make_org, make_settings

pytestmark = pytest.mark.browser


@pytest.fixture
async def site(database_url, catalog):
    app = create_app(make_settings(database_url), catalog=catalog)
    async with LifespanManager(app):
        org = await make_org()
        async with serve(app) as base:
            yield base, org


async def test_a_visitor_signs_in_from_the_front_page_and_an_admin_edits_a_user(site):
    base, org = site
    async with chromium() as browser:
        for width in (1280, 390):
            context = await browser.new_context(viewport={"width": width, "height": 900})
            page = Watched(await context.new_page())
            await page.page.goto(base + "/")
            assert page.page.url == f"{base}/login"
            await page.page.fill("#email", "alice@example.com")
            await page.page.fill("#password", PASSWORD)
            await page.page.click("button[type=submit]")
            await page.page.wait_for_url(f"{base}/dashboard")
            await page.page.goto(f"{base}/admin/users")
            overflow = await page.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the users page is {overflow}px wider than the screen"
            await page.page.click(f"a[href='/admin/users/{org.analyst.id}'] >> nth=0")
            await page.page.select_option("select[name=role]", "manager")
            team = "support-milan" if width == 1280 else "support-warsaw"
            await page.page.check(f"input[name=team][value={team}]")
            await page.page.click("form.stack button[type=submit]")
            await page.page.wait_for_url(f"{base}/admin/users?saved=1")
            assert await page.page.get_by_role("status").inner_text() == "Saved."
            await page.screenshot(f"admin-users-{width}px")
            # the only admin cannot demote herself; the page says why and keeps her choice
            await page.page.goto(f"{base}/admin/users/{org.admin.id}")
            await page.page.select_option("select[name=role]", "analyst")
            await page.page.click("form.stack button[type=submit]")
            assert "Pulse needs at least one active admin" in await page.page.locator("p.error").inner_text()
            assert await page.page.locator("select[name=role]").input_value() == "analyst"
            await page.screenshot(f"admin-user-refused-{width}px")
            assert [e for e in page.errors if "status of 400" not in e] == [], page.errors
            await context.close()
    assert (await User.get(id=org.analyst.id)).role == "manager"
    assert (await User.get(id=org.admin.id)).role == "admin"
    teams = {link.team.slug for link in await UserTeam.filter(user_id=org.analyst.id).select_related("team")}
    assert teams == {"support-milan", "support-warsaw"}
