"""Hostile input on the pages people use (sign-in, reset, dashboards, admin): a 4xx with a sentence, never a 500."""

from __future__ import annotations

import re

import pytest

from pulse.models import CaseNote, User
from tests.conftest import sign_in


async def test_sign_in_and_reset_with_an_address_no_account_can_have(mail_app, org):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as http:
        for email in ("a" * 300 + "@example.com", "alice\x00@example.com"):
            page = await http.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            reply = await http.post("/login", data={"email": email, "password": "x", "csrf_token": token})
            assert reply.status_code == 400, reply.text[:300]
            page = await http.get("/password-reset")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            reply = await http.post("/password-reset", data={"email": email, "csrf_token": token})
            assert reply.status_code == 200  # the same answer as for any unknown address
    assert await User.all().count() == 6  # the personas, nothing more


@pytest.mark.parametrize(
    "path",
    [
        "/contacts?q=%00",
        "/contacts/%00",
        "/contacts/" + "x" * 250,
        "/dashboard/after-sale?team=%00",
        "/dashboard?team=" + "t" * 300,
        "/admin/users/%C2%B2",
    ],
)
async def test_dashboard_addresses_no_row_can_match_are_4xx(mail_app, org, path):
    async with sign_in(mail_app, "alice@example.com") as alice:
        reply = await (alice.post(path, data={}) if path.startswith("/admin/") else alice.get(path))
    assert 400 <= reply.status_code < 500, (path, reply.status_code)


async def test_a_case_note_with_nul_is_refused_and_changes_nothing(mail_app, mail_settings, catalog, org):
    from datetime import UTC, datetime, timedelta

    from pulse.models import FollowUpCase

    case = await FollowUpCase.create(team=org.warsaw, owner=org.warsaw_lead, due_at=datetime.now(UTC) + timedelta(1))
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get(f"/cases/{case.id}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        reply = await alice.post(f"/cases/{case.id}", data={"note": "a\x00b", "csrf_token": token})
    assert 200 <= reply.status_code < 500 and reply.status_code != 303
    assert await CaseNote.filter(case_id=case.id).count() == 0
