"""The filter form of the dashboard pages, read from the URL and checked field by field: a bad value is told
beside its field on the same page (status 400, navigation and form kept), never on a bare error page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from pulse import fields, trends
from pulse.i18n import N_

FIELD_LABELS = {
    "survey": N_("Survey"),
    "by": N_("By"),
    "team": N_("Team"),
    "window": N_("Window"),
    "interval": N_("Interval"),
    "from": N_("Since"),
    "to": N_("Until"),
}
WINDOWS = ("7d", "28d", "90d")  # offered in the form; any 1d to 730d works in the URL
DEFAULT_WINDOW = "28d"
DEFAULT_INTERVAL = "week"


@dataclass
class Filters:
    """What the URL asks for: the rolling window, the interval, the dates given (None when left blank), and a
    message for each field that is wrong."""

    window: str
    days: int
    interval: str
    since: date | None
    until: date | None
    raw: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def period(self, today: date, default_days: int) -> tuple[date, date]:
        """The dates to read: those given, else `default_days` up to today."""
        end = self.until or today
        return self.since or end - timedelta(days=default_days), end

    def shown(self, since: date | None, until: date | None) -> dict[str, str]:
        """The values the form shows: what was typed where it is wrong, else what the page used."""
        values = {"window": self.window, "interval": self.interval}
        for name, used in (("from", since), ("to", until)):
            values[name] = self.raw.get(name, "") if name in self.errors else (used.isoformat() if used else "")
        return values


def read_dates(
    raw: Mapping[str, str], errors: dict[str, str], t: Callable[..., str], label: Callable[[str], str]
) -> dict[str, date]:
    """The "from" and "to" days of a filter form that are given and valid; what is wrong goes into `errors`,
    beside its field (a day that is not one, out of range, or a "to" before the "from")."""
    dates: dict[str, date] = {}
    for name in ("from", "to"):
        if not raw[name]:
            continue
        try:
            value = date.fromisoformat(raw[name])
        except ValueError:
            errors[name] = t("'%(field)s' is not a date.", field=label(name))
            continue
        if not fields.in_range(value):
            errors[name] = t(
                "'%(field)s' must be a date from %(first)s to %(last)s.",
                field=label(name),
                first=fields.EARLIEST.isoformat(),
                last=fields.LATEST.isoformat(),
            )
            continue
        dates[name] = value
    if "from" in dates and "to" in dates and dates["from"] > dates["to"]:
        errors["to"] = t("'%(until)s' must be on or after '%(since)s'.", until=label("to"), since=label("from"))
    return dates


def read(
    params: Mapping[str, str], t: Callable[..., str], ngettext: Callable[..., str], today: date, points: bool = False
) -> Filters:
    """Read window, interval, from and to; with `points`, also check the chart would not have too many points.
    `t` translates a message, `ngettext` picks a message's plural form for a count (see dashboard.Page)."""

    def label(name: str) -> str:
        return t(FIELD_LABELS[name])

    raw = {name: params.get(name) or "" for name in ("window", "interval", "from", "to")}
    errors: dict[str, str] = {}
    window, days = raw["window"] or DEFAULT_WINDOW, int(DEFAULT_WINDOW[:-1])
    number = window[:-1]
    if window.endswith("d") and fields.WHOLE_NUMBER.fullmatch(number) and 1 <= int(number) <= trends.MAX_WINDOW_DAYS:
        days = int(number)
    else:
        errors["window"] = ngettext(
            "'%(field)s' must be from 1 to %(num)s day.",
            "'%(field)s' must be from 1 to %(num)s days.",
            trends.MAX_WINDOW_DAYS,
            field=label("window"),
        )
    interval = raw["interval"] or DEFAULT_INTERVAL
    if interval not in trends.INTERVALS:
        errors["interval"] = t("'%(field)s' must be a day, a week or a month.", field=label("interval"))
    dates = read_dates(raw, errors, t, label)
    found = Filters(window, days, interval, dates.get("from"), dates.get("to"), raw, errors)
    if points and not errors:
        start, end = found.period(today, 26 * 7)
        if len(trends.point_dates(start, end, interval)) > trends.MAX_POINTS:
            errors["from"] = ngettext(
                "That is more than %(num)s point: choose a later '%(since)s' or a longer '%(interval)s'.",
                "That is more than %(num)s points: choose a later '%(since)s' or a longer '%(interval)s'.",
                trends.MAX_POINTS,
                since=label("from"),
                interval=label("interval"),
            )
    return found
