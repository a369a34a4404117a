"""A command that cannot use its database says so in one sentence that names the setting and the fix.

Real processes, real faults: a missing folder, a file nobody may open, a read-only or full file system, a
PostgreSQL that is not there, a database that is missing or not migrated. The traceback only with --debug.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pulse import db
from tests.conftest import ENGINE, POSTGRES_URL, free_port
from tests.faults import tmpfs

ROOT = Path(__file__).resolve().parent.parent
NOT_MIGRATED = "Error: The database is not migrated — run `pulse migrate`.\n"


def pulse(*args: str, database_url: str, wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
    }
    if args[0] == "serve":
        args = (*args, "--port", str(free_port()))
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "pulse.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
    )


def one_sentence(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr == expected
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["serve", "migrate", "send-due", "demo"])
def test_a_missing_sqlite_folder_is_named(command, tmp_path):
    result = pulse(command, database_url=f"sqlite://{tmp_path}/missing/pulse.sqlite3")
    one_sentence(
        result,
        f"Error: PULSE_DATABASE_URL: the folder {tmp_path}/missing does not exist — create it, or correct the path.\n",
    )


@pytest.mark.parametrize("command", ["serve", "send-due"])
def test_a_missing_sqlite_file_is_not_created_but_explained(command, tmp_path):
    database = tmp_path / "pulse.sqlite3"
    result = pulse(command, database_url=f"sqlite://{database}")
    one_sentence(
        result, f"Error: PULSE_DATABASE_URL: there is no database file {database} — run `pulse migrate` to create it.\n"
    )
    assert not database.exists()


@pytest.mark.parametrize("command", ["serve", "send-due"])
async def test_a_database_that_is_not_fully_migrated_says_run_migrate(command, empty_database_url):
    await db.migrate(empty_database_url, target="models.0004_pulse_rounds")  # an upgrade without `pulse migrate`
    one_sentence(pulse(command, database_url=empty_database_url), NOT_MIGRATED)


@pytest.mark.skipif(ENGINE != "sqlite", reason="file permissions of the SQLite file")
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_file_pulse_may_not_open_is_named(command, tmp_path):
    database = tmp_path / "pulse.sqlite3"
    sqlite3.connect(database).close()
    database.chmod(0)
    # root reads anything: drop the capabilities that let it, as for any other user
    wrapper = ("setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search")
    result = pulse(command, database_url=f"sqlite://{database}", wrapper=wrapper)
    one_sentence(
        result,
        f"Error: PULSE_DATABASE_URL: permission denied on {database} — let the user running Pulse read and write "
        "it and its folder.\n",
    )


@pytest.mark.skipif(ENGINE != "sqlite", reason="a disk fault of the SQLite file")
def test_a_read_only_file_system_is_named(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        database = disk / "pulse.sqlite3"
        assert pulse("migrate", database_url=f"sqlite://{database}").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for command in ("migrate", "serve"):
            one_sentence(
                pulse(command, database_url=f"sqlite://{database}"),
                f"Error: PULSE_DATABASE_URL: {database} is on a read-only file system — remount it read-write, "
                "or move the database.\n",
            )


@pytest.mark.skipif(ENGINE != "sqlite", reason="a disk fault of the SQLite file")
def test_a_full_disk_is_named(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as out:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        database = disk / "pulse.sqlite3"
        one_sentence(
            pulse("migrate", database_url=f"sqlite://{database}"),
            f"Error: PULSE_DATABASE_URL: the disk holding {database} is full — free some space, then try again.\n",
        )


@pytest.mark.parametrize("command", ["serve", "migrate", "send-due"])
def test_postgresql_that_cannot_be_reached_is_named(command):
    port = free_port()  # nobody listens there
    result = pulse(command, database_url=f"postgres://postgres@127.0.0.1:{port}/pulse")
    one_sentence(
        result,
        f"Error: PULSE_DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused) — "
        "start it, or correct the host and port.\n",
    )


def test_an_unknown_database_host_is_named():
    result = pulse("migrate", database_url="postgres://postgres@no-such-host.invalid:5432/pulse")
    one_sentence(result, "Error: PULSE_DATABASE_URL: unknown host 'no-such-host.invalid' — correct the host name.\n")


@pytest.mark.skipif(ENGINE != "postgres", reason="needs a PostgreSQL server")
@pytest.mark.parametrize("command", ["serve", "migrate", "send-due"])
def test_a_missing_postgresql_database_is_named(command):
    parts = urlsplit(POSTGRES_URL)
    url = parts._replace(path="/pulse_missing_db").geturl()
    host = f"{parts.hostname}:{parts.port or 5432}"
    one_sentence(
        pulse(command, database_url=url),
        f"Error: PULSE_DATABASE_URL: there is no database 'pulse_missing_db' on {host} — create it, then run "
        "`pulse migrate`.\n",
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where, tmp_path):
    args = ("--debug", "migrate") if where == "before" else ("migrate", "--debug")
    result = pulse(*args, database_url=f"sqlite://{tmp_path}/missing/pulse.sqlite3")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().endswith("— create it, or correct the path.")
