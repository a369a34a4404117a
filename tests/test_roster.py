"""The employee roster: upsert by external id, bad rows reported with line and field, leavers deactivated."""

from __future__ import annotations

from datetime import date

import httpx

from pulse.models import Employee
from pulse.roster import tenure_band
from tests.conftest import make_key

CSV = (
    "external_id,email,name,team,locale,timezone,start_date,location,role_family\n"
    "E-1,ewa@example.com,Ewa Kowalska,support-warsaw,pl,Europe/Warsaw,2021-02-01,Warsaw,Support\n"
    "E-2,not-an-address,Luca,support-milan,it,Europe/Rome,2025-09-01,Milan,Support\n"
    "E-3,marta@example.com,Marta,support-nowhere,pl,,2030-01-01,,\n"
    "E-4,jan@example.com,Jan,support-warsaw,pl,Europe/Warsaw,2025-11-01,Warsaw,Engineering\n"
)


async def test_a_csv_roster_loads_good_rows_and_reports_bad_ones(mail_client: httpx.AsyncClient, org):
    key = {"authorization": f"Bearer {await make_key('employees:write')}", "content-type": "text/csv"}
    reply = await mail_client.post("/api/v1/employees", content=CSV.encode(), headers=key)
    assert reply.status_code == 200
    results = reply.json()["results"]
    assert [(r["line"], r["status"]) for r in results] == [
        (2, "created"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "created"),
    ]
    assert results[1]["errors"] == [{"field": "email", "message": "email is not an e-mail address"}]
    assert results[2]["errors"] == [
        {"field": "team", "message": "team 'support-nowhere' does not exist (create it under Admin → Teams first)"},
        {"field": "start_date", "message": "start_date is in the future"},
    ]
    ewa = await Employee.get(external_id="E-1").select_related("team")
    assert (ewa.team.slug, ewa.locale, ewa.attributes) == (
        "support-warsaw",
        "pl",
        {"location": "Warsaw", "role_family": "Support"},
    )
    assert await Employee.all().count() == 2


async def test_json_upserts_and_deactivates_leavers(mail_client: httpx.AsyncClient, org):
    key = {"authorization": f"Bearer {await make_key('employees:write')}"}
    first = [{"external_id": "E-1", "email": "ewa@example.com", "team": "support-warsaw"}]
    assert (await mail_client.post("/api/v1/employees", json=first, headers=key)).json()["results"][0][
        "status"
    ] == "created"
    again = await mail_client.post("/api/v1/employees", json={"employees": first}, headers=key)
    assert again.json()["results"][0]["status"] == "unchanged"
    moved = await mail_client.post("/api/v1/employees", json=[{**first[0], "team": "support-milan"}], headers=key)
    assert moved.json()["results"][0]["status"] == "updated"
    left = await mail_client.post("/api/v1/employees", json=[{**first[0], "active": False}], headers=key)
    assert left.json()["results"][0]["status"] == "deactivated"
    assert not (await Employee.get(external_id="E-1")).active
    assert (
        await mail_client.post("/api/v1/employees", json=first, headers={"authorization": "Bearer nope"})
    ).status_code == 401
    assert (await mail_client.post("/api/v1/employees", content=b"[", headers=key)).status_code == 400


def test_tenure_is_a_coarse_band():
    today = date(2026, 11, 30)
    assert [
        tenure_band(date(y, m, d), today) for y, m, d in ((2026, 6, 1), (2025, 6, 1), (2023, 1, 1), (2019, 1, 1))
    ] == ["<1y", "1-2y", "2-5y", "5y+"]
    assert tenure_band(None, today) is None
