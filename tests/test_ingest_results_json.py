"""The 202 of an ingest is written without a dict per event; it must be the bytes JSONResponse makes of
{"results": [outcome.as_json(), ...]}."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from pulse.touchpoints import Outcome, results_json

moments = st.one_of(
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(0))])),
)
outcomes = st.builds(
    Outcome,
    index=st.integers(min_value=0, max_value=999),
    external_id=st.one_of(
        st.text(), st.text(), st.integers(), st.none(), st.floats(allow_nan=False, allow_infinity=False), st.just([1])
    ),
    status=st.sampled_from(["invited", "skipped", "duplicate", "invalid", "pending"]),
    reason=st.one_of(st.none(), st.sampled_from(["fatigue", "sampled_out", "erased", "opted_out"])),
    invitation_id=st.one_of(st.none(), st.integers(min_value=1, max_value=2**63 - 1)),
    send_at=moments,
    survey=st.one_of(st.none(), st.sampled_from(["csat", "nps", "ces"]), st.text(max_size=5)),
    errors=st.one_of(st.just([]), st.just([{"field": "type", "message": "type is required"}])),
)


def expected(items: list[Outcome]) -> bytes:
    return JSONResponse({"results": [o.as_json() for o in items]}).body


@given(st.lists(outcomes, max_size=30))
def test_results_json_is_what_json_response_renders(items):
    assert results_json(items) == expected(items)


def test_results_json_of_a_typical_batch():
    send_at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    items = [
        Outcome(0, "T-1", "invited", None, 7, send_at, "csat"),
        Outcome(1, 'quote " back \\ slash \n ż \u2028 \x01', "skipped", "fatigue", 8, None, "csat"),
        Outcome(2, "T-1", "duplicate"),
        Outcome(3, 17, "invalid", errors=[{"field": "type", "message": "type is required"}]),
        Outcome(4, "T-5", "skipped", "no_survey_for_type", None, None, None),
        Outcome(5, "T-6", "invited", None, 9, send_at + timedelta(hours=1), "nps"),
    ]
    assert results_json(items) == expected(items)
    assert results_json([]) == b'{"results":[]}'
