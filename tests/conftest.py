"""Shared fixtures: a real database per test (SQLite file or PostgreSQL), the app through its lifespan,
and named personas.

PULSE_TEST_DB=sqlite (default) or postgres; postgres uses PULSE_TEST_POSTGRES_URL and fails, never skips,
when that server cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from pulse import db
from pulse.app import create_app
from pulse.catalog import load_catalog
from pulse.models import Team, User
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


# Each engine's suite takes its servers' ports from its own range, below Linux's ephemeral ports (32768 and up,
# which clients' connections take): a server never finds its port taken by a client, nor by the other suite when
# both run at once.
PORTS = {"sqlite": range(20_000, 26_000), "postgres": range(26_000, 32_000)}
_ports = random.Random()


def free_port() -> int:
    """A port nobody listens on now, from this engine's range."""
    span = PORTS.get(ENGINE, PORTS["sqlite"])
    for _ in range(200):
        port = _ports.choice(span)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (or still closing): another
            return port
    raise RuntimeError(f"no free port in {span.start}-{span.stop - 1}")


class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives and can be told to refuse or drop."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.rcpt_reply: str | None = None  # e.g. "550 5.1.1 No such user"
        self.data_reply: str | None = None  # e.g. "451 4.3.0 Try again later"
        self.drop_next = 0  # close the connection instead of answering DATA, this many times
        self.delay = 0.0  # seconds before answering DATA (a slow relay)
        self.peers: set = set()  # one per SMTP connection that sent DATA

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.peers.add(session.peer)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.drop_next:
            self.drop_next -= 1
            server.transport.close()
            return "421 closing"
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.received.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted"

    def by_recipient(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.received if m["To"] == address]


@pytest.fixture
def smtp():
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), decode_data=False)
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def mail_settings(database_url: str, smtp: SmtpSink) -> Settings:
    """Settings that send to the test SMTP sink, with quiet hours off so send times are plain."""
    return make_settings(database_url, PULSE_SMTP_PORT=str(smtp.port), PULSE_QUIET_HOURS="off")


@pytest.fixture
async def mail_app(mail_settings: Settings, catalog) -> AsyncIterator:
    application = create_app(mail_settings, catalog=catalog)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def mail_client(mail_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mail_app), base_url="http://testserver") as http:
        yield http


async def make_key(*scopes: str) -> str:
    from pulse.accounts import create_api_key

    _, secret = await create_api_key("test system", list(scopes))
    return secret


def event(number: int = 1, **changes) -> dict:
    """A valid touchpoint event; `changes` overrides fields (contact_* keys change the contact)."""
    data = {
        "external_id": f"T-{number}",
        "type": "support_ticket_closed",
        "occurred_at": "2026-11-30T09:00:00+01:00",
        "contact": {
            "external_id": f"C-{number}",
            "email": f"person{number}@example.com",
            "name": f"Person {number}",
            "locale": "pl",
            "timezone": "Europe/Warsaw",
        },
        "team": "support-warsaw",
        "channel": "phone",
    }
    for key, value in changes.items():
        if key.startswith("contact_"):
            data["contact"][key.removeprefix("contact_")] = value
        else:
            data[key] = value
    return data


async def sent_invitation(settings, catalog, number: int = 1, **changes):
    """An invitation that was e-mailed (status sent), for a contact of team support-warsaw by default."""
    from datetime import UTC, datetime, timedelta

    from pulse.models import Invitation
    from pulse.touchpoints import ingest

    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    [outcome] = await ingest([event(number, occurred_at=occurred, **changes)], catalog, settings)
    assert outcome.status == "invited", outcome.as_json()
    now = datetime.now(UTC)
    await Invitation.filter(id=outcome.invitation_id).update(
        status="sent", sent_at=now, expires_at=now + timedelta(days=30)
    )
    return await Invitation.get(id=outcome.invitation_id)


def survey_url(settings, invitation_id: int) -> str:
    from pulse import tokens

    return f"/s/{tokens.make_token(settings.secret_key, 'survey', invitation_id)}"


def pulse_link(settings, invitation_id: int) -> tuple[str, str]:
    """An employee's pulse link (as the e-mail carries it) and the nonce subject of its page."""
    from pulse import tokens

    token = tokens.pulse_token(settings.secret_key, invitation_id)
    return f"/p/{token}", f"pulse:{tokens.token_hash(token)[:32]}"


def old_nonce(settings, subject: str, seconds: float = 2.0) -> str:
    """The nonce of a page rendered `seconds` ago (a person takes at least a second to answer)."""
    import time

    from pulse import tokens

    return tokens.make_nonce(settings.secret_key, subject, time.time() - seconds)


PASSWORD = "correct horse battery staple"


class Org:
    """The personas every test can rely on: who owns what."""

    admin: User
    hr: User
    analyst: User
    care_lead: User  # manager of customer-care (the parent team)
    warsaw_lead: User  # manager of support-warsaw
    milan_lead: User  # manager of support-milan
    care: Team
    warsaw: Team
    milan: Team


@functools.cache
def password_hash() -> str:
    """One argon2 hash of PASSWORD for every persona (hashing costs ~50 ms each)."""
    from pulse.accounts import hash_password

    return hash_password(PASSWORD)


async def persona(email: str, role: str, name: str, locale: str = "en", teams: tuple = ()):
    from pulse.models import User, UserTeam

    user = await User.create(email=email, password_hash=password_hash(), role=role, display_name=name, locale=locale)
    for team in teams:
        await UserTeam.create(user=user, team=team)
    return user


async def make_org() -> Org:
    from pulse.models import Team

    org = Org()
    org.admin = await persona("alice@example.com", "admin", "Alice Admin")
    org.hr = await persona("hana@example.com", "hr", "Hana HR", "sl")
    org.analyst = await persona("ana@example.com", "analyst", "Ana Analyst")
    org.care = await Team.create(slug="customer-care", name="Customer Care")
    org.warsaw = await Team.create(slug="support-warsaw", name="Support Warsaw", parent=org.care)
    org.milan = await Team.create(slug="support-milan", name="Support Milan", parent=org.care)
    org.care_lead = await persona("carol@example.com", "manager", "Carol Care", teams=(org.care,))
    org.warsaw_lead = await persona("bob@example.com", "manager", "Bob Warsaw", "pl", (org.warsaw,))
    org.milan_lead = await persona("marco@example.com", "manager", "Marco Milan", "it", (org.milan,))
    for team, owner in ((org.care, org.care_lead), (org.warsaw, org.warsaw_lead), (org.milan, org.milan_lead)):
        team.owner = owner
        await team.save()
    return org


@pytest.fixture
async def org(mail_app) -> Org:
    return await make_org()


@contextlib.asynccontextmanager
async def sign_in(app, email: str, password: str = PASSWORD):
    """A client with a session cookie, signed in through the real form (CSRF included)."""
    import re

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        reply = await client.post("/login", data={"email": email, "password": password, "csrf_token": token})
        assert reply.status_code == 303, reply.text
        yield client
