"""The employee roster: upsert by external id from CSV or the API; leavers are deactivated, never deleted."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tortoise.transactions import in_transaction

from pulse import fields, i18n, privacy
from pulse.models import Employee, Team
from pulse.touchpoints import EMAIL

FIELDS = {
    "external_id",
    "email",
    "name",
    "team",
    "locale",
    "timezone",
    "start_date",
    "location",
    "role_family",
    "active",
}
COARSE = ("location", "role_family")
TENURE_BANDS = (("<1y", 0, 365), ("1-2y", 365, 730), ("2-5y", 730, 1826), ("5y+", 1826, None))


def tenure_band(start: date | None, on: date) -> str | None:
    """A coarse tenure band (never the start date itself), so it cannot single anyone out."""
    if start is None:
        return None
    days = (on - start).days
    for name, low, high in TENURE_BANDS:
        if days >= low and (high is None or days < high):
            return name
    return None


@dataclass
class RowResult:
    line: int
    external_id: str | None
    status: str  # created | updated | deactivated | unchanged | invalid | erased
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, "external_id": self.external_id, "status": self.status}
        if self.errors:
            data["errors"] = self.errors
        return data


TEXT_FIELDS = {
    "external_id": fields.EMPLOYEE_ID,
    "email": fields.EMPLOYEE_EMAIL,
    "name": fields.EMPLOYEE_NAME,
    "team": fields.TEAM,
    "locale": fields.EMPLOYEE_LOCALE,
    "timezone": fields.EMPLOYEE_TIMEZONE,
    "start_date": fields.Text(10),
    "location": fields.EMPLOYEE_LABEL,
    "role_family": fields.EMPLOYEE_LABEL,
}


def _parse(row: dict, teams: dict[str, int], today: date) -> tuple[dict | None, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    if not isinstance(row, dict):
        return None, [{"field": "(row)", "message": "each employee must be an object"}]
    for name in sorted(set(row) - FIELDS):
        bad(name, f"{name} is not a known field")
    text: dict[str, str] = {}
    for name, spec in TEXT_FIELDS.items():
        value = row.get(name)
        if value is None or isinstance(value, bool):
            continue
        if not isinstance(value, str | int | float):
            bad(name, f"{name} must be a string")
            continue
        text[name] = str(value).strip()
        if text[name] and (problem := spec.problem(text[name])):
            bad(name, f"{name} {problem}")
            text[name] = ""  # reported once: the checks below see no value
    if not text.get("external_id") and "external_id" not in {e["field"] for e in errors}:
        bad("external_id", "external_id is required")
    email = text.get("email", "").lower()
    if not email:
        if "email" not in {e["field"] for e in errors}:
            bad("email", "email is required")
    elif not EMAIL.match(email) or not email.split("@")[0].isascii():
        bad("email", "email is not an e-mail address")
    team = text.get("team") or None
    if team and team not in teams:
        bad("team", f"team {team!r} does not exist (create it under Admin → Teams first)")
    locale = text.get("locale") or None
    start = None
    if text.get("start_date"):
        try:
            start = date.fromisoformat(text["start_date"])
        except ValueError:
            bad("start_date", "start_date must be a date such as 2024-03-01")
        else:
            if start > today:
                bad("start_date", "start_date is in the future")
    active_raw = str(row.get("active", "true")).strip().lower()
    if active_raw not in {"true", "false", "1", "0", "yes", "no", ""}:
        bad("active", "active must be true or false")
    if errors:
        return None, errors
    return {
        "external_id": text["external_id"],
        "email": email,
        "name": text.get("name", ""),
        "team_id": teams[team] if team else None,
        "locale": i18n.supported(locale) or locale,
        "timezone": text.get("timezone") or None,
        "start_date": start,
        "attributes": {name: text[name] for name in COARSE if text.get(name)},
        "active": active_raw in {"true", "1", "yes", ""},
    }, []


async def upsert(
    rows: list[dict],
    *,
    dry_run: bool = False,
    first_line: int = 2,
    today: date | None = None,
    secret_key: str | None = None,
) -> list[RowResult]:
    """Create or update each valid row (one transaction); bad rows are reported and skipped, never half-stored.
    With the secret key, rows of erased people (pulse/privacy.py) are skipped with the status `erased`."""
    today = today or date.today()
    teams = dict(await Team.all().values_list("slug", "id"))
    results: list[RowResult] = []
    valid: list[tuple[RowResult, dict]] = []
    seen: set[str] = set()
    for offset, row in enumerate(rows):
        parsed, errors = _parse(row, teams, today)
        external_id = row.get("external_id") if isinstance(row, dict) else None
        if parsed and parsed["external_id"] in seen:
            errors = [{"field": "external_id", "message": "this external_id appears twice in the file"}]
        result = RowResult(first_line + offset, external_id, "invalid" if errors else "pending", errors)
        results.append(result)
        if parsed and not errors:
            seen.add(parsed["external_id"])
            valid.append((result, parsed))
    if secret_key and valid:
        erased = await privacy.suppressed(
            secret_key, {p["email"] for _, p in valid}, {p["external_id"] for _, p in valid}
        )
        for result, parsed in valid:
            if parsed["email"] in erased or parsed["external_id"] in erased:
                result.status = privacy.ERASED
        valid = [(result, parsed) for result, parsed in valid if result.status != privacy.ERASED]
    existing = {e.external_id: e for e in await Employee.filter(external_id__in=[p["external_id"] for _, p in valid])}
    async with in_transaction():
        for result, parsed in valid:
            employee = existing.get(parsed["external_id"])
            if employee is None:
                result.status = "created" if parsed["active"] else "deactivated"
                if not dry_run:
                    await Employee.create(**parsed)
                continue
            changes = {k: v for k, v in parsed.items() if getattr(employee, k) != v}
            if not changes:
                result.status = "unchanged"
                continue
            result.status = "deactivated" if changes.get("active") is False else "updated"
            if not dry_run:
                await Employee.filter(id=employee.id).update(**changes)
    return results


def rows_from_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise ValueError("the CSV has no header row")
    rows = []
    for row in reader:
        if None in row:
            raise ValueError(f"line {reader.line_num} has more cells than the header has columns")
        rows.append({key.strip(): value for key, value in row.items() if value not in (None, "")})
    return rows
