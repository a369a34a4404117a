"""E-mails: render a localized message (plain text + HTML) and send it with aiosmtplib."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from jinja2 import Environment

from pulse import i18n
from pulse.catalog import Survey, localized
from pulse.i18n import N_
from pulse.settings import Settings

# Why the person got this e-mail, in the footer; unknown types get the general sentence.
TOUCHPOINT_REASONS = {
    "support_ticket_closed": N_("You receive this e-mail because your support request was recently closed."),
    "complaint_closed": N_("You receive this e-mail because your complaint was recently handled."),
    "purchase": N_("You receive this e-mail because you recently made a purchase."),
    "onboarding_visit": N_("You receive this e-mail because we recently visited you to get you started."),
    "renewal": N_("You receive this e-mail because you recently renewed your contract."),
    "delivery_completed": N_("You receive this e-mail because we recently delivered your order."),
    "return_processed": N_("You receive this e-mail because we recently processed your return."),
    "self_service_completed": N_("You receive this e-mail because you recently used our self-service."),
    "installation_completed": N_("You receive this e-mail because we recently completed your installation."),
}
GENERAL_REASON = N_("You receive this e-mail because you were recently in touch with us.")


@dataclass(frozen=True)
class ScoreLink:
    score: int
    url: str
    label: str  # for screen readers: "7 out of 10"


def smtp_client(settings: Settings) -> aiosmtplib.SMTP:
    """A client for the configured server; connect it once and send many messages through it."""
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user or None,
        password=settings.smtp_password or None,
        use_tls=settings.smtp_tls,
        # None: upgrade when the server offers STARTTLS; True: insist; False: never (implicit TLS is on)
        start_tls=True if settings.smtp_starttls else (False if settings.smtp_tls else None),
        timeout=settings.smtp_timeout,
    )


def survey_message(
    env: Environment,
    settings: Settings,
    *,
    survey: Survey,
    locale: str,
    to: str,
    name: str | None,
    touchpoint_type: str | None,
    score_url: str,
    unsubscribe_url: str,
    expires_at: datetime,
    message_id: str,
    timezone: str | None = None,
) -> EmailMessage:
    """The invitation: the question with one link per score, in the person's language."""
    company = settings.company_name
    scores = [
        ScoreLink(
            n,
            f"{score_url}?score={n}",
            i18n.translate(locale, "%(score)s out of %(top)s", score=n, top=survey.scale_max),
        )
        for n in survey.scores
    ]
    reason = TOUCHPOINT_REASONS.get(touchpoint_type or "", GENERAL_REASON)
    context = {
        "locale": locale,
        "timezone": timezone or settings.timezone,
        "company": company,
        "name": name,
        "question": localized(survey.question.text, locale, company),
        "low_label": localized(survey.low_label, locale, company),
        "high_label": localized(survey.high_label, locale, company),
        "scores": scores,
        "reason": reason,
        "unsubscribe_url": unsubscribe_url,
        "expires_at": expires_at,
    }
    message = EmailMessage()
    message["Subject"] = localized(survey.subject, locale, company)
    message["From"] = settings.mail_from
    message["To"] = to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    mailto = parseaddr(settings.mail_from)[1]
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(env.get_template("email/survey.txt").render(context))
    message.add_alternative(env.get_template("email/survey.html").render(context), subtype="html")
    message["Content-Language"] = locale  # after the parts: set_content drops Content-* headers
    return message
