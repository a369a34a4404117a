"""Customers at risk: a score per customer from signals Pulse already holds, each with its reasons in words.

Seven signals, each one set-based query over every customer at once (never a query per customer), on SQLite and
PostgreSQL alike; Python then adds up the points of one row per customer and signal:

1. score_drop: the latest answer is well below the customer's own earlier answers to the same survey;
2. below_segment: the latest answer is well below the average of the customer's segment (a contact attribute);
3. unanswered: several surveys sent lately, none answered;
4. fewer_touchpoints: fewer touchpoints lately than the customer's own usual rhythm;
5. open_case: a follow-up case still open (more points when overdue);
6. detractor: an unhappy answer lately with no resolved case about it;
7. complaints: complaint touchpoints after the first purchase.

Points come from surveys/insights/risk.toml (pulse/risk_config.py). Everything is read "as of" a moment, using
only what happened before it, so the backtest (pulse/risk_backtest.py) scores the past the way today is scored.
With `team_ids`, every signal reads only the rows of those teams, as a manager's contact page does.
"""

# ruff: noqa: S608 - the SQL here is constant text, "?" placeholders and ids the catalog and the weights file
# checked (survey ids, a contact attribute name): no input reaches it unbound
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pulse import db, followups, i18n, labels
from pulse.catalog import Catalog
from pulse.i18n import N_, N_plural
from pulse.models import Contact
from pulse.risk_config import RiskConfig

SIGNALS = ("score_drop", "below_segment", "unanswered", "fewer_touchpoints", "open_case", "detractor", "complaints")


@dataclass
class Reason:
    """One signal that fired for a customer: its points, the moment it is about, and the numbers it tells."""

    signal: str
    points: int
    at: datetime | None
    data: dict[str, Any]


@dataclass
class Risk:
    contact_id: int
    reasons: list[Reason] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(reason.points for reason in self.reasons)

    @property
    def latest(self) -> datetime:
        return max((r.at for r in self.reasons if r.at is not None), default=datetime.min.replace(tzinfo=UTC))


def _customer_surveys(catalog: Catalog) -> list:
    return [s for s in catalog if s.audience == "customer"]


def _in(column: str, values: Collection, params: list) -> str:
    params.extend(values)
    return f" AND {column} IN ({db.marks(len(values))})"


def _teams(column: str, team_ids: Collection[int] | None, params: list) -> str:
    return "" if team_ids is None else _in(column, sorted(team_ids), params)


def unhappy_sql(catalog: Catalog, params: list) -> str:
    """A condition on `r` that is true for a score in an unhappy band of its survey."""
    parts = []
    for survey in _customer_surveys(catalog):
        for band in survey.bands:
            if band.unhappy:
                parts.append("(r.survey_id = ? AND r.score BETWEEN ? AND ?)")
                params += [survey.id, band.low, band.high]
    return "(" + (" OR ".join(parts) or "1 = 0") + ")"


def _closings_sql() -> str:
    """Per case, its last status note to resolved or closed_no_action: one grouped read of the notes (no index on
    case_note.case_id is needed, as a correlated lookup per case would)."""
    to = "json_extract(data, '$.to')" if db.dialect() == "sqlite" else "(data::jsonb ->> 'to')"
    return (
        "(SELECT case_id, MAX(created_at) AS closed_at FROM case_note WHERE kind = 'status'"
        f" AND {to} IN ('resolved', 'closed_no_action') GROUP BY case_id)"
    )


def _closed_cases_sql() -> str:
    """`followup_case f` with `closed_at`: when it was last closed by its status notes, else (closed before Pulse
    kept status notes, or loaded without them) its last change."""
    return (
        "(SELECT f.*, COALESCE(n.closed_at, f.updated_at) AS closed_at FROM followup_case f"
        f" LEFT JOIN {_closings_sql()} n ON n.case_id = f.id)"
    )


def _resolved_sql() -> str:
    """The answers with a case resolved before the moment bound to its `?` (for `r.id NOT IN …`)."""
    return (
        f"(SELECT f.response_id FROM {_closed_cases_sql()} f WHERE f.response_id IS NOT NULL"
        " AND f.status = 'resolved' AND f.closed_at < ?)"
    )


def _attribute_sql(attribute: str) -> str:
    # the attribute name is checked by risk_config (letters, digits, _), so it may be written into the SQL
    if db.dialect() == "sqlite":
        return f"json_extract(c.attributes, '$.{attribute}')"
    return f"(c.attributes::jsonb ->> '{attribute}')"


async def assess(
    catalog: Catalog, config: RiskConfig, as_of: datetime | None = None, team_ids: Collection[int] | None = None
) -> dict[int, Risk]:
    """Every customer with at least one signal as of `as_of` (now by default), by contact id."""
    as_of = as_of or datetime.now(UTC)
    found: dict[int, Risk] = {}

    def add(contact_id: int, reason: Reason) -> None:
        if reason.points > 0:
            found.setdefault(contact_id, Risk(contact_id)).reasons.append(reason)

    if _customer_surveys(catalog):
        await _latest_answers(catalog, config, as_of, team_ids, add)
        await _detractors(catalog, config, as_of, team_ids, add)
        await _unanswered(config, as_of, team_ids, add)
    await _rhythm(config, as_of, team_ids, add)
    await _open_cases(config, as_of, team_ids, add)
    await _complaints(config, as_of, team_ids, add)
    return found


def listed(found: dict[int, Risk], config: RiskConfig) -> list[Risk]:
    """The customers whose points reach the threshold: most points first, then the most recent reason."""
    chosen = [risk for risk in found.values() if risk.points >= config.threshold]
    chosen.sort(key=lambda risk: (-risk.points, -risk.latest.timestamp(), risk.contact_id))
    for risk in chosen:
        risk.reasons.sort(key=lambda reason: -reason.points)
    return chosen


async def _latest_answers(catalog, config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signals 1 and 2: each customer's latest answer in recent_days, against the average of their earlier
    answers to the same survey (a window over their answers, no self-join) and against their segment's."""
    surveys = _customer_surveys(catalog)
    history = as_of - timedelta(days=config.history_days)
    recent = as_of - timedelta(days=config.recent_days)
    segment = config["below_segment"]
    params: list = [True, False, db.bound_time(as_of), db.bound_time(history)]
    where = "r.confirmed = ? AND r.discarded = ? AND r.answered_at < ? AND r.answered_at >= ?"
    where += _in("r.survey_id", [s.id for s in surveys], params) + _teams("r.team_id", team_ids, params)
    answers = (
        "SELECT i.contact_id, r.id, r.survey_id, r.score, r.answered_at,"
        f" {_attribute_sql(segment['attribute'])} AS segment FROM response r"
        f" JOIN invitation i ON i.id = r.invitation_id JOIN contact c ON c.id = i.contact_id WHERE {where}"
    )
    means = {
        (survey_id, str(value) if value is not None else None): (float(mean), count)
        for survey_id, value, mean, count in await db.fetch(
            f"SELECT survey_id, segment, AVG(score * 1.0), COUNT(*) FROM ({answers}) a GROUP BY survey_id, segment",
            params,
        )
    }
    rows = await db.fetch(
        "SELECT contact_id, id, survey_id, score, answered_at, segment, earlier, earlier_n FROM ("
        "SELECT a.*, ROW_NUMBER() OVER (PARTITION BY contact_id ORDER BY answered_at DESC, id DESC) AS nth,"
        " AVG(score * 1.0) OVER (PARTITION BY contact_id, survey_id ORDER BY answered_at, id"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier,"
        " COUNT(*) OVER (PARTITION BY contact_id, survey_id ORDER BY answered_at, id"
        f" ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_n FROM ({answers}) a) t"
        " WHERE nth = 1 AND answered_at >= ?",
        [*params, db.bound_time(recent)],
    )
    drop = config["score_drop"]
    for contact_id, response_id, survey_id, score, answered_at, value, earlier, earlier_n in rows:
        survey = catalog.get(survey_id)
        span = survey.scale_max - survey.scale_min
        at = db.as_datetime(answered_at)
        base = {"survey": survey_id, "score": score, "response_id": response_id}
        if earlier_n and float(earlier) - score >= drop["min_drop"] * span:
            data = {**base, "earlier_average": round(float(earlier), 1), "earlier_answers": earlier_n}
            add(contact_id, Reason("score_drop", drop["weight"], at, data))
        value = str(value) if value is not None else None
        mean, count = means.get((survey_id, value), (None, 0))
        if mean is not None and count >= segment["min_answers"] and mean - score >= segment["min_gap"] * span:
            data = {**base, "segment": value, "segment_average": round(mean, 1), "segment_answers": count}
            add(contact_id, Reason("below_segment", segment["weight"], at, data))


async def _detractors(catalog, config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signal 6: unhappy answers in recent_days with no case about them resolved by `as_of`; the latest counts."""
    params: list = [True, False, db.bound_time(as_of), db.bound_time(as_of - timedelta(days=config.recent_days))]
    where = "r.confirmed = ? AND r.discarded = ? AND r.answered_at < ? AND r.answered_at >= ?"
    where += " AND " + unhappy_sql(catalog, params) + _teams("r.team_id", team_ids, params)
    params.append(db.bound_time(as_of))
    rows = await db.fetch(
        "SELECT i.contact_id, r.id, r.survey_id, r.score, r.answered_at FROM response r"
        f" JOIN invitation i ON i.id = r.invitation_id WHERE {where} AND r.id NOT IN {_resolved_sql()}"
        " ORDER BY r.answered_at, r.id",
        params,
    )
    latest = {row[0]: row for row in rows}  # ordered oldest first: the last row of a contact is their latest
    for contact_id, response_id, survey_id, score, answered_at in latest.values():
        data = {"survey": survey_id, "score": score, "response_id": response_id}
        add(contact_id, Reason("detractor", config["detractor"]["weight"], db.as_datetime(answered_at), data))


async def _unanswered(config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signal 3: at least min_surveys sent within `days` (and `grace_days` ago or more), none answered by then."""
    spec = config["unanswered"]
    since = as_of - timedelta(days=spec["days"])
    params: list = [db.bound_time(as_of), db.bound_time(as_of), db.bound_time(since)]
    params.append(db.bound_time(as_of - timedelta(days=spec["grace_days"])))
    teams = _teams("t.team_id", team_ids, params)
    join = " JOIN touchpoint t ON t.id = i.touchpoint_id" if teams else ""
    params.append(spec["min_surveys"])
    rows = await db.fetch(
        "SELECT i.contact_id, COUNT(*), MAX(i.sent_at) FROM invitation i"
        f"{join} WHERE i.contact_id IS NOT NULL AND i.sent_at IS NOT NULL"
        " AND (i.answered_at IS NULL OR i.answered_at >= ?)"
        " AND NOT EXISTS (SELECT 1 FROM invitation a WHERE a.contact_id = i.contact_id AND a.answered_at < ?"
        " AND a.answered_at >= i.sent_at)"  # answered one sent later: the customer still answers
        f" AND i.sent_at >= ? AND i.sent_at < ?{teams} GROUP BY i.contact_id HAVING COUNT(*) >= ?",
        params,
    )
    for contact_id, count, last in rows:
        data = {"surveys": count, "since": since.date().isoformat()}
        add(contact_id, Reason("unanswered", spec["weight"], db.as_datetime(last), data))


async def _rhythm(config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signal 4: touchpoints in recent_days against the customer's own rate over the rest of history_days."""
    spec = config["fewer_touchpoints"]
    window = as_of - timedelta(days=config.recent_days)
    history = as_of - timedelta(days=config.history_days)
    params: list = [db.bound_time(window), db.bound_time(window), db.bound_time(as_of), db.bound_time(history)]
    teams = _teams("team_id", team_ids, params)
    rows = await db.fetch(
        "SELECT contact_id, SUM(CASE WHEN occurred_at >= ? THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN occurred_at < ? THEN 1 ELSE 0 END), MIN(occurred_at), MAX(occurred_at) FROM touchpoint"
        f" WHERE occurred_at < ? AND occurred_at >= ?{teams} GROUP BY contact_id"
        " HAVING SUM(CASE WHEN occurred_at < ? THEN 1 ELSE 0 END) >= 2",
        [*params, db.bound_time(window)],
    )
    for contact_id, recent, before, first, last in rows:
        first, last = db.as_datetime(first), db.as_datetime(last)
        known_days = (window - first).total_seconds() / 86400  # their history before the window
        if known_days < config.recent_days:
            continue  # too new a customer to have a rhythm
        usual = before * config.recent_days / known_days
        if usual >= spec["min_usual"] and recent <= usual * spec["ratio"]:
            data = {"touchpoints": recent, "usual": round(usual, 1), "since": window.date().isoformat()}
            add(contact_id, Reason("fewer_touchpoints", spec["weight"], last, data))


async def _open_cases(config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signal 5: cases opened before `as_of` and still open then (closed ones last changed after it)."""
    spec = config["open_case"]
    stamp = db.bound_time(as_of)
    params: list = [stamp, stamp, *followups.OPEN_STATUSES, stamp]
    teams = _teams("team_id", team_ids, params)
    rows = await db.fetch(
        "SELECT contact_id, COUNT(*), MIN(created_at), MIN(due_at), MIN(id),"
        f" SUM(CASE WHEN due_at < ? THEN 1 ELSE 0 END) FROM {_closed_cases_sql()} f"
        " WHERE contact_id IS NOT NULL AND created_at < ?"
        f" AND (status IN (?, ?) OR closed_at >= ?){teams} GROUP BY contact_id",
        params,
    )
    for contact_id, count, oldest, due, case_id, overdue in rows:
        points = spec["weight"] + (spec["overdue_weight"] if overdue else 0)
        data = {"cases": count, "overdue": overdue, "case_id": case_id, "due_at": db.as_datetime(due).isoformat()}
        add(contact_id, Reason("open_case", points, db.as_datetime(oldest), data))


async def _complaints(config: RiskConfig, as_of: datetime, team_ids, add) -> None:
    """Signal 7: touchpoints of a complaint type after the contact's first purchase, within recent_days."""
    spec = config["complaints"]
    params: list = []
    like = " OR ".join("t.type LIKE ? ESCAPE '!'" for _ in spec["types"])
    params += [t.replace("!", "!!").replace("_", "!_").replace("%", "!%").replace("*", "%") for t in spec["types"]]
    params += [db.bound_time(as_of), db.bound_time(as_of - timedelta(days=config.recent_days))]
    teams = _teams("t.team_id", team_ids, params)
    rows = await db.fetch(
        "SELECT t.contact_id, t.type, t.occurred_at FROM touchpoint t JOIN contact c ON c.id = t.contact_id"
        f" WHERE ({like}) AND c.first_purchase_at IS NOT NULL AND t.occurred_at > c.first_purchase_at"
        f" AND t.occurred_at < ? AND t.occurred_at >= ?{teams} ORDER BY t.occurred_at, t.id",
        params,
    )
    people: dict[int, list] = {}
    for contact_id, kind, occurred in rows:
        people.setdefault(contact_id, []).append((kind, db.as_datetime(occurred)))
    for contact_id, complaints in people.items():
        points = spec["weight"] * min(len(complaints), spec["max_count"])
        kind, last = complaints[-1]
        add(contact_id, Reason("complaints", points, last, {"complaints": len(complaints), "type": kind}))


# --- in words ---------------------------------------------------------------------------------------------------

SIGNAL_NAMES = {
    "score_drop": N_("Falling score"),
    "below_segment": N_("Below their segment"),
    "unanswered": N_("Surveys unanswered"),
    "fewer_touchpoints": N_("Quieter than usual"),
    "open_case": N_("Open case"),
    "detractor": N_("Unhappy, not resolved"),
    "complaints": N_("Complaints after the sale"),
}
SCORE_DROP = N_plural(
    "%(survey)s score %(score)s on %(date)s, down from %(earlier)s on average in %(num)s earlier answer.",
    "%(survey)s score %(score)s on %(date)s, down from %(earlier)s on average in %(num)s earlier answers.",
)
BELOW_SEGMENT = N_(
    "%(survey)s score %(score)s on %(date)s, below the average of %(average)s in the customer's segment"
    " (%(attribute)s: %(segment)s)."
)
UNANSWERED = N_plural(
    "%(num)s survey sent since %(since)s and none answered; the last one on %(date)s.",
    "%(num)s surveys sent since %(since)s and none answered; the last one on %(date)s.",
)
FEWER_TOUCHPOINTS = N_(
    "Touchpoints since %(since)s: %(count)s, where about %(usual)s would be usual for them; the last on %(date)s."
)
OPEN_CASE = N_plural(
    "%(num)s open case, opened on %(date)s.",
    "%(num)s open cases, the oldest opened on %(date)s.",
)
OVERDUE_CASE = N_plural(
    "%(num)s open case, opened on %(date)s and overdue since %(due)s.",
    "%(num)s open cases, the oldest opened on %(date)s; overdue since %(due)s.",
)
DETRACTOR = N_("Unhappy %(survey)s score %(score)s on %(date)s, and no case about it is resolved.")
COMPLAINTS = N_plural(
    "%(num)s complaint after the sale, the last on %(date)s (%(type)s).",
    "%(num)s complaints after the sale, the last on %(date)s (%(type)s).",
)


def reason_text(reason: Reason, locale: str, catalog: Catalog, company: str, config: RiskConfig) -> str:
    """A reason as a sentence in `locale`, with its numbers and dates written the locale's way."""
    data = reason.data
    when = i18n.day(reason.at.date(), locale) if reason.at else ""

    def plural(pair: tuple[str, str], n: int, **values: object) -> str:
        return _plural(locale, pair, n, values)

    survey = labels.survey_title(catalog, data["survey"], locale, company) if "survey" in data else ""
    score = i18n.number(data["score"], locale) if "score" in data else ""
    if reason.signal == "score_drop":
        earlier = i18n.number(data["earlier_average"], locale, 1)
        return plural(SCORE_DROP, data["earlier_answers"], survey=survey, score=score, date=when, earlier=earlier)
    if reason.signal == "below_segment":
        return i18n.translate(
            locale,
            BELOW_SEGMENT,
            survey=survey,
            score=score,
            date=when,
            average=i18n.number(data["segment_average"], locale, 1),
            attribute=labels.label("segment", config["below_segment"]["attribute"], locale),
            segment=data["segment"] if data["segment"] is not None else "–",
        )
    if reason.signal == "unanswered":
        since = i18n.day(datetime.fromisoformat(data["since"]).date(), locale)
        return plural(UNANSWERED, data["surveys"], since=since, date=when)
    if reason.signal == "fewer_touchpoints":
        return i18n.translate(
            locale,
            FEWER_TOUCHPOINTS,
            since=i18n.day(datetime.fromisoformat(data["since"]).date(), locale),
            count=i18n.number(data["touchpoints"], locale),
            usual=i18n.number(data["usual"], locale, 1),
            date=when,
        )
    if reason.signal == "open_case":
        if data["overdue"]:
            due = i18n.day(datetime.fromisoformat(data["due_at"]).date(), locale)
            return plural(OVERDUE_CASE, data["cases"], date=when, due=due)
        return plural(OPEN_CASE, data["cases"], date=when)
    if reason.signal == "detractor":
        return i18n.translate(locale, DETRACTOR, survey=survey, score=score, date=when)
    kind = labels.label("touchpoint", data["type"], locale)
    return plural(COMPLAINTS, data["complaints"], date=when, type=kind)


def _plural(locale: str, pair: tuple[str, str], n: int, values: dict) -> str:
    return i18n.translate_plural(locale, pair[0], pair[1], n, **{"num": i18n.number(n, locale), **values})


async def describe(
    risks: list[Risk], catalog: Catalog, config: RiskConfig, locale: str, company: str
) -> list[dict[str, Any]]:
    """The listed customers with their CRM id, name and e-mail, and each reason as data and as a sentence."""
    contacts = {c.id: c for c in await Contact.filter(id__in=[risk.contact_id for risk in risks])}
    return [
        {
            "external_id": contacts[risk.contact_id].external_id,
            "name": contacts[risk.contact_id].name,
            "email": contacts[risk.contact_id].email,
            "score": risk.points,
            "reasons": [
                {
                    "signal": reason.signal,
                    "points": reason.points,
                    "at": reason.at.isoformat() if reason.at else None,
                    "text": reason_text(reason, locale, catalog, company, config),
                    "data": reason.data,
                }
                for reason in risk.reasons
            ],
        }
        for risk in risks
        if risk.contact_id in contacts
    ]
