"""What an ingest batch reads before it decides. On SQLite every lookup of a batch is made at once, at the start of
its transaction (pulse.touchpoints._Prefetched), for all the batch's events; each step then takes only what it
asks for. These hold the answers to what the lookups one by one gave, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pulse.models import Contact, Employee, Invitation, Team, Touchpoint
from pulse.touchpoints import ingest
from tests.conftest import event

TWO_DAYS_AGO = (datetime.now(UTC) - timedelta(days=2)).isoformat()  # every survey's delay is over: send now


async def test_a_customer_who_is_also_an_employee_is_not_surveyed_right_after_their_pulse(app, catalog, settings):
    employee = await Employee.create(external_id="E-1", email="person1@example.com")
    await Invitation.create(
        survey_id="enps",
        employee=employee,
        locale="pl",
        status="sent",
        send_at=datetime.now(UTC) - timedelta(days=1),
        sent_at=datetime.now(UTC) - timedelta(days=1),
    )
    # person2's address is an employee's too, but their pulse is older than every fatigue window
    other = await Employee.create(external_id="E-2", email="person2@example.com")
    await Invitation.create(
        survey_id="enps", employee=other, locale="pl", status="sent", send_at=datetime.now(UTC) - timedelta(days=400)
    )
    outcomes = await ingest(
        [event(1, occurred_at=TWO_DAYS_AGO), event(2, occurred_at=TWO_DAYS_AGO), event(3, occurred_at=TWO_DAYS_AGO)],
        catalog,
        settings,
    )
    assert [(o.status, o.reason) for o in outcomes] == [("skipped", "fatigue"), ("invited", None), ("invited", None)]


async def test_an_address_changed_by_the_event_is_the_one_matched_to_employees(app, catalog, settings):
    # C-1 is stored with an address no employee has; the event gives them the employee's address
    await ingest([event(1, occurred_at=TWO_DAYS_AGO, contact_email="old@example.com")], catalog, settings)
    employee = await Employee.create(external_id="E-1", email="person1@example.com")
    await Invitation.create(
        survey_id="enps", employee=employee, locale="pl", status="sent", send_at=datetime.now(UTC) - timedelta(days=1)
    )
    [outcome] = await ingest(
        [event(1, external_id="T-later", occurred_at=TWO_DAYS_AGO, type="purchase")], catalog, settings
    )
    assert (outcome.status, outcome.reason) == ("skipped", "fatigue")
    assert (await Contact.get(external_id="C-1")).email == "person1@example.com"


async def test_replays_known_people_and_new_teams_in_one_batch(app, catalog, settings):
    await ingest([event(1, occurred_at=TWO_DAYS_AGO)], catalog, settings)
    outcomes = await ingest(
        [
            event(1, occurred_at=TWO_DAYS_AGO),  # a replay
            event(2, occurred_at=TWO_DAYS_AGO, team="a-team-never-seen"),
            event(2, occurred_at=TWO_DAYS_AGO, team="a-team-never-seen"),  # the same event twice in the batch
            event(3, occurred_at=TWO_DAYS_AGO, contact_external_id="C-1"),  # a known person: fatigue
        ],
        catalog,
        settings,
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("duplicate", None),
        ("invited", None),
        ("duplicate", None),
        ("skipped", "fatigue"),
    ]
    team = await Team.get(slug="a-team-never-seen")
    assert await Touchpoint.filter(team=team).count() == 1
    assert await Touchpoint.all().count() == 3
    # the ids handed out follow the largest stored, with nothing reused
    ids = sorted(await Touchpoint.all().values_list("id", flat=True))
    assert ids == list(range(ids[0], ids[0] + 3))
    invitations = sorted(await Invitation.all().values_list("id", flat=True))
    assert invitations == list(range(invitations[0], invitations[0] + len(invitations)))
