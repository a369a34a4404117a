"""Insights: satisfied-but-not-loyal customers, and where loyalty erodes after the sale."""

from __future__ import annotations

import time
from datetime import date

from pulse import db, metrics, rollups, trends
from pulse.catalog import Catalog, Survey
from pulse.models import Contact, Team

QUADRANTS = ("loyal", "satisfied_not_loyal", "loyal_not_satisfied", "at_risk")
CACHE_SECONDS = 300
_cache: dict[tuple, tuple[float, dict]] = {}


async def loyalty_quadrant_cached(
    catalog: Catalog, database: str, limit: int = 100, team_ids: set[int] | None = None
) -> dict:
    """The quadrant, remembered for five minutes per scope: it reads every contact's latest answers, which costs
    seconds at a million answers, and it moves slowly (people answer a survey a month at most)."""
    key = (database, limit, frozenset(team_ids) if team_ids is not None else None, id(catalog))
    now = time.monotonic()
    found = _cache.get(key)
    if found is None or now - found[0] > CACHE_SECONDS:
        if len(_cache) > 256:
            _cache.clear()
        found = (now, await loyalty_quadrant(catalog, limit, team_ids))
        _cache[key] = found
    return found[1]


async def loyalty_quadrant(catalog: Catalog, limit: int = 100, team_ids: set[int] | None = None) -> dict:
    """Each contact by the latest CSAT (4-5 = satisfied) and latest NPS (9-10 = promoter) they gave.

    This is about people, not days, so it reads each contact's latest answers (a window query), not rollups.
    """
    csat_ids = [s.id for s in catalog if s.kind == "csat"]
    nps_ids = [s.id for s in catalog if s.kind == "nps"]
    if not csat_ids or not nps_ids:
        return {
            "counts": dict.fromkeys(QUADRANTS, 0),
            "shares": dict.fromkeys(QUADRANTS),
            "contacts": 0,
            "satisfied_not_loyal": [],
        }
    surveys = csat_ids + nps_ids
    rows = await db.fetch(
        "SELECT contact_id, survey_id, score, answered_at, team_id FROM (SELECT i.contact_id, r.survey_id, r.score,"
        " r.answered_at, r.team_id, ROW_NUMBER() OVER (PARTITION BY i.contact_id, r.survey_id"
        " ORDER BY r.answered_at DESC, r.id DESC) AS latest FROM response r JOIN invitation i ON i.id = r.invitation_id"
        f" WHERE r.confirmed = ? AND r.discarded = ? AND r.survey_id IN ({db.marks(len(surveys))})) t WHERE latest = 1",
        [True, False, *surveys],
    )
    people: dict[int, dict] = {}
    for contact_id, survey_id, score, answered_at, team_id in rows:
        if team_ids is not None and team_id not in team_ids:
            continue  # a manager sees the answers given to their teams only
        person = people.setdefault(contact_id, {})
        kind = "csat" if survey_id in csat_ids else "nps"
        previous = person.get(kind)
        stamp = str(answered_at)
        if previous is None or stamp > previous[1]:
            person[kind] = (score, stamp, team_id)
    counts = dict.fromkeys(QUADRANTS, 0)
    drill: list[tuple[int, dict]] = []
    for contact_id, person in people.items():
        if "csat" not in person or "nps" not in person:
            continue
        satisfied, promoter = person["csat"][0] >= 4, person["nps"][0] >= 9
        quadrant = (
            ("loyal" if promoter else "satisfied_not_loyal")
            if satisfied
            else ("loyal_not_satisfied" if promoter else "at_risk")
        )
        counts[quadrant] += 1
        if quadrant == "satisfied_not_loyal":
            drill.append((contact_id, person))
    drill.sort(key=lambda item: max(item[1]["csat"][1], item[1]["nps"][1]), reverse=True)
    drill = drill[:limit]
    contacts = {c.id: c for c in await Contact.filter(id__in=[cid for cid, _ in drill])}
    teams = dict(await Team.all().values_list("id", "slug"))
    listed = [
        {
            "external_id": contacts[cid].external_id,
            "name": contacts[cid].name,
            "email": contacts[cid].email,
            "csat": person["csat"][0],
            "nps": person["nps"][0],
            "team": teams.get(person["nps"][2]) or teams.get(person["csat"][2]),
            "last_answer_at": max(person["csat"][1], person["nps"][1]),
        }
        for cid, person in drill
        if cid in contacts
    ]
    total = sum(counts.values())
    return {
        "counts": counts,
        "shares": {name: (100 * count / total if total else None) for name, count in counts.items()},
        "contacts": total,
        "satisfied_not_loyal": listed,
    }


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
