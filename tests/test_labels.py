"""Every code a person may read has one label, translated in every locale; a code nobody labelled (a customer's
own touchpoint type or segment) reads as words and never breaks a page."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from pulse import accounts, followups, labels, outbox, responses, rules
from pulse.i18n import LOCALES_DIR
from pulse.rendering import environment
from pulse.settings import LOCALES
from tests.conftest import make_settings

# What pulse.demo loads (and the README's examples use): its stages and channels must read as words too.
DEMO_STAGES = ("pre_sale", "onboarding", "active", "renewal")
DEMO_CHANNELS = ("web", "visit", "phone", "video", "email")
INVITATION_STATUSES = ("scheduled", "sent", "answered", "expired", "skipped", "suppressed", "failed")
DELIVERY_STATUSES = ("pending", "sending", "sent", "retry", "failed", "bounced", "suppressed", "cancelled", "delivered")


def known_codes(catalog) -> dict[str, set[str]]:
    """Every code of each kind that Pulse itself or the shipped surveys and settings can produce."""
    return {
        "touchpoint": {t for s in catalog if s.trigger for t in s.trigger.touchpoint_types},
        "stage": set(DEMO_STAGES),
        "channel": set(DEMO_CHANNELS),
        "invitation_status": set(INVITATION_STATUSES),
        "skip_reason": set(rules.REASONS),
        "flag_reason": {responses.HONEYPOT, responses.TOO_FAST, responses.FLURRY, responses.BAD_NONCE},
        "case_status": set(followups.STATUSES),
        "delivery_status": set(DELIVERY_STATUSES),
        "role": set(accounts.ROLES),
        "segment": set(make_settings("sqlite://:memory:").segment_attributes),
    }


def test_every_code_pulse_can_show_has_a_label(catalog):
    missing = [
        f"{kind}: {code}"
        for kind, codes in known_codes(catalog).items()
        for code in codes
        if code not in labels.LABELS[kind]
    ]
    assert missing == []
    assert outbox.CASE_KINDS  # the statuses above are those pulse.outbox and pulse.webhooks write


@pytest.mark.parametrize("locale", LOCALES[1:] if LOCALES[0] == "en" else LOCALES)
def test_every_label_is_translated(locale):
    with open(LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        translated = {m.id for m in read_po(po) if m.id and m.string and not m.fuzzy}
    untranslated = sorted({message for table in labels.LABELS.values() for message in table.values()} - translated)
    assert untranslated == [], f"{len(untranslated)} labels have no {locale} translation: {untranslated}"


@pytest.mark.parametrize(
    ("kind", "code", "shown"),
    [
        ("touchpoint", "key_account_visit", "Key account visit"),
        ("segment", "customer_tier", "Customer tier"),
        ("segment", "plan", "Plan"),
        ("channel", "in-store", "In store"),
        ("no_such_kind", "pre_sale", "Pre sale"),
        ("stage", "", ""),
        ("stage", None, ""),
        ("stage", "__", "__"),
    ],
)
def test_an_unknown_code_reads_as_words(kind, code, shown):
    assert labels.label(kind, code, "pl") == shown


def test_a_label_is_in_the_readers_language():
    pl = labels.label("case_status", "in_progress", "pl")
    assert labels.label("case_status", "in_progress", "en") == "In progress"
    assert pl == labels.i18n.translations("pl").gettext("In progress")


def test_templates_label_codes_with_a_filter_and_a_global():
    env = environment()
    template = env.from_string('{{ code|label("stage") }} / {{ label("channel", "video") }} / {{ "x_y"|label("z") }}')
    assert template.render(locale="en", code="pre_sale") == "Before the sale / Video call / X y"
    assert template.render(locale="pl", code="pre_sale") == " / ".join(
        [labels.label("stage", "pre_sale", "pl"), labels.label("channel", "video", "pl"), "X y"]
    )


def test_codes_lists_every_labelled_code():
    assert {"account_review", "pre_sale", "sampled_out", "score_flurry", "closed_no_action"} <= labels.codes()


async def test_a_touchpoint_type_pulse_does_not_know_shows_as_words_on_the_timeline(
    mail_app, mail_settings, catalog, org
):
    from pulse.touchpoints import ingest
    from tests.conftest import event, sign_in

    [outcome] = await ingest([event(1, type="key_account_visit", stage="expansion")], catalog, mail_settings)
    assert outcome.as_json()["status"] == "skipped"  # no survey for it, yet it is on the customer's timeline
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/contacts/C-1?lang=pl")
    assert page.status_code == 200
    assert "Key account visit" in page.text
    assert labels.label("channel", "phone", "pl") in page.text and "Support Warsaw" in page.text
    assert "key_account_visit" not in page.text
