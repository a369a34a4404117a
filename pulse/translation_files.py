"""The translator round-trip: one language's survey texts out as PO or XLIFF 1.2, and back into surveys/*.toml.

Each text is named `survey/key` (msgctxt in PO, the trans-unit id in XLIFF), carries the English text as its
source and the translation as its target; stale ones are marked fuzzy (PO) or needs-review-translation (XLIFF).
An import edits the survey files with tomlkit, so their comments and layout stay, and records the English text
each translation was made from (the one in the file, so a text translated from an older English stays stale).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import tomlkit
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.pofile import PoFileError, read_po, write_po

from pulse import translations
from pulse.catalog import Catalog, CatalogError, load_catalog
from pulse.errors import BadRequest
from pulse.i18n import N_
from pulse.translations import STALE, TRANSLATED, Entry

FORMATS = ("po", "xliff")
XLIFF_NS = "urn:oasis:names:tc:xliff:document:1.2"
MAX_BYTES = 2_000_000  # a language of every survey is a few tens of kilobytes
NOT_A_LANGUAGE = N_("Choose one of the languages surveys are translated into: %(choices)s.")
NO_LANGUAGE = N_("The file does not say which language it is for (its Language header is empty).")
UNTRANSLATED_LANGUAGE = N_("This file is for %(found)s, a language surveys are not translated into (%(choices)s).")
OTHER_LANGUAGE = N_("This file is for %(found)s, not %(expected)s: import it as %(found)s, or choose its own file.")
UNKNOWN_KEYS = N_("The file has texts no survey has: %(keys)s. Export a fresh file and translate that one.")
UNREADABLE = N_("The file is not a PO or XLIFF 1.2 file Pulse can read: %(problem)s")
INVALID = N_("These translations would make a survey invalid: %(problem)s")


def _check_locale(locale: str) -> None:
    if locale not in TRANSLATED:
        raise BadRequest(NOT_A_LANGUAGE, choices=", ".join(TRANSLATED))


def _note(entry: Entry) -> list[str]:
    notes = []
    if entry.state == STALE:
        notes.append("The English text changed since this was translated: check the translation.")
    if "{company}" in entry.english:
        notes.append("Keep {company} as it is: it becomes the company's name.")
    return notes


def export_po(catalog: Catalog, directory: str | Path, locale: str) -> bytes:
    """Every survey text of one language as a PO file (stale translations fuzzy)."""
    _check_locale(locale)
    po = PoCatalog(
        locale=locale,
        header_comment=(
            f"# Pulse survey texts, English to {locale}: msgctxt is survey/key, msgid the English text.\n"
            "# Translate each msgstr and clear the fuzzy flag of the texts whose English changed."
        ),
        project="Pulse surveys",
        version="1",
        fuzzy=False,
        creation_date=datetime.now(UTC),
    )
    for entry in translations.report(catalog, directory):
        if entry.locale == locale:
            flags = ("fuzzy",) if entry.state == STALE else ()
            po.add(entry.english, entry.text, context=entry.context, flags=flags, auto_comments=_note(entry))
    buffer = io.BytesIO()
    write_po(buffer, po, width=0, omit_header=False)
    return buffer.getvalue()


def export_xliff(catalog: Catalog, directory: str | Path, locale: str) -> bytes:
    """Every survey text of one language as an XLIFF 1.2 file (stale translations need review)."""
    _check_locale(locale)
    ET.register_namespace("", XLIFF_NS)
    root = ET.Element(f"{{{XLIFF_NS}}}xliff", version="1.2")
    attributes = {"original": "surveys", "source-language": "en", "target-language": locale, "datatype": "plaintext"}
    body = ET.SubElement(ET.SubElement(root, f"{{{XLIFF_NS}}}file", attributes), f"{{{XLIFF_NS}}}body")
    for entry in translations.report(catalog, directory):
        if entry.locale != locale:
            continue
        unit = ET.SubElement(body, f"{{{XLIFF_NS}}}trans-unit", id=entry.context, resname=entry.context)
        ET.SubElement(unit, f"{{{XLIFF_NS}}}source").text = entry.english
        state = "needs-review-translation" if entry.state == STALE else "translated"
        ET.SubElement(unit, f"{{{XLIFF_NS}}}target", state=state).text = entry.text
        for note in _note(entry):
            ET.SubElement(unit, f"{{{XLIFF_NS}}}note").text = note
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def export(catalog: Catalog, directory: str | Path, locale: str, fmt: str = "po") -> bytes:
    return export_xliff(catalog, directory, locale) if fmt == "xliff" else export_po(catalog, directory, locale)


@dataclass(frozen=True)
class Unit:
    """One text read from a translator's file."""

    context: str
    english: str
    text: str
    fuzzy: bool


def _read_po(data: bytes) -> tuple[str | None, list[Unit]]:
    try:
        po = read_po(io.BytesIO(data), abort_invalid=True)
    except (PoFileError, ValueError, UnicodeDecodeError, LookupError) as error:  # LookupError: unknown charset
        raise BadRequest(UNREADABLE, problem=str(error) or type(error).__name__) from None
    units = [
        Unit(str(m.context or ""), str(m.id), str(m.string or ""), m.fuzzy)
        for m in po
        if m.id and not isinstance(m.id, tuple | list)
    ]
    if any(isinstance(m.id, tuple | list) for m in po):
        raise BadRequest(UNREADABLE, problem="survey texts have no plural forms")
    return (dict(po.mime_headers).get("Language") or "").strip() or None, units


def _read_xliff(data: bytes) -> tuple[str | None, list[Unit]]:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # no entity tricks in a file from outside
        raise BadRequest(UNREADABLE, problem="a DOCTYPE or ENTITY declaration is not allowed")
    try:
        # safe without defusedxml: no DOCTYPE means no entities to expand or fetch (checked just above)
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as error:
        raise BadRequest(UNREADABLE, problem=str(error)) from None
    ns = {"x": XLIFF_NS}
    files = root.findall("x:file", ns)
    if root.tag != f"{{{XLIFF_NS}}}xliff" or len(files) != 1:
        raise BadRequest(UNREADABLE, problem="expected one <file> in an XLIFF 1.2 document")
    units = []
    for unit in files[0].iterfind("x:body/x:trans-unit", ns):
        target = unit.find("x:target", ns)
        state = target.get("state", "translated") if target is not None else "new"
        units.append(
            Unit(
                unit.get("resname") or unit.get("id") or "",
                "".join(unit.find("x:source", ns).itertext()) if unit.find("x:source", ns) is not None else "",
                "".join(target.itertext()) if target is not None else "",
                state in {"needs-review-translation", "needs-translation", "needs-adaptation", "new"},
            )
        )
    return files[0].get("target-language") or None, units


def sniff(data: bytes) -> str:
    """po or xliff, from the file's first bytes."""
    return "xliff" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "po"


@dataclass
class ImportResult:
    """What an import did, by `survey/key`."""

    locale: str
    changed: list[str] = field(default_factory=list)  # a new translation written
    marked_current: list[str] = field(default_factory=list)  # now recorded as translated from today's English
    still_stale: list[str] = field(default_factory=list)  # fuzzy, or translated from an older English text
    untranslated: list[str] = field(default_factory=list)  # empty in the file: left as it was


def _table(document: tomlkit.TOMLDocument, key: str):
    """The tomlkit table of {locale: text} a key names (questions and bands by id and name)."""
    parts = key.split(".")
    if parts[0] in {"questions", "bands"}:
        name = "id" if parts[0] == "questions" else "name"
        item = next(i for i in document[parts[0]] if i.get(name) == parts[1])
        return item[parts[2]]
    table = document
    for part in parts:
        table = table[part]
    return table


def import_file(
    catalog: Catalog, directory: str | Path, data: bytes, *, locale: str | None = None, fmt: str | None = None
) -> ImportResult:
    """Write a translator's file into the survey files and the record; refuse it whole when anything is wrong.

    1. Read it; its language must be a translated one and the one asked for (when one is).
    2. Every text must name a survey text that exists (`survey/key`).
    3. Edit copies of the survey files and validate them all with the catalog's own rules.
    4. Only then replace the files and record the English each translation was made from.
    """
    if len(data) > MAX_BYTES:
        raise BadRequest(UNREADABLE, problem="the file is larger than 2 MB")
    found, units = (_read_xliff if (fmt or sniff(data)) == "xliff" else _read_po)(data)
    if not found:
        raise BadRequest(NO_LANGUAGE)
    found = found.replace("-", "_").split("_")[0].lower()
    if found not in TRANSLATED:
        raise BadRequest(UNTRANSLATED_LANGUAGE, found=found[:20], choices=", ".join(TRANSLATED))
    if locale and found != locale:
        raise BadRequest(OTHER_LANGUAGE, found=found, expected=locale)
    current = {e.context: e for e in translations.report(catalog, directory) if e.locale == found}
    unknown = sorted({u.context or "(no context)" for u in units} - current.keys())
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise BadRequest(UNKNOWN_KEYS, keys=shown)

    result = ImportResult(found)
    directory = Path(directory)
    documents: dict[str, tomlkit.TOMLDocument] = {}
    recorded: dict[str, dict[str, dict[str, str]]] = {}
    for unit in units:
        entry = current[unit.context]
        if not unit.text.strip():
            result.untranslated.append(unit.context)
            continue
        survey = catalog.get(entry.survey_id)
        assert survey is not None
        if unit.text != entry.text:
            if survey.id not in documents:
                path = directory / Path(survey.source).name
                documents[survey.id] = tomlkit.parse(path.read_text(encoding="utf-8"))
            _table(documents[survey.id], entry.key)[found] = unit.text
            result.changed.append(unit.context)
        if unit.fuzzy or unit.english != entry.english:
            result.still_stale.append(unit.context)
            continue
        sources = recorded.setdefault(survey.id, translations.read_sources(directory, survey.id))
        sources.setdefault(found, {})[entry.key] = translations.source_hash(unit.english)
        if entry.state != translations.CURRENT:
            result.marked_current.append(unit.context)

    texts = {sid: tomlkit.dumps(doc) for sid, doc in documents.items()}
    _validate(catalog, directory, texts)
    for survey_id, text in texts.items():
        path = directory / Path(catalog.get(survey_id).source).name  # type: ignore[union-attr]
        temporary = path.with_suffix(".toml.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    if recorded:
        edited = load_catalog(directory)
        for survey_id, sources in recorded.items():
            survey = edited.get(survey_id)
            assert survey is not None
            translations.write_sources(directory, survey_id, translations.in_file_order(survey, sources))
    return result


def _validate(catalog: Catalog, directory: Path, texts: dict[str, str]) -> None:
    """Load the survey folder with the edited files in a scratch copy: the catalog's rules judge them."""
    if not texts:
        return
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / directory.name
        copy.mkdir()
        for path in directory.glob("*.toml"):
            shutil.copyfile(path, copy / path.name)
        for survey_id, text in texts.items():
            (copy / Path(catalog.get(survey_id).source).name).write_text(text, encoding="utf-8")  # type: ignore[union-attr]
        try:
            load_catalog(copy)
        except CatalogError as error:
            raise BadRequest(INVALID, problem="; ".join(error.messages)) from None
