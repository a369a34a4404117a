"""Values that pass a loose check but not the database are refused per event or per row, with a field error, and
the good events and rows of the same batch are stored (API as JSON and CSV, the CSV imports, the roster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pulse.app import create_app
from pulse.models import Contact, DailyRollup, Employee, Response, Touchpoint
from tests.conftest import event, make_key, old_nonce, sent_invitation, survey_url
from tests.test_cli import pulse

PLAN = "p" * 300
SEGMENT_MESSAGE = "contact.attributes.plan must be at most 135 characters (it is a segment of the trends)"


def recent() -> str:
    return (datetime.now(UTC) - timedelta(minutes=90)).isoformat()


@pytest.fixture
async def key(mail_app) -> dict[str, str]:
    secret = await make_key("touchpoints:write", "employees:write")
    return {"authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"contact_locale": "abc-abcdefgh"}, "contact.locale", "contact.locale must be at most 8 characters"),
        ({"contact_name": "Ewa\x00"}, "contact.name", "contact.name must not contain NUL characters"),
        ({"contact_email": "ewa\x00@example.com"}, "contact.email", "contact.email must not contain NUL characters"),
        ({"external_id": "T\x00"}, "external_id", "external_id must not contain NUL characters"),
        ({"agent": "\x00"}, "agent", "agent must not contain NUL characters"),
        ({"attributes": {"note": "a\x00b"}}, "attributes.note", "attributes.note must not contain NUL characters"),
        ({"attributes": {"a\x00": "b"}}, "attributes", "each name in attributes must not contain NUL characters"),
        ({"contact_attributes": {"plan": PLAN}}, "contact.attributes.plan", SEGMENT_MESSAGE),
        # blank once trimmed: as missing as an absent field (it was a 500)
        ({"external_id": " "}, "external_id", "external_id is required"),
        ({"type": "\t "}, "type", "type is required"),
        ({"contact_external_id": "  "}, "contact.external_id", "contact.external_id is required"),
    ],
)
async def test_an_event_the_database_cannot_hold_is_invalid_and_the_others_are_stored(
    mail_client: httpx.AsyncClient, key, changes, field, message
):
    batch = [event(1, occurred_at=recent(), **changes), event(2, occurred_at=recent())]
    reply = await mail_client.post("/api/v1/touchpoints", json=batch, headers=key)
    assert reply.status_code == 202, reply.text
    bad, good = reply.json()["results"]
    assert (bad["status"], bad["errors"]) == ("invalid", [{"field": field, "message": message}])
    assert good["status"] == "invited"
    assert await Touchpoint.filter(external_id="T-2").count() == 1
    assert await Touchpoint.all().count() == 1 and await Contact.all().count() == 1


async def test_a_csv_upload_refuses_a_segment_value_too_long_for_the_rollups(mail_client: httpx.AsyncClient, key):
    csv = (
        "external_id,type,occurred_at,contact_external_id,contact_email,contact_attributes_plan\n"
        f"T-1,support_ticket_closed,{recent()},C-1,one@example.com,{PLAN}\n"
        f"T-2,support_ticket_closed,{recent()},C-2,two@example.com,gold\n"
    )
    headers = {**key, "content-type": "text/csv"}
    reply = await mail_client.post("/api/v1/touchpoints", content=csv.encode(), headers=headers)
    bad, good = reply.json()["results"]
    assert (bad["status"], bad["errors"][0]["message"], good["status"]) == ("invalid", SEGMENT_MESSAGE, "invited")
    assert [c.attributes for c in await Contact.all()] == [{"plan": "gold"}]


async def test_an_answer_is_stored_even_if_a_segment_value_stored_earlier_is_too_long(
    mail_client: httpx.AsyncClient, mail_settings, catalog, org
):
    invitation = await sent_invitation(mail_settings, catalog)
    # stored before the limit existed, or before PULSE_SEGMENT_ATTRIBUTES named it
    await Contact.filter(id=invitation.contact_id).update(attributes={"plan": PLAN, "region": "emea"})
    data = {"score": "4", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}"), "comment": "Fine"}
    reply = await mail_client.post(survey_url(mail_settings, invitation.id), data=data)
    assert reply.status_code == 200, reply.text
    response = await Response.get(invitation_id=invitation.id)
    assert response.confirmed and response.dimensions == {"region": "emea"}
    assert await DailyRollup.filter(dimension="region", value="emea").count() == 1


ROSTER_PROBLEMS = [
    ({"locale": "abc-abcdefgh"}, "locale", "locale must be at most 8 characters"),
    ({"timezone": "Z" * 65}, "timezone", "timezone must be at most 64 characters"),
    ({"external_id": "E" * 201}, "external_id", "external_id must be at most 200 characters"),
    ({"email": "e" * 250 + "@example.com"}, "email", "email must be at most 254 characters"),
    ({"name": "Ewa\x00"}, "name", "name must not contain NUL characters"),
    ({"name": {"first": "Ewa"}}, "name", "name must be a string"),
]


@pytest.mark.parametrize(("changes", "field", "message"), ROSTER_PROBLEMS)
async def test_a_roster_row_the_database_cannot_hold_is_invalid_and_the_others_are_stored(
    mail_client: httpx.AsyncClient, key, org, changes, field, message
):
    rows = [
        {"external_id": "E-1", "email": "ewa@example.com", "team": "support-warsaw", **changes},
        {"external_id": "E-2", "email": "jan@example.com", "team": "support-warsaw"},
    ]
    reply = await mail_client.post("/api/v1/employees", json=rows, headers=key)
    assert reply.status_code == 200, reply.text
    bad, good = reply.json()["results"]
    assert (bad["status"], bad["errors"]) == ("invalid", [{"field": field, "message": message}])
    assert good["status"] == "created"
    assert [e.external_id for e in await Employee.all()] == ["E-2"]


async def test_a_csv_roster_upload_keeps_its_good_rows(mail_client: httpx.AsyncClient, key, org):
    csv = (
        "external_id,email,team,locale,timezone\n"
        "E-1,ewa@example.com,support-warsaw,abc-abcdefgh,Europe/Warsaw\n"
        f"E-2,jan@example.com,support-warsaw,pl,{'Z' * 70}\n"
        "E-3,ola@example.com,support-warsaw,pl,Europe/Warsaw\n"
    )
    reply = await mail_client.post(
        "/api/v1/employees", content=csv.encode(), headers={**key, "content-type": "text/csv"}
    )
    assert [(r["line"], r["status"]) for r in reply.json()["results"]] == [
        (2, "invalid"),
        (3, "invalid"),
        (4, "created"),
    ]
    assert [e.external_id for e in await Employee.all()] == ["E-3"]


async def test_the_csv_imports_report_rows_the_database_cannot_hold_and_store_the_rest(
    database_url, settings, catalog, tmp_path
):
    events = tmp_path / "events.csv"
    events.write_text(
        "external_id,type,occurred_at,contact_external_id,contact_email,contact_locale,contact_attributes_plan\n"
        f"A-1,support_ticket_closed,{recent()},C-1,one@example.com,abc-abcdefgh,gold\n"
        f"A-2,support_ticket_closed,{recent()},C-2,two@example.com,pl,{PLAN}\n"
        f"A-3,support_ticket_closed,{recent()},C-3,three@example.com,pl,gold\n",
        encoding="utf-8",
    )
    imported = pulse("import", "touchpoints", str(events), "--quiet", database_url=database_url)
    assert imported.returncode == 1, imported.stderr
    assert imported.stdout.splitlines() == [
        "3 rows: 1 invited, 0 skipped, 0 duplicate, 2 invalid.",
        "  line 2: contact.locale must be at most 8 characters",
        f"  line 3: {SEGMENT_MESSAGE}",
    ]
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "external_id,email,locale,timezone\n"
        "E-1,ewa@example.com,abc-abcdefgh,Europe/Warsaw\n"
        f"E-2,jan@example.com,pl,{'Z' * 70}\n"
        "E-3,ola@example.com,pl,Europe/Warsaw\n",
        encoding="utf-8",
    )
    loaded = pulse("import", "employees", str(roster), "--quiet", database_url=database_url)
    assert loaded.returncode == 1, loaded.stderr
    assert loaded.stdout.splitlines() == [
        "3 rows: 1 created, 0 updated, 0 deactivated, 0 unchanged, 2 invalid.",
        "  line 2, locale: locale must be at most 8 characters",
        "  line 3, timezone: timezone must be at most 64 characters",
    ]
    async with LifespanManager(create_app(settings, catalog=catalog)):
        assert [t.external_id for t in await Touchpoint.all()] == ["A-3"]
        assert [e.external_id for e in await Employee.all()] == ["E-3"]
