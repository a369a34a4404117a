"""The chosen language sticks: a signed-in user's choice becomes their setting, a visitor's lives in a cookie that
the public pages honour after ?lang= and before the contact's own locale and the browser's."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.models import User
from tests.conftest import make_settings, sent_invitation, sign_in, survey_url


def html_lang(page: httpx.Response) -> str:
    return re.search(r'<html lang="([a-z]+)">', page.text).group(1)


async def test_a_users_choice_is_saved_and_kept_on_the_next_pages(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        chosen = await alice.get("/dashboard/breakdown?team=support-warsaw&lang=it")
        assert html_lang(chosen) == "it"
        assert (await User.get(email="alice@example.com")).locale == "it"
        later = await alice.get("/dashboard/loyalty")
        assert html_lang(later) == "it"
        assert html_lang(await alice.get("/account")) == "it"
    async with sign_in(mail_app, "alice@example.com") as elsewhere:  # another device, no cookie of the first
        assert html_lang(await elsewhere.get("/dashboard")) == "it"


async def test_an_unsupported_language_changes_nothing(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard?lang=xx")
    assert html_lang(page) == "en"
    assert (await User.get(email="alice@example.com")).locale == "en"
    assert "pulse_lang" not in page.headers.get("set-cookie", "")


async def test_a_visitors_choice_is_a_cookie_the_public_pages_honour(mail_app, mail_settings, catalog):
    invitation = await sent_invitation(mail_settings, catalog)  # the contact's own locale is pl
    url = survey_url(mail_settings, invitation.id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as visitor:
        assert html_lang(await visitor.get(url)) == "pl"
        chosen = await visitor.get(f"{url}?score=4&lang=it")
        cookie = next(c for c in chosen.headers.get_list("set-cookie") if c.startswith("pulse_lang="))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert cookie.startswith("pulse_lang=it;")
        assert {"httponly", "path", "max-age", "samesite"} <= attributes and "secure" not in attributes
        assert "SameSite=lax" in cookie and "Path=/" in cookie and "Max-Age=31536000" in cookie
        again = await visitor.get(url, headers={"accept-language": "sl"})
        assert html_lang(again) == "it"  # the cookie before the contact's locale and the browser's
        assert html_lang(await visitor.get("/login")) == "it"
        assert html_lang(await visitor.get(f"{url}?lang=en")) == "en"  # ?lang= first, and it becomes the cookie
        assert html_lang(await visitor.get("/login")) == "en"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as fresh:
        assert html_lang(await fresh.get("/login", headers={"accept-language": "sl"})) == "sl"


async def test_the_answer_page_keeps_score_and_nonce_across_the_switch(mail_app, mail_settings, catalog):
    invitation = await sent_invitation(mail_settings, catalog)
    url = survey_url(mail_settings, invitation.id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as visitor:
        page = await visitor.get(f"{url}?score=3")
    link = re.search(r'href="\?([^"]*lang=it)"', page.text).group(1)
    assert "score=3" in link and "nonce=" in link


@pytest.fixture
async def https_app(database_url, catalog):
    app = create_app(make_settings(database_url, PULSE_BASE_URL="https://pulse.example.com"), catalog=catalog)
    async with LifespanManager(app):
        yield app


async def test_the_cookie_is_secure_when_the_site_is_https(https_app):
    transport = httpx.ASGITransport(app=https_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://pulse.example.com") as visitor:
        page = await visitor.get("/login?lang=sl")
    cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("pulse_lang="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_the_sign_in_pages_language_links_keep_where_to_go_next(mail_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as visitor:
        page = await visitor.get("/login?next=/dashboard/loyalty%3Fteam%3Dsales")
    link = html.unescape(re.search(r'href="([^"]*lang=it)"', page.text).group(1))
    assert link == "?next=%2Fdashboard%2Floyalty%3Fteam%3Dsales&lang=it"
