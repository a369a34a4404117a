"""CSV export of answers: streamed in constant memory, safe against formula injection in spreadsheets."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date

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


async def rows(
    options: Options, catalog: Catalog, segments: Iterable[str], conditions: Iterable[tuple[str, tuple]] = ()
) -> AsyncIterator[list[str]]:
    """The header, then one list of cells per confirmed answer, read in chunks by id; `conditions` (SQL on
    `response r`, each with its parameters) narrow the answers further, as the dashboard's explorer does."""
    segments = list(segments)
    teams = dict(await Team.all().values_list("id", "slug"))
    team_id = None
    if options.team:
        team_id = next((tid for tid, slug in teams.items() if slug == options.team), None)
        if team_id is None:
            raise BadRequest(f"No team has the slug {options.team!r}.")
    employee_surveys = [s.id for s in catalog if s.audience == "employee"]
    where = ["r.confirmed = ?", "r.discarded = ?", "r.id > ?"]
    params: list = [True, False]
    if employee_surveys:
        where.append(f"r.survey_id NOT IN ({db.marks(len(employee_surveys))})")
    extra: list = list(employee_surveys)
    for clause, value in (
        ("r.survey_id = ?", options.survey),
        ("r.day >= ?", options.since),
        ("r.day <= ?", options.until),
        ("r.team_id = ?", team_id),
    ):
        if value is not None:
            where.append(clause)
            extra.append(value)
    for clause, values in conditions:
        where.append(f"({clause})")
        extra.extend(values)
    sql = (
        "SELECT r.id, r.survey_id, r.question_id, r.score, r.comment, r.locale, r.answered_at, r.day,"
        " r.touchpoint_type, r.team_id, r.channel, r.stage, r.dimensions FROM response r WHERE "
        + " AND ".join(where)
        + f" ORDER BY r.id LIMIT {CHUNK}"
    )
    yield [*COLUMNS, *segments]
    bands = {(survey.id, n): survey.band_for(n).name for survey in catalog for n in survey.scores}
    last = 0
    while True:
        chunk = await db.fetch(sql, [*params, last, *extra])
        for row in chunk:
            dims = db.as_json(row[12]) if row[12] not in (None, "{}") else {}
            answered = row[6] if isinstance(row[6], str) or row[6] is None else row[6].isoformat()
            day = row[7] if isinstance(row[7], str) else row[7].isoformat()
            yield [
                row[0],
                row[1],
                row[2],
                row[3],
                bands.get((row[1], row[3]), ""),
                neutralise(row[4]),
                row[5],
                answered or "",
                day,
                neutralise(row[8] or ""),
                teams.get(row[9], ""),
                neutralise(row[10] or ""),
                neutralise(row[11] or ""),
                *(neutralise(dims.get(name, "")) for name in segments),
            ]
        if len(chunk) < CHUNK:
            break
        last = chunk[-1][0]


async def csv_chunks(
    options: Options, catalog: Catalog, segments: Iterable[str], conditions: Iterable[tuple[str, tuple]] = ()
) -> AsyncIterator[bytes]:
    """UTF-8 CSV text in pieces of a few hundred rows (optionally with a BOM, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if options.bom:
        buffer.write("\ufeff")
    count = 0
    async for cells in rows(options, catalog, segments, conditions):
        writer.writerow(cells)  # text cells were neutralised where they were read
        count += 1
        if count % 2000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
