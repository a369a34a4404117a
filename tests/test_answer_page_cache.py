"""The answer page is rendered once per language, survey, score and link and reused with each request's own
nonce: a reused page must be the page a fresh render gives, carry a nonce of its own, and never show another
person's comment or stored score."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import pytest

from pulse import tokens
from tests.conftest import old_nonce, sent_invitation, survey_url


def _nonce(page: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', page)[1]


def _without_nonce(page: str) -> str:
    nonce = _nonce(page)
    return page.replace(quote_plus(nonce), "NONCE").replace(nonce, "NONCE")


@pytest.mark.parametrize("query", ["?score=4", "?score=4&lang=it", ""])
async def test_a_reused_page_is_the_fresh_page_with_a_nonce_of_its_own(mail_client, mail_settings, catalog, query):
    invitation = await sent_invitation(mail_settings, catalog)
    url = survey_url(mail_settings, invitation.id) + query
    pages = mail_client._transport.app.state.answer_pages  # type: ignore[attr-defined]
    fresh = await mail_client.get(url)
    assert len(pages) == 1  # the first render filled the cache
    reused = await mail_client.get(url)
    assert fresh.status_code == reused.status_code == 200
    assert _nonce(fresh.text) != _nonce(reused.text)
    assert _without_nonce(fresh.text) == _without_nonce(reused.text)
    for page in (fresh.text, reused.text):
        nonce = _nonce(page)
        tokens.read_nonce(mail_settings.secret_key, f"invitation:{invitation.id}", nonce)  # a genuine nonce
        # the language links carry this page's own nonce, so switching language keeps its render time
        assert page.count(f"nonce={quote_plus(nonce)}&amp;lang=") == 4
    answer = await mail_client.post(
        survey_url(mail_settings, invitation.id),
        data={"score": "4", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}"), "website": ""},
    )
    assert "Grazie" in answer.text if "lang=it" in query else "Dziękujemy" in answer.text


async def test_nobody_sees_another_persons_comment_or_score(mail_client, mail_settings, catalog):
    first = await sent_invitation(mail_settings, catalog, 1)
    second = await sent_invitation(mail_settings, catalog, 2)
    # each link made once: a token carries the second it was made in, so one made again later can differ
    first_link, second_link = survey_url(mail_settings, first.id), survey_url(mail_settings, second.id)
    await mail_client.get(first_link + "?score=4")  # a page to reuse for the other link
    subject = f"invitation:{first.id}"
    posted = await mail_client.post(
        first_link,
        data={"score": "2", "comment": "The courier threw my parcel", "nonce": old_nonce(mail_settings, subject)},
    )
    assert "The courier threw my parcel" in posted.text
    again = await mail_client.get(first_link + "?score=2")
    assert "The courier threw my parcel" in again.text  # their own page shows their comment
    for score in ("2", "4", ""):
        other = await mail_client.get(second_link + f"?score={score}")
        assert "The courier threw my parcel" not in other.text
        assert f'action="{second_link}"' in other.text  # its own link, not the page's it was reused from
        assert first_link.removeprefix("/s/") not in other.text
        assert 'name="nonce"' in other.text and "data-stored" not in other.text
