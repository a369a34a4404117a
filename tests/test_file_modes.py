"""The SQLite database and its -wal and -shm files are readable by their owner only, like pulse.secret.

They hold every answer, comment and e-mail address, so other accounts on the machine must not read them,
whatever the umask. (SQLite engine only: this test makes its own file, whichever engine the suite runs on.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from asgi_lifespan import LifespanManager

from pulse import db
from pulse.app import create_app
from pulse.models import Team
from tests.conftest import make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files(database: Path) -> list[Path]:
    return [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]


async def test_a_migrated_database_is_private(tmp_path: Path):
    database = tmp_path / "pulse.sqlite3"
    old = os.umask(0o022)
    try:
        await db.migrate(f"sqlite://{database}")
    finally:
        os.umask(old)
    assert database.exists()
    assert {p.name: oct(mode(p)) for p in files(database)} == {p.name: "0o600" for p in files(database)}


async def test_the_running_app_keeps_the_database_and_its_wal_private(tmp_path: Path, catalog):
    database = tmp_path / "pulse.sqlite3"
    await db.migrate(f"sqlite://{database}")
    database.chmod(0o644)  # a database made by an older Pulse, or copied into place
    app = create_app(make_settings(f"sqlite://{database}"), catalog=catalog)
    async with LifespanManager(app):
        await Team.create(slug="support-warsaw", name="Support Warsaw")  # a write: the -wal and -shm are open
        found = files(database)
        assert len(found) == 3, found
        assert {p.name: oct(mode(p)) for p in found} == {p.name: "0o600" for p in found}
