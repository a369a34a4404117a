"""The translator round-trip: survey texts out as PO / XLIFF 1.2 and back into the TOML files."""

from __future__ import annotations

import io

import pytest
from babel.messages.pofile import read_po, write_po

from pulse import translation_files, translations
from pulse.catalog import load_catalog
from pulse.errors import BadRequest
from pulse.translations import CURRENT, STALE
from tests.test_cli import pulse
from tests.test_stale_translations import NEW_QUESTION, POLISH, change_english, copy_surveys, states

NEW_POLISH = (
    "Jak bardzo prawdopodobne jest, że poleci Pan/Pani firmę {company} znajomemu, współpracownikowi lub krewnemu?"
)
CONTEXT = "nps/questions.recommend.text"


def exported(folder, locale="pl"):
    data = translation_files.export_po(load_catalog(folder), folder, locale)
    return read_po(io.BytesIO(data))


def as_bytes(po) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, po, width=0)
    return buffer.getvalue()


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.toml")}


def test_export_names_each_text_and_marks_the_stale_one_fuzzy(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    po = exported(folder)
    assert str(po.locale) == "pl"
    message = po.get(NEW_QUESTION.split('"')[1], context=CONTEXT)
    assert message.string == POLISH and message.fuzzy
    assert "Keep {company} as it is: it becomes the company's name." in message.auto_comments
    title = po.get("Net Promoter Score (NPS)", context="nps/title")
    assert title.string == "Wskaźnik rekomendacji (NPS)" and not title.fuzzy
    assert len([m for m in po if m.id]) == len(
        [e for e in translations.report(load_catalog(folder), folder) if e.locale == "pl"]
    )


def test_importing_the_updated_translation_edits_only_its_line_and_makes_it_current(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    before = (folder / "nps.toml").read_text(encoding="utf-8")
    po = exported(folder)
    message = po.get(NEW_QUESTION.split('"')[1], context=CONTEXT)
    message.string = NEW_POLISH
    message.flags.discard("fuzzy")
    result = translation_files.import_file(load_catalog(folder), folder, as_bytes(po), locale="pl")
    assert result.changed == [CONTEXT] and result.marked_current == [CONTEXT] and result.still_stale == []
    after = (folder / "nps.toml").read_text(encoding="utf-8")
    # comments, order and every other line exactly as they were
    assert after == before.replace(f'pl = "{POLISH}"', f'pl = "{NEW_POLISH}"')
    assert after.startswith("# Net Promoter Score: measures how likely customers are to recommend the company.\n")
    found = states(folder)
    assert found[("pl", CONTEXT)] == CURRENT
    assert found[("it", CONTEXT)] == STALE  # other languages wait for their own translators
    assert load_catalog(folder).get("nps").question.text["pl"] == NEW_POLISH


def test_an_entry_still_fuzzy_is_written_but_stays_stale(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    po = exported(folder)
    po.get(NEW_QUESTION.split('"')[1], context=CONTEXT).string = NEW_POLISH
    result = translation_files.import_file(load_catalog(folder), folder, as_bytes(po))
    assert result.changed == [CONTEXT] and result.still_stale == [CONTEXT]
    assert states(folder)[("pl", CONTEXT)] == STALE


def test_a_translation_of_an_older_english_text_stays_stale(tmp_path):
    folder = copy_surveys(tmp_path)
    po = exported(folder)  # exported before the English changed
    change_english(folder)
    message = po.get("How likely are you to recommend {company} to a friend or colleague?", context=CONTEXT)
    message.string = NEW_POLISH
    result = translation_files.import_file(load_catalog(folder), folder, as_bytes(po))
    assert result.still_stale == [CONTEXT]
    assert states(folder)[("pl", CONTEXT)] == STALE


def test_a_file_for_another_language_is_refused_and_nothing_changes(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    before = snapshot(folder)
    data = translation_files.export_po(load_catalog(folder), folder, "it")
    with pytest.raises(BadRequest) as refused:
        translation_files.import_file(load_catalog(folder), folder, data, locale="pl")
    assert refused.value.message == "This file is for it, not pl: import it as it, or choose its own file."
    assert snapshot(folder) == before


def test_unknown_keys_are_refused_with_their_names(tmp_path):
    folder = copy_surveys(tmp_path)
    before = snapshot(folder)
    po = exported(folder)
    po.add("Hello", "Dzień dobry", context="nps/questions.nope.text")
    po.add("Bye", "Do widzenia", context="gone/title")
    with pytest.raises(BadRequest) as refused:
        translation_files.import_file(load_catalog(folder), folder, as_bytes(po))
    assert refused.value.message == (
        "The file has texts no survey has: gone/title, nps/questions.nope.text. "
        "Export a fresh file and translate that one."
    )
    assert snapshot(folder) == before


def test_a_file_without_a_language_or_in_english_or_not_a_po_file_is_refused(tmp_path):
    folder = copy_surveys(tmp_path)
    catalog = load_catalog(folder)
    data = translation_files.export_po(catalog, folder, "pl").replace(b'"Language: pl\\n"\n', b"")
    with pytest.raises(BadRequest, match="does not say which language"):
        translation_files.import_file(catalog, folder, data)
    english = translation_files.export_po(catalog, folder, "pl").replace(b'"Language: pl\\n"', b'"Language: en\\n"')
    with pytest.raises(
        BadRequest, match=r"This file is for en, a language surveys are not translated into \(pl, it, sl\)\."
    ):
        translation_files.import_file(catalog, folder, english)
    unknown = english.replace(b'"Language: en\\n"', b'"Language: xx\\n"')
    with pytest.raises(BadRequest, match=r"This file is for xx, a language"):
        translation_files.import_file(catalog, folder, unknown)
    charset = translation_files.export_po(catalog, folder, "pl").replace(b"charset=utf-8", b"charset=nonsense")
    with pytest.raises(BadRequest, match=r"not a PO or XLIFF 1\.2 file Pulse can read: unknown encoding: nonsense"):
        translation_files.import_file(catalog, folder, charset)
    with pytest.raises(BadRequest, match=r"not a PO or XLIFF 1\.2 file"):
        translation_files.import_file(catalog, folder, b'msgid "unterminated\n')


def test_a_translation_that_breaks_a_placeholder_is_refused(tmp_path):
    folder = copy_surveys(tmp_path)
    before = snapshot(folder)
    po = exported(folder)
    po.get(
        "How likely are you to recommend {company} to a friend or colleague?", context=CONTEXT
    ).string = "Czy poleci Pan/Pani {firma}?"
    with pytest.raises(BadRequest) as refused:
        translation_files.import_file(load_catalog(folder), folder, as_bytes(po))
    assert "unknown placeholder {firma} (allowed: {company})" in refused.value.message
    assert snapshot(folder) == before


def test_xliff_round_trip_and_no_doctype(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    data = translation_files.export_xliff(load_catalog(folder), folder, "sl").decode()
    assert '<file original="surveys" source-language="en" target-language="sl" datatype="plaintext">' in data
    assert 'state="needs-review-translation">Kako verjetno je' in data
    new = "Kako verjetno je, da bi podjetje {company} priporočili prijatelju, sodelavcu ali sorodniku?"
    old = "Kako verjetno je, da bi podjetje {company} priporočili prijatelju ali sodelavcu?"
    data = data.replace(f'state="needs-review-translation">{old}', f'state="translated">{new}')
    result = translation_files.import_file(load_catalog(folder), folder, data.encode(), locale="sl")
    assert result.changed == [CONTEXT] and result.marked_current == [CONTEXT]
    assert states(folder)[("sl", CONTEXT)] == CURRENT
    assert f'sl = "{new}"' in (folder / "nps.toml").read_text(encoding="utf-8")
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xliff/>'
    with pytest.raises(BadRequest, match="DOCTYPE or ENTITY declaration is not allowed"):
        translation_files.import_file(load_catalog(folder), folder, hostile)


def test_the_commands_export_and_import_a_po_file(tmp_path):
    folder = copy_surveys(tmp_path)
    change_english(folder)
    out = tmp_path / "pl.po"
    result = pulse("surveys", "export-translations", "--lang", "pl", "--out", str(out), PULSE_SURVEYS_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert "Wrote 63 pl text(s) to" in result.stdout
    po = read_po(io.BytesIO(out.read_bytes()))
    message = po.get(NEW_QUESTION.split('"')[1], context=CONTEXT)
    message.string = NEW_POLISH
    message.flags.discard("fuzzy")
    out.write_bytes(as_bytes(po))
    wrong = pulse("surveys", "import-translations", str(out), "--lang", "it", PULSE_SURVEYS_DIR=str(folder))
    assert wrong.returncode == 1
    assert "Error: This file is for pl, not it: import it as pl, or choose its own file." in wrong.stderr
    done = pulse("surveys", "import-translations", str(out), PULSE_SURVEYS_DIR=str(folder))
    assert done.returncode == 0, done.stderr
    assert "Imported pl: 1 text(s) changed, 1 marked current, 0 still stale." in done.stdout
    check = pulse("surveys", "check", PULSE_SURVEYS_DIR=str(folder))
    assert f"warn  pl  {CONTEXT}" not in check.stdout and f"warn  it  {CONTEXT}" in check.stdout
    xliff = tmp_path / "it.xlf"
    assert (
        pulse(
            "surveys", "export-translations", "--lang", "it", "--out", str(xliff), PULSE_SURVEYS_DIR=str(folder)
        ).returncode
        == 0
    )
    assert xliff.read_bytes().startswith(b"<?xml")
