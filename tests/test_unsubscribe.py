"""/u/{token}: a GET asks and changes nothing; RFC 8058 one-click POST or the confirm button opts out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import i18n, tokens
from pulse.models import Contact, Invitation, OutboxMessage
from pulse.touchpoints import ingest
from tests.conftest import event


async def scheduled(settings, catalog, number: int = 1) -> int:
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    [outcome] = await ingest([event(number, occurred_at=occurred)], catalog, settings)
    assert outcome.status == "invited"
    return outcome.invitation_id


def link(settings, invitation_id: int) -> str:
    return f"/u/{tokens.make_token(settings.secret_key, 'unsubscribe', invitation_id)}"


async def test_get_shows_a_localized_confirm_page_and_changes_nothing(mail_client, mail_settings, catalog):
    invitation_id = await scheduled(mail_settings, catalog)
    for method in ("GET", "HEAD"):
        response = await mail_client.request(method, link(mail_settings, invitation_id))
        assert response.status_code == 200
    page = await mail_client.get(link(mail_settings, invitation_id))
    assert '<html lang="pl">' in page.text  # the person's own language
    assert i18n.translate("pl", "Unsubscribe from surveys") in page.text
    assert 'name="csrf_token"' in page.text
    # a scanner following the link with the one-click words in its query changes nothing either
    scanned = await mail_client.get(f"{link(mail_settings, invitation_id)}?List-Unsubscribe=One-Click")
    assert scanned.status_code == 200
    contact = await Contact.get(external_id="C-1")
    assert contact.opted_out_at is None
    assert (await Invitation.get(id=invitation_id)).status == "scheduled"


# RFC 8058 section 3.1: the mailbox provider POSTs this one field in either encoding, with no cookie and no CSRF token.
BOUNDARY = "----pulse-one-click-7d3a"
ONE_CLICK_BODIES = {
    "urlencoded": ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
    "multipart": (
        f"multipart/form-data; boundary={BOUNDARY}",
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
            "\r\n"
            "One-Click\r\n"
            f"--{BOUNDARY}--\r\n"
        ).encode(),
    ),
}


@pytest.mark.parametrize("encoding", sorted(ONE_CLICK_BODIES))
async def test_one_click_post_opts_out_without_a_session_or_redirect(mail_client, mail_settings, catalog, encoding):
    invitation_id = await scheduled(mail_settings, catalog)
    content_type, body = ONE_CLICK_BODIES[encoding]
    response = await mail_client.post(
        link(mail_settings, invitation_id), content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200
    assert i18n.translate("pl", "You are unsubscribed") in response.text
    contact = await Contact.get(external_id="C-1")
    assert contact.opted_out_at is not None
    assert (await Invitation.get(id=invitation_id)).status == "suppressed"
    assert (await OutboxMessage.get(invitation_id=invitation_id)).status == "suppressed"
    # and the rules skip this person from now on
    [again] = await ingest(
        [event(5, contact_external_id="C-1", occurred_at=datetime.now(UTC).isoformat())], catalog, mail_settings
    )
    assert (again.status, again.reason) == ("skipped", "opted_out")


async def test_the_confirm_button_needs_the_csrf_token(mail_client, mail_settings, catalog):
    invitation_id = await scheduled(mail_settings, catalog)
    url = link(mail_settings, invitation_id)
    forged = await mail_client.post(url, data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert (await Contact.get(external_id="C-1")).opted_out_at is None
    page = await mail_client.get(url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    confirmed = await mail_client.post(url, data={"csrf_token": token})
    assert confirmed.status_code == 200
    assert (await Contact.get(external_id="C-1")).opted_out_at is not None
    assert "pulse_csrf" in page.headers["set-cookie"] and "httponly" in page.headers["set-cookie"].lower()


NOT_ONE_CLICK = {
    "empty": ("application/x-www-form-urlencoded", b""),
    "no content type": ("", b""),
    "another value": ("application/x-www-form-urlencoded", b"List-Unsubscribe=Two-Clicks"),
    "words in plain text": ("text/plain", b"List-Unsubscribe=One-Click"),
    "JSON": ("application/json", b'{"List-Unsubscribe": "One-Click"}'),
    "garbage": ("application/x-www-form-urlencoded", b"\xff\xfe\x00garbage&&=="),
    "broken multipart": (f"multipart/form-data; boundary={BOUNDARY}", b"--nope\r\nnot a part"),
    "multipart without a boundary": ("multipart/form-data", ONE_CLICK_BODIES["multipart"][1]),
}


@pytest.mark.parametrize("case", list(NOT_ONE_CLICK))
async def test_a_post_that_is_neither_one_click_nor_the_button_is_a_400_and_changes_nothing(
    mail_client, mail_settings, catalog, case
):
    invitation_id = await scheduled(mail_settings, catalog)
    content_type, body = NOT_ONE_CLICK[case]
    headers = {"accept": "application/json", **({"content-type": content_type} if content_type else {})}
    response = await mail_client.post(link(mail_settings, invitation_id), content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert (await Contact.get(external_id="C-1")).opted_out_at is None
    assert (await Invitation.get(id=invitation_id)).status == "scheduled"


async def test_tampered_and_foreign_tokens_are_a_404_page(mail_client, mail_settings, catalog):
    invitation_id = await scheduled(mail_settings, catalog)
    good = link(mail_settings, invitation_id)
    survey_token = tokens.make_token(mail_settings.secret_key, "survey", invitation_id)  # another purpose
    other_key = tokens.make_token("another-secret-key-entirely", "unsubscribe", invitation_id)
    for url in (good[:-2] + "xx", f"/u/{survey_token}", f"/u/{other_key}", "/u/garbage"):
        response = await mail_client.post(url, content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 404, url
    assert (await Contact.get(external_id="C-1")).opted_out_at is None


async def test_an_expired_link_says_so_and_changes_nothing(mail_client: httpx.AsyncClient, mail_settings, catalog):
    invitation_id = await scheduled(mail_settings, catalog)
    old = tokens.URLSafeTimedSerializer(mail_settings.secret_key, salt="pulse.unsubscribe")
    # signed 400 days ago
    signer = old.make_signer("pulse.unsubscribe")
    signer.get_timestamp = lambda: int((datetime.now(UTC) - timedelta(days=400)).timestamp())
    expired = signer.sign(old.dump_payload(invitation_id)).decode()
    response = await mail_client.post(f"/u/{expired}", content=b"List-Unsubscribe=One-Click")
    assert response.status_code == 410
    assert i18n.translate("pl", "This link has expired") in response.text
    assert (await Contact.get(external_id="C-1")).opted_out_at is None
