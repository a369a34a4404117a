"""Every count agrees with its number: a count lives inside its message, which has a form for each of the
language's plural categories (Polish three, Slovenian four, Italian two), and the right form is chosen."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from pulse import i18n
from pulse.rendering import environment
from pulse.settings import LOCALES

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (1, 2, 3, 5, 12, 21, 22, 101, 102, 105)
# gettext numbers the forms in CLDR's order of categories; Italian has two (its CLDR "many" is for millions
# written as words, which our messages never are)
FORMS = {
    "en": ("one", "other"),
    "it": ("one", "other"),
    "pl": ("one", "few", "many"),
    "sl": ("one", "two", "few", "other"),
}
KEYWORDS = {
    "N_": None,
    "ngettext": (1, 2),
    "translate": (2,),
    "translate_plural": (2, 3),
    "t": None,
}  # as `make catalog`
# a placeholder that holds a count, followed by a word: the word must agree with the number
COUNT_THEN_WORD = re.compile(r"%\((num|n|count|days|k|ck|min|max|range|total|limit)\)s\s+[^\W\d_]")
# in a template, a number followed by words ({{ n|number(0) }} answers, or {{ n|number }} {{ _("answers") }})
NUMBER_THEN_WORDS = re.compile(r"\|number(\(\d\))?\s*\}\}(\s*</[a-z]+>)?\s*(\{\{\s*_\(|[^\W\d_])")


@functools.cache
def messages() -> list[tuple[str, object]]:
    """(file, message) for every string `make catalog` extracts from pulse/; plural ones are (singular, plural)."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    method_map = [(pattern.removeprefix("pulse/"), method) for pattern, method in method_map]
    options_map = {pattern.removeprefix("pulse/"): options for pattern, options in options_map.items()}
    found = extract_from_dir(str(ROOT / "pulse"), method_map, options_map, keywords=KEYWORDS)
    return [(filename, message) for filename, _, message, _, _ in found]


def plural_messages() -> list[tuple[str, str]]:
    return sorted({message for _, message in messages() if isinstance(message, tuple)})


@functools.cache
def catalog(locale: str):
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle)


def form_index(locale: str, n: int) -> int:
    """The gettext form `n` takes in `locale`, from CLDR (Babel), not from the catalog's own header."""
    return FORMS[locale].index(Locale.parse(locale).plural_form(n))


def expected(locale: str, singular: str, plural: str, n: int) -> str:
    """What a reader of `locale` must read for `n`: the form of the language's rule, as the catalog writes it."""
    if locale == "en":
        text = singular if n == 1 else plural
    else:
        entry = catalog(locale).get(singular)
        assert entry is not None and isinstance(entry.string, tuple), f"{locale}: {singular!r} is not translated"
        text = entry.string[form_index(locale, n)]
    return text % values(singular, plural, locale, n)


def values(singular: str, plural: str, locale: str, n: int) -> dict[str, str]:
    """The message's variables: the count as the locale writes it, every other one a marker."""
    names = set(re.findall(r"%\((\w+)\)s", singular + plural))
    return {name: f"<{name}>" for name in names} | {"num": i18n.number(n, locale, 0)}


def test_counts_in_templates_are_inside_plural_messages():
    """No '{{ n|number(0) }} answers' nor '{{ n|number }} {{ _("answers") }}': the words cannot agree."""
    found = []
    for path in sorted((ROOT / "pulse" / "templates").rglob("*.*")):
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            if NUMBER_THEN_WORDS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{line_number}")
    assert found == []


def test_every_message_with_a_count_is_a_plural_message():
    """'at least %(k)s people' through gettext would say '1 people' in English and worse in Polish."""
    singular_only = sorted(
        f"{filename}: {message}"
        for filename, message in messages()
        if isinstance(message, str) and COUNT_THEN_WORD.search(message)
    )
    assert singular_only == []


def test_plural_messages_put_the_count_inside_the_message():
    missing = [pair for pair in plural_messages() if "%(num)s" not in pair[1]]
    assert missing == []


@pytest.mark.parametrize("locale", [code for code in LOCALES if code != "en"])
def test_the_catalog_has_every_form_of_every_plural_message(locale):
    """Filled, not fuzzy, as many forms as the language has, the number in each form that serves more than n = 1,
    and not one form copied into every slot."""
    po = catalog(locale)
    assert po.num_plurals == len(FORMS[locale]), po.plural_forms
    problems = []
    for singular, plural in plural_messages():
        entry = po.get(singular)
        if entry is None or entry.fuzzy or not isinstance(entry.string, tuple):
            problems.append(f"missing or fuzzy: {singular}")
            continue
        forms = entry.string
        if len(forms) != len(FORMS[locale]) or not all(form.strip() for form in forms):
            problems.append(f"forms not filled: {singular}")
            continue
        for index, form in enumerate(forms):
            serves = {n for n in range(1000) if Locale.parse(locale).plural_form(n) == FORMS[locale][index]}
            if "%(num)s" in singular and "%(num)s" not in form and serves - {1}:
                problems.append(f"form {index} has no number: {singular}")
        if singular != plural and len(set(forms)) == 1:
            problems.append(f"every form the same: {singular}")
    assert problems == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("n", COUNTS)
def test_the_form_chosen_follows_the_language_rule(locale, n):
    """Through the compiled catalog (and its Plural-Forms header), each plural message takes the form CLDR gives."""
    wrong = []
    for singular, plural in plural_messages():
        got = i18n.translate_plural(locale, singular, plural, n, **values(singular, plural, locale, n))
        try:
            want = expected(locale, singular, plural, n)
        except AssertionError as missing:
            wrong.append(str(missing))
            continue
        if got != want:
            wrong.append(f"{singular!r} for {n}: {got!r}, not {want!r}")
    assert wrong == []


@pytest.mark.parametrize("locale", LOCALES)
def test_the_pulse_email_agrees_with_its_counts(locale):
    """The real e-mail template: '%(num)s short questions' and 'at least %(num)s people' in the form for each n."""
    env = environment()
    for n in COUNTS:
        context = {"locale": locale, "company": "Acme", "reminder": False, "question": "Q?", "url": "u", "k": n}
        text = env.get_template("email/pulse.txt").render({**context, "count": n})
        questions = expected(
            locale,
            "A new engagement pulse is open: %(num)s short question, about two minutes.",
            "A new engagement pulse is open: %(num)s short questions, about two minutes.",
            n,
        )
        people = expected(
            locale,
            "Your answers are anonymous: they are stored without your name, your e-mail or the time you answered, "
            "and results are shown only for groups of at least %(num)s person.",
            "Your answers are anonymous: they are stored without your name, your e-mail or the time you answered, "
            "and results are shown only for groups of at least %(num)s people.",
            n,
        )
        assert questions in text and people in text, (n, text)


@pytest.mark.parametrize(
    ("locale", "n", "form"),
    [("pl", 1, 0), ("pl", 2, 1), ("pl", 5, 2), ("pl", 12, 2), ("pl", 22, 1), ("pl", 101, 2), ("pl", 102, 1),
     ("sl", 1, 0), ("sl", 2, 1), ("sl", 3, 2), ("sl", 5, 3), ("sl", 101, 0), ("sl", 102, 1), ("sl", 105, 3),
     ("it", 1, 0), ("it", 2, 1), ("it", 21, 1), ("en", 1, 0), ("en", 101, 1)],
)  # fmt: skip
def test_the_rule_itself(locale, n, form):
    """The forms the other tests expect, written out: 22 is 'few' in Polish, 101 is 'one' in Slovenian."""
    assert form_index(locale, n) == form
