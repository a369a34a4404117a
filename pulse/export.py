"""CSV export of answers: streamed in constant memory, safe against formula injection in spreadsheets."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

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
    options: Options, catalog: Catalog, conditions: Iterable[tuple[str, tuple]], dialect: str
) -> tuple[list[str], str, list]:
    """The export's SQL: the cells of a row (neutralised; PostgreSQL gives dates, which Python writes), the
    WHERE of its answers after the last id read, and the parameters between that id and the chunk size."""
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
        "r.id",
        "r.survey_id",
        "r.question_id",
        "r.score",
        _band_sql(catalog),
        _safe_sql("r.comment", dialect),
        "r.locale",
        "COALESCE(r.answered_at, '')" if dialect == "sqlite" else "r.answered_at",
        "r.day",
        _safe_sql("r.touchpoint_type", dialect),
        "COALESCE(t.slug, '')",
        _safe_sql("r.channel", dialect),
        _safe_sql("r.stage", dialect),
    ]
    return cells, " AND ".join(where), params


def _select(columns: str, where: str, dialect: str, *, limit: bool = True) -> str:
    """A chunk of answers by id (at most the last parameter, with `limit`), with their team."""
    # SQLite would otherwise read a survey's or a team's index and sort all its answers again for every chunk;
    # walking the rowid on from the last id read makes the whole export one pass over the table
    hint = " NOT INDEXED" if dialect == "sqlite" else ""
    return (
        f"SELECT {columns} FROM response r{hint} LEFT JOIN team t ON t.id = r.team_id"
        f" WHERE {where} ORDER BY r.id{' LIMIT ?' if limit else ''}"
    )


def _line_sql(cells: Sequence[str]) -> str:
    """SQLite: a row's cells joined by commas, quoted nowhere (printf writes NULL as csv.writer writes None, as
    nothing); NULL when the score is not an integer, whose text SQLite might write otherwise than Python."""
    # one printf builds the text once, where `a || ',' || b …` copied it again for every cell (twice the time)
    line = f"printf('{','.join(['%s'] * len(cells))}', {', '.join(cells)})"
    return f"CASE typeof(r.score) WHEN 'integer' THEN {line} END"


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


class _PerText(dict):
    """`make(text)` for each dimensions text met, made once: many answers share one text (a contact's plan and
    region), which SQLite's json_extract would parse again for every segment of every row. Emptied when it holds
    `LIMIT` texts, so memory stays bounded when every text differs."""

    LIMIT = 50_000

    def __init__(self, make: Callable[[object], object]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, dimensions: object) -> object:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[dimensions] = self.make(dimensions)
        return made


def _stamp(value: object) -> object:
    """A date or timestamp as the export writes it: SQLite's stored text as it is, PostgreSQL's in ISO form."""
    return value if value is None or isinstance(value, str) else value.isoformat()  # type: ignore[attr-defined]


def _csv_line(writer: Any, buffer: io.StringIO, row: Sequence) -> str:
    """One row as `writer` writes it, without its line end."""
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(row)
    return buffer.getvalue()[:-2]


async def _sqlite_text(
    options: Options, catalog: Catalog, segments: Sequence[str], conditions: Iterable[tuple[str, tuple]], chunk: int
) -> AsyncIterator[str]:
    """SQLite: the CSV lines of the answers, a chunk at a time. SQLite joins each row's cells into one text (one
    string to hand over, not thirteen, and no csv.writer over them while the GIL is held): that is the row's
    line when no cell needs quoting. Rows whose cells hold a comma, a quote or a line break are read again cell
    by cell and written by csv.writer, as are the segments of each distinct dimensions text."""
    cells, where, params = await _query(options, catalog, conditions, "sqlite")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    # a leading empty cell stands for the row before the segments (csv quotes a lone empty cell, not this one)
    tails = _PerText(lambda text: _csv_line(writer, buffer, ("", *_segment_cells(text, segments))) if segments else "")
    by_id = ", ".join([*cells, "r.dimensions"])
    commas = len(cells) - 1
    async for found in _chunks(_select(f"r.id, {_line_sql(cells)}, r.dimensions", where, "sqlite"), params, chunk):
        lines = []
        odd: dict[int, int] = {}  # the place in `lines` of each answer Python writes, by id
        for answer_id, line, dimensions in found:
            if line is None or line.count(",") != commas or '"' in line or "\n" in line or "\r" in line:
                odd[answer_id] = len(lines)
                lines.append("")
            else:
                lines.append(line + tails[dimensions])
        if odd:
            sql = _select(by_id, f"r.id IN ({db.marks(len(odd))})", "sqlite", limit=False)
            for row in await db.fetch(sql, list(odd)):
                lines[odd.pop(row[0])] = _csv_line(writer, buffer, (*row[:-1], *_segment_cells(row[-1], segments)))
            for place in sorted(odd.values(), reverse=True):  # erased since the chunk was read
                del lines[place]
        lines.append("")
        yield "\r\n".join(lines)


async def _postgres_rows(
    options: Options, catalog: Catalog, segments: Sequence[str], conditions: Iterable[tuple[str, tuple]], chunk: int
) -> AsyncIterator[Sequence[Sequence]]:
    """PostgreSQL: the rows (sequences of cells) of the answers a chunk at a time."""
    cells, where, params = await _query(options, catalog, conditions, "postgres")
    sql = _select(", ".join([*cells, "r.dimensions"]), where, "postgres")
    per_text = _PerText(lambda text: _segment_cells(text, segments))
    last = len(cells)  # the dimensions' place in a row read
    async for found in _chunks(sql, params, chunk):
        yield [(*row[:7], _stamp(row[7]), _stamp(row[8]), *row[9:last], *per_text[row[last]]) for row in found]


async def csv_chunks(
    options: Options,
    catalog: Catalog,
    segments: Iterable[str],
    conditions: Iterable[tuple[str, tuple]] = (),
    *,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """UTF-8 CSV text of the confirmed answers in id order, one piece per chunk of rows (optionally with a BOM,
    for Excel); `conditions` (SQL on `response r`, each with its parameters) narrow the answers further, as the
    dashboard's explorer does. Text cells are neutralised where they are read."""
    segments = tuple(segments)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if options.bom:
        buffer.write("\ufeff")
    writer.writerow([*COLUMNS, *segments])
    yield buffer.getvalue().encode("utf-8")
    if db.dialect() == "sqlite":
        async for text in _sqlite_text(options, catalog, segments, conditions, chunk):
            yield text.encode("utf-8")
        return
    async for table in _postgres_rows(options, catalog, segments, conditions, chunk):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(table)
        yield buffer.getvalue().encode("utf-8")
