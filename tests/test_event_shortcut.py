"""Plain events skip the field-by-field checks of ingestion; the shortcut must accept exactly what those checks
accept, and store the same values."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.touchpoints import EventIn, _plain_event, checked_event, parse_event

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

texts = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "a", " x ", "support_ticket_closed", "Support", "team.a", "pl", "pl-PL", "xx_YY_zz",
                     "Europe/Warsaw", "a\x00b", "\ud800", "ż", "a" * 65, "a" * 201, 7, 3.5, True, []]),
    st.text(max_size=12),
)  # fmt: skip
emails = st.one_of(
    texts,
    st.sampled_from(["p@example.com", " P@Example.COM ", "p@exämple.com", "ł@example.com", "p@a..com", "p@example",
                     "p@" + "a" * 70 + ".com", "p@x.com\x00", "a b@example.com", "p@\ud800.com", ""]),
)  # fmt: skip
moments = st.one_of(
    st.none(),
    st.sampled_from(["2026-05-30T10:00:00+02:00", "2026-05-30T10:00:00Z", "2026-05-30T10:00:00", "2026-06-01T12:04Z",
                     "2026-06-01T12:06Z", "1899-12-31T23:30:00-01:00", "1900-01-01T00:30:00+01:00", "yesterday", 5]),
)  # fmt: skip
attributes = st.one_of(st.none(), st.just({}), st.just([]), st.just({"plan": "gold"}), st.just(0))


VALID_EVENT = {
    "external_id": "T-1",
    "type": "support_ticket_closed",
    "occurred_at": "2026-05-30T10:00:00+02:00",
    "team": "support-a",
    "channel": "phone",
}
VALID_CONTACT = {"external_id": "C-1", "email": "ann@example.com", "locale": "pl", "timezone": "Europe/Warsaw"}
EVENT_FIELDS = [("external_id", texts), ("source", texts), ("type", texts), ("occurred_at", moments),
                ("team", texts), ("agent", texts), ("channel", texts), ("stage", texts), ("attributes", attributes),
                ("colour", texts)]  # fmt: skip
CONTACT_FIELDS = [("external_id", texts), ("email", emails), ("name", texts), ("locale", texts),
                  ("timezone", texts), ("attributes", attributes), ("nickname", texts)]  # fmt: skip


def _changed(draw: st.DrawFn, valid: dict, strategies: list) -> dict:
    """A valid object with a few fields changed, dropped or added, so that both paths get plenty of each."""
    changed = dict(valid)
    for key, strategy in strategies:
        match draw(st.integers(0, 9)):
            case 0:
                changed[key] = draw(strategy)
            case 1:
                changed.pop(key, None)
    return changed


@st.composite
def events(draw: st.DrawFn) -> dict:
    event = _changed(draw, VALID_EVENT, EVENT_FIELDS)
    if draw(st.integers(0, 19)):
        event["contact"] = _changed(draw, VALID_CONTACT, CONTACT_FIELDS)
    return event


@settings(max_examples=3000, deadline=None)
@given(event=events())
def test_the_shortcut_accepts_only_what_the_checks_accept_and_stores_the_same(event: dict) -> None:
    plain = _plain_event(3, event, NOW)
    checked = checked_event(3, event, NOW)
    if plain is not None:
        assert plain == checked
    assert parse_event(3, event, NOW) == checked


def test_a_plain_event_takes_the_shortcut() -> None:
    event = {
        "external_id": " T-1 ",
        "type": "support_ticket_closed",
        "occurred_at": "2026-05-30T10:00:00+02:00",
        "contact": {"external_id": "C-1", "email": "Ann@Exämple.com", "locale": "pl", "timezone": "Europe/Warsaw"},
        "team": "support-a",
    }
    plain = _plain_event(0, event, NOW)
    assert isinstance(plain, EventIn)
    assert plain == checked_event(0, event, NOW)
    assert (plain.external_id, plain.source, plain.occurred_at) == ("T-1", "api", datetime(2026, 5, 30, 8, tzinfo=UTC))
    assert plain.contact.email == "ann@xn--exmple-cua.com"
