"""The audit log for admins: who did what to personal data or access, newest first, filtered in the URL, and the
same rows as CSV (whose download is itself in the log)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from pulse import audit, fields
from pulse.errors import BadRequest
from pulse.export import neutralise
from pulse.i18n import N_
from pulse.models import AuditEvent
from pulse.web.cases import paging, refused_filter
from pulse.web.dashboard import page
from pulse.web.filters import read_dates

EVENTS_PER_PAGE = 50
CSV_CHUNK = 2000
CSV_COLUMNS = ("at", "actor", "action", "target", "source", "details")
ACTION = re.compile(r"^[a-z0-9_.]{0,64}$")
FIELD_LABELS = {
    "action": N_("Action"),
    "actor": N_("Who"),
    "target": N_("What it concerned"),
    "from": N_("Since"),
    "to": N_("Until"),
}
TEXT_LENGTH = 254  # the longest actor or target stored


@dataclass
class AuditFilters:
    """What the URL asks for (each text as typed) and a message for each field that is wrong."""

    action: str
    actor: str
    target: str
    since: date | None
    until: date | None
    raw: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def filtered(self) -> bool:
        return any((self.action, self.actor, self.target, self.since, self.until))


def read_filters(params: Mapping[str, str], t) -> AuditFilters:
    """Read action (a prefix), actor and target (text anywhere), from and to (days); `t` translates a message."""
    raw = {name: (params.get(name) or "").strip() for name in FIELD_LABELS}
    errors: dict[str, str] = {}

    def label(name: str) -> str:
        return t(FIELD_LABELS[name])

    action = raw["action"].lower()
    if not ACTION.match(action):
        errors["action"] = t(
            "'%(field)s' is the start of an action's name: letters, digits, dots and underscores, such as "
            "signin or user.created.",
            field=label("action"),
        )
    for name in ("actor", "target"):
        if fields.unstorable(raw[name]):
            errors[name] = t("'%(field)s' must not contain control characters.", field=label(name))
    dates = read_dates(raw, errors, t, label)
    return AuditFilters(
        action, raw["actor"][:TEXT_LENGTH], raw["target"][:TEXT_LENGTH], dates.get("from"), dates.get("to"), raw, errors
    )


def events(chosen: AuditFilters, timezone: str) -> QuerySet[AuditEvent]:
    """The events the filters select; days are the organisation's, from its midnight to the next."""
    query = AuditEvent.all()
    if chosen.action:
        query = query.filter(action__startswith=chosen.action)
    if chosen.actor:
        query = query.filter(actor__icontains=chosen.actor)
    if chosen.target:
        query = query.filter(target__icontains=chosen.target)
    zone = ZoneInfo(timezone)
    if chosen.since:
        query = query.filter(at__gte=datetime.combine(chosen.since, time(), zone).astimezone(UTC))
    if chosen.until:
        query = query.filter(at__lt=datetime.combine(chosen.until + timedelta(days=1), time(), zone).astimezone(UTC))
    return query


def _details(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


async def audit_page(request: Request) -> Response:
    """The audit log, newest first, 50 events a page; a wrong filter is told beside its field (status 400)."""
    p = await page(request, "admin")
    chosen = read_filters(request.query_params, p.t)
    context: dict = {"filters": chosen, "errors": chosen.errors, "retain_days": p.state.settings.retain_audit_days}
    if chosen.errors:
        return p.render("admin/audit.html", context | {"rows": [], "paging": None}, status_code=400)
    query = events(chosen, p.state.settings.timezone)
    try:
        pages = paging(request, await query.count(), EVENTS_PER_PAGE)
    except BadRequest as refused:
        return refused_filter(p, refused)
    found = await query.order_by("-at", "-id").offset(pages.offset).limit(pages.size)
    query_text = request.url.query
    context |= {
        "rows": [{"event": e, "details": _details(e.details)} for e in found],
        "paging": pages,
        "csv_url": "/admin/audit.csv" + ("?" + query_text if query_text else ""),
    }
    return p.render("admin/audit.html", context)


async def csv_chunks(query: QuerySet[AuditEvent], timezone: str) -> AsyncIterator[bytes]:
    """The events newest first as UTF-8 CSV, a few thousand at a time (keyset, not offsets); cells neutralised."""
    zone = ZoneInfo(timezone)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    after: tuple[datetime, int] | None = None
    while True:
        chunk = query
        if after is not None:
            chunk = chunk.filter(Q(at__lt=after[0]) | Q(at=after[0], id__lt=after[1]))
        found = await chunk.order_by("-at", "-id").limit(CSV_CHUNK)
        for e in found:
            row = (e.at.astimezone(zone).isoformat(), e.actor, e.action, e.target, e.source, _details(e.details))
            writer.writerow([neutralise(cell) for cell in row])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if len(found) < CSV_CHUNK:
            return
        after = (found[-1].at, found[-1].id)


async def audit_csv(request: Request) -> Response:
    """The filtered events as CSV, streamed; downloading them is itself an audited export."""
    p = await page(request, "admin")
    chosen = read_filters(request.query_params, p.t)
    if chosen.errors:
        return refused_filter(p, BadRequest(" ".join(chosen.errors.values())))
    timezone = p.state.settings.timezone
    await audit.record(
        "export.audit",
        actor=p.user.email,
        target="audit log",
        source=audit.source_of(request),
        details={"filters": {k: v for k, v in chosen.raw.items() if v}},
    )
    filename = f"pulse-audit-{p.today().isoformat()}.csv"
    return StreamingResponse(
        csv_chunks(events(chosen, timezone), timezone),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )


ROUTES = [
    Route("/admin/audit", audit_page, name="admin_audit"),
    Route("/admin/audit.csv", audit_csv, name="admin_audit_csv"),
]
