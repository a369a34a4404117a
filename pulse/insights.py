"""Insights: satisfied-but-not-loyal customers, and where loyalty erodes after the sale."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from datetime import date

from pulse import db, metrics, rollups, trends
from pulse.catalog import Catalog, Survey
from pulse.export import neutralise
from pulse.models import Contact, Team

QUADRANTS = ("loyal", "satisfied_not_loyal", "loyal_not_satisfied", "at_risk")
CACHE_SECONDS = 300
CSV_COLUMNS = ("external_id", "name", "email", "csat", "nps", "team", "last_answer_at")
_cache: dict[tuple, tuple[float, tuple, dict]] = {}


async def answers_version() -> tuple:
    """A value that changes whenever an answer is added or changed, in any process: the newest response id and
    the newest change (two index reads)."""
    [version] = await db.fetch("SELECT (SELECT MAX(id) FROM response), (SELECT MAX(updated_at) FROM response)")
    return version


async def loyalty_quadrant_cached(
    catalog: Catalog,
    database: str,
    team_ids: set[int] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> dict:
    """The quadrant per scope and period, remembered until an answer lands (in this process or any other) or
    for five minutes at most: between answers nothing it shows can change. Without a period the quadrant is one
    read of `loyalty_latest`; with one it reads the period's answers, seconds at a million answers."""
    key = (database, id(catalog), frozenset(team_ids) if team_ids is not None else None, since, until)
    now = time.monotonic()
    version = await answers_version()  # read first: an answer landing meanwhile makes the next request recompute
    found = _cache.get(key)
    if found is None or found[1] != version or now - found[0] > CACHE_SECONDS:
        if len(_cache) > 256:
            _cache.clear()
        found = (now, version, await quadrant(catalog, team_ids, since, until))
        _cache[key] = found
    return found[2]


async def loyalty_quadrant(catalog: Catalog, limit: int = 100, team_ids: set[int] | None = None) -> dict:
    """The quadrant with the newest `limit` customers who are satisfied but not loyal, described."""
    if team_ids is None:  # the whole organisation: counts and the first page from loyalty_standing
        found = await standing(catalog, 0)
        drill = await standing_page(found, 0, limit)
    else:
        found = await quadrant(catalog, team_ids)
        drill = found["satisfied_not_loyal"][:limit]
    kept = {name: found[name] for name in ("counts", "shares", "contacts")}
    return {**kept, "satisfied_not_loyal": await describe(drill)}


async def standing(catalog: Catalog, scope: int) -> dict:
    """The quadrant of one scope (0: the whole organisation, else a team with its sub-teams) without its list:
    the four groups' counts and shares, and how many are satisfied but not loyal (`listed`). One GROUP BY over
    an index range of `loyalty_standing`; pages of the list come from `standing_page`."""
    counts = dict.fromkeys(QUADRANTS, 0)
    if any(s.kind == "csat" for s in catalog) and any(s.kind == "nps" for s in catalog):
        rows = await db.fetch(
            "SELECT quadrant, COUNT(*) FROM loyalty_standing WHERE scope_id = ? AND quadrant IS NOT NULL"
            " GROUP BY quadrant",
            [scope],
        )
        counts.update({name: count for name, count in rows if name in counts})
    total = sum(counts.values())
    return {
        "counts": counts,
        "shares": {name: (100 * count / total if total else None) for name, count in counts.items()},
        "contacts": total,
        "listed": counts["satisfied_not_loyal"],
        "scope": scope,
    }


_PAGE = (
    "SELECT contact_id, csat, nps, nps_team_id, csat_team_id, last_answer_at FROM loyalty_standing"
    " WHERE scope_id = ? AND quadrant = 'satisfied_not_loyal'"
)
_NEWEST_FIRST = " ORDER BY last_answer_at DESC, contact_id DESC LIMIT ?"


async def standing_page(found: dict, first: int, size: int) -> list[tuple]:
    """`size` people of the satisfied-but-not-loyal list from the `first`th, newest first, as `quadrant` lists
    them: from `loyalty_standing` (an index range) for a `standing`, sliced from the list for a `quadrant`."""
    if "scope" not in found:
        return found["satisfied_not_loyal"][first : first + size]
    if not found["listed"]:
        return []
    rows = await db.fetch(_PAGE + _NEWEST_FIRST + " OFFSET ?", [found["scope"], size, first])
    return [_drill_row(row) for row in rows]


def _drill_row(row: tuple) -> tuple:
    contact_id, csat, nps, nps_team, csat_team, last = row
    return (contact_id, csat, nps, nps_team or csat_team or None, _stamp(last))


async def _standing_batches(found: dict, size: int = 500) -> AsyncIterator[list[tuple]]:
    """The whole list in batches, newest first; for a `standing`, each batch continues after the last row of the
    one before (keyset), so no batch re-reads what came before."""
    if "scope" not in found:
        drill = found["satisfied_not_loyal"]
        for start in range(0, len(drill), size):
            yield drill[start : start + size]
        return
    if not found["listed"]:
        return
    rows = await db.fetch(_PAGE + _NEWEST_FIRST, [found["scope"], size])
    while rows:
        yield [_drill_row(row) for row in rows]
        if len(rows) < size:
            return
        last_at, last_contact = rows[-1][5], rows[-1][0]
        rows = await db.fetch(
            _PAGE + " AND (last_answer_at < ? OR (last_answer_at = ? AND contact_id < ?))" + _NEWEST_FIRST,
            [found["scope"], last_at, last_at, last_contact, size],
        )


async def quadrant(
    catalog: Catalog, team_ids: set[int] | None = None, since: date | None = None, until: date | None = None
) -> dict:
    """Each contact by the latest CSAT (4-5 = satisfied) and latest NPS (9-10 = promoter) they gave to the teams
    `team_ids` (None: any) between two days; `satisfied_not_loyal` lists every such contact, newest first, as
    (contact id, CSAT, NPS, team id, last answer).

    This is about people, not days, so it reads each contact's latest answers, not rollups. With no period they
    come from `loyalty_standing` (pulse/loyalty.py) when `team_ids` is whole teams with their sub-teams (what
    the dashboard's team filter gives), else from `loyalty_latest`, one row per contact, survey and team. The
    dashboard reads counts and pages through `standing` and `standing_page` instead. With a period the
    question is "the latest answer within the period", which that table cannot answer (a later answer outside
    the period hides the one inside), so an explicit period still reads the answers with a window query.
    """
    csat_ids = [s.id for s in catalog if s.kind == "csat"]
    nps_ids = [s.id for s in catalog if s.kind == "nps"]
    if not csat_ids or not nps_ids or team_ids == set():
        return _grouped([])
    if since is None and until is None:
        scopes = await _scopes(team_ids)
        if scopes is not None:
            return _grouped(await _latest_from_standing(scopes))
        return _grouped(await _latest_from_table(csat_ids, nps_ids, team_ids))
    if until is None or await _nothing_after(until):
        # a period that runs to the newest answer: the latest answer of a contact, survey and team within it is
        # their latest of all when that falls on `since` or later, and there is none within it otherwise (an
        # answer's day is its time in the organisation's zone, so a later answer never has an earlier day)
        return _grouped(await _latest_from_table(csat_ids, nps_ids, team_ids, since))
    return _grouped(await _latest_from_answers(csat_ids, nps_ids, team_ids, since, until))


async def quadrant_from_answers(
    catalog: Catalog, team_ids: set[int] | None = None, since: date | None = None, until: date | None = None
) -> dict:
    """`quadrant` computed from every answer of the period with a window query: what a period that ends before
    the newest answer needs (a later answer outside it hides the one inside from `loyalty_latest`), and what the
    tests hold the tables' quadrants to."""
    csat_ids = [s.id for s in catalog if s.kind == "csat"]
    nps_ids = [s.id for s in catalog if s.kind == "nps"]
    if not csat_ids or not nps_ids or team_ids == set():
        return _grouped([])
    return _grouped(await _latest_from_answers(csat_ids, nps_ids, team_ids, since, until))


async def _nothing_after(until: date) -> bool:
    """Whether no counted answer of a known customer falls after `until`: the newest of them is a row of
    `loyalty_latest` (a scan of its one row per contact, survey and team)."""
    [(newest,)] = await db.fetch("SELECT MAX(day) FROM loyalty_latest")
    return newest is None or (date.fromisoformat(newest) if isinstance(newest, str) else newest) <= until


def _stamp(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


async def _scopes(team_ids: set[int] | None) -> list[int] | None:
    """The `loyalty_standing` scopes that make up exactly these teams (0 for every team), or None when the set
    is not a union of whole subtrees (a team without one of its sub-teams)."""
    if team_ids is None:
        return [0]
    parents = dict(await Team.all().values_list("id", "parent_id"))
    roots = sorted(team for team in team_ids if parents.get(team) not in team_ids)
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    covered, stack = set(), list(roots)
    while stack:
        team = stack.pop()
        if team not in covered:
            covered.add(team)
            stack += children.get(team, [])
    return roots if covered == team_ids else None


async def _latest_from_standing(scopes: list[int]) -> list[tuple]:
    """(contact, CSAT, NPS, team, last answer) for each contact with both, from `loyalty_standing`: one scope's
    rows as they are; several scopes' rows merged per contact, the newest of each kind winning."""
    if len(scopes) == 1:
        rows = await db.fetch(
            "SELECT contact_id, csat, nps, nps_team_id, csat_team_id, last_answer_at FROM loyalty_standing"
            " WHERE scope_id = ? AND quadrant IS NOT NULL",
            scopes,
        )
        return [_drill_row(row) for row in rows]
    rows = await db.fetch(
        "SELECT contact_id, csat, csat_at, csat_response_id, csat_team_id, nps, nps_at, nps_response_id, nps_team_id"
        f" FROM loyalty_standing WHERE scope_id IN ({db.marks(len(scopes))})",
        scopes,
    )
    people: dict[int, dict[str, tuple]] = {}
    for contact_id, *kinds in rows:
        person = people.setdefault(contact_id, {})
        for kind, (score, at, response_id, team) in (("csat", kinds[:4]), ("nps", kinds[4:])):
            held = person.get(kind)
            if score is not None and (held is None or (at, response_id) > (held[1], held[2])):
                person[kind] = (score, at, response_id, team)
    return [
        _drill_row((contact_id, p["csat"][0], p["nps"][0], p["nps"][3], p["csat"][3], max(p["csat"][1], p["nps"][1])))
        for contact_id, p in people.items()
        if "csat" in p and "nps" in p
    ]


async def _latest_from_table(
    csat_ids: list[str], nps_ids: list[str], team_ids: set[int] | None, since: date | None = None
) -> list[tuple]:
    """(contact, CSAT, NPS, team, last answer) for each contact with both, from `loyalty_latest` (the rows whose
    answer falls on `since` or later, when given)."""
    is_csat = f"CASE WHEN survey_id IN ({db.marks(len(csat_ids))}) THEN 1 ELSE 0 END"
    where = f"survey_id IN ({db.marks(len(csat_ids) + len(nps_ids))})"
    params: list = [*csat_ids, *csat_ids, *csat_ids, *nps_ids]
    if team_ids is not None:  # a manager sees the answers given to their teams only
        where += f" AND team_id IN ({db.marks(len(team_ids))})"
        params += sorted(team_ids)
    if since is not None:
        where += " AND day >= ?"
        params.append(since)
    # one pass: each contact's newest row of each kind, then CSAT and NPS side by side (GROUP BY, not a self-join,
    # which SQLite would run as a nested loop over the unindexed CTE)
    rows = await db.fetch(
        f"SELECT contact_id, MAX(CASE WHEN is_csat = 1 THEN score END), MAX(CASE WHEN is_csat = 0 THEN score END),"
        " MAX(CASE WHEN is_csat = 0 THEN team_id END), MAX(CASE WHEN is_csat = 1 THEN team_id END),"
        " MAX(CASE WHEN is_csat = 1 THEN answered_at END), MAX(CASE WHEN is_csat = 0 THEN answered_at END)"
        f" FROM (SELECT contact_id, {is_csat} AS is_csat, score, answered_at, team_id,"
        f" ROW_NUMBER() OVER (PARTITION BY contact_id, {is_csat} ORDER BY answered_at DESC, response_id DESC) AS n"
        f" FROM loyalty_latest WHERE {where}) ranked WHERE n = 1 GROUP BY contact_id HAVING COUNT(*) = 2",
        params,
    )
    return [
        (contact_id, csat, nps, nps_team or csat_team or None, max(_stamp(csat_at), _stamp(nps_at)))
        for contact_id, csat, nps, nps_team, csat_team, csat_at, nps_at in rows
    ]


async def _latest_from_answers(
    csat_ids: list[str], nps_ids: list[str], team_ids: set[int] | None, since: date | None, until: date | None
) -> list[tuple]:
    """(contact, CSAT, NPS, team, last answer) for each contact with both, from the answers of a period."""
    surveys = csat_ids + nps_ids
    where = f"r.confirmed = ? AND r.discarded = ? AND r.survey_id IN ({db.marks(len(surveys))})"
    params: list = [True, False, *surveys]
    if team_ids is not None:  # a manager sees the answers given to their teams only
        where += f" AND r.team_id IN ({db.marks(len(team_ids))})"
        params += sorted(team_ids)
    for clause, value in ((" AND r.day >= ?", since), (" AND r.day <= ?", until)):
        if value is not None:
            where += clause
            params.append(value)
    rows = await db.fetch(
        "SELECT contact_id, survey_id, score, answered_at, team_id FROM (SELECT i.contact_id, r.survey_id, r.score,"
        " r.answered_at, r.team_id, ROW_NUMBER() OVER (PARTITION BY i.contact_id, r.survey_id"
        " ORDER BY r.answered_at DESC, r.id DESC) AS latest FROM response r JOIN invitation i ON i.id = r.invitation_id"
        f" WHERE {where}) t WHERE latest = 1",
        params,
    )
    people: dict[int, dict] = {}
    for contact_id, survey_id, score, answered_at, team_id in rows:
        person = people.setdefault(contact_id, {})
        kind = "csat" if survey_id in csat_ids else "nps"
        previous = person.get(kind)
        stamp = _stamp(answered_at)
        if previous is None or stamp > previous[1]:
            person[kind] = (score, stamp, team_id)
    return [
        (contact_id, p["csat"][0], p["nps"][0], p["nps"][2] or p["csat"][2], max(p["csat"][1], p["nps"][1]))
        for contact_id, p in people.items()
        if "csat" in p and "nps" in p
    ]


def _grouped(people: list[tuple]) -> dict:
    """The four groups' counts and shares, and the satisfied-but-not-loyal list, newest first."""
    counts = dict.fromkeys(QUADRANTS, 0)
    drill: list[tuple] = []
    for person in people:
        satisfied, promoter = person[1] >= 4, person[2] >= 9
        quadrant = (
            ("loyal" if promoter else "satisfied_not_loyal")
            if satisfied
            else ("loyal_not_satisfied" if promoter else "at_risk")
        )
        counts[quadrant] += 1
        if quadrant == "satisfied_not_loyal":
            drill.append(person)
    drill.sort(key=lambda item: (item[4], item[0]), reverse=True)
    total = sum(counts.values())
    return {
        "counts": counts,
        "shares": {name: (100 * count / total if total else None) for name, count in counts.items()},
        "contacts": total,
        "satisfied_not_loyal": drill,
    }


async def describe(drill: list[tuple]) -> list[dict]:
    """Customers of the quadrant's list, with their CRM id, name, e-mail and team."""
    contacts = {c.id: c for c in await Contact.filter(id__in=[row[0] for row in drill])}
    teams = dict(await Team.all().values_list("id", "slug"))
    return [
        {
            "external_id": contacts[cid].external_id,
            "name": contacts[cid].name,
            "email": contacts[cid].email,
            "csat": csat,
            "nps": nps,
            "team": teams.get(team_id),
            "last_answer_at": last,
        }
        for cid, csat, nps, team_id, last in drill
        if cid in contacts
    ]


async def csv_chunks(found: dict, batch: int = 500) -> AsyncIterator[bytes]:
    """The satisfied-but-not-loyal list of a `standing` or a `quadrant` as UTF-8 CSV, `batch` customers at a
    time; text a spreadsheet would run is neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    async for people in _standing_batches(found, batch):
        for person in await describe(people):
            writer.writerow([neutralise(person[name]) for name in CSV_COLUMNS])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


async def lifecycle(survey: Survey, start: date, end: date) -> dict:
    """The metric by days since the first purchase (buckets) and by lifecycle stage, over one period."""
    result: dict = {"survey": survey.id, "metric": survey.kind, "from": start.isoformat(), "to": end.isoformat()}
    for dimension in ("lifecycle", "stage"):
        series = await trends.daily(
            survey.id, survey.question.id, trends.Selection(dimension, group=dimension), start, end
        )
        groups = []
        names = [name for name, _, _ in rollups.LIFECYCLE] if dimension == "lifecycle" else sorted(series)
        for name in names:
            hist = metrics.add(*series.get(name, {}).values())
            estimate = metrics.estimate(survey.kind, hist)
            groups.append({dimension: name, **trends.point_json(end, estimate)} | {"date": None})
        result["by_days_since_sale" if dimension == "lifecycle" else "by_stage"] = groups
    return result
