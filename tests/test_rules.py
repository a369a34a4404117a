"""The pure rules: each skip reason, quiet hours across DST, priorities, and properties that hold for any
order of events (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse import rules
from pulse.rules import Event, Policy, Prior, decide, out_of_quiet_hours

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
POLICY = Policy(
    fatigue_days=30,
    quiet_hours=(time(20), time(8)),
    default_timezone="Europe/Warsaw",
    priority_window=timedelta(hours=1),
)
ZONES = [
    "Europe/Warsaw",
    "Europe/Ljubljana",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
    "America/Santiago",
]


def ev(kind="support_ticket_closed", at=NOW - timedelta(hours=2), key="e1", contact="c1", **extra) -> Event:
    return Event(kind, at, contact, key, extra.pop("email", "a@example.com"), **extra)


def test_each_skip_reason(catalog):
    assert decide(ev("unknown"), [], catalog, POLICY, NOW).reason == "no_survey_for_type"
    assert decide(ev(email=""), [], catalog, POLICY, NOW).reason == "no_email"
    assert decide(ev(opted_out=True), [], catalog, POLICY, NOW).reason == "opted_out"
    assert decide(ev(bounced=True), [], catalog, POLICY, NOW).reason == "bounced"
    assert decide(ev(at=NOW - timedelta(days=8)), [], catalog, POLICY, NOW).reason == "stale_event"
    prior = Prior(1, "nps", "sent", NOW - timedelta(days=29), 30)
    assert decide(ev(), [prior], catalog, POLICY, NOW).reason == "fatigue"
    long_ago = Prior(1, "nps", "sent", NOW - timedelta(days=31), 30)
    assert decide(ev(), [long_ago], catalog, POLICY, NOW).invite
    failed = Prior(1, "nps", "failed", NOW - timedelta(days=1), 30)
    assert decide(ev(), [failed], catalog, POLICY, NOW).invite  # a failed send did not survey anyone


def test_sampling_is_deterministic_and_near_its_rate(catalog):
    outcomes = [decide(ev("purchase", key=f"e{n}", contact=f"c{n}"), [], catalog, POLICY, NOW) for n in range(2000)]
    again = [decide(ev("purchase", key=f"e{n}", contact=f"c{n}"), [], catalog, POLICY, NOW) for n in range(2000)]
    assert [o.reason for o in outcomes] == [o.reason for o in again]
    sampled_out = sum(o.reason == "sampled_out" for o in outcomes) / 2000
    assert 0.45 < sampled_out < 0.55  # NPS samples half


def test_send_time_is_event_plus_delay_moved_out_of_quiet_hours(catalog):
    at = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)  # 09:00 in Warsaw; CSAT waits 60 minutes
    assert decide(ev(at=at), [], catalog, POLICY, at).send_at == at + timedelta(minutes=60)
    late = datetime(2026, 3, 10, 19, 30, tzinfo=UTC)  # 20:30 in Warsaw -> 08:00 the next morning
    decision = decide(ev(at=late, timezone="Europe/Warsaw"), [], catalog, POLICY, late)
    assert decision.send_at == datetime(2026, 3, 11, 7, 0, tzinfo=UTC)
    unknown_zone = decide(ev(at=late, timezone="Mars/Base"), [], catalog, POLICY, late)
    assert unknown_zone.send_at == decision.send_at  # an unknown zone falls back to the default zone


def test_quiet_hours_across_the_dst_change():
    warsaw = ZoneInfo("Europe/Warsaw")
    # the night of 28-29 March 2026: clocks jump from 02:00 to 03:00
    quiet = (time(1, 0), time(2, 30))  # ends inside the skipped hour
    moment = out_of_quiet_hours(datetime(2026, 3, 29, 0, 15, tzinfo=UTC), quiet, warsaw)  # 01:15 CET
    assert moment.astimezone(warsaw).time() >= time(3, 0)
    assert not rules.in_quiet_hours(moment.astimezone(warsaw).time(), quiet)
    autumn = out_of_quiet_hours(datetime(2026, 10, 24, 19, 0, tzinfo=UTC), (time(20), time(8)), warsaw)
    assert autumn == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 08:00 CET after the clocks went back


def test_a_higher_priority_event_close_by_replaces_the_scheduled_one(catalog):
    scheduled_csat = Prior(7, "csat", "scheduled", NOW + timedelta(minutes=30), 20)
    purchase_key = next(f"p{n}" for n in range(100) if rules.sample("nps", "c1", f"p{n}") < 0.5)
    later = decide(
        ev("purchase", key=purchase_key, at=NOW - timedelta(minutes=1440 - 20)), [scheduled_csat], catalog, POLICY, NOW
    )
    assert later.invite and later.survey.id == "nps" and later.supersedes == 7
    lower = Prior(8, "nps", "scheduled", NOW + timedelta(minutes=30), 30)
    assert decide(ev(), [lower], catalog, POLICY, NOW).reason == "fatigue"  # CSAT does not beat NPS


types = st.sampled_from(
    ["support_ticket_closed", "purchase", "renewal", "return_processed", "complaint_closed", "onboarding_visit"]
)
events = st.lists(
    st.tuples(types, st.integers(min_value=0, max_value=200 * 24 * 60), st.sampled_from(ZONES)), min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(events=events, quiet_start=st.integers(0, 23), quiet_length=st.integers(1, 14), fatigue=st.integers(1, 60))
def test_no_two_invitations_inside_the_window_in_any_order(catalog, events, quiet_start, quiet_length, fatigue):
    policy = Policy(
        fatigue_days=fatigue,
        quiet_hours=(time(quiet_start), time((quiet_start + quiet_length) % 24)),
        default_timezone="UTC",
        priority_window=timedelta(hours=2),
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    history: list[Prior] = []
    for number, (kind, minute, zone) in enumerate(events):
        occurred = start + timedelta(minutes=minute)
        now = max(occurred, start + timedelta(minutes=max(m for _, m, _ in events) // 2))  # arrivals out of order
        decision = decide(
            Event(kind, occurred, "c1", f"e{number}", "a@example.com", zone), history, catalog, policy, now
        )
        if decision.invite:
            if decision.supersedes is not None:
                history = [p for p in history if p.invitation_id != decision.supersedes]
            history.append(
                Prior(number, decision.survey.id, "scheduled", decision.send_at, decision.survey.trigger.priority)
            )
            local = decision.send_at.astimezone(ZoneInfo(zone)).time()
            assert not rules.in_quiet_hours(local, policy.quiet_hours)
            assert decision.send_at >= occurred
    times = sorted(p.send_at for p in history)
    assert all(b - a >= timedelta(days=fatigue) for a, b in pairwise(times))


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES),
    start=st.times(),
    end=st.times(),
)
def test_send_time_is_never_inside_quiet_hours(moment, zone, start, end):
    if start == end:
        return
    tz = ZoneInfo(zone)
    moved = out_of_quiet_hours(moment, (start, end), tz)
    assert moved >= moment
    assert not rules.in_quiet_hours(moved.astimezone(tz).time(), (start, end))
    assert moved - moment <= timedelta(hours=25)
