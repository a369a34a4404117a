"""Data-subject requests from a contact's page, for admins: export everything about the customer as JSON, or
erase them after typing their CRM id, and read the erasure receipt (pulse/privacy.py does the work)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pulse import audit, fields, privacy
from pulse.errors import NotFound, PulseError
from pulse.i18n import N_
from pulse.models import Contact
from pulse.web.auth import CSRF_FIELD, check_csrf
from pulse.web.dashboard import page

# the receipt's counts as an admin reads them, in the order they are listed
REMOVED = {
    "comments_blanked": N_("Comments blanked, with their earlier versions"),
    "case_notes_deleted": N_("Notes on their cases deleted"),
    "case_events_blanked": N_("Case events that quoted a comment, blanked"),
    "emails_deleted": N_("E-mails deleted"),
    "webhook_deliveries_deleted": N_("Webhook events not yet delivered, deleted"),
    "webhook_deliveries_blanked": N_("Delivered webhook events, comment blanked"),
    "flagged_attempts_deleted": N_("Flagged attempts deleted"),
    "invitations_stopped": N_("Scheduled invitations stopped"),
    "loyalty_rows_deleted": N_("Loyalty rows deleted"),
    "touchpoints_emptied": N_("Touchpoints whose details were emptied"),
    "dev_mail_copies_deleted": N_("Copies in the development mail catcher deleted"),
}
KEPT = N_(
    "Scores, days, teams and survey dimensions of the answers stay as anonymous counts, so trends do not change; "
    "so do the statuses of invitations and cases, without anything that names the person."
)


async def _contact(request: Request) -> Contact:
    external_id = request.path_params["external_id"]
    storable = len(external_id) <= fields.CONTACT_ID.max_length and not fields.unstorable(external_id)
    person = await Contact.get_or_none(external_id=external_id) if storable else None
    if person is None:
        raise NotFound("No such contact.")
    return person


async def export_contact(request: Request) -> Response:
    """The customer's personal data as a JSON file (a data-subject access request); recorded in the audit log."""
    p = await page(request, "admin")
    person = await _contact(request)
    document = await privacy.export_contact(
        person.external_id,
        p.state.catalog,
        p.state.settings.company_name,
        actor=p.user.email,
        source=audit.source_of(request),
    )
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"content-disposition": 'attachment; filename="personal-data.json"'},
    )


async def erase_contact(request: Request) -> Response:
    """Confirm with the CRM id typed in, erase, and show the receipt."""
    p = await page(request, "admin")
    person = await _contact(request)
    error = None
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        if str(form.get("confirm") or "").strip() != person.external_id:
            error = p.t("Type the CRM id exactly as shown to confirm the erasure.")
        else:
            try:
                receipt = await privacy.erase_contact(
                    person.external_id,
                    p.state.settings.secret_key,
                    actor=p.user.email,
                    source=audit.source_of(request),
                    mail_catcher=getattr(p.state, "mail_catcher", None),
                )
            except PulseError as refused:
                error = refused.localized(p.locale)
            else:
                rows = [(p.t(label), receipt.removed.get(key, 0)) for key, label in REMOVED.items()]
                return p.render("dashboard/erasure_receipt.html", {"receipt": receipt, "rows": rows, "kept": KEPT})
    return p.render(
        "dashboard/erase_contact.html", {"contact": person, "error": error}, status_code=400 if error else 200
    )


ROUTES = [
    Route("/contacts/{external_id}/erase", erase_contact, methods=["GET", "POST"], name="contact_erase"),
    Route("/contacts/{external_id}/personal-data.json", export_contact, methods=["GET"], name="contact_export"),
]
