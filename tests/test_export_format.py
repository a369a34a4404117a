"""The CSV export's exact bytes on a small dataset, through the API, the explorer and `pulse export responses`,
pinned so that a faster export writes the same file; and every answer once, in id order, across many chunks."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime

from pulse import db, export
from pulse.models import Response
from tests.conftest import sign_in
from tests.test_cli import ROOT, pulse
from tests.test_trends_api import key  # noqa: F401  (fixture)


async def store(survey, question, score, *, team=None, comment="", answered_at=None, **more) -> int:
    day = more.pop("day", date(2026, 6, 10))
    answer = await Response.create(
        survey_id=survey,
        question_id=question,
        score=score,
        comment=comment,
        locale=more.pop("locale", "en"),
        answered_at=answered_at,
        day=day,
        confirmed=more.pop("confirmed", True),
        team=team,
        **more,
    )
    return answer.id


async def small_dataset(org) -> list[int]:
    """Answers with every kind of cell: quotes, commas, line breaks, formulas in each text column and in the
    segments, missing values, numbers in the segments, a survey no longer in the catalog."""
    noon = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    return [
        await store(
            "nps",
            "recommend",
            9,
            team=org.warsaw,
            comment='Great, "really"\nthanks',
            locale="pl",
            answered_at=datetime(2026, 6, 10, 9, 30, 15, 123456, tzinfo=UTC),
            touchpoint_type="support_ticket_closed",
            channel="phone",
            stage="active",
            dimensions={"plan": "pro", "region": "=cmd|' /C calc'!A0", "other": 1},
        ),
        await store("csat", "satisfaction", 1, comment="-5 stars", answered_at=noon, day=date(2026, 6, 11)),
        await store(
            "ces",
            "effort",
            6,
            team=org.milan,
            comment="zażółć gęślą jaźń",
            touchpoint_type="+purchase",
            channel="@web",
            stage="\trenewal",
            dimensions={"plan": 3, "region": -1},
            answered_at=noon,
        ),
        await store("nps", "recommend", 0, comment="\rReturn", dimensions={"plan": True, "region": None}),
        await store("retired", "old_question", 4, comment="plain", answered_at=noon, team=org.care),
    ]


def make_settings_environ(database_url: str) -> dict[str, str]:
    return {
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
    }


def expected(ids: list[int], dialect: str, *, bom: bool = False, only: tuple[int, ...] = (0, 1, 2, 3, 4)) -> bytes:
    """The header and the rows of the small dataset numbered in `only`."""
    # SQLite hands the stored text back as it is; PostgreSQL a datetime, written in ISO form
    stamp = {
        "sqlite": ("2026-06-10 09:30:15.123456+00:00", "2026-06-10 12:00:00+00:00"),
        "postgres": ("2026-06-10T09:30:15.123456+00:00", "2026-06-10T12:00:00+00:00"),
    }[dialect]
    lines = [
        "id,survey,question,score,band,comment,locale,answered_at,day,touchpoint_type,team,channel,stage,plan,region",
        f'{ids[0]},nps,recommend,9,promoter,"Great, ""really""\nthanks",pl,{stamp[0]},2026-06-10,'
        "support_ticket_closed,support-warsaw,phone,active,pro,'=cmd|' /C calc'!A0",
        f"{ids[1]},csat,satisfaction,1,unhappy,'-5 stars,en,{stamp[1]},2026-06-11,,,,,,",
        f"{ids[2]},ces,effort,6,easy,zażółć gęślą jaźń,en,{stamp[1]},2026-06-10,'+purchase,support-milan,'@web,"
        "'\trenewal,3,'-1",
        f'{ids[3]},nps,recommend,0,detractor,"\'\rReturn",en,,2026-06-10,,,,,True,',
        f"{ids[4]},retired,old_question,4,,plain,en,{stamp[1]},2026-06-10,,customer-care,,,,",
    ]
    chosen = [lines[0], *(lines[1 + n] for n in only)]
    return ("\ufeff" if bom else "").encode() + "".join(line + "\r\n" for line in chosen).encode()


async def test_the_api_csv_has_exactly_the_pinned_bytes(mail_client, org, key):  # noqa: F811
    ids = await small_dataset(org)
    await store("nps", "recommend", 10, comment="Not confirmed yet", confirmed=False)
    await store("nps", "recommend", 10, comment="Discarded", discarded=True)
    await store("enps", "recommend_workplace", 2, comment="Employee")
    everything = await mail_client.get("/api/v1/responses.csv", headers=key)
    with_bom = await mail_client.get("/api/v1/responses.csv?bom=1", headers=key)
    assert everything.content == expected(ids, db.dialect())
    assert with_bom.content == expected(ids, db.dialect(), bom=True)


async def test_the_explorer_csv_has_the_same_bytes_for_its_rows(mail_app, org):
    ids = await small_dataset(org)
    async with sign_in(mail_app, "alice@example.com") as alice:
        everything = await alice.get("/responses.csv")
        nps = await alice.get("/responses.csv?survey=nps&bom=1")
        polish = await alice.get("/responses.csv?language=pl")
    # the explorer shows customer surveys of the catalog only: not the retired one
    assert everything.content == expected(ids, db.dialect(), only=(0, 1, 2, 3))
    assert nps.content == expected(ids, db.dialect(), bom=True, only=(0, 3))
    assert polish.content == expected(ids, db.dialect(), only=(0,))


async def test_the_command_writes_the_same_bytes_to_a_file_and_to_standard_output(
    mail_app, org, database_url, tmp_path
):
    ids = await small_dataset(org)
    out = tmp_path / "answers.csv"
    to_file = pulse("export", "responses", "--bom", "--out", str(out), database_url=database_url)
    to_stdout = subprocess.run(
        [sys.executable, "-m", "pulse.cli", "export", "responses", "--team", "support-warsaw"],
        capture_output=True,
        env={**os.environ, **make_settings_environ(database_url)},
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert to_file.returncode == 0, to_file.stderr
    assert out.read_bytes() == expected(ids, db.dialect(), bom=True)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == expected(ids, db.dialect(), only=(0,))


async def test_every_answer_is_exported_once_in_id_order_across_chunks(mail_app, mail_settings, catalog, org):
    answers = [
        Response(
            survey_id="nps", question_id="recommend", score=n % 11, comment=f"=n{n}" if n % 7 == 0 else f"c{n}",
            locale="en", day=date(2026, 6, 1 + n % 28), confirmed=n % 5 != 0, team=org.warsaw,
            dimensions={"plan": n} if n % 9 == 0 else {"plan": f"p{n}"},
        )
        for n in range(203)
    ]  # fmt: skip
    await Response.bulk_create(answers)
    stored = await Response.filter(confirmed=True).order_by("id").values_list("id", "comment", "dimensions")
    for size in (7, 162, 10_000):  # many chunks; the last one exactly full; one chunk
        pieces = [
            piece
            async for piece in export.csv_chunks(
                export.Options(survey="nps"), catalog, mail_settings.segment_attributes, chunk=size
            )
        ]
        table = list(csv.reader(io.StringIO(b"".join(pieces).decode())))[1:]
        assert [(int(row[0]), row[5], row[13]) for row in table] == [
            (answer_id, "'" + comment if comment.startswith("=") else comment, str(dimensions["plan"]))
            for answer_id, comment, dimensions in stored
        ]


async def test_segments_are_the_same_when_the_parsed_dimensions_are_forgotten(mail_app, org, catalog, monkeypatch):
    ids = await small_dataset(org)
    options = export.Options()
    whole = b"".join([piece async for piece in export.csv_chunks(options, catalog, ("plan", "region"))])
    monkeypatch.setattr(export._PerText, "LIMIT", 1)  # every answer's text parsed again: memory stays bounded
    forgetful = b"".join([piece async for piece in export.csv_chunks(options, catalog, ("plan", "region"), chunk=2)])
    assert whole == forgetful == expected(ids, db.dialect())


async def test_rows_are_written_as_csv_writer_writes_them_whatever_the_segments(mail_app, org, catalog):
    await store("nps", "recommend", 9, comment="plain", dimensions={"plan": 'pro, "gold"', "region": "north"})
    await store("nps", "recommend", 8, comment="a, b", dimensions={"plan": "", "region": "line\nbreak"})
    await store("nps", "recommend", 7, dimensions={"plan": "basic"}, channel="web,phone")
    for segments in ((), ("plan",), ("region",), ("plan", "region")):
        text = b"".join([piece async for piece in export.csv_chunks(export.Options(), catalog, segments, chunk=2)])
        table = list(csv.reader(io.StringIO(text.decode(), newline="")))
        again = io.StringIO()
        csv.writer(again, lineterminator="\r\n").writerows(table)
        assert again.getvalue().encode() == text
        cells = {"plan": ['pro, "gold"', "", "basic"], "region": ["north", "line\nbreak", ""]}
        assert [row[5] for row in table[1:]] == ["plain", "a, b", ""]
        assert [row[11] for row in table[1:]] == ["", "", "web,phone"]
        assert [row[13:] for row in table[1:]] == [[cells[name][n] for name in segments] for n in range(3)]
