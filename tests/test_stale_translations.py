"""Stale survey translations: the record of each translation's English source, the check, mark-current, fallback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomlkit

from pulse import translations
from pulse.catalog import CatalogError, load_catalog, localized
from pulse.settings import SettingsError
from pulse.translations import CURRENT, STALE, UNRECORDED
from tests.conftest import make_settings
from tests.test_cli import pulse

ROOT = Path(__file__).resolve().parent.parent
OLD_QUESTION = 'en = "How likely are you to recommend {company} to a friend or colleague?"'
NEW_QUESTION = 'en = "How likely are you to recommend {company} to a friend, a colleague or a relative?"'
POLISH = "Jak bardzo prawdopodobne jest, że poleci Pan/Pani firmę {company} znajomemu lub współpracownikowi?"


def copy_surveys(tmp_path: Path) -> Path:
    """The real surveys and their record, in a folder of the test's own."""
    folder = tmp_path / "surveys"
    folder.mkdir()
    for path in (ROOT / "surveys").glob("*.toml"):
        shutil.copyfile(path, folder / path.name)
    shutil.copytree(ROOT / "surveys" / translations.SOURCES_DIR, folder / translations.SOURCES_DIR)
    return folder


def change_english(folder: Path) -> None:
    path = folder / "nps.toml"
    text = path.read_text(encoding="utf-8")
    assert OLD_QUESTION in text
    path.write_text(text.replace(OLD_QUESTION, NEW_QUESTION), encoding="utf-8")


def states(folder: Path) -> dict[tuple[str, str], str]:
    return {(e.locale, e.context): e.state for e in translations.report(load_catalog(folder), folder)}


def test_every_shipped_translation_is_recorded_as_current():
    found = translations.report(load_catalog(ROOT / "surveys"), ROOT / "surveys")
    assert found and {e.state for e in found} == {CURRENT}
    assert {e.locale for e in found} == {"pl", "it", "sl"}
    assert "nps/questions.recommend.text" in {e.context for e in found}
    assert "enps/bands.detractor.why" in {e.context for e in found}


def test_changing_the_english_text_makes_its_translations_stale_in_every_language(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    found = states(folder)
    stale = sorted(key for key, state in found.items() if state != CURRENT)
    assert stale == [(locale, "nps/questions.recommend.text") for locale in ("it", "pl", "sl")]
    assert all(found[(locale, "nps/questions.recommend.text")] == STALE for locale in ("it", "pl", "sl"))


def test_surveys_check_warns_per_language_and_key_and_strict_fails(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    result = pulse("surveys", "check", PULSE_SURVEYS_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    for locale in ("pl", "it", "sl"):
        assert (
            f"warn  {locale}  nps/questions.recommend.text: stale: the English text changed since it was translated"
            in result.stdout
        )
    assert "3 stale translation(s) (sent as they are; PULSE_STALE_TRANSLATIONS=send)" in result.stdout
    strict = pulse("surveys", "check", "--strict", PULSE_SURVEYS_DIR=str(folder))
    assert strict.returncode == 1
    clean = pulse("surveys", "check", "--strict", PULSE_SURVEYS_DIR=str(ROOT / "surveys"))
    assert clean.returncode == 0 and "warn" not in clean.stdout


def test_mark_current_records_the_new_english_for_one_language_only(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    result = pulse("surveys", "mark-current", "--lang", "pl", PULSE_SURVEYS_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert "current  pl  nps/questions.recommend.text (was stale)" in result.stdout
    assert "Marked 1 translation(s) as current." in result.stdout
    found = states(folder)
    assert found[("pl", "nps/questions.recommend.text")] == CURRENT
    assert found[("it", "nps/questions.recommend.text")] == STALE
    unknown = pulse("surveys", "mark-current", "--survey", "nope", PULSE_SURVEYS_DIR=str(folder))
    assert unknown.returncode == 2 and "Error: no survey nope" in unknown.stderr


def test_a_survey_without_a_record_is_reported_unrecorded_until_marked(tmp_path):
    folder = copy_surveys(tmp_path)
    (folder / translations.SOURCES_DIR / "ces.toml").unlink()
    found = states(folder)
    assert found[("sl", "ces/title")] == UNRECORDED
    result = pulse("surveys", "check", "--strict", PULSE_SURVEYS_DIR=str(folder))
    assert result.returncode == 0  # unknown is not stale: nothing falls back, nothing fails
    assert "warn  sl  ces/title: unrecorded: no record of the English text it was translated from" in result.stdout
    translations.mark_current(load_catalog(folder), folder, survey_ids=("ces",))
    assert set(states(folder).values()) == {CURRENT}


def test_the_record_names_questions_by_id_so_reordering_them_keeps_it(tmp_path):
    folder = copy_surveys(tmp_path)
    path = folder / "enps.toml"
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    reordered = tomlkit.aot()
    for question in reversed(list(document["questions"])):
        reordered.append(question)
    document["questions"] = reordered
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    catalog = load_catalog(folder)
    assert catalog.get("enps").questions[-1].id == "recommend_workplace"
    assert set(states(folder).values()) == {CURRENT}


def test_stale_translations_are_sent_as_they_are_by_default_and_in_english_when_set(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    catalog = load_catalog(folder)
    default = make_settings("sqlite://x.sqlite3", PULSE_SURVEYS_DIR=str(folder))
    assert default.stale_translations == "send"
    kept = translations.for_sending(catalog, default)
    assert localized(kept.get("nps").question.text, "pl", "Acme") == POLISH.replace("{company}", "Acme")

    english = default.replace(stale_translations="english")
    sent = translations.for_sending(catalog, english)
    nps = sent.get("nps")
    question = "How likely are you to recommend Acme to a friend, a colleague or a relative?"
    assert localized(nps.question.text, "pl", "Acme") == question
    assert localized(nps.question.text, "en", "Acme") == question
    # only the stale text: the rest of the survey stays in Polish
    assert localized(nps.title, "pl", "Acme") == "Wskaźnik rekomendacji (NPS)"
    assert nps.checksum == catalog.get("nps").checksum and nps.definition == catalog.get("nps").definition
    assert sent.get("csat") is catalog.get("csat")


def test_a_bad_stale_translations_setting_stops_start_up_with_a_sentence():
    with pytest.raises(SettingsError, match="PULSE_STALE_TRANSLATIONS must be send or english, not 'maybe'"):
        make_settings("sqlite://x.sqlite3", PULSE_STALE_TRANSLATIONS="maybe")


def test_start_up_warns_once_about_stale_translations_and_refuses_a_damaged_record(tmp_path, caplog):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    settings = make_settings("sqlite://x.sqlite3", PULSE_SURVEYS_DIR=str(folder))
    with caplog.at_level("WARNING", logger="pulse"):
        translations.for_sending(load_catalog(folder), settings)
    assert [r.getMessage() for r in caplog.records] == [
        "3 survey translation(s) are stale, sent as they are (PULSE_STALE_TRANSLATIONS=send): "
        "`pulse surveys check` lists them"
    ]
    (folder / translations.SOURCES_DIR / "nps.toml").write_text('[pl]\n"title" = \n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"surveys/translated-from/nps\.toml: \(file\): not valid TOML"):
        translations.for_sending(load_catalog(folder), settings)
