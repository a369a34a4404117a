"""CSV export of answers: streamed in constant memory, safe against formula injection in spreadsheets."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from tortoise.connection import connections

from pulse import db, fields
from pulse.catalog import Catalog
from pulse.errors import BadRequest
from pulse.models import Team

CHUNK = 10_000
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "id",
    "survey",
    "question",
    "score",
    "band",
    "comment",
    "locale",
    "answered_at",
    "day",
    "touchpoint_type",
    "team",
    "channel",
    "stage",
)


@dataclass(frozen=True)
class Options:
    survey: str | None = None
    since: date | None = None
    until: date | None = None
    team: str | None = None
    bom: bool = False


def neutralise(value: object) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @, a tab or CR gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(DANGEROUS) else text


def parse_options(params: dict[str, str], catalog: Catalog) -> Options:
    survey = params.get("survey") or None
    if survey and catalog.get(survey) is None:
        raise BadRequest(f"Unknown survey {survey!r}; the surveys are {', '.join(s.id for s in catalog)}.")
    if survey and catalog.get(survey).audience == "employee":
        raise BadRequest("Employee pulses are not exported answer by answer: that would break their anonymity.")
    dates = {name: fields.parse_date(params[name], name) for name in ("since", "until") if params.get(name)}
    bom = params.get("bom", "0")
    if bom not in ("0", "1", "true", "false"):
        raise BadRequest("bom must be 1 or 0.")
    team = fields.TEAM.check(params["team"], "team") if params.get("team") else None
    return Options(survey, dates.get("since"), dates.get("until"), team, bom in ("1", "true"))


async def check_team(options: Options) -> None:
    """Refuse a team that does not exist before anything is sent: once a stream has begun, its 200 is out."""
    if options.team and not await Team.exists(slug=options.team):
        raise BadRequest(f"No team has the slug {options.team!r}.")


def _literal(text: str) -> str:
    """An SQL string literal, for names from the catalog and the settings (never from a request)."""
    return "'" + text.replace("'", "''") + "'"


def _safe_sql(column: str, dialect: str) -> str:
    """SQL for `neutralise` of a text column, so the database quotes formulas, not a Python call per cell."""
    char = "chr" if dialect == "postgres" else "char"
    starts = f"substr({column}, 1, 1) IN ('=', '+', '-', '@', {char}(9), {char}(13))"
    return f"CASE WHEN {starts} THEN '''' || {column} ELSE COALESCE({column}, '') END"


def _band_sql(catalog: Catalog) -> str:
    """SQL for the band of an answer's score in its survey (empty for a survey no longer in the catalog)."""
    cases = []
    for survey in catalog:
        by_band: dict[str, list[str]] = {}
        for score in survey.scores:
            by_band.setdefault(survey.band_for(score).name, []).append(str(int(score)))
        cases.extend(
            f"WHEN r.survey_id = {_literal(survey.id)} AND r.score IN ({', '.join(scores)}) THEN {_literal(band)}"
            for band, scores in by_band.items()
        )
    return f"CASE {' '.join(cases)} ELSE '' END" if cases else "''"


async def _query(
    options: Options, catalog: Catalog, segments: Sequence[str], conditions: Iterable[tuple[str, tuple]], dialect: str
) -> tuple[str, list]:
    """The SELECT of a chunk of the export's rows: its parameters are the last id read, `params`, the chunk size.

    Its columns are the CSV's cells, neutralised, then the answer's dimensions, from which Python writes the
    segments; PostgreSQL gives dates, and Python writes those cells too."""
    team = None
    if options.team:
        team = await Team.get_or_none(slug=options.team)
        if team is None:
            raise BadRequest(f"No team has the slug {options.team!r}.")
    employee_surveys = [s.id for s in catalog if s.audience == "employee"]
    where = ["r.id > ?", "r.confirmed = ?", "r.discarded = ?"]
    params: list = [True, False]
    if employee_surveys:
        where.append(f"r.survey_id NOT IN ({db.marks(len(employee_surveys))})")
        params.extend(employee_surveys)
    for clause, value in (
        ("r.survey_id = ?", options.survey),
        ("r.day >= ?", options.since),
        ("r.day <= ?", options.until),
        ("r.team_id = ?", team.id if team else None),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    for clause, values in conditions:
        where.append(f"({clause})")
        params.extend(values)
    cells = [
        "r.id, r.survey_id, r.question_id, r.score",
        _band_sql(catalog),
        _safe_sql("r.comment", dialect),
        "r.locale, COALESCE(r.answered_at, ''), r.day" if dialect == "sqlite" else "r.locale, r.answered_at, r.day",
        _safe_sql("r.touchpoint_type", dialect),
        "COALESCE(t.slug, '')",
        _safe_sql("r.channel", dialect),
        _safe_sql("r.stage", dialect),
    ]
    cells.append("r.dimensions")
    # SQLite would otherwise read a survey's or a team's index and sort all its answers again for every chunk;
    # walking the rowid on from the last id read makes the whole export one pass over the table
    hint = " NOT INDEXED" if dialect == "sqlite" else ""
    sql = (
        f"SELECT {', '.join(cells)} FROM response r{hint} LEFT JOIN team t ON t.id = r.team_id"
        f" WHERE {' AND '.join(where)} ORDER BY r.id LIMIT ?"
    )
    return sql, params


async def _chunks(sql: str, params: list, size: int) -> AsyncIterator[Sequence[Sequence]]:
    """The rows of `sql` in chunks of `size` by id, read through the driver itself (plain tuples from sqlite3,
    records from asyncpg). The next chunk is read while the caller writes this one (the driver steps the query
    without the GIL), and the connection is held only while a chunk is read: the app's other queries go on
    between chunks (on SQLite they share one connection)."""
    connection = connections.get("default")
    postgres = connection.capabilities.dialect == "postgres"
    if postgres:
        sql = db._numbered(sql)

    async def read(last: int) -> Sequence[Sequence]:
        async with connection.acquire_connection() as driver:
            if postgres:
                return await driver.fetch(sql, last, *params, size)
            cursor = await driver.execute(sql, [last, *params, size])
            cursor.row_factory = None  # tuples, not the sqlite3.Row that Tortoise sets on its connection
            try:
                return await cursor.fetchall()
            finally:
                await cursor.close()

    pending: asyncio.Future | None = asyncio.ensure_future(read(0))
    try:
        while pending is not None:
            chunk = await pending
            pending = asyncio.ensure_future(read(chunk[-1][0])) if len(chunk) == size else None
            if chunk:
                yield chunk
    finally:
        if pending is not None:  # the reader went away (a download cut short): stop reading for it
            pending.cancel()


def _segment_cells(dimensions: object, segments: Sequence[str]) -> tuple[str, ...]:
    dims = db.as_json(dimensions) if dimensions not in (None, "{}") else {}
    return tuple(neutralise(dims.get(name, "")) for name in segments)


class _SegmentCells(dict):
    """The segment cells of each dimensions text met, parsed once: many answers share one text (a contact's
    plan and region), and SQLite's json_extract would parse it again for every segment of every row. Emptied
    when it holds `LIMIT` texts, so memory stays bounded when every text differs."""

    LIMIT = 50_000

    def __init__(self, segments: Sequence[str]) -> None:
        super().__init__()
        self.segments = segments

    def __missing__(self, dimensions: object) -> tuple[str, ...]:
        if len(self) >= self.LIMIT:
            self.clear()
        cells = self[dimensions] = _segment_cells(dimensions, self.segments)
        return cells


def _stamp(value: object) -> object:
    """A date or timestamp as the export writes it: SQLite's stored text as it is, PostgreSQL's in ISO form."""
    return value if value is None or isinstance(value, str) else value.isoformat()  # type: ignore[attr-defined]


async def rows(
    options: Options,
    catalog: Catalog,
    segments: Iterable[str],
    conditions: Iterable[tuple[str, tuple]] = (),
    *,
    chunk: int = CHUNK,
) -> AsyncIterator[Sequence[Sequence]]:
    """The header row, then the rows (sequences of cells) of the confirmed answers a chunk at a time, in id
    order; `conditions` (SQL on `response r`, each with its parameters) narrow the answers further, as the
    dashboard's explorer does. Text cells come neutralised."""
    segments = tuple(segments)
    dialect = db.dialect()
    sql, params = await _query(options, catalog, segments, conditions, dialect)
    cells = _SegmentCells(segments)
    last = len(COLUMNS)  # the dimensions' place in a row read
    yield [[*COLUMNS, *segments]]
    async for found in _chunks(sql, params, chunk):
        if dialect == "sqlite":  # every cell as SQLite gave it, but the dimensions
            yield [row[:last] + cells[row[last]] for row in found]
        else:
            yield [(*row[:7], _stamp(row[7]), _stamp(row[8]), *row[9:last], *cells[row[last]]) for row in found]


async def csv_chunks(
    options: Options,
    catalog: Catalog,
    segments: Iterable[str],
    conditions: Iterable[tuple[str, tuple]] = (),
    *,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """UTF-8 CSV text, one piece per chunk of rows (optionally with a BOM, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if options.bom:
        buffer.write("\ufeff")
    async for table in rows(options, catalog, segments, conditions, chunk=chunk):
        writer.writerows(table)  # text cells were neutralised where they were read
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
