"""A determined reader against employee anonymity, black-box: a roster built to be attacked, rounds run through
the real worker, e-mails and answer pages, then every attack the API, the HR page and a manager's page allow.

The roster: support-warsaw (11, Warsaw) holds a role family of 6 and is all but one person of the Warsaw
location (one salesperson sits there too); support-milan and two people in customer-care itself; sales below
the comment threshold; a joiner and a leaver between the rounds.
"""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pulse import engagement
from pulse.models import Employee, FlaggedAttempt, Invitation, OutboxMessage, PulseAnswer, PulseRound, Team
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import make_key, persona, sign_in

ROSTER = (
    # external id prefix, team, location, role family, how many
    ("W-LEAD", "support-warsaw", "Warsaw", "Specialist", 6),
    ("W-SUP", "support-warsaw", "Warsaw", "Support", 5),
    ("M", "support-milan", "Milan", "Support", 6),
    ("C", "customer-care", "Milan", "Support", 2),
    ("S-ROME", "sales", "Rome", "Sales", 7),
    ("S-WAW", "sales", "Warsaw", "Sales", 1),
)
BY = ("team", "location", "role_family", "tenure")


async def load_roster() -> None:
    await Team.create(slug="sales", name="Sales")
    teams = {t.slug: t for t in await Team.all()}
    for prefix, slug, location, role, count in ROSTER:
        for i in range(count):
            await Employee.create(
                external_id=f"{prefix}-{i}",
                email=f"{prefix.lower()}-{i}@example.com",
                team=teams[slug],
                locale="en",
                timezone="Europe/Warsaw",
                start_date=(datetime.now(UTC) - timedelta(days=400 + 30 * i)).date(),
                attributes={"location": location, "role_family": role},
            )


async def run_round(app, settings, catalog, smtp, now: datetime) -> dict[str, dict]:
    """Open a round, send its e-mails through SMTP, let every invited person answer from the e-mail's link as
    a person does (load the page, answer after a few seconds), and close the round. Returns who said what."""
    await engagement.run_schedule(catalog, settings, now=now)
    await OutboxMessage.filter(status="pending").update(next_attempt_at=datetime.now(UTC))  # the round's day is here
    smtp.received.clear()
    dispatcher = Dispatcher(settings, catalog, environment())
    while await dispatcher.step():
        pass
    await dispatcher.close()
    answers = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        pages = {}
        for mail in list(smtp.received):
            link = re.search(r"http://testserver(/p/[^\s\"<]+)", mail.get_body(("plain",)).get_content()).group(1)
            page = await client.get(link)
            assert page.status_code == 200
            pages[mail["To"]] = (link, re.search(r'name="nonce" value="([^"]+)"', page.text).group(1))
        await asyncio.sleep(1.1)  # a person reads before answering
        pulse_round = await PulseRound.filter(status="open").get()
        for address, (link, nonce) in pages.items():
            person = await Employee.get(email=address)
            score = 3 + len(person.external_id) % 7  # varied scores, known to the test only
            answers[person.external_id] = {"score": score, "comment": f"note by {person.external_id}"}
            data = {f"q_{q}": str(score) for q in pulse_round.questions} | {
                "nonce": nonce,
                f"c_{pulse_round.questions[0]}": answers[person.external_id]["comment"],
            }
            assert (await client.post(link, data=data)).status_code == 200
    survey = engagement.programme(catalog)
    await engagement.run_schedule(catalog, settings, now=now + timedelta(days=survey.schedule.open_days))
    assert (await PulseRound.get(id=pulse_round.id)).status == "closed"
    assert len(answers) == await Employee.filter(active=True).count()
    return answers


async def members(external_ids) -> dict[str, set[str]]:
    """Each published group's respondents, as an attacker with the roster can work out."""
    groups: dict[str, set[str]] = {"company": set()}
    teams = {t.id: t for t in await Team.all()}
    for person in await Employee.filter(external_id__in=list(external_ids)):
        keys = ["company"]
        team = teams[person.team_id]
        while team is not None:
            keys.append(f"team:{team.slug}")
            team = teams.get(team.parent_id)
        keys += [f"location:{person.attributes['location']}", f"role_family:{person.attributes['role_family']}"]
        for key in keys:
            groups.setdefault(key, set()).add(person.external_id)
    return groups


def subtractions(shown: dict[str, set[str]]):
    """Every whole minus every family of disjoint shown groups inside it: the people left over."""
    for whole, people in shown.items():
        inside = [g for g in shown if g != whole and shown[g] <= people]

        def walk(start, union, taken, whole=whole, people=people, inside=inside):
            if taken:
                yield whole, taken, people - union
            for i in range(start, len(inside)):
                if not (union & shown[inside[i]]):
                    yield from walk(i + 1, union | shown[inside[i]], (*taken, inside[i]))

        yield from walk(0, set(), ())


@pytest.mark.parametrize("k", [5, 6])
async def test_no_attack_isolates_fewer_than_k(mail_app, mail_settings, catalog, org, smtp, k):
    mail_app.state.settings = settings = mail_settings.replace(anonymity_min_group=k)
    await load_roster()
    survey = engagement.programme(catalog)
    now = datetime.now(UTC)
    said = {1: await run_round(mail_app, settings, catalog, smtp, now)}
    await Employee.filter(external_id="S-ROME-0").update(active=False)  # a leaver
    await Employee.create(  # a joiner in Milan
        external_id="M-NEW",
        email="m-new@example.com",
        team=await Team.get(slug="support-milan"),
        locale="en",
        start_date=now.date(),
        attributes={"location": "Milan", "role_family": "Support"},
    )
    said[2] = await run_round(mail_app, settings, catalog, smtp, now + timedelta(days=survey.schedule.every_days))

    key = {"authorization": f"Bearer {await make_key('engagement:read', 'responses:read')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as api:
        # 1. no answer of an employee is listed one by one, in JSON or CSV, under any filter
        listed = (await api.get("/api/v1/responses?limit=1000", headers=key)).json()["responses"]
        assert listed == []
        refused = await api.get("/api/v1/responses?survey=enps", headers=key)
        assert refused.status_code == 400 and "anonymity" in refused.json()["error"]
        csv = await api.get("/api/v1/responses.csv", headers=key)
        assert not any(f"note by {p}" in csv.text for p in said[1])

        numbers_checked = comments_checked = 0
        for number in (1, 2):
            people = await members(said[number])
            rounds = (await api.get("/api/v1/engagement/rounds", headers=key)).json()["rounds"]
            questions = next(r["questions"] for r in rounds if r["number"] == number)
            for question in questions:
                # 3. numbers: every cut of every dimension, subtracted from every other
                shown: dict[str, set[str]] = {}
                for by in BY:
                    url = f"/api/v1/engagement/results?round={number}&question={question}&by={by}"
                    for group in (await api.get(url, headers=key)).json()["groups"]:
                        name = "company" if group["group"] == "company" else f"{by}:{group['group']}"
                        if group["suppressed"]:
                            assert set(group) == {"group", "suppressed"}
                            continue
                        assert group["n"] >= k
                        if name in people:
                            assert group["n"] == len(people[name])
                            shown[name] = people[name]
                for whole, family, left in subtractions(shown):
                    assert len(left) == 0 or len(left) >= k, (number, question, whole, family, sorted(left))
                    numbers_checked += 1
                assert "location:Warsaw" not in shown or "team:support-warsaw" not in shown
            # 4. comment lists: company and each team, subtracted from each other
            lists: dict[str, set[str]] = {}
            for group in ["company", *(g for g in people if g.startswith("team:"))]:
                reply = (await api.get(f"/api/v1/engagement/comments?round={number}&group={group}", headers=key)).json()
                if not reply["suppressed"]:
                    authors = {c.removeprefix("note by ") for c in reply["comments"]}
                    assert authors == people[group]
                    lists[group] = authors
            for whole, family, left in subtractions(lists):
                assert len(left) == 0 or len(left) >= settings.anonymity_min_comments, (whole, family, sorted(left))
                comments_checked += 1
            assert "company" in lists  # the company's comments are shown; sales (8) cannot be derived from them
        assert numbers_checked and comments_checked

    # 2. nothing stored links an answer to a person: no time, no invitation, ids in no order
    columns = set(PulseAnswer._meta.db_fields)
    assert columns == {"id", "round_id", "question_id", "score", "comment", "team_id", "dimensions"}
    ids = [a.id for a in await PulseAnswer.all()]
    assert len({i.version for i in ids}) == 1 and ids[0].version == 4  # random, not sequential
    assert await FlaggedAttempt.filter(invitation_id__isnull=False).count() == 0
    [mail] = [m for m in smtp.received if m["To"] == "w-lead-0@example.com"]
    token = re.search(r"/p/([^\s\"<]+)", mail.get_body(("plain",)).get_content()).group(1)
    invitation = await Invitation.get(employee__external_id="W-LEAD-0", round__number=2)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert str(invitation.id).encode() not in decoded and str(invitation.id) not in token
    assert invitation.token_hash and token not in (invitation.token_hash or "")


async def test_managers_see_their_own_teams_only(mail_app, mail_settings, catalog, org, smtp):
    await load_roster()
    await run_round(mail_app, mail_settings, catalog, smtp, datetime.now(UTC))
    async with sign_in(mail_app, "hana@example.com") as hana:
        hr_page = (await hana.get("/engagement")).text
    assert "Support Milan" in hr_page  # HR sees every team, by name (the control for the assertions below)
    async with sign_in(mail_app, "bob@example.com") as bob:  # manager of support-warsaw
        page = await bob.get("/engagement")
    assert page.status_code == 200
    for other in ("support-milan", "Support Milan", "customer-care", "Customer Care", "sales", "Sales"):
        assert other not in page.text, other  # not in the table, the driver heatmap or the scatter
    assert "Support Warsaw" in page.text
    heatmap = page.text.split('class="table heatmap"')[1].split("</table>")[0]
    header = re.findall(r'<th scope="col">([^<]*)</th>', heatmap)
    rows = heatmap.split("<tbody>")[1].split("</tr>")[:-1]
    assert header[2:] == ["Support Warsaw"] and rows  # the company baseline, then the manager's team
    assert all(row.count("<td") == len(header) - 1 for row in rows)  # one cell per column

    await persona("nobody@example.com", "manager", "Nadia Noteam")
    async with sign_in(mail_app, "nobody@example.com") as nadia:
        page = await nadia.get("/engagement")
    for team in (
        "support-warsaw",
        "Support Warsaw",
        "support-milan",
        "Support Milan",
        "customer-care",
        "Sales",
        "eNPS",
    ):
        assert team not in page.text
