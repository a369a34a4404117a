"""Every setting Pulse reads: name, type, default and one line of help, read once at start-up.

Order of precedence: the process environment, then a `.env` file in the working directory, then the default.
A secret may also come from a file named by `<NAME>_FILE` (Docker and systemd credentials).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.config import Config

LOCALES = ("en", "pl", "it", "sl")


class SettingsError(Exception):
    """A setting has a value Pulse cannot use; the message names the setting and what to do."""


def _boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}.")


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def cast(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}.") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {value}.")
        return value

    return cast


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _database_url(name: str, raw: str) -> str:
    value = raw.strip()
    scheme = urlsplit(value).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "asyncpg"}:
        raise SettingsError(
            f"{name} must start with sqlite:// or postgres://, not {value!r} "
            "(for example sqlite://pulse.sqlite3 or postgres://user@host:5432/pulse)."
        )
    if scheme == "sqlite" and not value[len("sqlite://") :].split("?")[0]:
        raise SettingsError(f"{name} must name a file after sqlite://, for example sqlite://pulse.sqlite3.")
    return value


def _base_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"{name} must be an absolute http(s) URL such as https://pulse.example.com, not {raw!r}.")
    return value


def _locale(name: str, raw: str) -> str:
    value = raw.strip()
    if value not in LOCALES:
        raise SettingsError(f"{name} must be one of {', '.join(LOCALES)}, not {raw!r}.")
    return value


def _timezone(name: str, raw: str) -> str:
    value = raw.strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name} must be an IANA time zone such as Europe/Warsaw, not {raw!r}.") from None
    return value


def _mail_address(name: str, raw: str) -> str:
    value = raw.strip()
    if "@" not in value or value.count("<") != value.count(">"):
        raise SettingsError(f"{name} must be an e-mail address such as Pulse <pulse@example.com>, not {raw!r}.")
    return value


def _quiet_hours(name: str, raw: str) -> tuple[time, time] | None:
    value = raw.strip()
    if value.lower() in {"", "off", "none"}:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise SettingsError(f"{name} must look like 20:00-08:00 (or off), not {raw!r}.") from None
    if start == end:
        raise SettingsError(f"{name} must have different start and end times, not {raw!r}.")
    return start, end


def _names(name: str, raw: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in raw.split(",") if part.strip())
    for value in values:
        if not value.replace("_", "").isalnum():
            raise SettingsError(f"{name} must list attribute names separated by commas, not {raw!r}.")
    return values


def _proxies(name: str, raw: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in raw.split(",") if part.strip())
    for value in values:
        if value == "*":
            continue
        try:
            ipaddress.ip_network(value)
        except ValueError:
            raise SettingsError(
                f"{name} must list IP addresses or networks separated by commas (such as 127.0.0.1,10.0.0.0/24), "
                f"or *, not {raw!r}."
            ) from None
    return values


def _optional_url(name: str, raw: str) -> str:
    return _base_url(name, raw) if raw.strip() else ""


def _probability(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number between 0 and 1, not {raw!r}.") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{name} must be a number between 0 and 1, not {raw!r}.")
    return value


def _stale_translations(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"send", "english"}:
        raise SettingsError(f"{name} must be send or english, not {raw!r}.")
    return value


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: the environment name, how to read it, its default and help."""

    name: str
    field: str
    cast: Callable[[str, str], Any]
    default: str
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PULSE_DATABASE_URL",
        "database_url",
        _database_url,
        "sqlite://pulse.sqlite3",
        "Database: sqlite://FILE (embedded, WAL) or postgres://USER@HOST:PORT/DB (production).",
    ),
    Setting(
        "PULSE_SECRET_KEY",
        "secret_key",
        _text,
        "",
        "Key that signs links and sessions. Empty: generated once and kept in pulse.secret beside the "
        "SQLite file (or the working directory).",
        secret=True,
    ),
    Setting(
        "PULSE_BASE_URL",
        "base_url",
        _base_url,
        "http://127.0.0.1:8000",
        "Public address of Pulse, used in the links of e-mails.",
    ),
    Setting(
        "PULSE_COMPANY_NAME",
        "company_name",
        _text,
        "Pulse Demo",
        "Your brand name, shown in e-mails and survey pages.",
    ),
    Setting("PULSE_SMTP_HOST", "smtp_host", _text, "127.0.0.1", "SMTP server that sends the e-mails."),
    Setting("PULSE_SMTP_PORT", "smtp_port", _integer(1, 65535), "1025", "SMTP port (587 with STARTTLS, 465 TLS)."),
    Setting("PULSE_SMTP_USER", "smtp_user", _text, "", "SMTP user name; empty: no authentication."),
    Setting("PULSE_SMTP_PASSWORD", "smtp_password", _text, "", "SMTP password.", secret=True),
    Setting(
        "PULSE_SMTP_STARTTLS",
        "smtp_starttls",
        _boolean,
        "false",
        "Upgrade the SMTP connection with STARTTLS.",
    ),
    Setting(
        "PULSE_SMTP_TLS",
        "smtp_tls",
        _boolean,
        "false",
        "Connect to the SMTP server with implicit TLS (port 465).",
    ),
    Setting(
        "PULSE_SMTP_TIMEOUT",
        "smtp_timeout",
        _integer(1, 600),
        "30",
        "Seconds before an SMTP exchange gives up.",
    ),
    Setting(
        "PULSE_MAIL_FROM",
        "mail_from",
        _mail_address,
        "Pulse <pulse@localhost>",
        "Sender of every e-mail, as Name <address>.",
    ),
    Setting(
        "PULSE_DEFAULT_LOCALE",
        "default_locale",
        _locale,
        "en",
        "Language when neither the person nor the browser names a supported one (en, pl, it, sl).",
    ),
    Setting(
        "PULSE_TIMEZONE",
        "timezone",
        _timezone,
        "UTC",
        "Organisation time zone: days of the trends, and quiet hours of people with no known zone.",
    ),
    Setting(
        "PULSE_QUIET_HOURS",
        "quiet_hours",
        _quiet_hours,
        "20:00-08:00",
        "Local hours in which no survey e-mail is sent (start-end, or off).",
    ),
    Setting(
        "PULSE_FATIGUE_DAYS",
        "fatigue_days",
        _integer(0, 365),
        "30",
        "Nobody gets a second survey within this many days (a survey may ask for more).",
    ),
    Setting(
        "PULSE_PRIORITY_WINDOW_MINUTES",
        "priority_window_minutes",
        _integer(0, 10080),
        "60",
        "Events of one person this close together compete: only the highest-priority survey is sent.",
    ),
    Setting(
        "PULSE_SAMPLING_OVERRIDE",
        "sampling_override",
        _probability,
        "1",
        "Multiplies every survey's sampling rate (1 keeps the catalog's rates).",
    ),
    Setting(
        "PULSE_TOKEN_MAX_AGE_DAYS",
        "token_max_age_days",
        _integer(1, 365),
        "30",
        "Days a survey or unsubscribe link stays valid.",
    ),
    Setting(
        "PULSE_OUTBOX_MAX_ATTEMPTS",
        "outbox_max_attempts",
        _integer(1, 50),
        "8",
        "Delivery attempts of one e-mail before it is marked failed.",
    ),
    Setting("PULSE_OUTBOX_BATCH", "outbox_batch", _integer(1, 10000), "50", "E-mails a worker claims at once."),
    Setting(
        "PULSE_OUTBOX_CLAIM_SECONDS",
        "outbox_claim_seconds",
        _integer(2, 3600),
        "60",
        "A worker's claim on an e-mail or webhook goes stale after this long without its heartbeat; then another "
        "worker takes it over.",
    ),
    Setting(
        "PULSE_WORKER_INTERVAL",
        "worker_interval",
        _integer(1, 3600),
        "5",
        "Seconds the worker sleeps when it finds nothing to do.",
    ),
    Setting(
        "PULSE_SEGMENT_ATTRIBUTES",
        "segment_attributes",
        _names,
        "plan,region",
        "Contact attributes kept with each answer as segments for the trends (comma-separated).",
    ),
    Setting(
        "PULSE_CASE_SLA_BUSINESS_DAYS",
        "case_sla_business_days",
        _integer(0, 60),
        "2",
        "Business days within which the owner must handle a follow-up case.",
    ),
    Setting(
        "PULSE_RECOVERY_FOLLOWUP",
        "recovery_followup",
        _boolean,
        "on",
        "When a case is resolved, ask its customer once whether the issue was resolved (within the fatigue window).",
    ),
    Setting(
        "PULSE_RECOVERY_DELAY_HOURS",
        "recovery_delay_hours",
        _integer(0, 720),
        "24",
        "Hours after a case is resolved before its follow-up question is sent (then outside quiet hours).",
    ),
    Setting(
        "PULSE_DEFAULT_CASE_OWNER",
        "default_case_owner",
        _text,
        "",
        "E-mail of the user who owns cases of teams without an owner (empty: the first admin).",
    ),
    Setting(
        "PULSE_WEBHOOK_URL", "webhook_url", _optional_url, "", "URL that receives signed JSON events (empty: off)."
    ),
    Setting(
        "PULSE_WEBHOOK_SECRET",
        "webhook_secret",
        _text,
        "",
        "Key of the HMAC-SHA256 signature in the X-Pulse-Signature header of each webhook.",
        secret=True,
    ),
    Setting(
        "PULSE_LINK_RATE_LIMIT",
        "link_rate_limit",
        _integer(1, 100000),
        "20",
        "Answers per minute one client may post through public survey links.",
    ),
    Setting(
        "PULSE_LINK_CASES_PER_HOUR",
        "link_cases_per_hour",
        _integer(0, 100000),
        "10",
        "Follow-up cases per team and hour that unhappy answers through public links may open (0: none).",
    ),
    Setting(
        "PULSE_SESSION_HOURS",
        "session_hours",
        _integer(1, 24 * 90),
        "12",
        "Hours a sign-in stays valid without use (each visit extends it).",
    ),
    Setting(
        "PULSE_ANONYMITY_MIN_GROUP",
        "anonymity_min_group",
        _integer(3, 1000),
        "5",
        "Employee results are shown only for groups of at least this many respondents (never below 3).",
    ),
    Setting(
        "PULSE_ANONYMITY_MIN_COMMENTS",
        "anonymity_min_comments",
        _integer(3, 1000),
        "10",
        "Employee comments are shown only for groups of at least this many respondents.",
    ),
    Setting(
        "PULSE_DEV_MAIL_CATCHER",
        "dev_mail_catcher",
        _boolean,
        "false",
        "Development only: run a local SMTP sink and show caught mail to admins at /dev/mail.",
    ),
    Setting(
        "PULSE_DEV_MAIL_CATCHER_PORT",
        "dev_mail_catcher_port",
        _integer(1, 65535),
        "1025",
        "Port of the development SMTP sink.",
    ),
    Setting(
        "PULSE_PROCESSES",
        "processes",
        _integer(1, 256),
        "1",
        "Web processes `pulse serve` runs on its port; more than 1 needs PostgreSQL (--processes overrides it).",
    ),
    Setting(
        "PULSE_FORWARDED_ALLOW_IPS",
        "forwarded_allow_ips",
        _proxies,
        "127.0.0.1,::1",
        "Proxies (addresses or networks, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed; empty: none.",
    ),
    Setting(
        "PULSE_RETAIN_COMMENTS_DAYS",
        "retain_comments_days",
        _integer(0, 36500),
        "730",
        "Days answers' comments and case notes keep their text; then it is blanked, scores stay (0: forever).",
    ),
    Setting(
        "PULSE_RETAIN_TOUCHPOINTS_DAYS",
        "retain_touchpoints_days",
        _integer(0, 36500),
        "730",
        "Days touchpoints keep their attributes and agent; then both are dropped, the event stays (0: forever).",
    ),
    Setting(
        "PULSE_RETAIN_CONTACT_DAYS",
        "retain_contact_days",
        _integer(0, 36500),
        "1095",
        "Days without a touchpoint or an import after which a contact's name, address and attributes go (0: forever).",
    ),
    Setting(
        "PULSE_RETAIN_LOGS_DAYS",
        "retain_logs_days",
        _integer(0, 36500),
        "90",
        "Days sent e-mails, done webhook deliveries, flagged attempts and expired sign-ins are kept (0: forever).",
    ),
    Setting(
        "PULSE_RETAIN_AUDIT_DAYS",
        "retain_audit_days",
        _integer(0, 36500),
        "730",
        "Days the audit log keeps each event (0: forever).",
    ),
    Setting("PULSE_SURVEYS_DIR", "surveys_dir", _text, "surveys", "Folder of the survey definitions (*.toml)."),
    Setting("PULSE_LOG_LEVEL", "log_level", _text, "info", "Logging level: debug, info, warning or error."),
    Setting(
        "PULSE_STALE_TRANSLATIONS",
        "stale_translations",
        _stale_translations,
        "send",
        "A translation whose English text changed since: send (as it is) or english (the English text instead).",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The values Pulse runs with. Build it with `load_settings()`; tests use `dataclasses.replace`."""

    database_url: str
    secret_key: str
    base_url: str
    company_name: str
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_starttls: bool
    smtp_tls: bool
    smtp_timeout: int
    mail_from: str
    default_locale: str
    timezone: str
    quiet_hours: tuple[time, time] | None
    fatigue_days: int
    priority_window_minutes: int
    sampling_override: float
    token_max_age_days: int
    outbox_max_attempts: int
    outbox_batch: int
    outbox_claim_seconds: int
    worker_interval: int
    segment_attributes: tuple[str, ...]
    case_sla_business_days: int
    default_case_owner: str
    recovery_followup: bool
    recovery_delay_hours: int
    webhook_url: str
    webhook_secret: str
    link_rate_limit: int
    link_cases_per_hour: int
    session_hours: int
    anonymity_min_group: int
    anonymity_min_comments: int
    dev_mail_catcher: bool
    dev_mail_catcher_port: int
    processes: int
    forwarded_allow_ips: tuple[str, ...]
    retain_comments_days: int
    retain_touchpoints_days: int
    retain_contact_days: int
    retain_logs_days: int
    retain_audit_days: int
    surveys_dir: str
    log_level: str
    stale_translations: str

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _data_dir(database_url: str) -> Path:
    if database_url.startswith("sqlite://"):
        file = database_url[len("sqlite://") :].split("?")[0]
        return Path(file).expanduser().resolve().parent
    return Path.cwd()


def _secret_from_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SettingsError(f"{name}_FILE names {path!r}, which cannot be read: {error.strerror}.") from None


def _generated_secret(database_url: str) -> str:
    """The secret kept beside the database; created with owner-only permissions on first run."""
    path = _data_dir(database_url) / "pulse.secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Read every setting once; raise SettingsError naming the first bad one."""
    environ = dict(os.environ if environ is None else environ)
    env_path = Path(env_file) if env_file else None
    config = Config(env_file=env_path if env_path and env_path.is_file() else None, environ=environ)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = config(setting.name, default=None)
        file_name = config(f"{setting.name}_FILE", default=None) if setting.secret else None
        if raw is None and file_name:
            raw = _secret_from_file(setting.name, file_name)
        values[setting.field] = setting.cast(setting.name, setting.default if raw is None else raw)
    if values["log_level"].lower() not in {"debug", "info", "warning", "error"}:
        raise SettingsError(f"PULSE_LOG_LEVEL must be debug, info, warning or error, not {values['log_level']!r}.")
    if values["smtp_tls"] and values["smtp_starttls"]:
        raise SettingsError("PULSE_SMTP_TLS and PULSE_SMTP_STARTTLS cannot both be on: choose one.")
    if values["webhook_url"] and len(values["webhook_secret"]) < 16:
        raise SettingsError("PULSE_WEBHOOK_SECRET must be at least 16 characters long when PULSE_WEBHOOK_URL is set.")
    if not values["secret_key"]:
        values["secret_key"] = _generated_secret(values["database_url"])
    elif len(values["secret_key"]) < 16:
        raise SettingsError("PULSE_SECRET_KEY must be at least 16 characters long.")
    return Settings(**values)
