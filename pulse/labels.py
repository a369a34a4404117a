"""Every code a person may read — touchpoint types, stages, channels, statuses, reasons, roles, segments — and its
label in the reader's language, in one place. The API, CSV files and URLs keep the codes; pages and e-mails show
labels. A code a customer configured that we cannot know (a new touchpoint type, a segment) reads as words."""

from __future__ import annotations

from jinja2 import pass_context
from jinja2.runtime import Context

from pulse import i18n
from pulse.catalog import localized
from pulse.i18n import N_

# kind -> code -> msgid. The codes come from surveys/*.toml (touchpoint types), pulse.demo and the README (stages,
# channels), pulse.rules (skip reasons), pulse.responses (flags), pulse.followups (case statuses), pulse.outbox and
# pulse.webhooks (delivery statuses), pulse.access (roles) and settings.segment_attributes (segments).
LABELS: dict[str, dict[str, str]] = {
    "touchpoint": {
        "purchase": N_("Purchase"),
        "onboarding_visit": N_("Onboarding visit"),
        "account_review": N_("Account review"),
        "renewal": N_("Renewal"),
        "support_ticket_closed": N_("Support ticket closed"),
        "complaint_closed": N_("Complaint closed"),
        "delivery_completed": N_("Delivery completed"),
        "return_processed": N_("Return processed"),
        "self_service_completed": N_("Self-service completed"),
        "installation_completed": N_("Installation completed"),
    },
    "stage": {
        "pre_sale": N_("Before the sale"),
        "onboarding": N_("Onboarding"),
        "active": N_("Active customer"),
        "renewal": N_("Renewal"),
        "churned": N_("Former customer"),
    },
    "channel": {
        "email": N_("E-mail"),
        "phone": N_("Phone"),
        "web": N_("Website"),
        "chat": N_("Chat"),
        "video": N_("Video call"),
        "visit": N_("Visit"),
        "in_person": N_("In person"),
        "sms": N_("Text message"),
        "app": N_("Mobile app"),
    },
    "invitation_status": {
        "scheduled": N_("Scheduled"),
        "sent": N_("Sent"),
        "answered": N_("Answered"),
        "expired": N_("Expired"),
        "skipped": N_("Not sent"),
        "suppressed": N_("Held back"),
        "failed": N_("Could not be sent"),
    },
    "skip_reason": {
        "no_survey_for_type": N_("no survey for this touchpoint"),
        "sampled_out": N_("not in the sample"),
        "fatigue": N_("asked recently"),
        "opted_out": N_("opted out"),
        "bounced": N_("the address bounced"),
        "stale_event": N_("the touchpoint was too long ago"),
        "no_email": N_("no e-mail address"),
        "superseded": N_("replaced by a more important survey"),
    },
    "flag_reason": {
        "honeypot": N_("Filled a field hidden from people"),
        "too_fast": N_("Answered faster than a person can"),
        "score_flurry": N_("Many scores clicked within a second"),
        "score_flapping": N_("The score changed back and forth"),
        "bad_nonce": N_("Sent from a page that was not ours"),
    },
    "case_status": {  # in workflow order, which every list and select keeps
        "open": N_("Open"),
        "in_progress": N_("In progress"),
        "resolved": N_("Resolved"),
        "closed_no_action": N_("Closed, no action"),
    },
    "delivery_status": {  # e-mails (pulse.outbox) and webhooks (pulse.webhooks)
        "pending": N_("Waiting"),
        "sending": N_("Sending"),
        "sent": N_("Sent"),
        "delivered": N_("Delivered"),
        "retry": N_("To be retried"),
        "failed": N_("Failed"),
        "bounced": N_("Bounced"),
        "suppressed": N_("Held back"),
        "cancelled": N_("Cancelled"),
    },
    "role": {
        "admin": N_("Admin"),
        "hr": N_("HR partner"),
        "manager": N_("Manager"),
        "analyst": N_("Analyst"),
    },
    "segment": {  # settings.segment_attributes is configurable: unknown names read as words
        "plan": N_("Plan"),
        "region": N_("Region"),
        "country": N_("Country"),
        "industry": N_("Industry"),
        "segment": N_("Segment"),
        "size": N_("Company size"),
        "tier": N_("Tier"),
        "language": N_("Language"),
    },
}


def readable(code: str) -> str:
    """A code nobody gave a label, as words: 'key_account_visit' -> 'Key account visit'."""
    words = " ".join(code.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:] if words else code


def label(kind: str, code: str | None, locale: str) -> str:
    """The label of `code` in `locale`; an unknown code (or kind) reads as words, never fails."""
    if code is None or code == "":
        return ""
    message = LABELS.get(kind, {}).get(str(code))
    return i18n.translate(locale, message) if message else readable(str(code))


def choices(kind: str, locale: str) -> list[tuple[str, str]]:
    """Every known code of `kind` with its label, in the order above (for `<select>` lists)."""
    return [(code, i18n.translate(locale, message)) for code, message in LABELS[kind].items()]


def codes() -> set[str]:
    """Every code that has a label: a page or e-mail showing one of these as a word shows a code."""
    return {code for table in LABELS.values() for code in table}


def survey_title(catalog, survey_id: str, locale: str, company: str) -> str:
    """A survey's title in `locale`; the id as words for a survey no longer in the catalog."""
    survey = catalog.get(survey_id) if catalog is not None else None
    return localized(survey.title, locale, company) if survey else readable(survey_id)


@pass_context
def _label_filter(context: Context, code: str | None, kind: str) -> str:
    return label(kind, code, context["locale"])


@pass_context
def _label_global(context: Context, kind: str, code: str | None) -> str:
    return label(kind, code, context["locale"])


@pass_context
def _survey_filter(context: Context, survey_id: str) -> str:
    """`{{ id|survey }}`: the title, from the catalog of the app that serves the page."""
    request = context.get("request")
    catalog = getattr(request.app.state, "catalog", None) if request is not None else None
    return survey_title(catalog, survey_id, context["locale"], context.get("company", ""))


def install(env) -> None:
    """`{{ code|label("stage") }}`, `label("stage", code)` and `{{ survey_id|survey }}` in every template."""
    env.filters.update(label=_label_filter, survey=_survey_filter)
    env.globals.update(label=_label_global)
