"""Signing in: argon2 passwords, sessions stored hashed and rotated, throttling with a clear message,
sign-out everywhere, and password reset by an expiring e-mail link."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from pulse import i18n, throttle
from pulse.models import OutboxMessage, Session, SignInThrottle
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import PASSWORD, sign_in


def token_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def attempt(client, email, password):
    page = await client.get("/login")
    return await client.post("/login", data={"email": email, "password": password, "csrf_token": token_of(page)})


async def test_sign_in_sets_a_strict_session_cookie_and_stores_only_its_hash(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        reply = await attempt(client, "Bob@Example.com", PASSWORD)
        assert (reply.status_code, reply.headers["location"]) == (303, "/dashboard")
        cookie = next(c for c in reply.headers.get_list("set-cookie") if c.startswith("pulse_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        [stored] = await Session.all()
        assert stored.token_hash != value and len(stored.token_hash) == 64
        assert (await client.get("/dashboard")).status_code == 200
        page = await client.get("/account")
        again = await client.post(
            "/login", data={"email": "bob@example.com", "password": PASSWORD, "csrf_token": token_of(page)}
        )  # signing in again: a new id
        fresh = next(c for c in again.headers.get_list("set-cookie") if c.startswith("pulse_session="))
        assert fresh.split(";")[0] != cookie.split(";")[0]
        assert await Session.all().count() == 1


async def test_a_wrong_password_says_so_in_the_users_language(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        reply = await client.post(
            "/login",
            data={
                "email": "bob@example.com",
                "password": "nope",
                "csrf_token": token_of(await client.get("/login?lang=pl")),
            },
            headers={"accept-language": "pl"},
        )
        assert reply.status_code == 400
        assert i18n.translate("pl", "The e-mail or the password is not right.") in reply.text
        assert await Session.all().count() == 0


async def test_sign_in_is_throttled_per_account_with_a_clear_message(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        for _ in range(throttle.MAX_PER_ACCOUNT_CLIENT):
            assert (await attempt(client, "bob@example.com", "wrong password")).status_code == 400
        blocked = await attempt(client, "bob@example.com", PASSWORD)  # even the right password waits
        assert blocked.status_code == 429
        assert "Too many failed sign-ins. Wait 15 minutes and try again." in blocked.text
        assert (await attempt(client, "carol@example.com", PASSWORD)).status_code == 303  # others are not locked out
    await SignInThrottle.all().update(window_start=datetime.now(UTC) - timedelta(minutes=16))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        assert (await attempt(client, "bob@example.com", PASSWORD)).status_code == 303


async def test_sign_in_is_throttled_per_client(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        for n in range(throttle.MAX_PER_CLIENT):
            await attempt(client, f"nobody{n}@example.com", "guess")
        assert (await attempt(client, "carol@example.com", PASSWORD)).status_code == 429


async def test_forms_need_the_csrf_token(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        await client.get("/login")
        reply = await client.post("/login", data={"email": "bob@example.com", "password": PASSWORD, "csrf_token": "x"})
        assert reply.status_code == 400
        assert await Session.all().count() == 0


async def test_sign_out_everywhere_ends_every_session(mail_app, org):
    async with sign_in(mail_app, "bob@example.com") as laptop, sign_in(mail_app, "bob@example.com") as phone:
        assert await Session.all().count() == 2
        page = await laptop.get("/account")
        reply = await laptop.post("/logout", data={"csrf_token": token_of(page), "everywhere": "1"})
        assert reply.status_code == 303
        assert (await phone.get("/dashboard")).status_code == 303  # sent back to sign in
        assert await Session.all().count() == 0


async def test_next_only_goes_to_this_site(mail_app, org):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        page = await client.get("/login?next=//evil.example/x")
        assert 'name="next" value=""' in page.text
        reply = await client.post(
            "/login",
            data={
                "email": "bob@example.com",
                "password": PASSWORD,
                "csrf_token": token_of(page),
                "next": "https://evil.example",
            },
        )
        assert reply.headers["location"] == "/dashboard"


async def test_password_reset_by_an_expiring_single_use_link(mail_app, mail_settings, catalog, org, smtp):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as client:
        page = await client.get("/password-reset")
        await client.post("/password-reset", data={"email": "bob@example.com", "csrf_token": token_of(page)})
        await client.post("/password-reset", data={"email": "ghost@example.com", "csrf_token": token_of(page)})
        assert await OutboxMessage.filter(kind="password_reset").count() == 1  # nothing for unknown addresses
        await Dispatcher(mail_settings, catalog, environment()).step()
        assert (await OutboxMessage.get(kind="password_reset")).status == "sent"
        [mail] = smtp.by_recipient("bob@example.com")
        assert mail["Subject"] == i18n.translate("pl", "Choose a new Pulse password")
        link = re.search(
            r"http://testserver(/password-reset/[^\s\"<]+)", mail.get_body(("plain",)).get_content()
        ).group(1)
        form = await client.get(link)
        assert form.status_code == 200
        short = await client.post(
            link, data={"password": "short", "password_again": "short", "csrf_token": token_of(form)}
        )
        assert short.status_code == 400
        done = await client.post(
            link,
            data={
                "password": "a brand new passphrase",
                "password_again": "a brand new passphrase",
                "csrf_token": token_of(form),
            },
        )
        assert (done.status_code, done.headers["location"]) == (303, "/login?reset=1")
        reused = await client.get(link)
        assert reused.status_code == 400  # the link is bound to the old password: used once, then worthless
        assert (await attempt(client, "bob@example.com", "a brand new passphrase")).status_code == 303
