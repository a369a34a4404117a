"""Admin: a user's role and teams can be changed after creation (never leaving Pulse without an admin, never a
manager without a team), "Add a user" preselects no role, empty lists say what to do, and every table cell names
its column for phone layouts."""

from __future__ import annotations

import re

from pulse.models import ApiKey, Team, User, UserTeam
from tests.conftest import make_key, sign_in

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token(page: str) -> str:
    return TOKEN.search(page).group(1)


async def slugs(user: User) -> set[str]:
    return {link.team.slug for link in await UserTeam.filter(user=user).select_related("team")}


async def test_an_admin_changes_a_users_role_and_teams(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        listing = await alice.get("/admin/users")
        assert f'href="/admin/users/{org.analyst.id}"' in listing.text
        page = await alice.get(f"/admin/users/{org.analyst.id}")
        assert page.status_code == 200
        assert re.search(r'<option value="analyst" selected>', page.text)
        assert 'type="checkbox" name="team" value="support-warsaw"' in page.text
        saved = await alice.post(
            f"/admin/users/{org.analyst.id}",
            data={
                "csrf_token": token(page.text),
                "action": "save",
                "role": "manager",
                "team": ["support-warsaw", "support-milan"],
            },
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/admin/users?saved=1"
        assert "Saved." in (await alice.get("/admin/users?saved=1")).text
        assert (await User.get(id=org.analyst.id)).role == "manager"
        assert await slugs(org.analyst) == {"support-warsaw", "support-milan"}
        again = await alice.get(f"/admin/users/{org.analyst.id}")
        assert 'value="support-milan" checked' in again.text and 'value="customer-care" checked' not in again.text
        # a manager moved to another team sees that team only, at once
        moved = await alice.post(
            f"/admin/users/{org.analyst.id}",
            data={"csrf_token": token(page.text), "action": "save", "role": "manager", "team": "support-milan"},
        )
        assert moved.status_code == 303
        assert await slugs(org.analyst) == {"support-milan"}
        owner = await alice.get(f"/admin/users/{org.warsaw_lead.id}")
        assert "They also see the teams they own: Support Warsaw." in owner.text
    async with sign_in(mail_app, "ana@example.com") as ana:
        assert (await ana.get("/dashboard?team=support-warsaw")).status_code == 403
        assert (await ana.get("/dashboard?team=support-milan")).status_code == 200


async def test_the_last_admin_cannot_be_demoted_and_a_manager_needs_a_team(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        form = token((await alice.get(f"/admin/users/{org.admin.id}")).text)
        demote = await alice.post(
            f"/admin/users/{org.admin.id}", data={"csrf_token": form, "action": "save", "role": "analyst"}
        )
        assert demote.status_code == 400
        assert "Pulse needs at least one active admin: make another user an admin first." in demote.text
        assert (await User.get(id=org.admin.id)).role == "admin"
        lonely = await alice.post(
            f"/admin/users/{org.hr.id}", data={"csrf_token": form, "action": "save", "role": "manager"}
        )
        assert lonely.status_code == 400
        assert "A manager needs at least one team: without one they see nothing." in lonely.text
        assert (await User.get(id=org.hr.id)).role == "hr"
        made = await alice.post(
            "/admin/users",
            data={"csrf_token": form, "email": "nobody@example.com", "role": "manager", "password": "long enough pass"},
        )
        assert made.status_code == 400 and "without one they see nothing" in made.text
        assert not await User.exists(email="nobody@example.com")
        # with a second admin, the first may step down
        await alice.post(f"/admin/users/{org.analyst.id}", data={"csrf_token": form, "action": "save", "role": "admin"})
        down = await alice.post(
            f"/admin/users/{org.admin.id}", data={"csrf_token": form, "action": "save", "role": "analyst"}
        )
        assert down.status_code == 303 and (await User.get(id=org.admin.id)).role == "analyst"


async def test_bad_edits_are_4xx_with_a_sentence(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        form = token((await alice.get("/admin/users")).text)
        url = f"/admin/users/{org.analyst.id}"
        role = await alice.post(url, data={"csrf_token": form, "action": "save", "role": "emperor"})
        assert role.status_code == 400 and "The role must be one of admin, hr, manager, analyst" in role.text
        team = await alice.post(url, data={"csrf_token": form, "action": "save", "role": "manager", "team": "mars"})
        assert team.status_code == 400 and "No team with the slug mars." in team.text
        forged = await alice.post(url, data={"action": "save", "role": "hr"})  # no CSRF token
        assert forged.status_code == 400
        assert (await alice.get("/admin/users/999999")).status_code == 404
        assert (await User.get(id=org.analyst.id)).role == "analyst"
    async with sign_in(mail_app, "hana@example.com") as hana:
        assert (await hana.get(url)).status_code == 403


async def test_add_a_user_preselects_no_role_and_takes_several_teams(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/admin/users")
        select = re.search(r'<select name="role" required>(.*?)</select>', page.text, re.S)
        assert select, "the role is required"
        assert " selected" not in select.group(1).replace('value="" selected disabled', "")
        assert re.match(r'\s*<option value="" selected disabled>', select.group(1))
        made = await alice.post(
            "/admin/users",
            data={
                "csrf_token": token(page.text),
                "email": "two@example.com",
                "role": "manager",
                "password": "long enough password",
                "team": ["support-warsaw", "support-milan"],
            },
        )
        assert made.status_code == 303
        assert await slugs(await User.get(email="two@example.com")) == {"support-warsaw", "support-milan"}


async def test_empty_lists_say_what_to_do(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        keys = await alice.get("/admin/api-keys")
        assert "No API keys yet — create one to let your CRM send touchpoints." in keys.text
        assert "<table" not in keys.text
        await UserTeam.all().delete()
        await Team.filter(parent_id__not_isnull=True).delete()
        await Team.all().delete()
        teams = await alice.get("/admin/teams")
        assert "No teams yet — add the first one below; managers see the teams they belong to." in teams.text
        delivery = await alice.get("/admin/delivery")
        assert "No e-mails yet." in delivery.text and "No webhook deliveries yet." in delivery.text


async def test_every_admin_table_cell_names_its_column(mail_app, org):
    await make_key("touchpoints:write")
    assert await ApiKey.all().count() == 1
    async with sign_in(mail_app, "alice@example.com") as alice:
        for path in ("/admin/users", "/admin/teams", "/admin/api-keys", "/admin/surveys"):
            page = (await alice.get(path)).text
            assert '<div class="table-wrap">' in page, path
            cells = re.findall(r"<td\b[^>]*>", page)
            assert cells, path
            assert [c for c in cells if "data-label=" not in c] == [], path
            headers = re.findall(r'<th scope="col">([^<]+)</th>', page)
            labels = set(re.findall(r'<td[^>]*data-label="([^"]*)"', page))
            assert labels <= set(headers) | {""}, (path, labels - set(headers))
        polish = (await alice.get("/admin/users?lang=pl")).text
        assert re.search(r'data-label="([^"]+)"', polish).group(1) == re.search(r'<th scope="col">([^<]+)</th>',
                                                                                  polish).group(1)  # fmt: skip
