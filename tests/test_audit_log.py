"""The audit log: each action on personal data or access appends exactly one event (who, what, when, from
where) and nothing secret; admins read it on a page, filtered in the URL, and download it as CSV; prune keeps
recent events."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pulse import audit
from pulse.app import create_app
from pulse.models import AuditEvent, FollowUpCase, User
from tests.conftest import (
    PASSWORD,
    make_key,
    make_settings,
    old_nonce,
    persona,
    sent_invitation,
    sign_in,
    survey_url,
)
from tests.test_cli import pulse

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CLIENT = "127.0.0.1"  # what httpx's ASGI transport reports as the client's address


@pytest.fixture
def mail_settings(database_url, smtp):
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_FATIGUE_DAYS="0")


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    return TOKEN.search((await client.get(path)).text).group(1)


async def logged(action: str) -> list[AuditEvent]:
    return await AuditEvent.filter(action=action).order_by("id")


async def every_text() -> str:
    """Every text the audit table holds, as one string to search."""
    rows = await AuditEvent.all().values_list("actor", "action", "target", "source", "details")
    return "\n".join(str(value) for row in rows for value in row)


async def unhappy_answer(app, settings, catalog, number: int = 1) -> FollowUpCase:
    """Customer C-<number> of Support Warsaw answers 1 with a comment: a case opens for Bob."""
    invitation = await sent_invitation(settings, catalog, number, team="support-warsaw")
    data = {"score": "1", "comment": "You kept me waiting", "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.post(
            survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"}
        )
        assert reply.status_code == 200, reply.text
    return await FollowUpCase.get(contact__external_id=f"C-{number}")


async def test_a_sign_in_a_failed_one_and_a_sign_out_are_logged_without_the_password(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as c:
        token = await csrf(c, "/login")
        wrong = await c.post(
            "/login", data={"email": "Alice@Example.com ", "password": "not-the-password-42", "csrf_token": token}
        )
        assert wrong.status_code == 400
        [failed] = await logged("signin.failed")
        assert (failed.actor, failed.target, failed.source) == ("Alice@Example.com", "", CLIENT)
        assert failed.details == {"reason": "wrong e-mail or password"}
        assert not await logged("signin.ok")
        typed = "x" * 300 + "@example.com"  # the e-mail as typed, cut to what fits
        await c.post("/login", data={"email": typed, "password": "whatever-it-is", "csrf_token": token})
        assert [e.actor for e in await logged("signin.failed")] == ["Alice@Example.com", ""]
        right = await c.post("/login", data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": token})
        assert right.status_code == 303
        [ok] = await logged("signin.ok")
        assert (ok.actor, ok.target, ok.source) == ("alice@example.com", "user alice@example.com", CLIENT)
        assert ok.at > datetime.now(UTC) - timedelta(minutes=1)
        session = next(value for name, value in c.cookies.items() if "session" in name)
        out = await c.post("/logout", data={"csrf_token": await csrf(c, "/account")})
        assert out.status_code == 303
        [signout] = await logged("signout")
        assert (signout.actor, signout.details) == ("alice@example.com", {"everywhere": False})
    text = await every_text()
    for secret in (PASSWORD, "not-the-password-42", "whatever-it-is", session):
        assert secret not in text
    assert await AuditEvent.all().count() == 4


async def test_a_password_reset_is_logged_when_asked_for_and_when_done(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as c:
        token = await csrf(c, "/password-reset")
        for email in ("hana@example.com", "nobody@example.com"):
            assert (await c.post("/password-reset", data={"email": email, "csrf_token": token})).status_code == 200
        asked = await logged("password.reset_requested")
        assert [(e.actor, e.target) for e in asked] == [
            ("hana@example.com", "user hana@example.com"),
            ("nobody@example.com", ""),
        ]
        from pulse import sessions

        link = sessions.reset_token(mail_app.state.settings.secret_key, await User.get(email="hana@example.com"))
        path = f"/password-reset/{link}"
        new = "a brand new password"
        reply = await c.post(path, data={"password": new, "password_again": new, "csrf_token": await csrf(c, path)})
        assert reply.status_code == 303
        [done] = await logged("password.reset")
        assert (done.actor, done.target, done.source) == ("hana@example.com", "user hana@example.com", CLIENT)
    assert new not in await every_text() and link not in await every_text()


async def test_user_changes_and_api_keys_are_logged_by_the_admin_who_made_them(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        path = f"/admin/users/{org.analyst.id}"
        token = await csrf(alice, path)
        saved = await alice.post(
            path, data={"csrf_token": token, "action": "save", "role": "manager", "team": "support-warsaw"}
        )
        assert saved.status_code == 303
        [changed] = await logged("user.role_changed")
        assert (changed.actor, changed.target, changed.source) == ("alice@example.com", "user ana@example.com", CLIENT)
        assert changed.details == {"role": ["analyst", "manager"], "teams": [[], ["support-warsaw"]]}
        await alice.post(path, data={"csrf_token": token, "action": "save", "role": "manager", "team": "support-milan"})
        [moved] = await logged("user.teams_changed")
        assert moved.details["teams"] == [["support-warsaw"], ["support-milan"]]
        await alice.post(path, data={"csrf_token": token, "action": "save", "role": "manager", "team": "support-milan"})
        assert await AuditEvent.filter(action__startswith="user.").count() == 2  # nothing changed: nothing logged
        await alice.post(path, data={"csrf_token": token, "action": "deactivate"})
        await alice.post(path, data={"csrf_token": token, "action": "deactivate"})  # already: nothing new
        await alice.post(path, data={"csrf_token": token, "action": "activate"})
        assert [e.action for e in await AuditEvent.filter(target="user ana@example.com").order_by("id")] == [
            "user.role_changed",
            "user.teams_changed",
            "user.deactivated",
            "user.activated",
        ]
        created = await alice.post(
            "/admin/users",
            data={
                "csrf_token": token,
                "email": "New@Example.com",
                "password": "a long enough password",
                "role": "hr",
            },
        )
        assert created.status_code == 303
        [new_user] = await logged("user.created")
        assert (new_user.actor, new_user.target) == ("alice@example.com", "user new@example.com")
        assert new_user.details == {"role": "hr", "teams": []}
        page = await alice.post(
            "/admin/api-keys", data={"csrf_token": token, "name": "helpdesk", "scope": "touchpoints:write"}
        )
        secret = re.search(r'<code class="secret">([^<]+)</code>', page.text).group(1)
        [key] = await logged("apikey.created")
        prefix = secret.split("_")[1]
        assert (key.actor, key.target, key.source) == ("alice@example.com", f"api key {prefix} (helpdesk)", CLIENT)
        assert key.details == {"scopes": ["touchpoints:write"]}
        revoked = await alice.post(f"/admin/api-keys/{prefix}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
        [gone] = await logged("apikey.revoked")
        assert (gone.actor, gone.target) == ("alice@example.com", f"api key {prefix} (helpdesk)")
        again = await alice.post(f"/admin/api-keys/{prefix}/revoke", data={"csrf_token": token})
        assert again.status_code == 404 and len(await logged("apikey.revoked")) == 1
    text = await every_text()
    assert secret not in text and "a long enough password" not in text


async def test_case_changes_a_contact_page_and_exports_are_logged(mail_app, mail_settings, catalog, org):
    case = await unhappy_answer(mail_app, mail_settings, catalog)
    assert not await AuditEvent.exists()  # answering is not an action on personal data by staff
    path = f"/cases/{case.id}"
    async with sign_in(mail_app, "bob@example.com") as bob:
        token = await csrf(bob, path)
        reply = await bob.post(path, data={"csrf_token": token, "owner": "carol@example.com", "status": "in_progress"})
        assert reply.status_code == 303
        [moved] = await logged("case.reassigned")
        assert (moved.actor, moved.target, moved.source) == ("bob@example.com", f"case {case.id}", CLIENT)
        assert moved.details == {"from": "bob@example.com", "to": "carol@example.com"}
        [status] = await logged("case.status_changed")
        assert (status.actor, status.details) == ("bob@example.com", {"from": "open", "to": "in_progress"})
        await bob.post(path, data={"csrf_token": token, "note": "Called them back"})  # a note alone: not logged
        assert await AuditEvent.filter(action__startswith="case.").count() == 2
        assert (await bob.get("/contacts/C-1")).status_code == 200
        [viewed] = await logged("contact.viewed")
        assert (viewed.actor, viewed.target, viewed.source) == ("bob@example.com", "contact C-1", CLIENT)
        assert (await bob.get("/contacts/C-404")).status_code == 404
        assert len(await logged("contact.viewed")) == 1
        exported = await bob.get("/responses.csv?survey=csat&min=0")
        assert exported.status_code == 200 and "You kept me waiting" in exported.text
        [export] = await logged("export.responses")
        assert (export.actor, export.target, export.source) == ("bob@example.com", "responses", CLIENT)
        assert export.details == {"filters": {"survey": "csat", "min": "0"}}
        loyalty = await bob.get("/dashboard/loyalty.csv")
        assert loyalty.status_code == 200
        [drill] = await logged("export.loyalty")
        assert drill.actor == "bob@example.com" and drill.details["rows"] == len(loyalty.text.splitlines()) - 1
    writer = await make_key("cases:write", "responses:read")
    auth = {"authorization": f"Bearer {writer}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as c:
        back = await c.patch(f"/api/v1/cases/{case.id}", json={"owner": "bob@example.com"}, headers=auth)
        assert back.status_code == 200, back.text
        api_export = await c.get("/api/v1/responses.csv?survey=csat", headers=auth)
        assert api_export.status_code == 200
    prefix = writer.split("_")[1]
    reassigned = await logged("case.reassigned")
    assert [(e.actor, e.details["to"]) for e in reassigned] == [
        ("bob@example.com", "carol@example.com"),
        (f"api key test system ({prefix})", "bob@example.com"),
    ]
    exports = await logged("export.responses")
    assert [e.actor for e in exports] == ["bob@example.com", f"api key test system ({prefix})"]
    assert writer not in await every_text()


async def test_commands_are_logged_as_the_command_line(database_url, settings, catalog, tmp_path):
    made = pulse(
        "users", "create", "--email", "boss@example.com", "--role", "admin", "--password-stdin",
        stdin="correct horse battery\n", database_url=database_url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = pulse("apikeys", "create", "--name", "crm", "--scope", "responses:read", database_url=database_url)
    secret = key.stdout.strip().splitlines()[-1]
    prefix = secret.split("_")[1]
    assert pulse("apikeys", "revoke", prefix, database_url=database_url).returncode == 0
    out = tmp_path / "answers.csv"
    exported = pulse("export", "responses", "--survey", "csat", "--out", str(out), database_url=database_url)
    assert exported.returncode == 0, exported.stderr
    async with LifespanManager(create_app(settings, catalog=catalog)):
        rows = await AuditEvent.all().order_by("id").values_list("actor", "action", "target", "source")
        assert rows == [
            ("command line", "user.created", "user boss@example.com", ""),
            ("command line", "apikey.created", f"api key {prefix} (crm)", ""),
            ("command line", "apikey.revoked", f"api key {prefix} (crm)", ""),
            ("command line", "export.responses", "responses", ""),
        ]
        text = await every_text()
        assert secret not in text and "correct horse battery" not in text


async def seed(count: int) -> datetime:
    """`count` events a minute apart, the newest a minute ago: sign-ins of a@ and b@, and role changes."""
    now = datetime.now(UTC).replace(microsecond=0)
    for n in range(count):
        action = ("signin.ok", "signin.failed", "user.role_changed")[n % 3]
        await audit.record(
            action,
            actor=f"{'ab'[n % 2]}@example.com",
            target=f"user n{n}@example.com",
            source="10.0.0.1",
            at=now - timedelta(minutes=count - n),
        )
    return now


def event_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="event-(\d+)"', html)]


async def test_the_page_is_for_admins_newest_first_in_pages_of_50(mail_app, org):
    await seed(120)
    for email in ("hana@example.com", "bob@example.com", "ana@example.com"):
        async with sign_in(mail_app, email) as other:
            assert (await other.get("/admin/audit")).status_code == 403
            assert (await other.get("/admin/audit.csv")).status_code == 403
    async with sign_in(mail_app, "alice@example.com") as alice:
        newest_first = list(await AuditEvent.all().order_by("-at", "-id").values_list("id", flat=True))
        assert len(newest_first) == 124  # the seeded 120 and four sign-ins
        first = await alice.get("/admin/audit")
        assert first.status_code == 200
        assert 'href="/admin/audit" aria-current="page"' in first.text
        assert event_ids(first.text) == newest_first[:50]
        assert newest_first[0] == (await logged("signin.ok"))[-1].id  # alice's own sign-in leads
        assert "124 events" in first.text and 'data-label="Who"' in first.text
        third = await alice.get("/admin/audit?page=3")
        assert event_ids(third.text) == newest_first[100:]
        assert 'href="/admin/audit?page=2" rel="prev"' in third.text


async def test_the_filters_narrow_the_page_and_the_csv_and_a_bad_one_is_told_beside_it(mail_app, org):
    now = await seed(30)
    async with sign_in(mail_app, "alice@example.com") as alice:
        expected = list(
            await AuditEvent.filter(action__startswith="user.", actor="b@example.com")
            .order_by("-at", "-id")
            .values_list("id", flat=True)
        )
        assert expected
        page = await alice.get("/admin/audit?action=user.&actor=B@EXAMPLE")
        assert event_ids(page.text) == expected
        by_target = await alice.get("/admin/audit?target=n7@")
        assert len(event_ids(by_target.text)) == 1
        today = now.date().isoformat()
        dated = await alice.get(f"/admin/audit?from={today}&to={today}&action=signin")
        assert (
            len(event_ids(dated.text))
            == await AuditEvent.filter(
                action__startswith="signin", at__gte=now.replace(hour=0, minute=0, second=0)
            ).count()
        )
        past = await alice.get("/admin/audit?to=2020-01-01")
        assert event_ids(past.text) == [] and "No events match these filters." in past.text
        bad = await alice.get("/admin/audit?from=yesterday&action=User%20Changes&actor=a")
        assert bad.status_code == 400
        bad_text = html.unescape(bad.text)
        assert '<span class="error field-error" id="error-from">\'Since\' is not a date.</span>' in bad_text
        assert "'Action' is the start of an action's name" in bad_text
        assert "2 filters are not right: see the messages beside them." in bad.text
        assert 'value="yesterday"' in bad.text and event_ids(bad.text) == []
        late = await alice.get("/admin/audit?from=2026-02-01&to=2026-01-01")
        assert late.status_code == 400 and "'Until' must be on or after 'Since'." in html.unescape(late.text)
        assert (await alice.get("/admin/audit.csv?from=yesterday")).status_code == 400

        download = await alice.get("/admin/audit.csv?action=user.&actor=b@example")
        assert download.status_code == 200 and download.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.reader(io.StringIO(download.text)))
        assert rows[0] == ["at", "actor", "action", "target", "source", "details"]
        assert len(rows) - 1 == len(expected)
        assert {(r[1], r[2]) for r in rows[1:]} == {("b@example.com", "user.role_changed")}
        assert datetime.fromisoformat(rows[1][0]).tzinfo is not None
        [export] = await logged("export.audit")
        assert (export.actor, export.target, export.source) == ("alice@example.com", "audit log", CLIENT)
        assert export.details == {"filters": {"action": "user.", "actor": "b@example"}}


async def test_the_csv_is_formula_safe_and_times_are_in_the_organisations_zone(database_url, catalog):
    settings = make_settings(database_url, PULSE_TIMEZONE="Europe/Warsaw")
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await persona("alice@example.com", "admin", "Alice Admin")
        at = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 on 2 July in Warsaw
        await audit.record("signin.failed", actor='=HYPERLINK("http://x")', source="10.0.0.9", at=at)
        async with sign_in(app, "alice@example.com") as alice:
            july_second = await alice.get("/admin/audit?from=2026-07-02&to=2026-07-02")
            assert len(event_ids(july_second.text)) == 1 and "12:30:00" in july_second.text
            assert event_ids((await alice.get("/admin/audit?from=2026-07-01&to=2026-07-01")).text) == []
            download = await alice.get("/admin/audit.csv?action=signin.failed")
        [_, row] = list(csv.reader(io.StringIO(download.text)))
        assert row[:5] == ["2026-07-02T00:30:00+02:00", '\'=HYPERLINK("http://x")', "signin.failed", "", "10.0.0.9"]


async def test_prune_keeps_the_recent_events(mail_app):
    now = datetime.now(UTC)
    for days in (1, 100, 729, 731, 2000):
        await audit.record("signin.ok", actor=f"{days}@example.com", at=now - timedelta(days=days))
    assert await audit.prune(0, now) == 0 and await AuditEvent.all().count() == 5
    assert await audit.prune(730, now, batch=1) == 2
    assert sorted(await AuditEvent.all().values_list("actor", flat=True)) == [
        "100@example.com",
        "1@example.com",
        "729@example.com",
    ]
