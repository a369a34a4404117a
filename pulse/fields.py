"""What an incoming value may be: one declaration per field, with the limits storage can hold.

Lengths come from the models' `max_length`, so a value that passes here fits its column on both engines
(SQLite would keep a longer one; PostgreSQL and Tortoise's own validators refuse it and fail the whole batch).
Neither engine keeps every string: PostgreSQL refuses NUL in text and in JSON, and a lone surrogate cannot be
encoded as UTF-8 at all. Dates are kept to a range in which a window or a time zone cannot step off the calendar.
Every check answers with the phrase that follows the field's name: "must be at most 8 characters".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pulse.errors import BadRequest
from pulse.models import Contact, DailyRollup, Employee, Team, Touchpoint, User

WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")  # ASCII only: str.isdigit() and int() also take "²" and "٣"
LARGEST_ID = 2**31 - 1  # the id columns are 32-bit integers
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
SEGMENT_SEPARATOR = "|"  # rollups.SEPARATOR: a team's breakdown keys values as "<slug>|<value>"

CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
LABEL = re.compile(r"^[\w .&/-]{1,64}$")


def _length(model, name: str) -> int:
    return model._meta.fields_map[name].max_length


NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why no database can keep this text, or None."""
    found = NOT_STORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return f"must not contain lone surrogates (such as \\u{ord(found.group()):04x})"


@dataclass(frozen=True)
class Text:
    """A text field: at most `max_length` characters, storable, and matching `pattern` when there is one."""

    max_length: int
    pattern: re.Pattern | None = None
    hint: str = ""

    def problem(self, value: str) -> str | None:
        """What is wrong with `value` (a phrase to follow the field's name), or None."""
        if found := unstorable(value):
            return found
        if len(value) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if self.pattern is not None and not self.pattern.match(value):
            return self.hint
        return None

    def check(self, value: str, name: str) -> str:
        """The value, or a 400 that names the field and says what is wrong."""
        if found := self.problem(value):
            raise BadRequest(f"{name} {found}.")
        return value


TEAM_HINT = "must be a team slug: letters, digits, dots, dashes or underscores"
LOCALE_HINT = "must be a language tag such as pl or it-IT"

# touchpoint events and their contacts
EVENT_ID = Text(_length(Touchpoint, "external_id"))
SOURCE = Text(_length(Touchpoint, "source"), SLUG, "must be letters, digits, dots, dashes or underscores")
TOUCHPOINT_TYPE = Text(_length(Touchpoint, "type"), CODE, "must be a lowercase code such as support_ticket_closed")
TEAM = Text(_length(Team, "slug"), SLUG, TEAM_HINT)
AGENT = Text(_length(Touchpoint, "agent"))
CHANNEL = Text(_length(Touchpoint, "channel"))
STAGE = Text(_length(Touchpoint, "stage"))
CONTACT_ID = Text(_length(Contact, "external_id"))
CONTACT_EMAIL = Text(_length(Contact, "email"))
CONTACT_NAME = Text(_length(Contact, "name"))
CONTACT_LOCALE = Text(_length(Contact, "locale"), LOCALE_TAG, LOCALE_HINT)
CONTACT_TIMEZONE = Text(_length(Contact, "timezone"))
ATTRIBUTE_NAME = Text(64)
# A segment value is a rollup value on its own and after its team's slug ("support-warsaw|gold"): both must fit.
SEGMENT_VALUE = Text(_length(DailyRollup, "value") - _length(Team, "slug") - len(SEGMENT_SEPARATOR))

# the employee roster
EMPLOYEE_ID = Text(_length(Employee, "external_id"))
EMPLOYEE_EMAIL = Text(_length(Employee, "email"))
EMPLOYEE_NAME = Text(_length(Employee, "name"))
EMPLOYEE_LOCALE = Text(_length(Employee, "locale"), LOCALE_TAG, LOCALE_HINT)
EMPLOYEE_TIMEZONE = Text(_length(Employee, "timezone"))
EMPLOYEE_LABEL = Text(64, LABEL, "must be a short label (letters, digits, spaces, - & /)")

# the API's other inputs
USER_EMAIL = Text(_length(User, "email"))
CASE_NOTE = Text(10_000)
FILTER_VALUE = Text(_length(DailyRollup, "value"))


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """An ASCII whole number from `low` to `high`, or a 400 that says so."""
    if not WHOLE_NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def identifier(raw: str) -> int | None:
    """A row id from a path (`/cases/12`), or None when it cannot be one: such an address names nothing (404)."""
    if not WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= LARGEST_ID:
        return None
    return int(raw)


def in_range(day: date) -> bool:
    return EARLIEST <= day <= LATEST


def parse_date(raw: str, name: str) -> date:
    """A date (YYYY-MM-DD) from EARLIEST to LATEST, or a 400 that says which."""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date such as 2026-03-01, not {raw!r}.") from None
    if not in_range(value):
        raise BadRequest(f"{name} must be a date from {EARLIEST} to {LATEST}, not {raw!r}.")
    return value


def parse_moment(raw: str, name: str) -> datetime:
    """A date or date-time (UTC when it names no offset) from EARLIEST to LATEST, in UTC; or a 400."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time, such as 2026-03-01.") from None
    if not in_range(value.date()) or (value.tzinfo is not None and not in_range(value.astimezone(UTC).date())):
        raise BadRequest(f"{name} must be a date or date-time from {EARLIEST} to {LATEST}, not {raw!r}.")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
