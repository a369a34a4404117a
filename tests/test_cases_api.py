"""The API for the CRM: cases (read, update), responses with cursor pagination, a contact's timeline."""

from __future__ import annotations

import httpx
import pytest

from pulse.models import FollowUpCase
from tests.conftest import make_key, old_nonce, sent_invitation, survey_url


async def answer(client, settings, invitation, score, comment="x"):
    data = {"score": str(score), "comment": comment, "nonce": old_nonce(settings, f"invitation:{invitation.id}")}
    assert (
        await client.post(survey_url(settings, invitation.id), data=data, headers={"accept": "application/json"})
    ).status_code == 200


@pytest.fixture
async def answered(mail_client, mail_settings, catalog, org):
    for number, score in enumerate((1, 5, 2), start=1):
        invitation = await sent_invitation(mail_settings, catalog, number)
        await answer(mail_client, mail_settings, invitation, score, f"comment {number}")
    return org


def auth(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


async def test_cases_list_filters_and_pages(mail_client: httpx.AsyncClient, answered):
    key = await make_key("cases:read")
    everything = (await mail_client.get("/api/v1/cases", headers=auth(key))).json()
    assert [c["score"] for c in everything["cases"]] == [1, 2]
    assert everything["cases"][0]["owner"] == "bob@example.com" and everything["cases"][0]["team"] == "support-warsaw"
    first = (await mail_client.get("/api/v1/cases?limit=1", headers=auth(key))).json()
    second = (await mail_client.get(f"/api/v1/cases?limit=1&cursor={first['next_cursor']}", headers=auth(key))).json()
    assert [c["score"] for c in first["cases"] + second["cases"]] == [1, 2] and second["next_cursor"] is None
    assert (await mail_client.get("/api/v1/cases?team=customer-care", headers=auth(key))).json()["cases"]  # subtree
    assert (await mail_client.get("/api/v1/cases?team=support-milan", headers=auth(key))).json()["cases"] == []
    assert (await mail_client.get("/api/v1/cases?overdue=true", headers=auth(key))).json()["cases"] == []
    for bad, message in (
        ("status=lost", "status must be one of open, in_progress, resolved, closed_no_action."),
        ("team=nope", "No team has the slug 'nope'."),
        ("overdue=maybe", "overdue must be true or false."),
        ("cursor=%%%", "cursor is not valid: pass back the next_cursor of the previous page."),
        ("limit=0", "limit must be a whole number from 1 to 1000."),
    ):
        reply = await mail_client.get(f"/api/v1/cases?{bad}", headers=auth(key))
        assert (reply.status_code, reply.json()["error"]) == (400, message)
    orphans = (await mail_client.get("/api/v1/cases/orphans", headers=auth(key))).json()
    assert orphans == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}


async def test_a_case_is_read_and_updated(mail_client: httpx.AsyncClient, answered):
    reader, writer = await make_key("cases:read"), await make_key("cases:write")
    case = await FollowUpCase.filter(score=1).first()
    url = f"/api/v1/cases/{case.id}"
    detail = (await mail_client.get(url, headers=auth(reader))).json()
    assert (detail["status"], detail["comment"], detail["notes"]) == ("open", "comment 1", [])
    assert (await mail_client.patch(url, json={"status": "resolved"}, headers=auth(reader))).status_code == 403
    updated = await mail_client.patch(
        url, json={"status": "in_progress", "note": "Calling back", "owner": "carol@example.com"}, headers=auth(writer)
    )
    assert updated.status_code == 200
    body = updated.json()
    assert (body["status"], body["owner"]) == ("in_progress", "carol@example.com")
    assert [n["body"] for n in body["notes"]] == [
        "Status: open → in_progress.",
        "Owner: carol@example.com.",
        "Calling back",
    ]
    for payload, status, message in (
        ({"status": "archived"}, 400, "status must be one of open, in_progress, resolved, closed_no_action."),
        ({"owner": "nobody@example.com"}, 400, "No active user has the e-mail nobody@example.com."),
        ({"colour": "red"}, 400, "Unknown field colour: a case takes status, owner and note."),
        ({"note": ""}, 400, "A note cannot be empty."),
    ):
        reply = await mail_client.patch(url, json=payload, headers=auth(writer))
        assert (reply.status_code, reply.json()["error"]) == (status, message)
    assert (await mail_client.patch(url, content=b"nope", headers=auth(writer))).status_code == 400
    assert (await mail_client.get("/api/v1/cases/999999", headers=auth(reader))).status_code == 404
    assert (await FollowUpCase.get(id=case.id)).status == "in_progress"  # the bad requests changed nothing


async def test_responses_page_with_a_cursor(mail_client: httpx.AsyncClient, answered):
    key = await make_key("responses:read")
    first = (await mail_client.get("/api/v1/responses?survey=csat&limit=2", headers=auth(key))).json()
    rest = (await mail_client.get(f"/api/v1/responses?cursor={first['next_cursor']}", headers=auth(key))).json()
    scores = [r["score"] for r in first["responses"] + rest["responses"]]
    assert scores == [1, 5, 2] and rest["next_cursor"] is None
    assert first["responses"][0]["team"] == "support-warsaw"
    assert (await mail_client.get("/api/v1/responses?survey=nps2", headers=auth(key))).status_code == 400
    assert (await mail_client.get("/api/v1/responses?since=yesterday", headers=auth(key))).status_code == 400
    future = (await mail_client.get("/api/v1/responses?since=2999-01-01", headers=auth(key))).json()
    assert future["responses"] == []


async def test_a_contacts_timeline_is_in_time_order(mail_client: httpx.AsyncClient, answered):
    key = await make_key("responses:read")
    timeline = (await mail_client.get("/api/v1/contacts/C-1/timeline", headers=auth(key))).json()
    assert timeline["contact"]["external_id"] == "C-1"
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds == ["touchpoint", "invitation", "response", "case"]
    assert timeline["events"][2]["comment"] == "comment 1"
    assert (await mail_client.get("/api/v1/contacts/nobody/timeline", headers=auth(key))).status_code == 404
