"""The answer page: a GET records nothing; only a human-paced POST counts; bots are flagged, not counted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import i18n, responses, tokens
from pulse.models import FlaggedAttempt, FollowUpCase, Invitation, OutboxMessage, Response
from tests.conftest import old_nonce, sent_invitation, survey_url


@pytest.fixture
async def invitation(org, mail_settings, catalog):
    return await sent_invitation(mail_settings, catalog)


def subject(invitation) -> str:
    return f"invitation:{invitation.id}"


async def post(client, settings, invitation, score, *, comment=None, nonce=None, honeypot="", json=True):
    data = {"score": str(score), "nonce": nonce or old_nonce(settings, subject(invitation)), "website": honeypot}
    if comment is not None:
        data["comment"] = comment
    headers = {"accept": "application/json"} if json else {}
    return await client.post(survey_url(settings, invitation.id), data=data, headers=headers)


async def test_get_head_and_options_record_nothing(mail_client: httpx.AsyncClient, mail_settings, invitation):
    url = survey_url(mail_settings, invitation.id)
    page = await mail_client.get(f"{url}?score=4")
    assert page.status_code == 200
    assert '<html lang="pl">' in page.text
    assert re.search(r'value="4"\s+checked', page.text)
    assert 'name="nonce"' in page.text and 'name="website"' in page.text
    assert re.search(r'<script src="/static/answer\.[0-9a-f]{12}\.js" defer></script>', page.text)
    csat = mail_client._transport.app.state.catalog.get("csat")  # type: ignore[attr-defined]
    assert csat.band_for(4).why["pl"] in page.text
    assert (await mail_client.head(f"{url}?score=3")).status_code == 200
    assert (await mail_client.options(url)).status_code == 405
    assert await Response.all().count() == 0
    assert (await Invitation.get(id=invitation.id)).status == "sent"
    assert await FlaggedAttempt.all().count() == 0


async def test_a_human_paced_post_records_a_provisional_answer_that_then_counts(
    mail_client, mail_settings, catalog, invitation, org
):
    answer = await post(mail_client, mail_settings, invitation, 2)
    assert answer.status_code == 200
    assert answer.json() == {"status": "saved", "counts": True, "score": 2}
    response = await Response.get(invitation_id=invitation.id)
    assert (response.score, response.confirmed, response.discarded) == (2, False, False)
    assert response.dimensions == {}  # the event had no segment attributes
    assert (response.team_id, response.touchpoint_type, response.channel) == (
        (await invitation.touchpoint).team_id,
        "support_ticket_closed",
        "phone",
    )
    assert (await Invitation.get(id=invitation.id)).status == "answered"
    assert await FollowUpCase.all().count() == 0  # not yet: nothing counts while provisional
    assert await responses.confirm_due(catalog, mail_settings) == 0
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    assert await responses.confirm_due(catalog, mail_settings, now=later) == 1
    assert (await Response.get(id=response.id)).confirmed
    case = await FollowUpCase.get(response_id=response.id)  # CSAT 2 is unhappy
    assert (case.status, case.score, case.survey_id) == ("open", 2, "csat")
    assert case.owner_id == org.warsaw_lead.id  # the team's owner
    [message] = await OutboxMessage.filter(kind="case_opened")
    assert (message.to_email, message.locale) == ("bob@example.com", "pl")


async def test_a_comment_confirms_at_once_and_is_kept_as_given(mail_client, mail_settings, invitation):
    text = 'Nobody called back <script>alert("x")</script> & <img src=x onerror=alert(1)>'
    answer = await post(mail_client, mail_settings, invitation, 1, comment=text, json=False)
    assert answer.status_code == 200
    assert "<script>alert" not in answer.text and "&lt;script&gt;" in answer.text  # escaped on the page
    response = await Response.get(invitation_id=invitation.id)
    assert (response.comment, response.confirmed) == (text, True)
    assert await FollowUpCase.filter(response_id=response.id).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"honeypot": "http://spam.example"}, "honeypot"), ({"nonce": "now"}, "too_fast")],
)
async def test_bot_signals_are_flagged_and_not_counted(mail_client, mail_settings, invitation, kwargs, reason):
    if kwargs.get("nonce") == "now":
        kwargs["nonce"] = tokens.make_nonce(
            mail_settings.secret_key, subject(invitation), datetime.now(UTC).timestamp()
        )
    answer = await post(mail_client, mail_settings, invitation, 5, **kwargs)
    assert answer.status_code == 200  # the same reply as for a person: a script learns nothing
    assert await Response.all().count() == 0
    assert await FlaggedAttempt.filter(reason=reason, invitation_id=invitation.id).count() == 1
    assert (await Invitation.get(id=invitation.id)).status == "sent"


@pytest.mark.parametrize("nonce", ["", "garbage", "invitation:1|0|x.sig"])
async def test_a_post_without_a_valid_nonce_is_400(mail_client, mail_settings, invitation, nonce):
    answer = await post(mail_client, mail_settings, invitation, 5, nonce=nonce or " ")
    assert answer.status_code == 400
    assert answer.json()["error"] == "This form is not valid any more. Reload the page and answer again."
    assert await Response.all().count() == 0
    assert await FlaggedAttempt.filter(reason="bad_nonce").count() == 1


async def test_a_nonce_of_another_invitation_is_refused(mail_client, mail_settings, catalog, invitation):
    other = await sent_invitation(mail_settings, catalog, 2)
    answer = await post(mail_client, mail_settings, invitation, 5, nonce=old_nonce(mail_settings, subject(other)))
    assert answer.status_code == 400
    assert await Response.all().count() == 0


async def test_three_scores_inside_a_second_are_a_flurry_and_never_count(
    mail_client, mail_settings, catalog, invitation
):
    replies = [(await post(mail_client, mail_settings, invitation, score)).json() for score in (1, 5, 3)]
    assert replies[0]["counts"] and not replies[2]["counts"]  # the page is told; it does not say "saved"
    response = await Response.get(invitation_id=invitation.id)
    assert response.discarded and not response.confirmed
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    await responses.confirm_due(catalog, mail_settings, now=later)
    assert not (await Response.get(id=response.id)).confirmed
    assert await FlaggedAttempt.filter(reason="score_flurry").count() == 1
    assert await FollowUpCase.all().count() == 0


async def test_a_person_who_changes_their_mind_has_the_last_score_counted(
    mail_client, mail_settings, catalog, invitation
):
    """9, then 10 a moment later (a tap, then another): a change of mind, not a bot."""
    assert (await post(mail_client, mail_settings, invitation, 4)).json()["counts"]
    response = await Response.get(invitation_id=invitation.id)
    given = datetime.now(UTC) - timedelta(seconds=1.6)
    await Response.filter(id=response.id).update(answered_at=given, updated_at=given)
    reply = await post(mail_client, mail_settings, invitation, 5)
    assert reply.json() == {"status": "saved", "counts": True, "score": 5}
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    await responses.confirm_due(catalog, mail_settings, now=later)
    response = await Response.get(id=response.id)
    assert (response.score, response.confirmed, response.discarded) == (5, True, False)
    assert [h["score"] for h in response.history] == [4]
    assert await FlaggedAttempt.all().count() == 0


async def test_two_quick_changes_are_not_a_flurry(mail_client, mail_settings, catalog, invitation):
    for score in (2, 3):  # two different scores inside a second: still a person correcting a slip
        assert (await post(mail_client, mail_settings, invitation, score)).json()["counts"]
    assert (await Response.get(invitation_id=invitation.id)).score == 3


async def test_a_comment_for_another_band_moves_to_the_history(mail_client, mail_settings, catalog, invitation):
    await post(mail_client, mail_settings, invitation, 1, comment="Nobody called back")
    response = await Response.get(invitation_id=invitation.id)
    await Response.filter(id=response.id).update(updated_at=datetime.now(UTC) - timedelta(minutes=5))
    await post(mail_client, mail_settings, invitation, 5)  # no comment field: the score alone changed
    response = await Response.get(id=response.id)
    assert (response.score, response.comment) == (5, "")
    assert [(h["score"], h["comment"]) for h in response.history] == [(1, "Nobody called back")]


async def test_a_reopened_link_shows_the_stored_answer_and_asks_before_changing_it(
    mail_client, mail_settings, catalog, invitation
):
    await post(mail_client, mail_settings, invitation, 4, comment="Quick and kind")
    url = survey_url(mail_settings, invitation.id)
    page = await mail_client.get(f"{url}?score=2")
    assert re.search(r'value="4"\s+checked', page.text) and not re.search(r'value="2"\s+checked', page.text)
    assert "Quick and kind" in page.text and 'data-stored="4"' in page.text
    prompt = i18n.translate("pl", "You answered %(stored)s. Change to %(proposed)s?", stored=4, proposed=2)
    assert prompt in page.text
    assert (await Response.get(invitation_id=invitation.id)).score == 4  # opening it changed nothing


async def test_the_language_switch_keeps_the_score_and_the_nonce(mail_client, mail_settings, invitation):
    url = survey_url(mail_settings, invitation.id)
    page = await mail_client.get(f"{url}?score=4")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    link = re.search(r'<a href="\?([^"]+)" hreflang="it"', page.text).group(1).replace("&amp;", "&")
    switched = await mail_client.get(f"{url}?{link}")
    assert '<html lang="it">' in switched.text
    assert re.search(r'value="4"\s+checked', switched.text)
    assert f'name="nonce" value="{nonce}"' in switched.text


async def test_the_same_link_changes_the_answer_later_and_history_is_kept(
    mail_client, mail_settings, catalog, invitation
):
    await post(mail_client, mail_settings, invitation, 1, comment="Too slow")
    response = await Response.get(invitation_id=invitation.id)
    case = await FollowUpCase.get(response_id=response.id)
    await Response.filter(id=response.id).update(updated_at=datetime.now(UTC) - timedelta(minutes=10))
    await post(mail_client, mail_settings, invitation, 5, comment="They called back, all good")
    response = await Response.get(id=response.id)
    assert (response.score, response.comment, response.confirmed) == (5, "They called back, all good", True)
    assert [(h["score"], h["comment"]) for h in response.history] == [(1, "Too slow")]
    assert await Response.all().count() == 1  # one response per invitation
    notes = await case.notes.all()
    assert [(n.kind, n.data, n.body) for n in notes] == [
        ("score_changed", {"from": 1, "to": 5, "survey": "csat", "comment": "They called back, all good"}, "")
    ]
    assert (await FollowUpCase.get(id=case.id)).status == "open"  # the case stays for its owner to close


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("11", "score must be between 1 and 5"),
        ("x", "score must be a whole number between 1 and 5"),
        ("", "Choose a score first."),
    ],
)
async def test_a_bad_score_is_400_with_a_sentence(mail_client, mail_settings, invitation, score, message):
    answer = await post(mail_client, mail_settings, invitation, score)
    assert answer.status_code == 400
    assert answer.json()["error"] == message
    assert await Response.all().count() == 0


async def test_tampered_unknown_and_expired_tokens_change_nothing(mail_client, mail_settings, invitation):
    url = survey_url(mail_settings, invitation.id)
    tampered = await mail_client.get(url[:-3] + "abc?score=3", headers={"accept-language": "it"})
    assert tampered.status_code == 404
    assert i18n.translate("it", "Page not found") in tampered.text
    unknown = tokens.make_token(mail_settings.secret_key, "survey", 999999)
    assert (await mail_client.get(f"/s/{unknown}")).status_code == 404
    signer = tokens.URLSafeTimedSerializer(mail_settings.secret_key, salt="pulse.survey").make_signer("pulse.survey")
    signer.get_timestamp = lambda: int((datetime.now(UTC) - timedelta(days=31)).timestamp())
    expired = (
        "/s/"
        + signer.sign(tokens.URLSafeTimedSerializer(mail_settings.secret_key).dump_payload(invitation.id)).decode()
    )
    closed = await mail_client.get(expired)
    assert closed.status_code == 410
    assert i18n.translate("pl", "This survey is closed") in closed.text
    reused = await mail_client.post(
        expired, data={"score": "3", "nonce": old_nonce(mail_settings, subject(invitation))}
    )
    assert reused.status_code == 410
    assert await Response.all().count() == 0
    assert (await Invitation.get(id=invitation.id)).status == "sent"
