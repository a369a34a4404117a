"""The `pulse` command, run as a user runs it: a real process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from pulse import followups
from pulse.accounts import find_api_key, verify_password
from pulse.app import create_app
from pulse.models import ApiKey, FollowUpCase, Response, Team, User

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    "serve",
    "worker",
    "migrate",
    "makemigrations",
    "demo",
    "users",
    "apikeys",
    "import",
    "rollups",
    "send-due",
    "surveys",
    "retention",
]


def pulse(*args: str, database_url: str = "sqlite:///nonexistent/x.sqlite3", stdin: str = "", **env: str):
    environ = {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=120,
    )


def test_help_lists_and_explains_every_command():
    result = pulse("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout


def test_wrong_arguments_exit_2_with_a_message():
    result = pulse("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    result = pulse("apikeys", "create", "--name", "x", "--scope", "everything")
    assert result.returncode == 2
    assert "invalid choice: 'everything'" in result.stderr


def test_a_bad_setting_stops_the_command_with_its_name():
    result = pulse("surveys", "check", PULSE_SMTP_PORT="many")
    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: PULSE_SMTP_PORT must be a whole number, not 'many'."


def test_surveys_check_passes_and_fails_with_every_message(tmp_path):
    ok = pulse("surveys", "check")
    assert ok.returncode == 0
    assert "ok  surveys/nps.toml: nps (nps, 0-10; purchase, onboarding_visit, account_review, renewal)" in ok.stdout
    (tmp_path / "surveys").mkdir()
    (tmp_path / "surveys" / "bad.toml").write_text('id = "bad"\nkind = "nps"\n')
    bad = pulse("surveys", "check", PULSE_SURVEYS_DIR=str(tmp_path / "surveys"))
    assert bad.returncode == 1
    assert "  surveys/bad.toml: audience: is required" in bad.stderr


async def test_apikeys_create_prints_the_key_once_and_stores_only_its_hash(database_url, settings, catalog):
    result = pulse("apikeys", "create", "--name", "helpdesk", "--scope", "touchpoints:write", database_url=database_url)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("pulse_")
    async with LifespanManager(create_app(settings, catalog=catalog)):
        key = await ApiKey.get(name="helpdesk")
        assert key.scopes == ["touchpoints:write"]
        assert secret not in (key.key_hash, key.prefix)
        assert (await find_api_key(secret)).id == key.id
        assert await find_api_key(secret[:-1] + "x") is None
    listed = pulse("apikeys", "list", database_url=database_url)
    assert key.prefix in listed.stdout and secret not in listed.stdout
    assert pulse("apikeys", "revoke", key.prefix, database_url=database_url).returncode == 0
    again = pulse("apikeys", "revoke", key.prefix, database_url=database_url)
    assert again.returncode == 1
    assert again.stderr.strip() == f"Error: No active API key with the prefix {key.prefix!r}."


async def test_users_create_hashes_the_password_with_argon2(database_url, settings, catalog):
    result = pulse(
        "users",
        "create",
        "--email",
        "Boss@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct horse battery\n",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    short = pulse(
        "users",
        "create",
        "--email",
        "b@example.com",
        "--role",
        "hr",
        stdin="short\n",
        database_url=database_url,
    )
    assert short.returncode == 1
    assert short.stderr.strip() == "Error: The password must be at least 12 characters long."
    async with LifespanManager(create_app(settings, catalog=catalog)):
        user = await User.get(email="boss@example.com")
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, "correct horse battery")
        assert not verify_password(user.password_hash, "wrong")
        assert not await User.exists(email="b@example.com")


async def test_demo_loads_once(database_url, settings, catalog):
    first = pulse("demo", "--contacts", "40", "--months", "6", "--quiet", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Loaded 7 teams, 40 contacts, ")
    second = pulse("demo", "--contacts", "40", database_url=database_url)
    assert second.returncode == 0
    assert "already loaded" in second.stdout
    async with LifespanManager(create_app(settings, catalog=catalog)):
        assert await Team.all().count() == 7
        assert await Response.all().count() > 0
        assert await User.filter(role="manager").count() == 5
        assert await FollowUpCase.all().count() > 0
        assert await followups.orphans(catalog) == {"unhappy_answers_without_case": 0, "open_cases_without_owner": 0}


@pytest.mark.parametrize("command", [["migrate"]])
def test_migrate_on_a_new_sqlite_file(tmp_path, command):
    url = f"sqlite://{tmp_path / 'new.sqlite3'}"
    count = len(list((ROOT / "pulse" / "migrations").glob("0*.py")))
    assert pulse(*command, database_url=url).stdout.strip() == f"Applied {count} migration(s)."
    assert pulse(*command, database_url=url).stdout.strip() == "The database is up to date."


async def test_import_touchpoints_reports_each_outcome_and_bad_lines(database_url, settings, catalog, tmp_path):
    from datetime import UTC, datetime, timedelta

    occurred = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    csv_file = tmp_path / "events.csv"
    csv_file.write_text(
        "external_id,type,occurred_at,contact_external_id,contact_email,contact_locale\n"
        f"A-1,support_ticket_closed,{occurred},C-1,one@example.com,it\n"
        f"A-2,support_ticket_closed,{occurred},C-1,one@example.com,it\n"
        f"A-3,unknown_kind,{occurred},C-3,three@example.com,sl\n"
        f"A-1,support_ticket_closed,{occurred},C-1,one@example.com,it\n"
        f"A-5,support_ticket_closed,soon,C-5,five@example.com,pl\n",
        encoding="utf-8",
    )
    result = pulse("import", "touchpoints", str(csv_file), "--quiet", database_url=database_url)
    assert result.returncode == 1  # some rows were invalid
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "5 rows: 1 invited, 2 skipped, 1 duplicate, 1 invalid."
    assert lines[1] == ("  line 6: occurred_at must be an ISO 8601 date-time such as 2026-03-01T10:00:00+01:00")
    missing = pulse("import", "touchpoints", str(tmp_path / "nope.csv"), database_url=database_url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: Cannot read {tmp_path / 'nope.csv'}: No such file or directory."


async def test_rollups_rebuild_and_export_after_the_demo(database_url, settings, catalog, tmp_path):
    assert pulse("demo", "--contacts", "30", "--months", "3", "--quiet", database_url=database_url).returncode == 0
    rebuilt = pulse("rollups", "rebuild", "--quiet", database_url=database_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("Rebuilt ") and rebuilt.stdout.strip().endswith("daily rollup rows.")
    bad = pulse("rollups", "rebuild", "--since", "yesterday", database_url=database_url)
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "Error: --since must be a date such as 2026-01-31, not 'yesterday'.",
    )
    out = tmp_path / "answers.csv"
    exported = pulse("export", "responses", "--survey", "csat", "--out", str(out), database_url=database_url)
    assert exported.returncode == 0, exported.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,survey,question,score,band,comment")
    async with LifespanManager(create_app(settings, catalog=catalog)):
        assert len(lines) - 1 == await Response.filter(survey_id="csat", confirmed=True).count()


async def test_import_employees_with_a_dry_run(database_url, settings, catalog, tmp_path):
    from pulse.models import Employee

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "external_id,email,name,start_date\nE-1,ewa@example.com,Ewa,2020-01-01\nE-2,broken,Luca,2020-01-01\n",
        encoding="utf-8",
    )
    dry = pulse("import", "employees", str(roster), "--dry-run", "--quiet", database_url=database_url)
    assert dry.returncode == 1
    assert dry.stdout.splitlines()[0] == (
        "Dry run, nothing stored: 2 rows: 1 created, 0 updated, 0 deactivated, 0 unchanged, 1 invalid."
    )
    assert dry.stdout.splitlines()[1] == "  line 3, email: email is not an e-mail address"
    real = pulse("import", "employees", str(roster), "--quiet", database_url=database_url)
    assert real.stdout.startswith("2 rows: 1 created")
    async with LifespanManager(create_app(settings, catalog=catalog)):
        assert await Employee.all().count() == 1
