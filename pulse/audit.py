"""The audit log: every action that reads or changes personal data or access, appended with who, what, when and
from where. Rows are never edited; `prune` removes those older than PULSE_RETAIN_AUDIT_DAYS, nothing else does.

Actions are dotted names an admin can filter by (`signin.failed`, `user.role_changed`, `apikey.created`,
`case.reassigned`, `export.responses`, `contact.erased`, `contact.exported`, `retention.run`, …). `target` names
what the action touched in words an admin reads ("contact C-1042", "user ana@example.com"); `details` holds the
rest as JSON (counts, old and new values). No secret goes in: never a password, a token or an API key's secret.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from pulse.models import AuditEvent

COMMAND_LINE = "command line"
WORKER = "worker"


def api_actor(key: Any) -> str:
    """How the log names an API key that acted: its name and prefix, never its secret."""
    return f"api key {key.name} ({key.prefix})"


def source_of(request: Request | None) -> str:
    """Where a request came from: the client's address (the proxy's forwarded one when the proxy is trusted)."""
    if request is None or request.client is None:
        return ""
    return request.client.host[:64]


async def record(
    action: str,
    *,
    actor: str,
    target: str = "",
    source: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event; call it inside the transaction of the change it records, so both or neither are kept."""
    return await AuditEvent.create(
        at=at or datetime.now(UTC),
        actor=actor[:254],
        action=action[:64],
        target=target[:254],
        source=source[:64],
        details=details or {},
    )


async def prune(retain_days: int, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete events older than `retain_days` (0 keeps them forever), in bounded batches; returns how many."""
    if retain_days <= 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retain_days)
    removed = 0
    while True:
        ids = await AuditEvent.filter(at__lt=cutoff).order_by("id").limit(batch).values_list("id", flat=True)
        if not ids:
            return removed
        removed += await AuditEvent.filter(id__in=list(ids)).delete()
