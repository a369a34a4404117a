"""Settings: read once from environment → .env → default; a bad value names the setting."""

from __future__ import annotations

import os
import re
import stat
from datetime import time
from pathlib import Path

import pytest

from pulse.settings import SETTINGS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
BASE = {"PULSE_SECRET_KEY": "a-long-enough-test-secret"}


def test_defaults_are_usable():
    settings = load_settings(environ=BASE, env_file=None)
    assert settings.database_url == "sqlite://pulse.sqlite3"
    assert settings.smtp_port == 1025
    assert settings.default_locale == "en"
    assert settings.quiet_hours == (time(20, 0), time(8, 0))
    assert settings.dev_mail_catcher is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PULSE_SMTP_PORT", "abc", "PULSE_SMTP_PORT must be a whole number, not 'abc'."),
        ("PULSE_SMTP_PORT", "70000", "PULSE_SMTP_PORT must be between 1 and 65535, not 70000."),
        ("PULSE_SMTP_STARTTLS", "maybe", "PULSE_SMTP_STARTTLS must be true or false, not 'maybe'."),
        ("PULSE_DEFAULT_LOCALE", "de", "PULSE_DEFAULT_LOCALE must be one of en, pl, it, sl, not 'de'."),
        (
            "PULSE_TIMEZONE",
            "Mars/Olympus",
            "PULSE_TIMEZONE must be an IANA time zone such as Europe/Warsaw, not 'Mars/Olympus'.",
        ),
        (
            "PULSE_BASE_URL",
            "pulse.example.com",
            "PULSE_BASE_URL must be an absolute http(s) URL such as "
            "https://pulse.example.com, not 'pulse.example.com'.",
        ),
        (
            "PULSE_DATABASE_URL",
            "mysql://x",
            "PULSE_DATABASE_URL must start with sqlite:// or postgres://, not "
            "'mysql://x' (for example sqlite://pulse.sqlite3 or postgres://user@host:5432/pulse).",
        ),
        ("PULSE_QUIET_HOURS", "late", "PULSE_QUIET_HOURS must look like 20:00-08:00 (or off), not 'late'."),
        (
            "PULSE_MAIL_FROM",
            "nobody",
            "PULSE_MAIL_FROM must be an e-mail address such as Pulse <pulse@example.com>, not 'nobody'.",
        ),
        ("PULSE_SECRET_KEY", "short", "PULSE_SECRET_KEY must be at least 16 characters long."),
        ("PULSE_LOG_LEVEL", "loud", "PULSE_LOG_LEVEL must be debug, info, warning or error, not 'loud'."),
    ],
)
def test_a_bad_value_names_the_setting(name, value, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={**BASE, name: value}, env_file=None)
    assert str(caught.value) == message


def test_environment_wins_over_dotenv_which_wins_over_default(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("PULSE_COMPANY_NAME=From Dotenv\nPULSE_SMTP_PORT=2525\n")
    settings = load_settings(environ={**BASE, "PULSE_SMTP_PORT": "587"}, env_file=env_file)
    assert settings.company_name == "From Dotenv"
    assert settings.smtp_port == 587
    assert settings.smtp_host == "127.0.0.1"


def test_secret_is_generated_once_beside_the_database(tmp_path: Path):
    url = f"sqlite://{tmp_path / 'data' / 'pulse.sqlite3'}"
    first = load_settings(environ={"PULSE_DATABASE_URL": url}, env_file=None)
    secret_file = tmp_path / "data" / "pulse.secret"
    assert secret_file.read_text().strip() == first.secret_key
    assert len(first.secret_key) >= 48
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    again = load_settings(environ={"PULSE_DATABASE_URL": url}, env_file=None)
    assert again.secret_key == first.secret_key


def test_secrets_can_come_from_files(tmp_path: Path):
    (tmp_path / "smtp").write_text("s3cret-from-file\n")
    settings = load_settings(environ={**BASE, "PULSE_SMTP_PASSWORD_FILE": str(tmp_path / "smtp")}, env_file=None)
    assert settings.smtp_password == "s3cret-from-file"
    with pytest.raises(SettingsError, match=r"^PULSE_SMTP_PASSWORD_FILE names '/nonexistent', which cannot be read"):
        load_settings(environ={**BASE, "PULSE_SMTP_PASSWORD_FILE": "/nonexistent"}, env_file=None)


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(PULSE_[A-Z_]+)`", readme))
    missing = [s.name for s in SETTINGS if s.name not in documented]
    assert missing == []
    unknown = documented - {s.name for s in SETTINGS} - {"PULSE_TEST_POSTGRES_URL", "PULSE_TEST_DB"}
    unknown -= {f"{s.name}_FILE" for s in SETTINGS if s.secret}
    assert unknown == set()
