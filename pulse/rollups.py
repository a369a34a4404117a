"""Daily score histograms per survey question and dimension value, kept in step with the answers.

Each confirmed answer adds one to the count of its score on its (organisation-local) day for every dimension
value it belongs to, in the answer's own transaction; a changed answer takes one off the old score and day and
adds one to the new. Trends then cost O(days x values), whatever the number of answers.

Dimensions: `all`, `touchpoint`, `team` (an answer counts for its team and every parent team), `channel`,
`stage`, `lifecycle` (days since the contact's first purchase, bucketed), and each segment attribute named in
PULSE_SEGMENT_ATTRIBUTES. Pairs `team|<dimension>` let a team be broken down (or a value be split by team).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date

from tortoise.connection import connections

from pulse import db
from pulse.models import Response, Team

COUNTS = tuple(f"c{n}" for n in range(11))
BUILT_IN = ("touchpoint", "team", "channel", "stage", "lifecycle")
LIFECYCLE = (("0-30", 0, 30), ("31-90", 31, 90), ("91-180", 91, 180), ("181-365", 181, 365), ("365+", 366, None))
SEPARATOR = "|"


def dimensions(segments: Iterable[str]) -> tuple[str, ...]:
    """Every dimension trends can be grouped or filtered by."""
    return ("all", *BUILT_IN, *segments)


def lifecycle(days: int | None) -> str | None:
    if days is None:
        return None
    for name, low, high in LIFECYCLE:
        if days >= low and (high is None or days <= high):
            return name
    return None


def keys(
    touchpoint: str | None,
    team_scope: Iterable[str],
    channel: str | None,
    stage: str | None,
    days_since_sale: int | None,
    segments: dict[str, str | None],
) -> list[tuple[str, str]]:
    """The (dimension, value) pairs one answer counts for."""
    own = {"touchpoint": touchpoint, "channel": channel, "stage": stage, "lifecycle": lifecycle(days_since_sale)}
    own.update(segments)
    found = [("all", "all")]
    found += [(name, str(value)) for name, value in own.items() if value not in (None, "")]
    for slug in team_scope:
        found.append(("team", slug))
        found += [
            (f"team{SEPARATOR}{name}", f"{slug}{SEPARATOR}{value}")
            for name, value in own.items()
            if value not in (None, "")
        ]
    return found


async def team_scopes() -> dict[int, list[str]]:
    """For each team id, its slug and the slugs of every team above it."""
    rows = await Team.all().values_list("id", "slug", "parent_id")
    slug = {team_id: team_slug for team_id, team_slug, _ in rows}
    parent = {team_id: parent_id for team_id, _, parent_id in rows}
    scopes: dict[int, list[str]] = {}
    for team_id in slug:
        chain, current, seen = [], team_id, set()
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(slug[current])
            current = parent.get(current)
        scopes[team_id] = chain
    return scopes


def response_keys(response: Response, scopes: dict[int, list[str]], segment_names: Iterable[str]) -> list[tuple]:
    dims = response.dimensions or {}
    days = dims.get("days_since_sale")
    return keys(
        response.touchpoint_type,
        scopes.get(response.team_id, []) if response.team_id else [],
        response.channel,
        response.stage,
        int(days) if isinstance(days, int | float) else None,
        {name: dims.get(name) for name in segment_names},
    )


async def apply(response: Response, score: int, day: date, sign: int, segment_names: Iterable[str]) -> None:
    """Add (sign=1) or take away (sign=-1) one answer of `score` on `day`; call inside the answer's transaction."""
    pairs = response_keys(response, await team_scopes(), segment_names)
    counts = [0] * 11
    counts[score] = sign
    await upsert([(day, response.survey_id, response.question_id, dim, value, *counts) for dim, value in pairs])


async def upsert(rows: list[tuple]) -> None:
    """Add rows of (day, survey, question, dimension, value, c0..c10) to the histograms, creating them as needed."""
    if not rows:
        return
    connection = connections.get("default")
    columns = ("day", "survey_id", "question_id", "dimension", "value", *COUNTS)
    updates = ", ".join(f"{c} = daily_rollup.{c} + excluded.{c}" for c in COUNTS)
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        if connection.capabilities.dialect == "postgres":
            marks, n = [], 1
            for _ in chunk:
                marks.append("(" + ", ".join(f"${i}" for i in range(n, n + len(columns))) + ")")
                n += len(columns)
            values = ", ".join(marks)
        else:
            values = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * len(chunk))
        sql = (
            f"INSERT INTO daily_rollup ({', '.join(columns)}) VALUES {values} "
            f"ON CONFLICT (survey_id, question_id, dimension, value, day) DO UPDATE SET {updates}"
        )
        await connection.execute_query(sql, [value for row in chunk for value in row])


def _hist_sql() -> str:
    return ", ".join(f"SUM(CASE WHEN r.score = {n} THEN 1 ELSE 0 END)" for n in range(11))


def _json_text(dialect: str, name: str) -> str:
    if dialect == "postgres":
        return f"(r.dimensions ->> '{name}')"
    return f"json_extract(r.dimensions, '$.{name}')"


async def rebuild(
    segment_names: Iterable[str], since: date | None = None, progress: Callable[[str], None] | None = None
) -> int:
    """Recompute the histograms from the confirmed answers (all days, or from `since`); returns rows written.

    Runs as grouped SQL in the database, so ten million answers take minutes, not hours.
    """
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    segment_names = [name for name in segment_names if name.replace("_", "").isalnum()]
    scopes = await team_scopes()
    pairs = [(team_id, slug) for team_id, chain in scopes.items() for slug in chain]
    days = _json_text(dialect, "days_since_sale")
    if dialect == "postgres":
        days = f"CAST({days} AS INTEGER)"
    bucket = (
        "CASE "
        + " ".join(
            f"WHEN {days} >= {low}" + (f" AND {days} <= {high}" if high is not None else "") + f" THEN '{name}'"
            for name, low, high in LIFECYCLE
        )
        + " END"
    )
    own = {"touchpoint": "r.touchpoint_type", "channel": "r.channel", "stage": "r.stage", "lifecycle": bucket}
    own.update({name: _json_text(dialect, name) for name in segment_names})
    confirmed = "r.confirmed = ? AND r.discarded = ?" + (" AND r.day >= ?" if since else "")
    base_params: list = [True, False] + ([since] if since else [])
    scope_cte, scope_params = "", []
    if pairs:
        typed = "(CAST(? AS INTEGER), CAST(? AS TEXT))"
        scope_cte = "WITH scope(team_id, slug) AS (VALUES " + ", ".join([typed] * len(pairs)) + ") "
        scope_params = [value for pair in pairs for value in pair]

    statements: list[tuple[str, str, list]] = [
        (
            "all",
            f"SELECT r.day, r.survey_id, r.question_id, 'all', 'all', {_hist_sql()} FROM response r "
            f"WHERE {confirmed} GROUP BY r.day, r.survey_id, r.question_id",
            base_params,
        ),
    ]
    for name, expression in own.items():
        statements.append(
            (
                name,
                f"SELECT r.day, r.survey_id, r.question_id, '{name}', {expression}, {_hist_sql()} "
                f"FROM response r WHERE {confirmed} AND {expression} IS NOT NULL "
                f"GROUP BY r.day, r.survey_id, r.question_id, {expression}",
                base_params,
            )
        )
    if pairs:
        statements.append(
            (
                "team",
                f"{scope_cte}SELECT r.day, r.survey_id, r.question_id, 'team', s.slug, "
                f"{_hist_sql()} FROM response r JOIN scope s ON s.team_id = r.team_id "
                f"WHERE {confirmed} GROUP BY r.day, r.survey_id, r.question_id, s.slug",
                scope_params + base_params,
            )
        )
        for name, expression in own.items():
            value = f"s.slug || '{SEPARATOR}' || {expression}"
            statements.append(
                (
                    f"team|{name}",
                    f"{scope_cte}SELECT r.day, r.survey_id, r.question_id, 'team{SEPARATOR}{name}', {value}, "
                    f"{_hist_sql()} FROM response r JOIN scope s ON s.team_id = r.team_id "
                    f"WHERE {confirmed} AND {expression} IS NOT NULL "
                    f"GROUP BY r.day, r.survey_id, r.question_id, s.slug, {expression}",
                    scope_params + base_params,
                )
            )

    columns = "day, survey_id, question_id, dimension, value, " + ", ".join(COUNTS)
    written = 0
    if since:
        await db.fetch("DELETE FROM daily_rollup WHERE day >= ?", [since])
    else:
        await db.fetch("DELETE FROM daily_rollup")
    for label, select, params in statements:
        if progress:
            progress(label)
        if select.startswith("WITH"):  # WITH … INSERT … SELECT: both engines take the CTE first
            cte, _, rest = select.partition(") SELECT")
            sql = f"{cte}) INSERT INTO daily_rollup ({columns}) SELECT{rest}"
        else:
            sql = f"INSERT INTO daily_rollup ({columns}) {select}"
        await db.fetch(sql, params)
    [(written,)] = await db.fetch(
        "SELECT COUNT(*) FROM daily_rollup" + (" WHERE day >= ?" if since else ""), [since] if since else []
    )
    return written


def expected_from(responses: Iterable[Response], scopes: dict[int, list[str]], segment_names: Iterable[str]) -> Counter:
    """The histograms recomputed in Python from raw answers: the oracle the tests hold the rollups to."""
    found: Counter = Counter()
    names = list(segment_names)
    for response in responses:
        if not response.confirmed or response.discarded:
            continue
        for dim, value in response_keys(response, scopes, names):
            found[(response.day, response.survey_id, response.question_id, dim, value, response.score)] += 1
    return found


async def stored() -> Counter:
    """The histograms in the database, in the same shape as `expected_from`."""
    found: Counter = Counter()
    rows = await db.fetch(
        f"SELECT day, survey_id, question_id, dimension, value, {', '.join(COUNTS)} FROM daily_rollup"
    )
    for row in rows:
        day = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
        for score, count in enumerate(row[5:]):
            if count:
                found[(day, row[1], row[2], row[3], row[4], score)] += count
    return found
