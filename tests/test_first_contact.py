"""First contact: `/` leads a visitor to the sign-in, public pages link nowhere internal, and `pulse demo` prints
every demo sign-in the README promises."""

from __future__ import annotations

import re

import httpx

from pulse import i18n
from pulse.demo import DEMO_PASSWORD, demo_sign_ins
from tests.conftest import ROOT, sent_invitation, sign_in, survey_url
from tests.test_cli import pulse


async def test_the_front_page_leads_a_visitor_to_the_sign_in(client: httpx.AsyncClient):
    reply = await client.get("/")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login"
    italian = await client.get("/?lang=it")
    assert italian.headers["location"] == "/login?lang=it"
    page = await client.get("/", follow_redirects=True)
    assert "Pulse is running" not in page.text
    assert 'name="password"' in page.text
    healthz = await client.get("/healthz")  # what a monitor needs stays where it was
    assert healthz.status_code in (200, 503) and "database" in healthz.text


async def test_the_front_page_follows_the_visitors_language(client: httpx.AsyncClient):
    polish = await client.get("/", headers={"accept-language": "pl-PL,pl;q=0.9"}, follow_redirects=True)
    assert '<html lang="pl">' in polish.text
    assert i18n.translate("pl", "Sign in") in polish.text


async def test_public_pages_do_not_link_customers_to_internal_pages(mail_client, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    page = await mail_client.get(survey_url(mail_settings, invitation.id))
    assert page.status_code == 200
    header = re.search(r'<header class="bar">(.*?)</header>', page.text, re.S).group(1)
    assert re.findall(r'href="([^"?][^"]*)"', header) == []  # only ?lang= links remain
    assert "Acme" in header  # the company's name, as plain text


def test_pulse_demo_prints_every_demo_sign_in(database_url):
    result = pulse("demo", "--contacts", "20", "--months", "2", "--quiet", database_url=database_url)
    assert result.returncode == 0, result.stderr
    for role, email in (
        ("admin", "admin@pulse.local"),
        ("hr", "hr@pulse.local"),
        ("analyst", "analyst@pulse.local"),
        ("manager", "support-warsaw@pulse.local"),
        ("manager", "onboarding@pulse.local"),
    ):
        assert re.search(rf"^\s+{role}\s+{re.escape(email)}\s+{DEMO_PASSWORD}$", result.stdout, re.M), result.stdout
    again = pulse("demo", "--contacts", "20", database_url=database_url)
    assert again.returncode == 0
    assert "admin@pulse.local" in again.stdout and DEMO_PASSWORD in again.stdout


def test_the_readme_says_what_pulse_demo_prints():
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `pulse demo"))
    assert "prints the demo sign-ins (admin, hr, analyst and one manager per team" in row
    assert f"`{DEMO_PASSWORD}`" in row
    assert [role for role, _ in demo_sign_ins()][:3] == ["admin", "hr", "analyst"]
    assert {role for role, _ in demo_sign_ins()[3:]} == {"manager"}


async def test_an_error_on_a_survey_link_sends_the_customer_nowhere_internal(client: httpx.AsyncClient):
    for path in ("/s/not-a-real-token", "/u/not-a-real-token", "/p/not-a-real-token", "/l/no-such-survey"):
        page = await client.get(path)
        assert 400 <= page.status_code < 500, path
        assert 'href="/"' not in page.text and 'href="/login' not in page.text, path


async def test_an_error_page_in_the_app_says_what_was_wrong_and_leads_back(mail_app, org):
    async with sign_in(mail_app, org.admin.email) as admin:
        page = await admin.get("/contacts?q=a%00b")
        assert page.status_code == 400
        assert "The search must not contain control characters." in page.text  # the sentence, not only "Error 400"
        missing = await admin.get("/cases/999999")
        assert missing.status_code == 404
        assert 'href="/"' in missing.text  # staff get a way back to their start page
