"""Hostile requests get a 4xx with a sentence, never a 500: dates at the ends of the calendar, JSON that is
malformed in the ways a parser chokes on, digits that are not ASCII, numbers too large for a column, and a bad
export parameter that used to be noticed only after the 200 was sent."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse.models import CaseNote, FollowUpCase, Touchpoint
from tests.conftest import event, make_key, old_nonce, sent_invitation, sign_in, survey_url

SCOPES = ("touchpoints:write", "employees:write", "cases:read", "cases:write", "analytics:read", "responses:read")
DATES = "a date from 1900-01-01 to 2999-12-31"


@pytest.fixture
async def http(mail_app) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a crash as the 500 a real client gets, not as an exception."""
    transport = httpx.ASGITransport(app=mail_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def key(mail_app) -> dict[str, str]:
    return {"authorization": f"Bearer {await make_key(*SCOPES, 'engagement:read')}"}


def recent() -> str:
    return (datetime.now(UTC) - timedelta(minutes=90)).isoformat()


async def test_an_occurred_at_that_underflows_in_utc_is_an_invalid_event(http, key):
    batch = [event(1, occurred_at="0001-01-01T00:30:00+01:00"), event(2, occurred_at=recent())]
    reply = await http.post("/api/v1/touchpoints", json=batch, headers=key)
    assert reply.status_code == 202, reply.text
    bad, good = reply.json()["results"]
    assert bad["errors"] == [{"field": "occurred_at", "message": "occurred_at must not be before 1900-01-01"}]
    assert good["status"] == "invited"
    assert await Touchpoint.all().count() == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v1/trends?survey=nps&to=0001-01-01", f"to must be {DATES}, not '0001-01-01'."),
        ("/api/v1/trends?survey=nps&from=9999-12-31", f"from must be {DATES}, not '9999-12-31'."),
        ("/api/v1/insights/lifecycle?survey=nps&to=0001-01-01", f"to must be {DATES}, not '0001-01-01'."),
        ("/api/v1/insights/lifecycle?survey=nps&from=9999-12-31", f"from must be {DATES}, not '9999-12-31'."),
        (
            "/api/v1/trends/compare?survey=nps&a=0001-01-01..0001-01-02&b=2026-01-01..2026-02-01",
            f"a (start) must be {DATES}, not '0001-01-01'.",
        ),
        (
            "/api/v1/responses?since=0001-01-01T00:30:00%2B01:00",
            "since must be a date or date-time from 1900-01-01 to 2999-12-31, not '0001-01-01T00:30:00+01:00'.",
        ),
        ("/api/v1/responses.csv?until=9999-12-31", f"until must be {DATES}, not '9999-12-31'."),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_400(http, key, url, message):
    reply = await http.get(url, headers=key)
    assert (reply.status_code, reply.json()["error"]) == (400, message)


@pytest.mark.parametrize(
    "query",
    ["to=0001-01-01", "from=9999-12-31&to=9999-12-31", "to=9999-12-31", "from=0001-01-01"],
)
@pytest.mark.parametrize("page", ["/dashboard", "/dashboard/breakdown", "/dashboard/after-sale"])
async def test_dashboard_date_filters_at_the_ends_of_the_calendar_are_400(mail_app, org, page, query):
    async with sign_in(mail_app, "alice@example.com") as alice:
        reply = await alice.get(f"{page}?{query}")
    assert reply.status_code == 400, reply.text[:200]


@pytest.mark.parametrize("page", ["/dashboard", "/dashboard/breakdown"])
async def test_a_dashboard_window_in_digits_that_are_not_ascii_is_400(mail_app, org, page):
    async with sign_in(mail_app, "alice@example.com") as alice:
        for window in ("%C2%B2d", "%D9%A3d", "99999999999999999999d"):
            assert (await alice.get(f"{page}?window={window}")).status_code == 400, window


BODIES = [
    (b'[{"external_id": "\\ud800"}]', "The body has a lone surrogate (\\ud800), which is not a character."),
    (b'{"a": "\\udfff x"}', "The body has a lone surrogate (\\udfff), which is not a character."),
    (b"[" * 30_000 + b"]" * 30_000, "The body is nested more than 16 levels deep."),
    (b"[" * 100_000 + b"]" * 100_000, "The body is nested more than 16 levels deep."),
    (b'{"a":' * 17 + b"1" + b"}" * 17, "The body is nested more than 16 levels deep."),
    (b'[{"external_id": ' + b"1" * 4301 + b"}]", "The body has a number of more than 100 digits."),
    (b'[{"external_id": 1e999}]', "The body has a number that is too large."),
    (b'[{"external_id": NaN}]', "The body has NaN, which is not a JSON number."),
]


@pytest.mark.parametrize(("body", "message"), BODIES)
@pytest.mark.parametrize("path", ["/api/v1/touchpoints", "/api/v1/employees"])
async def test_json_a_parser_chokes_on_is_400_with_a_sentence(http, key, path, body, message):
    reply = await http.post(path, content=body, headers={**key, "content-type": "application/json"})
    assert (reply.status_code, reply.json()["error"]) == (400, message)


@pytest.fixture
async def case(mail_client, mail_settings, catalog, org) -> FollowUpCase:
    invitation = await sent_invitation(mail_settings, catalog)
    data = {"score": "1", "comment": "slow", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    assert (await mail_client.post(survey_url(mail_settings, invitation.id), data=data)).status_code == 200
    return await FollowUpCase.get()


@pytest.mark.parametrize(("body", "message"), BODIES[:3])
async def test_a_case_update_with_such_json_is_400_and_changes_nothing(http, key, case, body, message):
    reply = await http.patch(f"/api/v1/cases/{case.id}", content=body, headers=key)
    assert (reply.status_code, reply.json()["error"]) == (400, message)
    assert await CaseNote.all().count() == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"note": "call back\x00"}, "note must not contain NUL characters."),
        ({"owner": "x" * 300 + "@example.com"}, "owner must be at most 254 characters."),
        ({"owner": "bob\x00@example.com"}, "owner must not contain NUL characters."),
    ],
)
async def test_a_case_update_the_database_cannot_hold_is_400(http, key, case, changes, message):
    reply = await http.patch(f"/api/v1/cases/{case.id}", json=changes, headers=key)
    assert (reply.status_code, reply.json()["error"]) == (400, message)
    assert await CaseNote.all().count() == 0


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/v1/cases?limit=%C2%B2", 400, "limit must be a whole number from 1 to 1000."),
        ("/api/v1/cases?limit=%D9%A3", 400, "limit must be a whole number from 1 to 1000."),
        ("/api/v1/responses?limit=99999999999999999999", 400, "limit must be a whole number from 1 to 1000."),
        ("/api/v1/insights/loyalty-quadrant?limit=%C2%B2", 400, "limit must be a whole number from 0 to 1000."),
        (
            f"/api/v1/cases?cursor={cursor('after:٣')}",
            400,
            "cursor is not valid: pass back the next_cursor of the previous page.",
        ),
        (
            f"/api/v1/responses?cursor={cursor('after:99999999999999999999')}",
            400,
            "cursor is not valid: pass back the next_cursor of the previous page.",
        ),
        ("/api/v1/cases/%C2%B2", 404, "No case has the id ²."),
        ("/api/v1/cases/99999999999999999999", 404, "No case has the id 99999999999999999999."),
        ("/api/v1/engagement/results?round=%C2%B2", 400, "round must be a whole number from 1 to 2147483647."),
        (
            "/api/v1/engagement/results?round=99999999999999999999",
            400,
            "round must be a whole number from 1 to 2147483647.",
        ),
        ("/api/v1/trends?survey=nps&window=%C2%B2d", 400, "window must be a number of days such as 28d (1d to 730d)."),
        ("/api/v1/cases?team=" + "t" * 300, 400, "team must be at most 64 characters."),
        ("/api/v1/cases?team=%00", 400, "team must not contain NUL characters."),
        ("/api/v1/contacts/%00/timeline", 400, "external_id must not contain NUL characters."),
        ("/api/v1/contacts/" + "c" * 201 + "/timeline", 400, "external_id must be at most 200 characters."),
        ("/api/v1/trends?survey=nps&team=%00", 400, "team must not contain NUL characters."),
        ("/api/v1/trends?survey=nps&plan=%00", 400, "plan must not contain NUL characters."),
        ("/api/v1/responses.csv?team=nope", 400, "No team has the slug 'nope'."),
        ("/api/v1/responses.csv?team=%00", 400, "team must not contain NUL characters."),
    ],
)
async def test_numbers_and_text_in_the_address_are_checked_before_use(http, key, url, status, message):
    reply = await http.get(url, headers=key)
    assert (reply.status_code, reply.json()["error"]) == (status, message)


async def test_a_case_page_with_a_digit_that_is_not_ascii_is_404(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        for raw in ("%C2%B2", "%D9%A3", "99999999999999999999"):
            assert (await alice.get(f"/cases/{raw}")).status_code == 404


async def test_a_survey_score_in_digits_that_are_not_ascii_is_refused(http, mail_settings, catalog, org):
    from pulse.models import Response

    invitation = await sent_invitation(mail_settings, catalog)
    for raw in ("٣", "²", "+3", "3_0", " 3"):
        data = {"score": raw, "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
        reply = await http.post(survey_url(mail_settings, invitation.id), data=data)
        assert reply.status_code == 400, raw
    assert await Response.all().count() == 0


async def test_a_comment_with_a_nul_character_is_refused(http, mail_settings, catalog, org):
    from pulse.models import Response

    invitation = await sent_invitation(mail_settings, catalog)
    data = {"score": "3", "comment": "bad\x00", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    reply = await http.post(survey_url(mail_settings, invitation.id), data=data)
    assert reply.status_code == 400
    assert await Response.all().count() == 0


async def test_a_pulse_score_in_digits_that_are_not_ascii_is_not_an_answer(http, mail_settings, catalog, org):
    from pulse import engagement
    from pulse.models import Employee, Invitation, PulseAnswer, PulseRound
    from tests.conftest import pulse_link

    await Employee.create(external_id="E1", email="e1@example.com", team=org.warsaw, locale="pl")
    await engagement.run_schedule(catalog, mail_settings)
    [pulse_round] = await PulseRound.all()
    [invitation] = await Invitation.filter(round_id=pulse_round.id)
    url, subject = pulse_link(mail_settings, invitation.id)
    for raw, comment in (("²", ""), ("٣", ""), ("8", "bad\x00")):
        data = {f"q_{q}": raw for q in pulse_round.questions} | {
            "nonce": old_nonce(mail_settings, subject),
            "c_recommend_workplace": comment,
        }
        reply = await http.post(url, data=data)
        assert reply.status_code == 400, raw
    assert await PulseAnswer.all().count() == 0


@pytest.mark.parametrize(
    "secret", [b"pulse_" + b"a" * 50 + b"_x", b"pulse_\xe9\xe9_" + b"x" * 5000, b"pulse_ab_" + b"\x7f" * 3]
)
async def test_an_api_key_of_any_shape_is_a_401(http, secret):
    reply = await http.get("/api/v1/cases", headers={"authorization": b"Bearer " + secret})
    assert (reply.status_code, reply.json()["error"]) == (401, "This API key is not valid, or it has been revoked.")


@pytest.mark.parametrize("query", ["team=support%00", "ref=receipt%00"])
async def test_a_public_link_whose_team_or_ref_cannot_be_stored_is_400(http, mail_settings, org, query):
    from pulse.models import Response

    data = {"score": "5", "nonce": old_nonce(mail_settings, "link:csat")}
    reply = await http.post(f"/l/csat?{query}", data=data)
    assert reply.status_code == 400
    assert await Response.all().count() == 0
