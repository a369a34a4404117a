"""Each contact's latest counted answer per survey and team, kept in step with the answers.

The loyalty quadrant asks, per customer, for the latest CSAT and the latest NPS they gave (to the teams a reader
may see). Reading that from every answer costs seconds at a million answers; `loyalty_latest` holds one row per
(contact, survey, team) instead, written in the answer's own transaction like the rollups: when an answer first
counts (`record` from `responses.on_confirmed`) and when a counted answer is given again (`record` from
`responses._apply`). A confirmed answer is never discarded, so no path takes a row away.

Rows are keyed per team as well as per survey, so a manager's view keeps "the latest answer given to my teams"
(what the window query over answers computed), while the organisation-wide view takes the newest of a contact's
rows.

`loyalty_standing` is what the quadrant reads: per scope (0 = the whole organisation, or a team with its
sub-teams, what a dashboard's team filter shows) and contact, the latest CSAT and NPS given in that scope and the
quadrant they make. `record` recomputes a contact's rows from their few `loyalty_latest` rows in the same
transaction, so counts are a GROUP BY over an index range and a page of the list is a range with LIMIT.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from pulse import db
from pulse.models import Response

KINDS = ("csat", "nps")
STANDING_COLUMNS = (
    "scope_id", "contact_id", "csat", "csat_at", "csat_response_id", "csat_team_id",
    "nps", "nps_at", "nps_response_id", "nps_team_id", "quadrant", "last_answer_at",
)  # fmt: skip

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
    f" updated_at = excluded.updated_at WHERE {_NEWER} RETURNING contact_id"
)


async def record(response: Response) -> None:
    """Make a counted answer its contact's latest for its survey and team, unless a newer one is stored; call
    inside the answer's transaction, after the answer is saved (the row is read back from the database, so what
    is stored is what counts). Answers without a contact (public links) are not about a known customer: no row.

    One INSERT … ON CONFLICT DO UPDATE, then the contact's `loyalty_standing` rows recomputed from their few
    `loyalty_latest` rows, unless the upsert changed nothing (a newer answer is stored). On PostgreSQL the
    contact's row is locked before the recomputation, so two answers of one contact landing at once take turns:
    the second recomputes with the first's rows, and the newer answer wins whichever commits first.
    """
    if response.invitation_id is None:
        return
    changed = await db.fetch(_UPSERT, [True, False, response.id])
    if not changed:
        return  # no contact, or a newer answer is stored: the contact's standings stay as they are
    contact_id = changed[0][0]
    if db.dialect() == "postgres":
        # two answers of one contact at once (to different surveys) take turns here: the second recomputes with
        # the first's row, committed by then
        await db.fetch("SELECT id FROM contact WHERE id = ? FOR UPDATE", [contact_id])
    await _restand(contact_id)


async def rebuild() -> int:
    """Recompute the whole table from the counted answers (one set-based statement), then `loyalty_standing` from
    it; returns the rows written to `loyalty_latest`."""
    await db.execute("DELETE FROM loyalty_latest")
    await db.execute(
        f"INSERT INTO loyalty_latest ({COLUMNS}) SELECT {COLUMNS.replace('response_id', 'id')} FROM ("  # noqa: S608 - constant text, no input
        f"SELECT t.*, ROW_NUMBER() OVER (PARTITION BY contact_id, survey_id, team_id"
        f" ORDER BY answered_at DESC, id DESC) AS newest FROM ({_FROM_ANSWERS}) t) ranked WHERE newest = 1",
        [True, False],
    )
    [(count,)] = await db.fetch("SELECT COUNT(*) FROM loyalty_latest")
    await rebuild_standings()
    return count


async def rebuild_standings() -> int:
    """Recompute `loyalty_standing` from `loyalty_latest` (after `rebuild`, the migration's backfill); returns the
    rows written."""
    await db.execute("DELETE FROM loyalty_standing")
    kinds, parents = await _kinds(), await _parents()
    rows = await db.fetch(
        "SELECT contact_id, survey_id, team_id, score, answered_at, response_id FROM loyalty_latest ORDER BY contact_id"
    )
    batch: list[tuple] = []
    written = 0
    for contact_id, latest in itertools.groupby(rows, key=lambda row: row[0]):
        batch += standings(contact_id, [row[1:] for row in latest], kinds, parents)
        if len(batch) >= 5_000:
            await _insert(batch)
            written, batch = written + len(batch), []
    await _insert(batch)
    return written + len(batch)


def quadrant_of(csat: int, nps: int) -> str:
    """The quadrant of a CSAT (4-5 = satisfied) and an NPS (9-10 = promoter)."""
    if csat >= 4:
        return "loyal" if nps >= 9 else "satisfied_not_loyal"
    return "loyal_not_satisfied" if nps >= 9 else "at_risk"


def scopes_of(team_id: int, parents: dict[int, int | None]) -> list[int]:
    """The scopes an answer to `team_id` (0: none) counts in: the organisation, its team and every team above."""
    found, current = [0], team_id or None
    while current is not None and current not in found:
        found.append(current)
        current = parents.get(current)
    return found


def standings(
    contact_id: int, latest: Iterable[tuple], kinds: dict[str, str], parents: dict[int, int | None]
) -> list[tuple]:
    """A contact's `loyalty_standing` rows (STANDING_COLUMNS) from their `loyalty_latest` rows (survey, team, score,
    answered at, response id): in each scope, the newest answer of each kind, newest by (answered at, response
    id) as the window query orders them."""
    best: dict[int, dict[str, tuple]] = {}
    for survey_id, team_id, score, answered_at, response_id in latest:
        kind = kinds.get(survey_id)
        if kind not in KINDS:
            continue
        for scope in scopes_of(team_id, parents):
            held = best.setdefault(scope, {}).get(kind)
            if held is None or (answered_at, response_id) > (held[1], held[2]):
                best[scope][kind] = (score, answered_at, response_id, team_id)
    rows = []
    for scope, pair in sorted(best.items()):
        csat, nps = pair.get("csat", (None,) * 4), pair.get("nps", (None,) * 4)
        both = csat[0] is not None and nps[0] is not None
        last = max(csat[1], nps[1]) if both else (csat[1] if nps[1] is None else nps[1])
        rows.append((scope, contact_id, *csat, *nps, quadrant_of(csat[0], nps[0]) if both else None, last))
    return rows


async def _restand(contact_id: int) -> None:
    """Write a contact's standings again from their latest answers (a few rows): two statements and the team tree.
    A contact's scopes only grow while the team tree stays (an answer is never taken away), so an upsert of
    each scope's row replaces what changed; `rebuild` drops rows of scopes left behind by a moved team."""
    rows = await db.fetch(
        "SELECT l.survey_id, l.team_id, l.score, l.answered_at, l.response_id, (SELECT v.checksum FROM survey_version v"
        " WHERE v.survey_id = l.survey_id ORDER BY v.id DESC LIMIT 1) FROM loyalty_latest l WHERE l.contact_id = ?",
        [contact_id],
    )
    kinds = {row[0]: await _kind(row[0], row[5]) for row in rows}
    found = standings(contact_id, [row[:5] for row in rows], kinds, await _parents())
    if not found:
        return
    columns = ", ".join(STANDING_COLUMNS)
    values = ", ".join([f"({db.marks(len(STANDING_COLUMNS))})"] * len(found))
    updates = ", ".join(f"{c} = excluded.{c}" for c in STANDING_COLUMNS[2:])
    await db.execute(
        f"INSERT INTO loyalty_standing ({columns}) VALUES {values}"  # noqa: S608 - constant text and marks
        f" ON CONFLICT (scope_id, contact_id) DO UPDATE SET {updates}",
        [value for row in found for value in row],
    )


async def _insert(rows: list[tuple]) -> None:
    for first in range(0, len(rows), 5_000):
        await db.insert_many("loyalty_standing", STANDING_COLUMNS, rows[first : first + 5_000])


_KIND_OF: dict[tuple[str, str], str | None] = {}  # (survey, checksum of its definition): its kind, in any database


async def _kind(survey_id: str, checksum: str | None) -> str | None:
    """A survey's kind by its newest stored definition, remembered by the definition's checksum."""
    if checksum is None:
        return None
    key = (survey_id, checksum)
    if key not in _KIND_OF:
        found = await db.fetch(
            f"SELECT {_kind_sql()} FROM survey_version WHERE survey_id = ? AND checksum = ?",  # noqa: S608
            [survey_id, checksum],
        )
        _KIND_OF[key] = found[0][0] if found else None
    return _KIND_OF[key]


def _kind_sql() -> str:
    return "json_extract(definition, '$.kind')" if db.dialect() == "sqlite" else "definition->>'kind'"


async def _kinds() -> dict[str, str]:
    """Each survey's kind, from the newest definition stored at start-up (survey_version)."""
    return dict(await db.fetch(f"SELECT survey_id, {_kind_sql()} FROM survey_version ORDER BY id"))  # noqa: S608


async def _parents() -> dict[int, int | None]:
    return dict(await db.fetch("SELECT id, parent_id FROM team"))


async def stored_standings() -> set[tuple]:
    """`loyalty_standing` as (scope, contact, CSAT, its response, NPS, its response, quadrant) rows."""
    rows = await db.fetch(
        "SELECT scope_id, contact_id, csat, csat_response_id, nps, nps_response_id, quadrant FROM loyalty_standing"
    )
    return {tuple(row) for row in rows}


async def expected_standings() -> set[tuple]:
    """The same recomputed in Python from every counted answer: the oracle the table is held to."""
    kinds, parents = await _kinds(), await _parents()
    mine: dict[int, list[tuple]] = {}
    for contact, survey_id, team_id, score, answered_at, response_id in await expected_rows():
        mine.setdefault(contact, []).append((survey_id, team_id, score, answered_at, response_id))
    return {
        (row[0], row[1], row[2], row[4], row[6], row[8], row[10])
        for contact, latest in mine.items()
        for row in standings(contact, latest, kinds, parents)
    }


async def stored() -> set[tuple]:
    """The table as (contact, survey, team, score, response id) rows: what tests compare with a recomputation."""
    rows = await db.fetch("SELECT contact_id, survey_id, team_id, score, response_id FROM loyalty_latest")
    return {tuple(row) for row in rows}


async def expected() -> set[tuple]:
    """The same rows recomputed in Python from every answer: the oracle the table is held to."""
    return {
        (contact, survey, team, score, response) for contact, survey, team, score, _, response in await expected_rows()
    }


async def expected_rows() -> list[tuple]:
    """(contact, survey, team, score, answered at, response id) of each contact's latest answer per survey and
    team, recomputed in Python from every counted answer."""
    latest: dict[tuple, tuple] = {}
    rows = await db.fetch(_FROM_ANSWERS.replace("COALESCE(r.team_id, 0) AS team_id", "r.team_id"), [True, False])
    for contact_id, survey_id, team_id, score, answered_at, _, response_id, _ in rows:
        key = (contact_id, survey_id, team_id or 0)
        order = (db.as_datetime(answered_at), response_id)
        if key not in latest or order > latest[key][0]:
            latest[key] = (order, score)
    return [(*key, score, order[0], order[1]) for key, (order, score) in latest.items()]
