"""Each contact's latest counted answer per survey and team, kept in step with the answers.

The loyalty quadrant asks, per customer, for the latest CSAT and the latest NPS they gave (to the teams a reader
may see). Reading that from every answer costs seconds at a million answers; `loyalty_latest` holds one row per
(contact, survey, team) instead, written in the answer's own transaction like the rollups: when an answer first
counts (`record` from `responses.on_confirmed`) and when a counted answer is given again (`record` from
`responses._apply`). A confirmed answer is never discarded, so no path takes a row away.

Rows are keyed per team as well as per survey, so a manager's view keeps "the latest answer given to my teams"
(what the window query over answers computed), while the organisation-wide view takes the newest of a contact's
rows.
"""

from __future__ import annotations

from pulse import db
from pulse.models import Response

COLUMNS = "contact_id, survey_id, team_id, score, answered_at, day, response_id, updated_at"
_FROM_ANSWERS = (
    "SELECT i.contact_id, r.survey_id, COALESCE(r.team_id, 0) AS team_id, r.score, r.answered_at, r.day, r.id,"
    " r.updated_at FROM response r JOIN invitation i ON i.id = r.invitation_id"
    " WHERE r.confirmed = ? AND r.discarded = ? AND i.contact_id IS NOT NULL AND r.answered_at IS NOT NULL"
)
# A row is replaced only by a newer answer (later answered_at, then higher id) or by the same answer given again:
# an older answer confirmed late by the worker leaves a newer latest alone.
_NEWER = (
    "excluded.response_id = loyalty_latest.response_id"
    " OR excluded.answered_at > loyalty_latest.answered_at"
    " OR (excluded.answered_at = loyalty_latest.answered_at AND excluded.response_id > loyalty_latest.response_id)"
)
_UPSERT = (
    f"INSERT INTO loyalty_latest ({COLUMNS}) {_FROM_ANSWERS} AND r.id = ?"
    " ON CONFLICT (contact_id, survey_id, team_id) DO UPDATE SET score = excluded.score,"
    " answered_at = excluded.answered_at, day = excluded.day, response_id = excluded.response_id,"
    f" updated_at = excluded.updated_at WHERE {_NEWER}"
)


async def record(response: Response) -> None:
    """Make a counted answer its contact's latest for its survey and team, unless a newer one is stored; call
    inside the answer's transaction, after the answer is saved (the row is read back from the database, so what
    is stored is what counts). Answers without a contact (public links) are not about a known customer: no row.

    One INSERT … ON CONFLICT DO UPDATE: two answers of one contact landing at once on PostgreSQL wait for each
    other on the unique key, and the newer one wins whichever commits first.
    """
    if response.invitation_id is None:
        return
    await db.execute(_UPSERT, [True, False, response.id])


async def rebuild() -> int:
    """Recompute the whole table from the counted answers (one set-based statement); returns the rows written."""
    await db.execute("DELETE FROM loyalty_latest")
    await db.execute(
        f"INSERT INTO loyalty_latest ({COLUMNS}) SELECT {COLUMNS.replace('response_id', 'id')} FROM ("  # noqa: S608 - constant text, no input
        f"SELECT t.*, ROW_NUMBER() OVER (PARTITION BY contact_id, survey_id, team_id"
        f" ORDER BY answered_at DESC, id DESC) AS newest FROM ({_FROM_ANSWERS}) t) ranked WHERE newest = 1",
        [True, False],
    )
    [(count,)] = await db.fetch("SELECT COUNT(*) FROM loyalty_latest")
    return count


async def stored() -> set[tuple]:
    """The table as (contact, survey, team, score, response id) rows: what tests compare with a recomputation."""
    rows = await db.fetch("SELECT contact_id, survey_id, team_id, score, response_id FROM loyalty_latest")
    return {tuple(row) for row in rows}


async def expected() -> set[tuple]:
    """The same rows recomputed in Python from every answer: the oracle the table is held to."""
    latest: dict[tuple, tuple] = {}
    rows = await db.fetch(_FROM_ANSWERS.replace("COALESCE(r.team_id, 0) AS team_id", "r.team_id"), [True, False])
    for contact_id, survey_id, team_id, score, answered_at, _, response_id, _ in rows:
        key = (contact_id, survey_id, team_id or 0)
        order = (db.as_datetime(answered_at), response_id)
        if key not in latest or order > latest[key][0]:
            latest[key] = (order, score)
    return {(*key, score, order[1]) for key, (order, score) in latest.items()}
