"""Daily score histograms per survey question and dimension value, kept in step with the answers.

Each confirmed answer adds one to the count of its score on its (organisation-local) day for every dimension
value it belongs to, in the answer's own transaction; a changed answer takes one off the old score and day and
adds one to the new. Trends then cost O(days x values), whatever the number of answers.

Dimensions: `all`, `touchpoint`, `team` (an answer counts for its team and every parent team), `channel`,
`stage`, `lifecycle` (days since the contact's first purchase, bucketed), and each segment attribute named in
PULSE_SEGMENT_ATTRIBUTES. Pairs `team|<dimension>` let a team be broken down (or a value be split by team).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import date, timedelta
from operator import add

from tortoise.connection import connections
from tortoise.transactions import in_transaction

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


CHUNK_DAYS = 31
MMAP_BYTES = 1 << 40  # SQLite caps it at its compile-time limit (SQLITE_MAX_MMAP_SIZE)
BUCKET_DAYS = {name: low for name, low, _ in LIFECYCLE}  # one day count that falls in each lifecycle bucket


def _canonical(dimensions: str, segment_names: list[str]) -> tuple:
    """What an answer's dimensions snapshot counts for: its lifecycle bucket and its segment values as keys()
    writes them. Answers that differ only in, say, the exact days since the sale share one entry."""
    dims = json.loads(dimensions) or {}
    days = dims.get("days_since_sale")
    bucket = lifecycle(int(days) if isinstance(days, int | float) else None)
    values = (dims.get(name) for name in segment_names)
    return bucket, tuple(None if value in (None, "") else str(value) for value in values)


class _Snapshots(dict):
    """Dimensions snapshots (JSON text) to what they count for, each parsed when first seen."""

    def __init__(self, segment_names: list[str]) -> None:
        super().__init__()
        self.segment_names = segment_names

    def __missing__(self, text: str) -> tuple:
        found = self[text] = _canonical(text, self.segment_names)
        return found


def _histograms(
    rows: Iterable[tuple], scopes: dict[int, list[str]], segment_names: list[str], dates: bool
) -> dict[tuple, list[int]]:
    """Histograms per (day, survey, question, dimension, value) for answers given as (key, dimensions, score),
    where key is the JSON array [day, survey, question, team, touchpoint, channel, stage].

    1. The answers are counted per key and distinct combination of what their dimensions count for (a cube),
       each distinct dimensions snapshot parsed once. Three values per answer, not nine, cross from the driver:
       making those objects is most of the cost.
    2. Each cube entry's (dimension, value) pairs come from keys(), the function write-time `apply` uses, and
       its histogram is added to each of them, first per team, then per team in the team's scope.
    """
    snapshots = _Snapshots(segment_names)
    cube: defaultdict[tuple, list[int]] = defaultdict(lambda: [0] * 11)
    for key, dimensions, score in rows:
        cube[key, snapshots[dimensions]][score] += 1
    # keys() without teams for each combination, summed per team; then each team sum counts for the team's
    # scope: the same pairs as keys() with the scope, with far fewer histograms to add
    pairs_of: dict[tuple, list[tuple[str, str]]] = {}
    per_team: dict[tuple, list[int]] = {}
    for (key, own), histogram in cube.items():
        day, survey, question, team, *combination = json.loads(key)
        combination = (*combination, own)
        pairs = pairs_of.get(combination)
        if pairs is None:
            touchpoint, channel, stage, (bucket, values) = combination
            pairs = pairs_of[combination] = keys(
                touchpoint, [], channel, stage, BUCKET_DAYS.get(bucket), dict(zip(segment_names, values, strict=True))
            )
        for pair in pairs:
            total = per_team.get((day, survey, question, team, pair))
            per_team[(day, survey, question, team, pair)] = (
                histogram.copy() if total is None else list(map(add, total, histogram))
            )
    found: dict[tuple, list[int]] = {}
    for (day, survey, question, team, (dimension, value)), histogram in per_team.items():
        day = date.fromisoformat(day) if dates else day
        targets = [(dimension, value)]
        for slug in scopes.get(team, []) if team else []:
            if dimension == "all":
                targets.append(("team", slug))
            else:
                targets.append((f"team{SEPARATOR}{dimension}", f"{slug}{SEPARATOR}{value}"))
        for target in targets:
            total = found.get((day, survey, question, *target))
            found[(day, survey, question, *target)] = (
                histogram.copy() if total is None else list(map(add, total, histogram))
            )
    return found


async def _surveys() -> list[str]:
    """The survey ids with answers, one index seek each (a DISTINCT would read the whole index)."""
    found: list[str] = []
    while True:
        after = " WHERE survey_id > ?" if found else ""
        [(survey,)] = await db.fetch(f"SELECT MIN(survey_id) FROM response{after}", found[-1:])
        if survey is None:
            return found
        found.append(survey)


async def _day_range(surveys: list[str]) -> tuple[date, date]:
    """The first and last day any answer of these surveys has, by the (survey_id, day) index."""
    firsts, lasts = [], []
    for survey in surveys:
        [(first,)] = await db.fetch("SELECT MIN(day) FROM response WHERE survey_id = ?", [survey])
        [(last,)] = await db.fetch("SELECT MAX(day) FROM response WHERE survey_id = ?", [survey])
        firsts.append(first if isinstance(first, date) else date.fromisoformat(first))
        lasts.append(last if isinstance(last, date) else date.fromisoformat(last))
    return min(firsts), max(lasts)


async def rebuild(
    segment_names: Iterable[str], since: date | None = None, progress: Callable[[str], None] | None = None
) -> int:
    """Recompute the histograms from the confirmed answers (all days, or from `since`); returns rows written.

    1. Histograms of surveys, and of days, that no longer have answers are removed.
    2. Then CHUNK_DAYS days at a time, each in its own transaction: the days' answers are read once by the
       (survey_id, day) index, counted in memory (`_histograms`), and the days' histograms replaced. A day keeps
       its old histograms until its chunk is done, never none; memory is bounded by a chunk, not the table.
    SQL GROUP BYs did the same work, one full scan, JSON parse and sort of every answer per dimension: 1,052 s at
    ten million answers on SQLite. `progress` is called with each chunk's first day.
    """
    segment_names = list(segment_names)
    scopes = await team_scopes()
    surveys = await _surveys()
    after, after_params = (" AND day >= ?", [since]) if since else ("", [])
    if not surveys:
        await db.execute(f"DELETE FROM daily_rollup WHERE 1 = 1{after}", after_params)
        return 0
    first, last = await _day_range(surveys)
    if since:
        first = max(first, since)
    await db.execute(
        f"DELETE FROM daily_rollup WHERE (survey_id NOT IN ({db.marks(len(surveys))}) OR day < ? OR day > ?){after}",
        [*surveys, first, last, *after_params],
    )
    # rows straight from the driver, not copied into tuples by db.fetch: there are millions
    postgres = connections.get("default").capabilities.dialect == "postgres"
    marks = [f"${n}" for n in range(1, len(surveys) + 5)] if postgres else ["?"] * (len(surveys) + 4)
    key = "day, survey_id, question_id, team_id, touchpoint_type, channel, stage"
    key = f"json_build_array({key})::text" if postgres else f"json_array({key})"
    select = (
        f"SELECT {key}, {'dimensions::text' if postgres else 'dimensions'}, score "
        f"FROM response WHERE survey_id IN ({', '.join(marks[:-4])}) AND day >= {marks[-4]} "
        f"AND day <= {marks[-3]} AND confirmed = {marks[-2]} AND discarded = {marks[-1]}"
    )
    columns = ("day", "survey_id", "question_id", "dimension", "value", *COUNTS)
    async with _mapped(postgres):
        await _replace_chunks(first, last, select, surveys, scopes, segment_names, columns, progress, postgres)
    [(written,)] = await db.fetch(f"SELECT COUNT(*) FROM daily_rollup WHERE 1 = 1{after}", after_params)
    return written


async def _replace_chunks(
    first: date,
    last: date,
    select: str,
    surveys: list[str],
    scopes: dict[int, list[str]],
    segment_names: list[str],
    columns: tuple[str, ...],
    progress: Callable[[str], None] | None,
    postgres: bool,
) -> None:
    start = first
    while start <= last:
        end = min(start + timedelta(days=CHUNK_DAYS - 1), last)
        if progress:
            progress(start.isoformat())
        async with in_transaction() as transaction:
            _, rows = await transaction.execute_query(select, [*surveys, start, end, True, False])
            histograms = _histograms(rows, scopes, segment_names, dates=postgres)
            del rows
            await db.execute("DELETE FROM daily_rollup WHERE day >= ? AND day <= ?", [start, end])
            await db.insert_many("daily_rollup", columns, [(*key, *counts) for key, counts in histograms.items()])
        start = end + timedelta(days=1)


@contextlib.asynccontextmanager
async def _mapped(postgres: bool) -> AsyncIterator[None]:
    """On SQLite, the database file memory-mapped while the rebuild reads it, then as before: the chunks' answers
    are scattered over the file, and a page read through the map costs less than SQLite's read() per page."""
    if postgres:
        yield
        return
    [(before,)] = await db.fetch("PRAGMA mmap_size")
    await db.fetch(f"PRAGMA mmap_size = {MMAP_BYTES}")
    try:
        yield
    finally:
        await db.fetch(f"PRAGMA mmap_size = {int(before)}")


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
