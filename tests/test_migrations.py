"""The schema comes only from the committed migrations, which agree with the models on both engines."""

from __future__ import annotations

import pytest
from tortoise.connection import connections
from tortoise.exceptions import IntegrityError

from pulse import db
from pulse.models import Contact, Touchpoint
from tests.conftest import ENGINE, ROOT


async def test_an_empty_database_migrates_and_nothing_is_left_pending(empty_database_url):
    url = empty_database_url
    every = sorted(f"models.{p.stem}" for p in (ROOT / "pulse" / "migrations").glob("0*.py"))
    assert every[:4] == [
        "models.0001_initial",
        "models.0002_answers_flags_webhooks",
        "models.0003_sessions",
        "models.0004_pulse_rounds",
    ]
    assert await db.pending_migrations(url) == every
    assert await db.migrate(url) == every
    assert await db.pending_migrations(url) == []
    assert await db.migrate(url) == []


async def test_models_and_migrations_agree():
    assert await db.model_changes() == []


async def test_commits_are_durable_on_either_engine(app):
    """SQLite: WAL, synchronous FULL, foreign keys, a busy timeout. PostgreSQL: synchronous commit."""
    connection = connections.get("default")
    if ENGINE == "postgres":
        rows = await connection.execute_query_dict("SHOW synchronous_commit")
        assert rows == [{"synchronous_commit": "on"}]
        return
    values = {}
    for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "journal_size_limit"):
        rows = await connection.execute_query_dict(f"PRAGMA {pragma}")
        values[pragma] = next(iter(rows[0].values()))
    assert values == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "journal_size_limit": 64 * 1024 * 1024,
    }


async def test_a_replayed_touchpoint_violates_the_unique_key(app):
    contact = await Contact.create(external_id="C1", email="c1@example.com")
    fields = {"source": "crm", "external_id": "E1", "type": "purchase", "contact": contact}
    await Touchpoint.create(occurred_at="2026-01-01T10:00:00+00:00", **fields)
    with pytest.raises(IntegrityError):
        await Touchpoint.create(occurred_at="2026-01-02T10:00:00+00:00", **fields)


def test_database_url_adds_pragmas_unless_given():
    assert db.database_url("sqlite://x.db") == (
        "sqlite://x.db?journal_mode=WAL&synchronous=FULL&foreign_keys=ON&busy_timeout=5000&journal_size_limit=67108864"
    )
    assert "synchronous=NORMAL" in db.database_url("sqlite://x.db?synchronous=NORMAL")
    assert db.database_url("postgresql://u@h/d") == "postgres://u@h/d"


async def test_employee_answers_move_out_of_the_response_table_without_time_or_order(empty_database_url):
    """0005: answers of pulse rounds leave `response` for `pulse_answer` with random ids; flagged pulse attempts
    forget their invitation; customers' answers stay where they are."""
    url = empty_database_url
    await db.migrate(url, target="models.0004_pulse_rounds")
    async with db.connected(url):
        sql = db.fetch
        await sql("INSERT INTO team (slug, name, created_at) VALUES ('t', 'T', '2026-01-01T00:00:00+00:00')", [])
        await sql(
            "INSERT INTO pulse_round (survey_id, number, questions, opens_at, remind_at, closes_at, status, reminded,"
            " invited, created_at) VALUES ('enps', 1, '[\"q\"]', '2026-01-01T00:00:00+00:00',"
            " '2026-01-02T00:00:00+00:00', '2026-01-03T00:00:00+00:00', 'closed', ?, 3, '2026-01-01T00:00:00+00:00')",
            [True],
        )
        await sql(
            "INSERT INTO invitation (survey_id, round_id, locale, status, created_at)"
            " VALUES ('enps', 1, 'en', 'answered', '2026-01-01T00:00:00+00:00')",
            [],
        )
        for score, round_id in ((9, 1), (3, 1), (7, None)):
            await sql(
                "INSERT INTO response (survey_id, question_id, score, scores, comment, locale, day, confirmed,"
                " team_id, dimensions, history, discarded, round_id, created_at, updated_at) VALUES"
                " (?, 'q', ?, '{}', ?, 'pl', '2026-01-03', ?, 1, '{\"location\":\"Rome\"}', '[]', ?, ?,"
                " '2026-01-02T10:11:12.123456+00:00', '2026-01-02T10:11:12.123456+00:00')",
                ["enps" if round_id else "nps", score, f"said {score}", True, False, round_id],
            )
        await sql(
            "INSERT INTO flagged_attempt (survey_id, invitation_id, reason, created_at)"
            " VALUES ('enps', 1, 'too_fast', '2026-01-02T10:00:00+00:00')",
            [],
        )
    assert await db.migrate(url) == [f"models.{p.stem}" for p in sorted((ROOT / "pulse/migrations").glob("0*.py"))][4:]
    async with db.connected(url):
        from pulse.models import FlaggedAttempt, PulseAnswer, Response

        assert await Response.all().values_list("survey_id", "score") == [("nps", 7)]
        moved = await PulseAnswer.all().values("round_id", "score", "comment", "team_id", "dimensions")
        assert sorted(moved, key=lambda a: a["score"]) == [
            {"round_id": 1, "score": 3, "comment": "said 3", "team_id": 1, "dimensions": {"location": "Rome"}},
            {"round_id": 1, "score": 9, "comment": "said 9", "team_id": 1, "dimensions": {"location": "Rome"}},
        ]
        assert {a.id.version for a in await PulseAnswer.all()} == {4}
        assert await FlaggedAttempt.filter(invitation_id__isnull=False).count() == 0
