"""The pure decision: given an event, the person's invitation history and the catalog, invite at time T
or skip with a stable reason. No I/O: every input is passed in."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pulse.catalog import Catalog, Survey

# Stable codes, shown by the API and stored on skipped invitations.
NO_SURVEY_FOR_TYPE = "no_survey_for_type"
SAMPLED_OUT = "sampled_out"
FATIGUE = "fatigue"
OPTED_OUT = "opted_out"
BOUNCED = "bounced"
STALE_EVENT = "stale_event"
NO_EMAIL = "no_email"
SUPERSEDED = "superseded"  # a scheduled invitation replaced by a higher-priority one close to it
REASONS = (NO_SURVEY_FOR_TYPE, SAMPLED_OUT, FATIGUE, OPTED_OUT, BOUNCED, STALE_EVENT, NO_EMAIL, SUPERSEDED)

# Invitations that count as "surveyed" for the fatigue window.
ACTIVE_STATUSES = frozenset({"scheduled", "sent", "answered", "expired"})


@dataclass(frozen=True)
class Policy:
    """The organisation's settings the rules need."""

    fatigue_days: int = 30
    quiet_hours: tuple[time, time] | None = (time(20), time(8))
    default_timezone: str = "UTC"
    priority_window: timedelta = timedelta(hours=1)
    sampling_override: float = 1.0


@dataclass(frozen=True)
class Event:
    touchpoint_type: str
    occurred_at: datetime
    contact_key: str
    event_key: str
    email: str
    timezone: str | None = None
    opted_out: bool = False
    bounced: bool = False


@dataclass(frozen=True)
class Prior:
    """An earlier invitation of the same person (any survey, customer or employee)."""

    invitation_id: int | None
    survey_id: str
    status: str
    send_at: datetime
    priority: int = 0


@dataclass(frozen=True)
class Decision:
    survey: Survey | None
    send_at: datetime | None = None
    reason: str | None = None
    supersedes: int | None = None  # the id of a scheduled invitation this one replaces

    @property
    def invite(self) -> bool:
        return self.reason is None


def zone(name: str | None, default: str) -> ZoneInfo:
    """The person's time zone, or the default one when it is unknown or not a real zone."""
    try:
        return ZoneInfo(name) if name else ZoneInfo(default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def in_quiet_hours(local: time, quiet: tuple[time, time]) -> bool:
    start, end = quiet
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `tz`, as UTC; a wall time skipped by DST moves forward past the gap."""
    # fold=0 reads a skipped wall time with the offset before the jump, which lands just after the gap
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def out_of_quiet_hours(when: datetime, quiet: tuple[time, time] | None, tz: ZoneInfo) -> datetime:
    """The first instant at or after `when` that is outside quiet hours in `tz`."""
    if quiet is None:
        return when
    local = when.astimezone(tz)
    if not in_quiet_hours(local.time(), quiet):
        return when
    start, end = quiet
    day = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)  # the quiet night runs past midnight: it ends tomorrow morning
    moment = _local_moment(day, end, tz)
    # a DST jump can land the end itself inside another quiet stretch; step until it does not
    while in_quiet_hours(moment.astimezone(tz).time(), quiet) or moment < when:
        moment += timedelta(minutes=15)
    return moment


def sample(survey_id: str, contact_key: str, event_key: str) -> float:
    """A deterministic number in [0, 1): a replay of the same event decides the same way."""
    digest = hashlib.sha256(f"{survey_id}\x1f{contact_key}\x1f{event_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(event: Event, history: Iterable[Prior], catalog: Catalog, policy: Policy, now: datetime) -> Decision:
    """Invite at a time, or skip with a reason; `history` holds the person's earlier invitations."""
    return Decider(catalog, policy, now).decide(event, history)


class Decider:
    """`decide` for the many events of one batch (same catalog, policy and `now`): what depends only on those,
    on a touchpoint type or on a time zone is worked out once per batch, not once per event."""

    def __init__(self, catalog: Catalog, policy: Policy, now: datetime) -> None:
        self.catalog = catalog
        self.policy = policy
        self.now = now
        self._triggers: dict[str, tuple | None] = {}
        self._zones: dict[str | None, ZoneInfo] = {}
        self._send_at: dict[tuple, datetime] = {}

    def _trigger(self, touchpoint_type: str) -> tuple | None:
        """The first survey for this type and the figures of its trigger, or None when no survey asks."""
        try:
            return self._triggers[touchpoint_type]
        except KeyError:
            pass
        candidates = self.catalog.for_touchpoint(touchpoint_type)
        found = None
        if candidates:
            survey = candidates[0]
            trigger = survey.trigger
            assert trigger is not None
            found = (
                survey,
                trigger,
                timedelta(days=trigger.max_event_age_days),
                trigger.sampling_rate * self.policy.sampling_override,
                timedelta(minutes=trigger.delay_minutes),
                timedelta(days=trigger.fatigue_days if trigger.fatigue_days is not None else self.policy.fatigue_days),
            )
        self._triggers[touchpoint_type] = found
        return found

    def send_at(self, earliest: datetime, timezone: str | None) -> datetime:
        """out_of_quiet_hours(earliest) in the person's zone; most events of a batch share `earliest` (now)."""
        key = (timezone, earliest, earliest.utcoffset())  # equal instants in other offsets print differently
        found = self._send_at.get(key)
        if found is None:
            tz = self._zones.get(timezone)
            if tz is None:
                tz = self._zones[timezone] = zone(timezone, self.policy.default_timezone)
            found = self._send_at[key] = out_of_quiet_hours(earliest, self.policy.quiet_hours, tz)
        return found

    def decide(self, event: Event, history: Iterable[Prior]) -> Decision:
        """Invite at a time, or skip with a reason; `history` holds the person's earlier invitations."""
        found = self._trigger(event.touchpoint_type)
        if found is None:
            return Decision(None, reason=NO_SURVEY_FOR_TYPE)
        survey, trigger, max_age, threshold, delay, window = found
        if not event.email:
            return Decision(survey, reason=NO_EMAIL)
        if event.opted_out:
            return Decision(survey, reason=OPTED_OUT)
        if event.bounced:
            return Decision(survey, reason=BOUNCED)
        now = self.now
        if now - event.occurred_at > max_age:
            return Decision(survey, reason=STALE_EVENT)
        if sample(survey.id, event.contact_key, event.event_key) >= threshold:
            return Decision(survey, reason=SAMPLED_OUT)

        send_at = self.send_at(max(event.occurred_at + delay, now), event.timezone)
        supersedes = None
        for prior in history:
            if prior.status not in ACTIVE_STATUSES or abs(prior.send_at - send_at) >= window:
                continue
            close = abs(prior.send_at - send_at) <= self.policy.priority_window
            if prior.status == "scheduled" and close and trigger.priority > prior.priority and supersedes is None:
                supersedes = prior.invitation_id  # events close together: only the higher-priority survey goes
                continue
            return Decision(survey, reason=FATIGUE)
        return Decision(survey, send_at=send_at, supersedes=supersedes)
