"""Sentences raised in Python (a reset link, an account, a team, a case) reach people in their language: the error
carries its msgid and variables, pages translate them, the API keeps the English."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from babel.messages.pofile import read_po

from pulse import i18n
from pulse.accounts import MIN_PASSWORD_LENGTH
from pulse.errors import BadRequest
from pulse.models import FollowUpCase, User
from tests import pseudo_catalog
from tests.conftest import ROOT, make_key, make_settings, old_nonce, sent_invitation, sign_in, survey_url

RESET_INVALID = "This reset link is not valid. Ask for a new one."
USER_EXISTS = "A user with the e-mail %(email)s already exists."
PASSWORD_SHORT = (
    "The password must be at least %(num)s character long.",
    "The password must be at least %(num)s characters long.",
)
TEAM_EXISTS = "A team with the slug %(slug)s already exists."
CANNOT_SEE = "%(email)s cannot see the team of this case (%(team)s)."
NO_SUCH_LANGUAGE = "Choose one of the offered languages."
SCORE_RANGE = "score must be between %(low)s and %(high)s"
MODULES = (
    "pulse/sessions.py",
    "pulse/accounts.py",
    "pulse/followups.py",
    "pulse/case_notes.py",
    "pulse/web/admin.py",
    "pulse/web/public.py",
    "pulse/web/auth.py",
    "pulse/web/engagement.py",
    "pulse/access.py",
    "pulse/engagement.py",
)


@pytest.fixture
def mail_settings(database_url, smtp):
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off", PULSE_FATIGUE_DAYS="0")


@pytest.fixture(autouse=True)
def pseudo(tmp_path, monkeypatch):
    """The real catalogs, with these msgids translated even before the lead fills them (tests/pseudo_catalog.py)."""
    messages = [RESET_INVALID, USER_EXISTS, TEAM_EXISTS, CANNOT_SEE, NO_SUCH_LANGUAGE, SCORE_RANGE]
    pseudo_catalog.install(messages, tmp_path / "locales", monkeypatch)
    yield
    pseudo_catalog.reset()


def alert(page: str) -> str:
    """The sentence beside the form (or on the error page)."""
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


async def post_form(client, path: str, **form: str) -> httpx.Response:
    page = await client.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post(path, data={"csrf_token": token, **form})


def test_an_error_keeps_its_msgid_and_variables_and_says_english_to_the_api():
    refused = BadRequest(TEAM_EXISTS, slug="100%-care")
    assert (refused.msgid, refused.variables) == (TEAM_EXISTS, {"slug": "100%-care"})
    assert refused.message == str(refused) == "A team with the slug 100%-care already exists."
    assert BadRequest("50% of 10").localized("pl") == "50% of 10"  # no variables: not %-formatted


async def test_a_bad_reset_link_is_told_in_polish(client):
    page = await client.get("/password-reset/not-a-token", headers={"accept-language": "pl"})
    assert page.status_code == 400
    assert alert(page.text) == i18n.translate("pl", RESET_INVALID)


async def test_account_errors_beside_the_admins_form_are_in_polish(mail_app, org):
    await User.filter(email="alice@example.com").update(locale="pl")
    async with sign_in(mail_app, "alice@example.com") as alice:
        taken = await post_form(
            alice, "/admin/users", email="bob@example.com", password="x" * 20, role="analyst", locale="en"
        )
        short = await post_form(alice, "/admin/users", email="new@example.com", password="x", role="analyst")
    assert (taken.status_code, short.status_code) == (400, 400)
    assert alert(taken.text) == i18n.translate("pl", USER_EXISTS, email="bob@example.com")
    too_short = i18n.translate_plural("pl", *PASSWORD_SHORT, MIN_PASSWORD_LENGTH)
    assert alert(short.text) == too_short
    assert too_short != PASSWORD_SHORT[1] % {"num": MIN_PASSWORD_LENGTH}  # in Polish, with the Polish form of 12


async def test_a_team_form_error_is_in_polish(mail_app, org):
    await User.filter(email="alice@example.com").update(locale="pl")
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await post_form(alice, "/admin/teams", name="Twice", slug="support-warsaw")
    assert page.status_code == 400
    assert alert(page.text) == i18n.translate("pl", TEAM_EXISTS, slug="support-warsaw")


async def test_a_case_refusal_beside_the_case_form_is_in_polish(mail_app, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    data = {"score": "1", "comment": "slow", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as c:
        assert (await c.post(survey_url(mail_settings, invitation.id), data=data)).status_code in (200, 303)
    case = await FollowUpCase.get()
    async with sign_in(mail_app, "bob@example.com") as bob:  # Bob reads Polish
        page = await post_form(bob, f"/cases/{case.id}", owner="marco@example.com")
    assert page.status_code == 400
    assert alert(page.text) == i18n.translate("pl", CANNOT_SEE, email="marco@example.com", team="support-warsaw")


async def test_the_error_page_tells_the_signed_in_person_in_their_language(mail_app, org):
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await post_form(bob, "/account", locale="xx")
    assert page.status_code == 400
    assert alert(page.text) == i18n.translate("pl", NO_SUCH_LANGUAGE)


async def test_a_customer_reads_a_parametrised_error_in_polish(mail_app, mail_settings, catalog, org):
    invitation = await sent_invitation(mail_settings, catalog)
    data = {"score": "11", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as c:
        page = await c.post(survey_url(mail_settings, invitation.id), data=data, headers={"accept-language": "pl"})
        api = await c.post(survey_url(mail_settings, invitation.id), data=data, headers={"accept": "application/json"})
    assert page.status_code == 400
    assert alert(page.text) == i18n.translate("pl", SCORE_RANGE, low=1, high=5)
    assert api.json()["error"] == "score must be between 1 and 5"


async def test_the_api_keeps_the_english_sentence(mail_client, org):
    key = await make_key("cases:write")
    reply = await mail_client.patch(
        "/api/v1/cases/1", json={"note": "x"}, headers={"authorization": f"Bearer {key}", "accept-language": "pl"}
    )
    assert reply.status_code == 404  # no case: the API's own English sentence, whatever the language asked for
    assert reply.json()["error"].isascii()


def test_every_marked_message_of_these_modules_is_extracted():
    """Fails until the lead runs `make catalog` after this work: then each msgid is in messages.pot."""
    with open(ROOT / "locales" / "messages.pot", "rb") as file:
        extracted = {message.id for message in read_po(file) if message.id}
    missing = sorted(set(pseudo_catalog.marked_messages(*MODULES)) - extracted)
    assert missing == []


def test_an_error_with_a_count_agrees_with_it_and_a_code_reads_as_its_label():
    from pulse.errors import BadRequest, Conflict
    from pulse.i18n import N_plural

    for n, polish in ((1, "1 znak"), (3, "3 znaki"), (12, "12 znaków"), (22, "22 znaki")):
        error = BadRequest(N_plural("The password must be at least %(num)s character long.", PASSWORD_SHORT[1]), num=n)
        assert polish in error.localized("pl"), (n, error.localized("pl"))
        assert error.message == PASSWORD_SHORT[n != 1] % {"num": n}  # the API keeps English
    refused = Conflict(
        "A case that is %(old)s cannot become %(new)s.",
        old="resolved",
        new="in_progress",
        codes={"old": "case_status", "new": "case_status"},
    )
    assert refused.message == "A case that is resolved cannot become in_progress."
    italian = refused.localized("it")
    assert "in_progress" not in italian and i18n.translate("it", "In progress") in italian
