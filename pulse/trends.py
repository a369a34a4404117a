"""Rolling trends and comparisons, computed from the daily rollups (never from a scan of answers)."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from pulse import db, metrics, rollups
from pulse.catalog import Catalog, Survey
from pulse.errors import BadRequest
from pulse.fields import FILTER_VALUE, TEAM, WHOLE_NUMBER, parse_date

INTERVALS = ("day", "week", "month")
MAX_POINTS = 1000
MAX_WINDOW_DAYS = 730
RESERVED = {"survey", "window", "interval", "from", "to", "by", "question", "a", "b"}


@dataclass(frozen=True)
class Selection:
    """Which rollup series a query reads: one dimension, and the values (or value prefix) that matter."""

    dimension: str
    value: str | None = None  # one exact value
    prefix: str | None = None  # values starting with this (a team's breakdown)
    suffix: str | None = None  # values ending with this (a value split by team)
    group: str | None = None  # the name groups are keyed by, None for a single series

    def label(self, stored: str) -> str:
        if self.prefix:
            return stored[len(self.prefix) :]
        if self.suffix:
            return stored[: -len(self.suffix)]
        return stored


@dataclass(frozen=True)
class TrendQuery:
    survey: Survey
    question: str
    window_days: int
    interval: str
    start: date
    end: date
    by: str | None
    filters: Mapping[str, str] = field(default_factory=dict)


def parse_survey(raw: str | None, catalog: Catalog) -> Survey:
    if not raw:
        raise BadRequest(f"survey is required; the surveys are {', '.join(s.id for s in catalog)}.")
    survey = catalog.get(raw)
    if survey is None:
        raise BadRequest(f"Unknown survey {raw!r}; the surveys are {', '.join(s.id for s in catalog)}.")
    if survey.audience == "employee":
        raise BadRequest("Employee pulses are reported under /api/v1/engagement, which protects anonymity.")
    return survey


def parse_query(params: Mapping[str, str], catalog: Catalog, segments: tuple[str, ...], today: date) -> TrendQuery:
    """Read and check the query string of /api/v1/trends; every problem is a 400 with a sentence."""
    survey = parse_survey(params.get("survey"), catalog)
    window = params.get("window", "28d")
    if not (window.endswith("d") and WHOLE_NUMBER.fullmatch(window[:-1]) and 1 <= int(window[:-1]) <= MAX_WINDOW_DAYS):
        raise BadRequest(f"window must be a number of days such as 28d (1d to {MAX_WINDOW_DAYS}d).")
    interval = params.get("interval", "week")
    if interval not in INTERVALS:
        raise BadRequest(f"interval must be one of {', '.join(INTERVALS)}.")
    end = parse_date(params["to"], "to") if params.get("to") else today
    start = parse_date(params["from"], "from") if params.get("from") else end - timedelta(weeks=12)
    if start > end:
        raise BadRequest("from must not be after to.")
    known = rollups.dimensions(segments)
    by = params.get("by") or None
    if by is not None and (by not in known or by == "all"):
        raise BadRequest(f"Unknown dimension {by!r} for by; use one of {', '.join(known[1:])}.")
    filters = {k: v for k, v in params.items() if k not in RESERVED and k != "lang"}
    for name, value in filters.items():
        if name not in known or name == "all":
            raise BadRequest(f"Unknown dimension {name!r}; filter by one of {', '.join(known[1:])}.")
        (TEAM if name == "team" else FILTER_VALUE).check(value, name)
    question = params.get("question") or survey.question.id
    if question not in {q.id for q in survey.questions}:
        raise BadRequest(f"Survey {survey.id} has no question {question!r}.")
    query = TrendQuery(survey, question, int(window[:-1]), interval, start, end, by, filters)
    if len(point_dates(start, end, interval)) > MAX_POINTS:
        raise BadRequest(f"That is more than {MAX_POINTS} points: shorten the range or use a longer interval.")
    selection(query)  # the combination must be answerable
    return query


def selection(query: TrendQuery) -> Selection:
    """Map filters and `by` onto one rollup series (see the pairs `team|<dimension>` in rollups)."""
    filters = dict(query.filters)
    team = filters.pop("team", None)
    if len(filters) > 1:
        raise BadRequest("Filter by team and at most one other dimension at a time.")
    other, other_value = next(iter(filters.items()), (None, None))
    by = query.by
    sep = rollups.SEPARATOR
    if team is None and other is None:
        return Selection(by, group=by) if by else Selection("all", value="all")
    if other is None:  # a team
        if by is None:
            return Selection("team", value=team)
        if by == "team":
            raise BadRequest("Grouping by team inside one team is not supported; filter by a parent team instead.")
        return Selection(f"team{sep}{by}", prefix=f"{team}{sep}", group=by)
    if team is None:  # one value of another dimension
        if by is None or by == other:
            return Selection(other, value=other_value) if by is None else Selection(other, value=other_value, group=by)
        if by == "team":
            return Selection(f"team{sep}{other}", suffix=f"{sep}{other_value}", group="team")
        raise BadRequest("With a filter other than team, group (by=) only by team.")
    if by is not None:
        raise BadRequest("With both a team and another filter, leave out by=.")
    return Selection(f"team{sep}{other}", value=f"{team}{sep}{other_value}")


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def point_dates(start: date, end: date, interval: str) -> list[date]:
    """Where the points fall: stepping back from `end` by the interval while not before `start`."""
    found: list[date] = []
    step = 0
    while True:
        if interval == "day":
            point = end - timedelta(days=step)
        elif interval == "week":
            point = end - timedelta(weeks=step)
        else:
            point = _months_back(end, step)
        if point < start:
            break
        found.append(point)
        step += 1
        if len(found) > MAX_POINTS:
            break
    return list(reversed(found))


async def daily(survey_id: str, question: str, chosen: Selection, first: date, last: date) -> dict[str, dict]:
    """{group value: {day: histogram}} for the chosen series between two days."""
    sql = (
        f"SELECT day, value, {', '.join(rollups.COUNTS)} FROM daily_rollup WHERE survey_id = ? AND question_id = ?"
        " AND dimension = ? AND day >= ? AND day <= ?"
    )
    params: list = [survey_id, question, chosen.dimension, first, last]
    if chosen.value is not None:
        sql += " AND value = ?"
        params.append(chosen.value)
    elif chosen.prefix:
        sql += " AND substr(value, 1, ?) = ?"
        params += [len(chosen.prefix), chosen.prefix]
    elif chosen.suffix:
        sql += " AND substr(value, length(value) - ? + 1) = ?"
        params += [len(chosen.suffix), chosen.suffix]
    found: dict[str, dict] = {}
    for row in await db.fetch(sql, params):
        day = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
        found.setdefault(chosen.label(row[1]), {})[day] = list(row[2:])
    return found


def point_json(day: date, estimate: metrics.Estimate) -> dict:
    data = {
        "date": day.isoformat(),
        "value": estimate.value,
        "n": estimate.n,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "small_sample": estimate.small_sample,
    }
    data.update(estimate.parts)
    return data


def rolling(days: dict[date, list[int]], points: list[date], window: int) -> list[list[int]]:
    """The histogram of the `window` days ending on each point (inclusive), by prefix sums."""
    if not points:
        return []
    first = points[0] - timedelta(days=window - 1)
    running, cumulative = [0] * 11, [[0] * 11]
    for offset in range((points[-1] - first).days + 1):
        hist = days.get(first + timedelta(days=offset))
        if hist:
            running = [a + b for a, b in zip(running, hist, strict=True)]
        cumulative.append(running)
    result = []
    for point in points:
        high = (point - first).days + 1
        low = max(high - window, 0)
        result.append([a - b for a, b in zip(cumulative[high], cumulative[low], strict=True)])
    return result


async def trend(query: TrendQuery) -> dict:
    chosen = selection(query)
    points = point_dates(query.start, query.end, query.interval)
    first = points[0] - timedelta(days=query.window_days - 1) if points else query.start
    series = await daily(query.survey.id, query.question, chosen, first, query.end)
    if chosen.group is None:
        series = {"": series.get(chosen.label(chosen.value or ""), {}) if chosen.value else series.get("all", {})}
    groups = []
    for value in ordered(series, chosen.group):
        hists = rolling(series[value], points, query.window_days)
        key = {chosen.group: value} if chosen.group else {}
        groups.append(
            {
                "key": {**query.filters, **key},
                "points": [
                    point_json(day, metrics.estimate(query.survey.kind, hist))
                    for day, hist in zip(points, hists, strict=True)
                ],
            }
        )
    return {
        "survey": query.survey.id,
        "question": query.question,
        "metric": query.survey.kind,
        "window_days": query.window_days,
        "interval": query.interval,
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "by": query.by,
        "groups": groups,
    }


def ordered(values, group: str | None) -> list[str]:
    """Group values in a reader's order: lifecycle buckets by age, everything else alphabetically."""
    if group == "lifecycle":
        rank = {name: i for i, (name, _, _) in enumerate(rollups.LIFECYCLE)}
        return sorted(values, key=lambda v: rank.get(v, len(rank)))
    return sorted(values)


def parse_range(raw: str | None, name: str) -> tuple[date, date]:
    if not raw or ".." not in raw:
        raise BadRequest(f"{name} must be a range such as 2026-01-01..2026-03-31.")
    first, _, last = raw.partition("..")
    start, end = parse_date(first, f"{name} (start)"), parse_date(last, f"{name} (end)")
    if start > end:
        raise BadRequest(f"{name} starts after it ends.")
    return start, end


async def compare(
    survey: Survey, question: str, chosen: Selection, a: tuple[date, date], b: tuple[date, date]
) -> list[dict]:
    """Each group's value in period a and in period b, the difference, its interval and its p-value.

    `significance` is "too_few" (and `p_value` null) while either period has fewer than `min_n` answers.
    """
    results = []
    first, last = min(a[0], b[0]), max(a[1], b[1])
    series = await daily(survey.id, question, chosen, first, last)
    if chosen.group is None:
        series = {"": series.get(chosen.label(chosen.value or ""), {}) if chosen.value else series.get("all", {})}
    for value in ordered(series, chosen.group):
        days = series[value]
        est_a = metrics.estimate(survey.kind, metrics.add(*(h for d, h in days.items() if a[0] <= d <= a[1])))
        est_b = metrics.estimate(survey.kind, metrics.add(*(h for d, h in days.items() if b[0] <= d <= b[1])))
        change = metrics.compare(est_a, est_b)
        results.append(
            {
                "key": {chosen.group: value} if chosen.group else {},
                "a": point_json(a[1], est_a) | {"from": a[0].isoformat()},
                "b": point_json(b[1], est_b) | {"from": b[0].isoformat()},
                "difference": change.difference,
                "ci_low": change.ci_low,
                "ci_high": change.ci_high,
                "p_value": change.p_value,
                "significant": change.significant,
                "significance": change.significance,
                "min_n": metrics.MIN_COMPARE_N,
            }
        )
    return results
