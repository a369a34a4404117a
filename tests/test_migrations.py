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
    for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
        rows = await connection.execute_query_dict(f"PRAGMA {pragma}")
        values[pragma] = next(iter(rows[0].values()))
    assert values == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 5000}


async def test_a_replayed_touchpoint_violates_the_unique_key(app):
    contact = await Contact.create(external_id="C1", email="c1@example.com")
    fields = {"source": "crm", "external_id": "E1", "type": "purchase", "contact": contact}
    await Touchpoint.create(occurred_at="2026-01-01T10:00:00+00:00", **fields)
    with pytest.raises(IntegrityError):
        await Touchpoint.create(occurred_at="2026-01-02T10:00:00+00:00", **fields)


def test_database_url_adds_pragmas_unless_given():
    assert db.database_url("sqlite://x.db") == (
        "sqlite://x.db?journal_mode=WAL&synchronous=FULL&foreign_keys=ON&busy_timeout=5000"
    )
    assert "synchronous=NORMAL" in db.database_url("sqlite://x.db?synchronous=NORMAL")
    assert db.database_url("postgresql://u@h/d") == "postgres://u@h/d"
