"""What the "why?" comments are about: themes found by lemma and keyword rules kept as data, per language.

The rules live in `<surveys>/insights/themes.toml` (see its header). A comment is split into words, each word is
lemmatized with simplemma (offline, its dictionaries ship with the package; en, pl, it and sl), and a theme matches
when one of its lemmas, word forms, prefixes or phrases does. A comment may carry several themes or none. Whether
a comment is praise or complaint is never guessed from its words: the answer's score band says it.

Lemmatizing is the slow part (the Polish dictionary takes seconds to load, once per process), so the lemma of
each word and the themes of each distinct comment are kept in bounded caches.
"""

from __future__ import annotations

import functools
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import simplemma

from pulse.catalog import CatalogError

LANGUAGES = ("en", "pl", "it", "sl")
FILE = Path("insights") / "themes.toml"  # inside the surveys folder, out of reach of the survey catalog's glob
RULE_KINDS = ("lemmas", "forms", "prefixes", "phrases")
THEME_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
WORD = re.compile(r"[^\W_]+")  # letters and digits; apostrophes and hyphens split words ("l'app" -> "l", "app")
CACHE_SIZE = 50_000  # distinct comments whose themes are remembered
log = logging.getLogger("pulse.themes")


@functools.lru_cache(maxsize=200_000)
def lemma(word: str, language: str) -> str:
    """The dictionary form of one lower-case word (the word itself when simplemma does not know it)."""
    return simplemma.lemmatize(word, lang=language).lower()


def words(text: str) -> list[str]:
    return WORD.findall(text.lower().replace("’", "'"))


def language_of(locale: str | None) -> str:
    """The rules' language for an answer's locale ("pl-PL" -> "pl"); English for any other."""
    code = (locale or "").split("-")[0].split("_")[0].lower()
    return code if code in LANGUAGES else "en"


@dataclass(frozen=True)
class Rules:
    """One theme's rules in one language."""

    lemmas: frozenset[str]
    forms: frozenset[str]
    prefixes: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]

    def matches(self, tokens: list[str], lemmas: list[str], seen: set[str], language: str) -> bool:
        """Whether a comment's words (`seen`: its words and their lemmas together) match any of these rules."""
        if not self.lemmas.isdisjoint(seen) or not self.forms.isdisjoint(tokens):
            return True
        if self.prefixes and any(token.startswith(self.prefixes) for token in tokens):
            return True
        for phrase in self.phrases:
            wanted = _phrase_lemmas(phrase, language)
            if not all(word in seen or base in seen for word, base in wanted):
                continue  # some word of the phrase is nowhere in the comment
            for start in range(len(tokens) - len(phrase) + 1):
                if all(tokens[start + i] == word or lemmas[start + i] == base for i, (word, base) in enumerate(wanted)):
                    return True
        return False


@functools.lru_cache(maxsize=4096)
def _phrase_lemmas(phrase: tuple[str, ...], language: str) -> tuple[tuple[str, str], ...]:
    return tuple((word, lemma(word, language)) for word in phrase)


@dataclass(frozen=True)
class Theme:
    id: str
    labels: Mapping[str, str]
    rules: Mapping[str, Rules]

    def label(self, locale: str) -> str:
        return self.labels.get(language_of(locale), self.labels["en"])


@dataclass
class Themes:
    """The themes of one file, in its order, with a cache of what each distinct comment is about."""

    themes: tuple[Theme, ...]
    source: str = ""
    _cache: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, repr=False)

    def __iter__(self):
        return iter(self.themes)

    def __len__(self) -> int:
        return len(self.themes)

    def get(self, theme_id: str) -> Theme | None:
        return next((theme for theme in self.themes if theme.id == theme_id), None)

    def classify(self, text: str, locale: str | None) -> frozenset[str]:
        """The ids of the themes a comment is about (none for an empty or off-topic comment)."""
        language = language_of(locale)
        key = (language, text)
        found = self._cache.get(key)
        if found is None:
            tokens = words(text)
            lemmas = [lemma(token, language) for token in tokens]
            seen = set(tokens) | set(lemmas)
            found = frozenset(t.id for t in self.themes if t.rules[language].matches(tokens, lemmas, seen, language))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()  # simple and bounded: a page reads far fewer distinct comments than this
            self._cache[key] = found
        return found


def classify(text: str, locale: str | None, themes: Themes) -> set[str]:
    """The ids of the themes of `text`, written in `locale`."""
    return set(themes.classify(text, locale))


# --- the file ---------------------------------------------------------------------------------------------------


def _word_list(value: Any, where: str, kind: str, fail) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(where, "must be a list of texts")
        return ()
    result = []
    for i, raw in enumerate(value):
        text = raw.strip().lower()
        if not text:
            fail(f"{where}[{i}]", "must not be empty")
        elif kind != "phrases" and " " in text:
            fail(f"{where}[{i}]", f"{raw!r} has several words: put it under phrases")
        elif kind == "prefixes" and len(text) < 3:
            fail(f"{where}[{i}]", f"{raw!r} is too short for a prefix (3 letters at least)")
        elif kind == "forms" and words(text) != [text]:
            fail(f"{where}[{i}]", f"{raw!r} is not one word as comments are split (letters and digits only)")
        else:
            result.append(text)
    return tuple(result)


def _rules(table: Any, where: str, fail) -> Rules | None:
    if not isinstance(table, dict):
        fail(where, "must be a table with lemmas, forms, prefixes and/or phrases")
        return None
    for key in table:
        if key not in RULE_KINDS:
            fail(f"{where}.{key}", f"unknown key (expected {', '.join(RULE_KINDS)})")
    lists = {kind: _word_list(table.get(kind, []), f"{where}.{kind}", kind, fail) for kind in RULE_KINDS}
    if not any(lists.values()):
        fail(where, "has no rules: list at least one lemma, form, prefix or phrase")
    return Rules(
        lemmas=frozenset(lists["lemmas"]),
        forms=frozenset(lists["forms"]),
        prefixes=lists["prefixes"],
        phrases=tuple(tuple(words(phrase)) for phrase in lists["phrases"] if words(phrase)),
    )


def parse(raw: bytes, source: str) -> Themes:
    """The themes of a file's bytes; raise CatalogError with one `source: key: problem` line per fault."""
    messages: list[str] = []

    def fail(key: str, problem: str) -> None:
        messages.append(f"{source}: {key}: {problem}")

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CatalogError([f"{source}: (file): not valid TOML: {error}"]) from None
    for key in data:
        if key != "themes":
            fail(key, "unknown key (the file holds [[themes]] tables only)")
    listed = data.get("themes")
    if not isinstance(listed, list) or not listed:
        fail("themes", "must list at least one theme as [[themes]]")
        raise CatalogError(messages)
    themes: list[Theme] = []
    seen: set[str] = set()
    for index, item in enumerate(listed):
        where = f"themes[{index}]"
        if not isinstance(item, dict):
            fail(where, "must be a table")
            continue
        for key in item:
            if key not in ("id", "label", "rules"):
                fail(f"{where}.{key}", "unknown key (expected id, label, rules)")
        theme_id = item.get("id")
        if not isinstance(theme_id, str) or not THEME_ID.fullmatch(theme_id):
            fail(f"{where}.id", "must be lowercase letters, digits and underscores, starting with a letter")
            theme_id = f"#{index}"
        elif theme_id in seen:
            fail(f"{where}.id", f"{theme_id!r} is already used by another theme")
        seen.add(theme_id)
        where = f"themes[{index}] ({theme_id})"
        labels = item.get("label")
        if not isinstance(labels, dict):
            fail(f"{where}.label", f"must be a table with a label in {', '.join(LANGUAGES)}")
            labels = {}
        for language in LANGUAGES:
            text = labels.get(language)
            if not isinstance(text, str) or not text.strip() or len(text) > 80:
                fail(f"{where}.label.{language}", "must be a label of 1 to 80 characters")
        for language in labels:
            if language not in LANGUAGES:
                fail(f"{where}.label.{language}", f"unknown language (expected {', '.join(LANGUAGES)})")
        rules_table = item.get("rules")
        if not isinstance(rules_table, dict):
            fail(f"{where}.rules", f"must have a table of rules for each of {', '.join(LANGUAGES)}")
            continue
        for language in rules_table:
            if language not in LANGUAGES:
                fail(f"{where}.rules.{language}", f"unknown language (expected {', '.join(LANGUAGES)})")
        rules = {}
        for language in LANGUAGES:
            if language not in rules_table:
                fail(f"{where}.rules.{language}", "missing: every theme needs rules in every language")
                continue
            found = _rules(rules_table[language], f"{where}.rules.{language}", fail)
            if found is not None:
                rules[language] = found
        if len(rules) == len(LANGUAGES):
            themes.append(Theme(theme_id, dict(labels), rules))
    if messages:
        raise CatalogError(messages)
    return Themes(tuple(themes), source)


def path_in(surveys_dir: str | Path) -> Path:
    return Path(surveys_dir) / FILE


@functools.lru_cache(maxsize=8)
def _load(path: str, modified: float) -> Themes:
    file = Path(path)
    return parse(file.read_bytes(), f"{file.parent.parent.name}/{FILE.as_posix()}")


_last_good: dict[str, Themes] = {}


def load(surveys_dir: str | Path) -> Themes:
    """The themes of `<surveys_dir>/insights/themes.toml` (read again when the file changes), or none at all.

    A file that does not validate raises CatalogError: at start-up that stops the app. When it is edited into a
    broken state while the app runs, the pages keep the last good themes and the log says what is wrong.
    """
    path = path_in(surveys_dir)
    if not path.is_file():
        return Themes(())
    try:
        found = _load(str(path), path.stat().st_mtime)
    except CatalogError as error:
        if str(path) not in _last_good:
            raise
        log.warning("themes file does not validate, keeping the last good one: %s", "; ".join(error.messages))
        return _last_good[str(path)]
    _last_good[str(path)] = found
    return found


# --- counting ---------------------------------------------------------------------------------------------------

GROUPS = ("unhappy", "top", "other")  # the score band: an unhappy band, the top band, anything between


def period_start(day: date, interval: str) -> date:
    return day - timedelta(days=day.weekday()) if interval == "week" else day.replace(day=1)


def periods(start: date, end: date, interval: str) -> list[date]:
    """The first day of every week (Monday) or month from `start` to `end`."""
    found, current = [], period_start(start, interval)
    while current <= end:
        found.append(current)
        if interval == "week":
            current += timedelta(days=7)
        else:
            current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return found


def interval_for(start: date, end: date) -> str:
    return "week" if (end - start).days <= 120 else "month"


@dataclass(frozen=True)
class Comment:
    """One answer's comment, as the summary reads it: never who wrote it."""

    text: str
    score: int
    locale: str
    day: date


def summarize(themes: Themes, survey, comments: Iterable[Comment], start: date, end: date, examples: int = 3) -> dict:
    """Per theme: how many comments in each score group carry it, its count per week or month, and a few recent
    example comments (newest first, the unhappy and the top band first). `comments` come newest first."""
    interval = interval_for(start, end)
    slots = periods(start, end, interval)
    totals = dict.fromkeys(GROUPS, 0)
    rows = {
        t.id: {"id": t.id, "counts": dict.fromkeys(GROUPS, 0), "trend": dict.fromkeys(slots, 0), "examples": []}
        for t in themes
    }
    untagged = dict.fromkeys(GROUPS, 0)
    top = survey.bands[-1]
    for comment in comments:
        band = survey.band_for(comment.score)
        group = "unhappy" if band.unhappy else "top" if band is top else "other"
        totals[group] += 1
        found = themes.classify(comment.text, comment.locale)
        if not found:
            untagged[group] += 1
        for theme_id in found:
            row = rows[theme_id]
            row["counts"][group] += 1
            slot = period_start(comment.day, interval)
            if slot in row["trend"]:
                row["trend"][slot] += 1
            row["examples"].append((group, comment, band.name))
    for row in rows.values():
        row["total"] = sum(row["counts"].values())
        row["shares"] = {g: (row["counts"][g] / totals[g] if totals[g] else None) for g in GROUPS}
        row["trend"] = [{"period": slot, "count": n} for slot, n in row["trend"].items()]
        row["examples"] = _examples(row["examples"], examples)
    ordered = sorted(rows.values(), key=lambda r: (-r["counts"]["unhappy"], -r["total"], r["id"]))
    return {
        "interval": interval,
        "comments": {**totals, "total": sum(totals.values())},
        "untagged": untagged,
        "themes": ordered,
    }


def _examples(found: list[tuple[str, Comment, str]], most: int) -> list[dict]:
    """Up to `most` comments: the newest unhappy one, the newest of the top band, then the newest of the rest."""
    chosen: list[tuple[str, Comment, str]] = []
    for group in ("unhappy", "top"):
        first = next((one for one in found if one[0] == group), None)
        if first is not None:
            chosen.append(first)
    for one in found:
        if len(chosen) >= most:
            break
        if one not in chosen:
            chosen.append(one)
    chosen = chosen[:most]
    chosen.sort(key=lambda one: one[1].day, reverse=True)
    return [
        {"text": c.text, "score": c.score, "band": band, "group": group, "language": c.locale, "day": c.day}
        for group, c, band in chosen
    ]
