"""All of i18n in one place: supported locales, the order of choice, gettext catalogs, Babel formatting."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import pass_context
from jinja2.runtime import Context

from pulse.settings import LOCALES

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
LANGUAGE_NAMES = {code: Locale.parse(code).get_display_name(code).capitalize() for code in LOCALES}


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message with a count for extraction; the count (`num`) chooses the form where it is shown."""
    return singular, plural


@functools.cache
def translations(locale: str) -> Translations:
    """The compiled gettext catalog of a locale (English strings when it is missing)."""
    loaded = Translations.load(str(LOCALES_DIR), [locale], DOMAIN)
    if not isinstance(loaded, Translations) and locale != "en":
        raise RuntimeError(f"locales/{locale}/LC_MESSAGES/{DOMAIN}.mo is missing: run `make compile`.")
    return loaded  # type: ignore[return-value]


def supported(tag: str | None) -> str | None:
    """The supported locale a language tag names ('pl-PL' -> 'pl'), or None."""
    if not tag:
        return None
    language = tag.strip().replace("_", "-").split("-")[0].lower()
    return language if language in LOCALES else None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an Accept-Language header, most preferred first (q=0 dropped)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            choices.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(choices)]


def negotiate(
    explicit: str | None = None,
    person: str | None = None,
    accept_language: str | None = None,
    default: str = "en",
) -> str:
    """Choose the locale: an explicit ?lang= → the person's own → the browser's → the default."""
    for candidate in (explicit, person):
        if found := supported(candidate):
            return found
    for tag in parse_accept_language(accept_language):
        if found := supported(tag):
            return found
    return default


def translate(locale: str, message: str, **variables: object) -> str:
    """`message` in `locale`, with %(name)s variables filled in (extracted by `make catalog`)."""
    # like Jinja's newstyle gettext, always %-format: a literal percent sign is written %% in every msgid
    return translations(locale).gettext(message) % variables


def translate_plural(locale: str, singular: str, plural: str, n: int, **variables: object) -> str:
    """The plural form for `n` in `locale` (pl has three, sl four)."""
    text = translations(locale).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def _with_digits(pattern, digits: int) -> str:
    """The locale's own number pattern with exactly `digits` decimals ('#,##0 %' -> '#,##0.0 %')."""
    integer_part = pattern.pattern.split(";")[0].split(".")[0]
    head, _, tail = integer_part.rpartition("0")
    return f"{head}0{'.' + '0' * digits if digits else ''}{tail.lstrip('#')}"


def number(value: float | int, locale: str, digits: int | None = None) -> str:
    if digits is None:
        return format_decimal(value, locale=locale)
    return format_decimal(value, format=_with_digits(Locale.parse(locale).decimal_formats[None], digits), locale=locale)


def percent(value: float, locale: str, digits: int = 0) -> str:
    """A share (0.42) as a percentage in the locale's way ('42 %' in pl and sl, '42%' in en)."""
    pattern = _with_digits(Locale.parse(locale).percent_formats[None], digits)
    return format_percent(value, format=pattern, locale=locale)


def day(value: date, locale: str, style: str = "medium") -> str:
    return format_date(value, format=style, locale=locale)


def moment(value: datetime, locale: str, tz: tzinfo | str | None = None, style: str = "medium") -> str:
    return format_datetime(value, format=style, tzinfo=tz, locale=locale)


def duration(value: timedelta, locale: str, ago: bool = False) -> str:
    """A length of time in words, rounded to its largest unit: '7 minutes', '7 minut'; with `ago`, as the locale
    says it of the past: '7 minutes ago', '7 minut temu', 'pred 7 minutami'."""
    return format_timedelta(-value if ago else value, add_direction=ago, locale=locale)


# Jinja: every template gets `locale` in its context, and these read it.
@pass_context
def _jinja_gettext(context: Context, message: str) -> str:
    return translations(context["locale"]).gettext(message)


@pass_context
def _jinja_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context["locale"]).ngettext(singular, plural, n)


@pass_context
def _number_filter(context: Context, value: float | int, digits: int | None = None) -> str:
    return number(value, context["locale"], digits)


@pass_context
def _percent_filter(context: Context, value: float, digits: int = 0) -> str:
    return percent(value, context["locale"], digits)


@pass_context
def _date_filter(context: Context, value: date, style: str = "medium") -> str:
    return day(value, context["locale"], style)


@pass_context
def _datetime_filter(context: Context, value: datetime, style: str = "medium") -> str:
    return moment(value, context["locale"], context.get("timezone"), style)


@pass_context
def _duration_filter(context: Context, value: timedelta, ago: bool = False) -> str:
    return duration(value, context["locale"], ago)


def install(env) -> None:
    """Give a Jinja environment gettext/ngettext (new style, autoescaped) and the Babel filters."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_jinja_gettext, _jinja_ngettext, newstyle=True)
    env.filters.update(
        number=_number_filter,
        percent=_percent_filter,
        date=_date_filter,
        datetime=_datetime_filter,
        duration=_duration_filter,
    )
    env.globals.update(LANGUAGE_NAMES=LANGUAGE_NAMES, LOCALES=LOCALES)
