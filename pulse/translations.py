"""Stale survey translations: which English text each translation was made from, and which are out of date.

Beside the survey files, `surveys/translated-from/<survey id>.toml` keeps, for each language and text key, the
first 16 hex digits of the SHA-256 of the English text the translation was made from. When the English text
changes, its hash no longer matches and the translation is stale until a translator updates it and it is marked
current (`pulse surveys mark-current`, or an import of the translator's file).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pulse.catalog import Catalog, CatalogError, Question, Survey, load_catalog
from pulse.settings import LOCALES, Settings

log = logging.getLogger("pulse")
SOURCES_DIR = "translated-from"
TRANSLATED = tuple(locale for locale in LOCALES if locale != "en")
CURRENT, STALE, UNRECORDED = "current", "stale", "unrecorded"
HEADER = (
    "# The English text each translation of this survey was made from: the first 16 hex digits of its SHA-256,\n"
    "# per language and text. When the English text changes the translation is stale (`pulse surveys check`).\n"
    "# Written by `pulse surveys mark-current` and `pulse surveys import-translations`: do not edit by hand.\n"
)


def source_hash(english: str) -> str:
    """The fingerprint of an English text (16 hex digits of its SHA-256)."""
    return hashlib.sha256(english.encode("utf-8")).hexdigest()[:16]


def texts(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, str]]]:
    """Every translatable text of a survey definition as (key, {locale: text}), in file order.

    Keys name questions and bands by their id and name, not their position, so reordering keeps the record.
    """
    for name in ("title", "subject", "reminder_subject"):
        if isinstance(definition.get(name), Mapping):
            yield name, definition[name]
    scale = definition.get("scale")
    if isinstance(scale, Mapping):
        for end in ("low", "high"):
            if isinstance(scale.get(end), Mapping):
                yield f"scale.{end}", scale[end]
    for question in definition.get("questions") or ():
        if isinstance(question, Mapping):
            for part in ("text", "low", "high"):
                if isinstance(question.get(part), Mapping):
                    yield f"questions.{question.get('id')}.{part}", question[part]
    for band in definition.get("bands") or ():
        if isinstance(band, Mapping) and isinstance(band.get("why"), Mapping):
            yield f"bands.{band.get('name')}.why", band["why"]


def sources_path(directory: str | Path, survey_id: str) -> Path:
    return Path(directory) / SOURCES_DIR / f"{survey_id}.toml"


def read_sources(directory: str | Path, survey_id: str) -> dict[str, dict[str, str]]:
    """{locale: {key: hash}} recorded for a survey; empty when nothing is recorded yet (CatalogError if unreadable)."""
    path = sources_path(directory, survey_id)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        label = f"{Path(directory).name}/{SOURCES_DIR}/{path.name}"
        raise CatalogError([f"{label}: (file): not valid TOML: {error}"]) from None
    return {
        locale: {str(k): str(v) for k, v in table.items()}
        for locale, table in data.items()
        if locale in TRANSLATED and isinstance(table, dict)
    }


def write_sources(directory: str | Path, survey_id: str, sources: Mapping[str, Mapping[str, str]]) -> None:
    """Write a survey's record (a generated file: languages and keys in a stable order)."""
    path = sources_path(directory, survey_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for locale in TRANSLATED:
        table = sources.get(locale) or {}
        if not table:
            continue
        lines.append(f"\n[{locale}]\n")
        lines.extend(f'"{key}" = "{value}"\n' for key, value in table.items())
    temporary = path.with_suffix(".toml.tmp")
    temporary.write_text("".join(lines), encoding="utf-8")
    temporary.replace(path)


@dataclass(frozen=True)
class Entry:
    """One translated text and whether it still matches the English text it was made from."""

    survey_id: str
    key: str
    locale: str
    english: str
    text: str
    state: str  # current, stale or unrecorded

    @property
    def context(self) -> str:
        """The entry's name in translators' files: `survey/key`."""
        return f"{self.survey_id}/{self.key}"


def entries(survey: Survey, sources: Mapping[str, Mapping[str, str]]) -> list[Entry]:
    """Every translation of one survey with its state, in file order, language by language."""
    found = []
    for locale in TRANSLATED:
        recorded = sources.get(locale, {})
        for key, table in texts(survey.definition):
            english, text = table.get("en"), table.get(locale)
            if not isinstance(english, str) or not isinstance(text, str):
                continue
            known = recorded.get(key)
            state = UNRECORDED if known is None else CURRENT if known == source_hash(english) else STALE
            found.append(Entry(survey.id, key, locale, english, text, state))
    return found


def report(catalog: Catalog, directory: str | Path) -> list[Entry]:
    """Every translation of every survey with its state."""
    return [entry for survey in catalog for entry in entries(survey, read_sources(directory, survey.id))]


def mark_current(
    catalog: Catalog,
    directory: str | Path,
    *,
    locales: tuple[str, ...] = TRANSLATED,
    survey_ids: tuple[str, ...] = (),
    keys: tuple[str, ...] = (),
) -> list[Entry]:
    """Record today's English text as the source of the chosen translations; return those that changed state."""
    changed = []
    for survey in catalog:
        if survey_ids and survey.id not in survey_ids:
            continue
        sources = read_sources(directory, survey.id)
        before = [e for e in entries(survey, sources) if e.locale in locales and (not keys or e.key in keys)]
        for entry in before:
            sources.setdefault(entry.locale, {})[entry.key] = source_hash(entry.english)
        if before:
            write_sources(directory, survey.id, in_file_order(survey, sources))
        changed.extend(e for e in before if e.state != CURRENT)
    return changed


def in_file_order(survey: Survey, sources: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The record in file order, without keys the survey no longer has."""
    order = [key for key, _ in texts(survey.definition)]
    return {locale: {k: sources[locale][k] for k in order if k in sources.get(locale, {})} for locale in TRANSLATED}


def _english_where(texts_: Mapping[str, str] | None, stale: set[str]) -> Mapping[str, str] | None:
    if texts_ is None or not stale:
        return texts_
    return MappingProxyType({locale: texts_["en"] if locale in stale else text for locale, text in texts_.items()})


def in_english_where_stale(catalog: Catalog, directory: str | Path) -> Catalog:
    """The catalog with every stale translation replaced by its English text (the rest untouched)."""
    surveys = {}
    for survey in catalog:
        stale: dict[str, set[str]] = {}
        for entry in entries(survey, read_sources(directory, survey.id)):
            if entry.state == STALE:
                stale.setdefault(entry.key, set()).add(entry.locale)
        if not stale:
            surveys[survey.id] = survey
            continue
        questions = tuple(
            Question(
                q.id,
                _english_where(q.text, stale.get(f"questions.{q.id}.text", set())),
                _english_where(q.low, stale.get(f"questions.{q.id}.low", set())),
                _english_where(q.high, stale.get(f"questions.{q.id}.high", set())),
            )
            for q in survey.questions
        )
        bands = tuple(
            dataclasses.replace(b, why=_english_where(b.why, stale.get(f"bands.{b.name}.why", set())))
            for b in survey.bands
        )
        surveys[survey.id] = dataclasses.replace(
            survey,
            title=_english_where(survey.title, stale.get("title", set())),
            subject=_english_where(survey.subject, stale.get("subject", set())),
            reminder_subject=_english_where(survey.reminder_subject, stale.get("reminder_subject", set())),
            low_label=_english_where(survey.low_label, stale.get("scale.low", set())),
            high_label=_english_where(survey.high_label, stale.get("scale.high", set())),
            questions=questions,
            bands=bands,
        )
    return Catalog(MappingProxyType(surveys))


def for_sending(catalog: Catalog, settings: Settings) -> Catalog:
    """The catalog the app and the workers send from: stale translations in English when the setting asks so.

    Logs one warning at start-up when a translation is stale, so it is seen even by those who never run the check.
    """
    stale = sum(1 for e in report(catalog, settings.surveys_dir) if e.state == STALE)
    if stale:
        sent = "the English text is sent instead" if settings.stale_translations == "english" else "sent as they are"
        log.warning(
            "%d survey translation(s) are stale, %s (PULSE_STALE_TRANSLATIONS=%s): `pulse surveys check` lists them",
            stale,
            sent,
            settings.stale_translations,
        )
    if stale and settings.stale_translations == "english":
        return in_english_where_stale(catalog, settings.surveys_dir)
    return catalog


DEMO_KEY = ("csat", "scale.high", "Completely satisfied")  # survey, key, the English text the demo gives it


def write_demo_copy(source: str | Path, target: str | Path) -> Entry:
    """Copy the survey folder (and its record) to `target` with one English text changed after its translations:
    pl and it are marked current again (as if their translators had already answered), so one sl text is stale.
    The demo of stale translations, which never touches the real surveys."""
    import shutil

    import tomlkit

    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        raise ValueError("the demo copy must go to another folder than the surveys themselves")
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.toml"):
        shutil.copyfile(path, target / path.name)
    if (source / SOURCES_DIR).is_dir():
        shutil.copytree(source / SOURCES_DIR, target / SOURCES_DIR, dirs_exist_ok=True)
    survey_id, key, english = DEMO_KEY
    catalog = load_catalog(target)
    path = target / Path(catalog.surveys[survey_id].source).name
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    table: Any = document
    for part in key.split("."):
        table = table[part]
    table["en"] = english
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    catalog = load_catalog(target)
    mark_current(catalog, target, locales=("pl", "it"), survey_ids=(survey_id,), keys=(key,))
    return next(e for e in report(catalog, target) if (e.survey_id, e.key, e.state) == (survey_id, key, STALE))
