"""Dashboard pages as a person reads them: numbers, empty states, escaped comments, admin tasks."""

from __future__ import annotations

import json
import re

from pulse import i18n
from pulse.models import ApiKey, Team, User
from tests.conftest import old_nonce, sent_invitation, sign_in, survey_url


def figures(html: str) -> list[dict]:
    return [
        json.loads(block)
        for block in re.findall(r'<script type="application/json" class="figure">(.*?)</script>', html, re.S)
    ]


async def answer(app, settings, catalog, number, score, comment):
    import httpx

    invitation = await sent_invitation(settings, catalog, number)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
        await client.post(survey_url(settings, invitation.id), data=data)


async def test_an_empty_overview_says_what_to_do(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard")
    assert page.status_code == 200
    assert "POST /api/v1/touchpoints" in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]


async def test_the_overview_shows_values_with_n_and_the_cases_waiting(mail_app, mail_settings, catalog, org):
    for number, score in enumerate((1, 5, 4, 5), start=1):
        await answer(mail_app, mail_settings, catalog, number, score, "ok")
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/dashboard?lang=pl")
    assert page.status_code == 200
    csat = next(
        f
        for f in figures(page.text)
        if any("n =" in str(t.get("text")) or "n = " in str(t.get("text")) for t in f["data"])
        and f["layout"]["yaxis"]["range"] == [0, 100]
    )
    line = csat["data"][-1]
    assert line["y"][-1] == 75.0  # 3 of 4 satisfied
    assert i18n.translate("pl", "n =") + " 4" in line["text"][-1]
    assert "75,0" in page.text  # Polish decimals
    tile = i18n.translations("pl").ngettext(
        "%(num)s unhappy answer waits for a follow-up", "%(num)s unhappy answers wait for a follow-up", 1
    )
    assert tile % {"num": '<span class="big">1</span>'} in page.text  # the count inside its sentence


async def test_the_response_rate_counts_the_customer_e_mails_sent_in_the_period_of_the_readers_teams(
    mail_app, mail_settings, catalog, org
):
    from datetime import UTC, datetime, timedelta

    from pulse.models import Employee, Invitation

    for number, team in ((1, "support-warsaw"), (2, "support-warsaw"), (3, "support-milan")):
        await answer_in(mail_app, mail_settings, catalog, number, team)
    await sent_invitation(mail_settings, catalog, 4)  # Warsaw, not answered
    long_ago = await sent_invitation(mail_settings, catalog, 5)  # Warsaw, before the period
    await Invitation.filter(id=long_ago.id).update(sent_at=datetime.now(UTC) - timedelta(days=400))
    colleague = await Employee.create(external_id="E-1", email="e1@example.com", team=org.warsaw)
    await Invitation.create(  # an employee pulse is not a customer survey e-mail
        survey_id="enps", employee=colleague, locale="en", status="answered", sent_at=datetime.now(UTC)
    )
    await User.filter(id=org.warsaw_lead.id).update(locale="en")
    tiles = {}
    for reader in ("alice@example.com", "bob@example.com", "carol@example.com"):
        async with sign_in(mail_app, reader) as client:
            page = await client.get("/dashboard?lang=en")
            assert page.status_code == 200
            tiles[reader] = re.search(r"response rate in the last [\d,]+ days \((\d+) of (\d+)\)", page.text).groups()
    assert tiles["alice@example.com"] == ("3", "4")  # everyone's: Warsaw 2 of 3 and Milan 1 of 1
    assert tiles["bob@example.com"] == ("2", "3")  # Warsaw's manager: his team's only
    assert tiles["carol@example.com"] == ("3", "4")  # the parent team's manager: both teams under it
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard?lang=en&team=support-milan")
    assert re.search(r"response rate in the last [\d,]+ days \(1 of 1\)", page.text)


JSON = {"accept": "application/json"}


async def answer_in(app, settings, catalog, number, team):
    import httpx

    invitation = await sent_invitation(settings, catalog, number, team=team)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        data = {"score": "5", "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
        reply = await client.post(survey_url(settings, invitation.id), data=data, headers=JSON)
        assert reply.status_code == 200, reply.text


async def test_comments_with_markup_are_shown_as_text(mail_app, mail_settings, catalog, org):
    await answer(mail_app, mail_settings, catalog, 1, 1, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    async with sign_in(mail_app, "bob@example.com") as bob:
        contact = await bob.get("/contacts/C-1")
        cases = await bob.get("/cases")
        case_link = re.search(r'href="(/cases/\d+)"', cases.text).group(1)
        case = await bob.get(case_link)
    for page in (contact, case):
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text


async def test_admins_manage_users_teams_and_keys(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/admin/users")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        bad = await alice.post(
            "/admin/users",
            data={"csrf_token": token, "email": "new@example.com", "role": "manager", "password": "short"},
        )
        assert bad.status_code == 400 and "at least 12 characters" in bad.text
        made = await alice.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "email": "new@example.com",
                "role": "manager",
                "password": "long enough password",
                "team": "support-milan",
            },
        )
        assert made.status_code == 303
        assert (await User.get(email="new@example.com")).role == "manager"
        team = await alice.post(
            "/admin/teams",
            data={
                "csrf_token": token,
                "slug": "support-rome",
                "name": "Support Rome",
                "parent": "customer-care",
                "owner": "new@example.com",
            },
        )
        assert team.status_code == 303
        rome = await Team.get(slug="support-rome").select_related("parent", "owner")
        assert (rome.parent.slug, rome.owner.email) == ("customer-care", "new@example.com")
        loop = await alice.post(
            "/admin/teams/customer-care", data={"csrf_token": token, "name": "Customer Care", "parent": "support-rome"}
        )
        assert loop.status_code == 400 and "cannot be placed under itself" in loop.text
        created = await alice.post(
            "/admin/api-keys",
            data={"csrf_token": token, "name": "shop", "scope": ["touchpoints:write", "analytics:read"]},
        )
        secret = re.search(r'<code class="secret">([^<]+)</code>', created.text).group(1)
        assert created.headers["cache-control"] == "no-store"
        key = await ApiKey.get(name="shop")
        assert key.scopes == ["analytics:read", "touchpoints:write"] and secret not in key.key_hash
        listing = await alice.get("/admin/api-keys")
        assert secret not in listing.text  # shown once
        assert (await alice.post(f"/admin/api-keys/{key.prefix}/revoke", data={"csrf_token": token})).status_code == 303
        assert (await ApiKey.get(id=key.id)).revoked_at is not None
        assert "nps" in (await alice.get("/admin/surveys")).text
        assert (await alice.get("/admin/delivery")).status_code == 200
