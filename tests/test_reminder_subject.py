"""A pulse reminder carries its own subject from the survey file, in the employee's language: one colon, no
"Reminder: … : …" built by gluing a prefix onto the invitation's subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulse import engagement
from pulse.catalog import CatalogError, load_catalog
from pulse.models import Employee, Team
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import ROOT

REMINDERS = {
    "en": "Reminder: a two-minute pulse on how work is going",
    "pl": "Przypomnienie: dwuminutowa ankieta o tym, jak się Panu/Pani pracuje",
    "it": "Promemoria: un sondaggio di due minuti su come va il lavoro",
    "sl": "Opomnik: kratka anketa o tem, kako vam gre pri delu",
}


async def test_the_reminder_has_its_own_subject_in_each_language(mail_settings, catalog, org, smtp):
    team = await Team.get(slug="support-warsaw")
    for n, locale in enumerate(REMINDERS, start=1):
        await Employee.create(
            external_id=f"E{n}", email=f"{locale}@example.com", name=f"Employee {n}", team=team, locale=locale
        )
    survey = engagement.programme(catalog)
    # the round opened days ago, so its reminder is due now and the worker sends it at once
    now = datetime.now(UTC)
    opened = now - timedelta(days=survey.schedule.reminder_after_days)
    dispatcher = Dispatcher(mail_settings, catalog, environment())
    await engagement.run_schedule(catalog, mail_settings, now=opened)
    await dispatcher.step()
    invitations = {m["To"]: m["Subject"] for m in smtp.received}
    smtp.received.clear()
    await engagement.run_schedule(catalog, mail_settings, now=now)
    await dispatcher.step()
    reminders = {m["To"]: m["Subject"] for m in smtp.received}
    for locale, subject in REMINDERS.items():
        address = f"{locale}@example.com"
        assert reminders[address] == subject
        assert reminders[address].count(":") == 1
        assert reminders[address] != invitations[address]


def test_a_reminder_subject_must_name_every_language(tmp_path):
    text = (ROOT / "surveys" / "enps.toml").read_text(encoding="utf-8")
    start = text.index("[reminder_subject]")
    end = text.index("\n\n", start)
    broken = text[:start] + '[reminder_subject]\nen = "Reminder"\npl = ""' + text[end:]
    (tmp_path / "enps.toml").write_text(broken, encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(tmp_path)
    label = f"{tmp_path.name}/enps.toml"
    assert f"{label}: reminder_subject.pl: must be a non-empty string" in error.value.messages
    assert f"{label}: reminder_subject.it: missing translation" in error.value.messages
