"""Stale survey translations on the admin Surveys page and in the API, with a survey folder of the test's own."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from asgi_lifespan import LifespanManager
from babel.messages.pofile import read_po

from pulse.app import create_app
from pulse.models import AuditEvent
from pulse.translations import CURRENT, STALE
from tests.conftest import make_key, make_org, make_settings, sign_in
from tests.test_stale_translations import change_english, copy_surveys, states
from tests.test_translation_files import CONTEXT, NEW_POLISH, as_bytes

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ENGLISH = "How likely are you to recommend {company} to a friend, a colleague or a relative?"


@pytest.fixture
def folder(tmp_path):
    found = copy_surveys(tmp_path)
    change_english(found)
    return found


async def started(database_url, folder, **overrides):
    settings = make_settings(database_url, PULSE_SURVEYS_DIR=str(folder), **overrides)
    return create_app(settings)


@pytest.fixture
async def site(database_url, folder):
    app = await started(database_url, folder)
    async with LifespanManager(app):
        await make_org()
        yield app


async def test_the_surveys_page_shows_each_stale_translation_to_admins_only(site):
    async with sign_in(site, "alice@example.com") as alice:
        page = await alice.get("/admin/surveys")
    assert page.status_code == 200
    text = page.text
    assert text.count('<strong class="stale">1 stale</strong>') == 3  # nps, in pl, it and sl
    assert "The English texts of 3 translations changed after they were translated." in text
    assert "Until they are updated, Pulse sends them as they are." in text
    assert f'<code class="wraps">{CONTEXT}</code>' in text
    assert f'<code lang="en">{ENGLISH}</code>' in text
    assert "Jak bardzo prawdopodobne jest, że poleci Pan/Pani firmę {company}" in text
    assert 'href="/admin/surveys/translations/pl?format=po"' in text
    for email in ("ana@example.com", "bob@example.com", "hana@example.com"):
        async with sign_in(site, email) as other:
            assert (await other.get("/admin/surveys")).status_code == 403
            assert (await other.get("/admin/surveys/translations/pl")).status_code == 403


async def test_the_page_is_in_the_admins_language(site):
    async with sign_in(site, "alice@example.com") as alice:
        page = await alice.get("/admin/surveys?lang=pl")
    assert '<html lang="pl"' in page.text
    assert "Polski: " in page.text


async def test_an_admin_downloads_a_language_and_uploads_it_translated(site, folder):
    async with sign_in(site, "alice@example.com") as alice:
        page = await alice.get("/admin/surveys")
        download = await alice.get("/admin/surveys/translations/pl?format=po")
        assert download.status_code == 200
        assert download.headers["content-disposition"] == 'attachment; filename="surveys-pl.po"'
        po = read_po(io.BytesIO(download.content))
        message = po.get(ENGLISH, context=CONTEXT)
        assert message.fuzzy
        message.string = NEW_POLISH
        message.flags.discard("fuzzy")
        reply = await alice.post(
            "/admin/surveys/translations",
            data={"csrf_token": TOKEN.search(page.text).group(1), "lang": "pl"},
            files={"file": ("surveys-pl.po", as_bytes(po), "text/x-gettext-translation")},
        )
        assert reply.status_code == 200, reply.text
        assert (
            "Translations imported (Polski). Texts changed: 1; marked current: 1; still stale: 0. "
            "Restart Pulse to send the new wording." in reply.text
        )
        assert "The English texts of 2 translations changed" in reply.text  # it and sl still wait
        xliff = await alice.get("/admin/surveys/translations/sl?format=xliff")
        assert xliff.headers["content-type"].startswith("application/xliff+xml")
        assert (await alice.get("/admin/surveys/translations/en")).status_code == 400
        assert (await alice.get("/admin/surveys/translations/pl?format=docx")).status_code == 400
    assert states(folder)[("pl", CONTEXT)] == CURRENT
    assert f'pl = "{NEW_POLISH}"' in (folder / "nps.toml").read_text(encoding="utf-8")
    event = await AuditEvent.get(action="surveys.translations_imported")
    assert event.actor == "alice@example.com" and event.details["changed"] == 1


async def test_an_upload_for_another_language_is_refused_with_a_sentence(site, folder):
    before = (folder / "nps.toml").read_bytes()
    async with sign_in(site, "alice@example.com") as alice:
        page = await alice.get("/admin/surveys")
        italian = await alice.get("/admin/surveys/translations/it")
        token = TOKEN.search(page.text).group(1)
        reply = await alice.post(
            "/admin/surveys/translations",
            data={"csrf_token": token, "lang": "pl"},
            files={"file": ("surveys-it.po", italian.content, "text/x-gettext-translation")},
        )
        assert reply.status_code == 400
        assert "This file is for it, not pl: import it as it, or choose its own file." in reply.text
        empty = await alice.post(
            "/admin/surveys/translations",
            data={"csrf_token": token},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert empty.status_code == 400 and "Choose a PO or XLIFF file to import." in empty.text
        text = await alice.post("/admin/surveys/translations", data={"csrf_token": token, "file": "not a file"})
        assert text.status_code == 400 and "Choose a PO or XLIFF file to import." in text.text
        forged = await alice.post(
            "/admin/surveys/translations", files={"file": ("x.po", italian.content, "text/plain")}
        )
        assert forged.status_code == 400
    assert (folder / "nps.toml").read_bytes() == before
    assert states(folder)[("it", CONTEXT)] == STALE


async def test_with_the_setting_on_stale_translations_are_sent_in_english(database_url, folder):
    app = await started(database_url, folder, PULSE_STALE_TRANSLATIONS="english")
    async with LifespanManager(app):
        await make_org()
        nps = app.state.catalog.get("nps")
        assert nps.question.text["pl"] == nps.question.text["en"] == ENGLISH
        assert nps.title["pl"] == "Wskaźnik rekomendacji (NPS)"
        async with sign_in(app, "alice@example.com") as alice:
            page = await alice.get("/admin/surveys")
        assert "Until they are updated, Pulse sends the English text instead." in page.text
        # the page still lists what the files say, not what is sent
        assert "Jak bardzo prawdopodobne jest, że poleci Pan/Pani firmę {company}" in page.text


async def test_the_api_reports_each_translations_state_and_serves_the_files(site):
    key = await make_key("analytics:read")
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site), base_url="http://testserver") as api:
        reply = await api.get("/api/v1/surveys/translations", headers=headers)
        assert reply.status_code == 200
        body = reply.json()
        assert body["stale_translations"] == "send"
        assert body["counts"]["stale"] == 3 and body["counts"]["unrecorded"] == 0
        stale = [t for t in body["translations"] if t["state"] == "stale"]
        assert {(t["lang"], t["survey"], t["key"]) for t in stale} == {
            (lang, "nps", "questions.recommend.text") for lang in ("pl", "it", "sl")
        }
        assert stale[0]["english"] == ENGLISH
        polish = (await api.get("/api/v1/surveys/translations?lang=pl", headers=headers)).json()
        assert polish["counts"]["stale"] == 1 and {t["lang"] for t in polish["translations"]} == {"pl"}
        bad = await api.get("/api/v1/surveys/translations?lang=en", headers=headers)
        assert bad.status_code == 400 and bad.json()["error"] == "lang must be one of pl, it, sl, not 'en'."
        assert (await api.get("/api/v1/surveys/translations")).status_code == 401
        po = await api.get("/api/v1/surveys/translations/sl", headers=headers)
        assert po.status_code == 200 and b'msgctxt "nps/questions.recommend.text"' in po.content
        xliff = await api.get("/api/v1/surveys/translations/it?format=xliff", headers=headers)
        assert b'target-language="it"' in xliff.content
        assert (await api.get("/api/v1/surveys/translations/de", headers=headers)).status_code == 400
        assert (await api.get("/api/v1/surveys/translations/pl?format=x", headers=headers)).status_code == 400
        other = await make_key("responses:read")
        denied = await api.get("/api/v1/surveys/translations", headers={"authorization": f"Bearer {other}"})
        assert denied.status_code == 403


async def test_the_demo_shows_one_stale_translation_and_leaves_the_real_surveys_alone(database_url, tmp_path):
    from pulse.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD
    from tests.test_cli import ROOT, pulse

    real = {p.name: p.read_bytes() for p in (ROOT / "surveys").rglob("*.toml")}
    copy = tmp_path / "demo-surveys"
    demo = pulse(
        "demo", "--contacts", "20", "--months", "2", "--quiet", "--surveys-copy", str(copy), database_url=database_url
    )
    assert demo.returncode == 0, demo.stderr
    assert f"Wrote a copy of the surveys to {copy} in which the English text of csat/scale.high changed" in demo.stdout
    assert {p.name: p.read_bytes() for p in (ROOT / "surveys").rglob("*.toml")} == real
    app = await started(database_url, copy)
    async with LifespanManager(app), sign_in(app, DEMO_ADMIN_EMAIL, DEMO_PASSWORD) as admin:
        page = (await admin.get("/admin/surveys")).text
    assert "The English text of 1 translation changed after it was translated." in page
    assert page.count('<strong class="stale">') == 1
    assert '<code lang="en">Completely satisfied</code>' in page and '<code lang="sl">Zelo dobro</code>' in page


CSAT_OLD = 'en = "How satisfied are you with your recent experience with {company}?"'
CSAT_NEW = 'en = "How satisfied are you with your last contact with {company}?"'


@pytest.mark.parametrize(
    ("setting", "question"),
    [
        ("send", "Jak ocenia Pan/Pani ostatnią obsługę w firmie Acme?"),
        ("english", "How satisfied are you with your last contact with Acme?"),
    ],
)
async def test_a_polish_customer_gets_the_stale_question_as_the_setting_says(database_url, tmp_path, setting, question):
    from tests.conftest import sent_invitation, survey_url

    folder = copy_surveys(tmp_path)
    path = folder / "csat.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(CSAT_OLD, CSAT_NEW), encoding="utf-8")
    app = await started(database_url, folder, PULSE_STALE_TRANSLATIONS=setting)
    async with LifespanManager(app):
        settings = app.state.settings
        invitation = await sent_invitation(settings, app.state.catalog)  # a contact whose language is pl
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            page = await http.get(survey_url(settings, invitation.id))
    assert page.status_code == 200
    assert '<html lang="pl"' in page.text
    assert question in page.text
    assert "Bardzo dobrze" in page.text  # the scale's labels were not changed: still Polish


async def test_a_damaged_record_is_named_on_the_page_in_the_api_and_by_the_check(site, folder):
    from tests.test_cli import pulse

    (folder / "translated-from" / "nps.toml").write_text("[pl\n", encoding="utf-8")
    async with sign_in(site, "alice@example.com") as alice:
        page = await alice.get("/admin/surveys")
        assert page.status_code == 200
        assert "The record of which English text each translation was made from cannot be read:" in page.text
        assert "surveys/translated-from/nps.toml: (file): not valid TOML" in page.text
        assert (await alice.get("/admin/surveys/translations/pl")).status_code == 409
    key = await make_key("analytics:read")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site), base_url="http://testserver") as api:
        reply = await api.get("/api/v1/surveys/translations", headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 409
    assert reply.json()["error"].startswith(
        "The record of translated texts cannot be read: surveys/translated-from/nps.toml: (file): not valid TOML"
    )
    check = pulse("surveys", "check", PULSE_SURVEYS_DIR=str(folder))
    assert check.returncode == 1
    assert "  surveys/translated-from/nps.toml: (file): not valid TOML" in check.stderr
