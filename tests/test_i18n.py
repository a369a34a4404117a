"""Locale negotiation, plurals, Babel formatting, and catalogs that are neither stale nor incomplete."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po

from pulse import i18n
from pulse.settings import LOCALES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("explicit", "person", "header", "expected"),
    [
        ("pl", "it", "sl", "pl"),  # explicit ?lang= wins
        (None, "it", "sl,en", "it"),  # then the person's own language
        (None, None, "de-DE,sl-SI;q=0.8,en;q=0.5", "sl"),  # then the browser's first supported one
        (None, None, "en;q=0.2, pl-PL;q=0.9", "pl"),  # by quality, not by order
        (None, None, "de, fr", "en"),  # then the default
        ("xx", "de", "pl;q=0", "en"),  # unsupported and q=0 count for nothing
        (None, "sl_SI", None, "sl"),
    ],
)
def test_negotiation_order(explicit, person, header, expected):
    assert i18n.negotiate(explicit, person, header, default="en") == expected


def test_default_locale_is_the_last_resort():
    assert i18n.negotiate(None, None, "de", default="it") == "it"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", {1: "1 case", 2: "2 cases", 5: "5 cases"}),
        (
            "pl",
            {
                1: "1 zgłoszenie",
                2: "2 zgłoszenia",
                5: "5 zgłoszeń",
                22: "22 zgłoszenia",
                12: "12 zgłoszeń",
                101: "101 zgłoszeń",
            },
        ),
        ("it", {1: "1 caso", 2: "2 casi", 1000000: "1000000 casi"}),
        (
            "sl",
            {1: "1 primer", 2: "2 primera", 3: "3 primeri", 5: "5 primerov", 101: "101 primer", 102: "102 primera"},
        ),
    ],
)
def test_plural_forms(locale, expected):
    for n, text in expected.items():
        assert i18n.translate_plural(locale, "%(num)s case", "%(num)s cases", n) == text


def test_numbers_dates_and_percentages_follow_the_locale():
    assert i18n.number(12345.5, "en", 1) == "12,345.5"
    assert i18n.number(12345.5, "pl", 1) == "12\xa0345,5"
    assert i18n.number(12345.5, "it", 1) == "12.345,5"
    assert i18n.percent(0.425, "en", 1) == "42.5%"
    assert i18n.percent(0.425, "pl", 1) == "42,5%"
    assert i18n.percent(0.425, "sl", 1) == "42,5\xa0%"
    assert i18n.day(date(2026, 3, 7), "en") == "Mar 7, 2026"
    assert i18n.day(date(2026, 3, 7), "it") == "7 mar 2026"
    assert i18n.day(date(2026, 3, 7), "pl") == "7 mar 2026"
    assert i18n.day(date(2026, 3, 7), "sl") == "7. mar. 2026"


def _msgids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def babel_keywords() -> list[str]:
    """The extraction keywords `make catalog` uses (one list, in the Makefile)."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("BABEL_KEYWORDS"))
    return line.split(":=", 1)[1].split()


def test_catalog_template_is_not_stale(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            *babel_keywords(),
            "--no-location",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    committed = _msgids(ROOT / "locales" / "messages.pot")
    assert _msgids(fresh) - committed == set(), "run `make catalog` and translate the new strings"
    assert committed - _msgids(fresh) == set(), "locales/messages.pot keeps strings no code uses: `make catalog`"


@pytest.mark.parametrize("locale", [code for code in LOCALES if code != "en"])
def test_every_locale_translates_every_string(locale):
    template = _msgids(ROOT / "locales" / "messages.pot")
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(s.strip() for s in strings):
            problems.append(key)
    assert problems == []
    assert template - _msgids(ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po") == set()


async def test_pages_follow_lang_then_accept_language(client: httpx.AsyncClient):
    polish = await client.get("/login", headers={"accept-language": "pl-PL,pl;q=0.9"})
    assert '<html lang="pl">' in polish.text
    assert i18n.translate("pl", "Sign in") in polish.text
    italian = await client.get("/login?lang=it", headers={"accept-language": "pl"})
    assert '<html lang="it">' in italian.text
    assert i18n.translate("it", "Sign in") in italian.text
    assert i18n.translate("it", "Sign in") != "Sign in"
