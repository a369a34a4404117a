"""Shared fixtures: a real database per test (SQLite file or PostgreSQL), the app through its lifespan,
and named personas.

PULSE_TEST_DB=sqlite (default) or postgres; postgres uses PULSE_TEST_POSTGRES_URL and fails, never skips,
when that server cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from pulse import db
from pulse.app import create_app
from pulse.catalog import load_catalog
from pulse.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
ENGINE = os.environ.get("PULSE_TEST_DB", "sqlite")
POSTGRES_URL = os.environ.get("PULSE_TEST_POSTGRES_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    where = POSTGRES_URL if ENGINE == "postgres" else "a fresh SQLite file per test"
    return f"pulse database engine: {ENGINE} ({where})"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Databases:
    """Hands out empty-but-migrated databases, copied from one migrated template."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template_url = ""
        self.created: list[str] = []

    def setup(self) -> None:
        if ENGINE == "sqlite":
            template = self.workdir / "template.sqlite3"
            asyncio.run(db.migrate(f"sqlite://{template}"))
            self.template_url = f"sqlite://{template}"
        elif ENGINE == "postgres":
            if not POSTGRES_URL:
                pytest.fail("PULSE_TEST_DB=postgres needs PULSE_TEST_POSTGRES_URL")
            name = f"pulse_tpl_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            self.template_url = _with_database(POSTGRES_URL, name)
            asyncio.run(db.migrate(self.template_url))
        else:
            pytest.fail(f"PULSE_TEST_DB must be sqlite or postgres, not {ENGINE!r}")

    def fresh(self, tmp_path: Path) -> str:
        if ENGINE == "sqlite":
            target = tmp_path / "pulse.sqlite3"
            shutil.copyfile(self.template_url[len("sqlite://") :], target)
            return f"sqlite://{target}"
        name = f"pulse_t_{uuid.uuid4().hex[:12]}"
        template = urlsplit(self.template_url).path.lstrip("/")
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        self.created.append(name)
        return _with_database(POSTGRES_URL, name)

    def empty(self, tmp_path: Path) -> str:
        """A database with no schema at all."""
        if ENGINE == "sqlite":
            return f"sqlite://{tmp_path / 'empty.sqlite3'}"
        name = f"pulse_e_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _with_database(POSTGRES_URL, name)

    def teardown(self) -> None:
        for name in reversed(self.created):
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory):
    found = Databases(tmp_path_factory.mktemp("db"))
    found.setup()
    yield found
    found.teardown()


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(ROOT / "surveys")


def make_settings(database_url: str, **overrides: str) -> Settings:
    environ = {
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        "PULSE_BASE_URL": "http://testserver",
        "PULSE_COMPANY_NAME": "Acme",
        **overrides,
    }
    return load_settings(environ=environ, env_file=None)


@pytest.fixture
def database_url(databases: Databases, tmp_path: Path) -> str:
    return databases.fresh(tmp_path)


@pytest.fixture
def empty_database_url(databases: Databases, tmp_path: Path) -> str:
    """A database with no schema at all."""
    return databases.empty(tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, catalog) -> AsyncIterator:
    application = create_app(settings, catalog=catalog)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
