"""The survey catalog: surveys/*.toml loaded and validated into frozen dataclasses (no I/O after load)."""

from __future__ import annotations

import hashlib
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pulse.settings import LOCALES

KINDS = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "enps": (0, 10)}
AUDIENCES = {"customer", "employee"}
PLACEHOLDERS = {"company"}
ID_CHARS = set(string.ascii_lowercase + string.digits + "_")


class CatalogError(Exception):
    """The catalog does not validate; `messages` holds one `file: key: problem` line per fault."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Band:
    """A score range with its own "why?" follow-up; unhappy bands open a follow-up case."""

    name: str
    low: int
    high: int
    unhappy: bool
    why: Mapping[str, str]

    def __contains__(self, score: int) -> bool:
        return self.low <= score <= self.high


@dataclass(frozen=True)
class Question:
    id: str
    text: Mapping[str, str]
    low: Mapping[str, str] | None = None  # the question's own scale labels (drivers: disagree … agree)
    high: Mapping[str, str] | None = None


CADENCES = {"weekly": 7, "biweekly": 14, "monthly": 28}


@dataclass(frozen=True)
class Schedule:
    """How an employee pulse runs: a round every `cadence`, open `open_days`, one reminder."""

    cadence: str
    questions_per_pulse: int
    open_days: int
    reminder_after_days: int

    @property
    def every_days(self) -> int:
        return CADENCES[self.cadence]


@dataclass(frozen=True)
class Trigger:
    """When a customer survey is sent: which touchpoints, how late, to what share, with what precedence."""

    touchpoint_types: tuple[str, ...]
    delay_minutes: int
    sampling_rate: float
    priority: int
    max_event_age_days: int
    fatigue_days: int | None = None


@dataclass(frozen=True)
class Survey:
    id: str
    kind: str
    audience: str
    title: Mapping[str, str]
    subject: Mapping[str, str]
    scale_min: int
    scale_max: int
    low_label: Mapping[str, str]
    high_label: Mapping[str, str]
    questions: tuple[Question, ...]
    bands: tuple[Band, ...]
    trigger: Trigger | None
    checksum: str
    schedule: Schedule | None
    source: str
    definition: Mapping[str, Any] = field(repr=False, compare=False)
    reminder_subject: Mapping[str, str] | None = None  # the pulse reminder's own subject line

    @property
    def scores(self) -> range:
        return range(self.scale_min, self.scale_max + 1)

    @property
    def question(self) -> Question:
        """The main score question, the one the e-mail asks."""
        return self.questions[0]

    def band_for(self, score: int) -> Band:
        for band in self.bands:
            if score in band:
                return band
        raise ValueError(f"score must be between {self.scale_min} and {self.scale_max}")

    def is_unhappy(self, score: int) -> bool:
        return self.band_for(score).unhappy


def localized(texts: Mapping[str, str], locale: str, company: str) -> str:
    """The wording in `locale` (English when missing) with {company} filled in."""
    return texts.get(locale, texts["en"]).replace("{company}", company)


@dataclass(frozen=True)
class Catalog:
    surveys: Mapping[str, Survey]

    def __iter__(self):
        return iter(self.surveys.values())

    def __len__(self) -> int:
        return len(self.surveys)

    def get(self, survey_id: str) -> Survey | None:
        return self.surveys.get(survey_id)

    def for_touchpoint(self, touchpoint_type: str) -> list[Survey]:
        """Customer surveys this touchpoint type triggers, highest priority first."""
        return list(self._by_touchpoint.get(touchpoint_type, ()))

    @cached_property
    def _by_touchpoint(self) -> dict[str, list[Survey]]:
        # built once: ingestion asks for every event of every batch
        types = {t for s in self.surveys.values() if s.trigger for t in s.trigger.touchpoint_types}
        return {
            kind: sorted(
                (s for s in self.surveys.values() if s.trigger and kind in s.trigger.touchpoint_types),
                key=lambda s: (-s.trigger.priority, s.id),  # type: ignore[union-attr]
            )
            for kind in types
        }


class _Checker:
    """Collects every fault of one file as `surveys/<file>.toml: <key>: <problem>`."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.messages: list[str] = []

    def fail(self, key: str, problem: str) -> None:
        self.messages.append(f"{self.label}: {key}: {problem}")

    def keys(self, table: Mapping[str, Any], key: str, required: set[str], optional: set[str] = frozenset()) -> bool:
        prefix = f"{key}." if key else ""
        for name in table:
            if name not in required | optional:
                self.fail(f"{prefix}{name}", "unknown key")
        missing = sorted(required - table.keys())
        for name in missing:
            self.fail(f"{prefix}{name}", "is required")
        return not missing

    def texts(self, table: Any, key: str) -> Mapping[str, str]:
        if not isinstance(table, dict):
            self.fail(key, "must be a table of translations (en, pl, it, sl)")
            return MappingProxyType({})
        for locale in table:
            if locale not in LOCALES:
                self.fail(f"{key}.{locale}", f"unknown locale (supported: {', '.join(LOCALES)})")
        for locale in LOCALES:
            value = table.get(locale)
            if value is None:
                self.fail(f"{key}.{locale}", "missing translation")
            elif not isinstance(value, str) or not value.strip():
                self.fail(f"{key}.{locale}", "must be a non-empty string")
            else:
                for _, name, _, _ in string.Formatter().parse(value) if "{" in value else ():
                    if name is not None and name not in PLACEHOLDERS:
                        self.fail(f"{key}.{locale}", f"unknown placeholder {{{name}}} (allowed: {{company}})")
        return MappingProxyType({k: v for k, v in table.items() if isinstance(v, str)})

    def integer(self, table: Mapping[str, Any], key: str, name: str, low: int, high: int) -> int:
        value = table.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"{key}{name}", "must be a whole number")
            return low
        if not low <= value <= high:
            self.fail(f"{key}{name}", f"must be between {low} and {high}, got {value}")
        return value

    def identifier(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value or not set(value) <= ID_CHARS:
            self.fail(key, "must be a code of lowercase letters, digits and underscores")
            return ""
        return value


def _parse(data: dict[str, Any], check: _Checker, source: str, raw: bytes) -> Survey | None:
    required = {"id", "kind", "audience", "title", "subject", "scale", "questions", "bands"}
    if not check.keys(data, "", required, {"trigger", "schedule", "reminder_subject"}):
        return None
    survey_id = check.identifier(data["id"], "id")
    kind = data["kind"]
    if kind not in KINDS:
        check.fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    audience = data["audience"]
    if audience not in AUDIENCES:
        check.fail("audience", f"must be customer or employee, got {audience!r}")
    title = check.texts(data["title"], "title")
    subject = check.texts(data["subject"], "subject")
    reminder_subject = check.texts(data["reminder_subject"], "reminder_subject") if "reminder_subject" in data else None

    scale = data["scale"]
    low_label: Mapping[str, str] = MappingProxyType({})
    high_label: Mapping[str, str] = MappingProxyType({})
    scale_min, scale_max = KINDS.get(kind, (0, 10))
    if not isinstance(scale, dict):
        check.fail("scale", "must be a table with min, max, low and high")
    elif check.keys(scale, "scale", {"min", "max", "low", "high"}):
        got_min = check.integer(scale, "scale.", "min", 0, 10)
        got_max = check.integer(scale, "scale.", "max", 0, 10)
        if kind in KINDS and (got_min, got_max) != KINDS[kind]:
            want = KINDS[kind]
            check.fail("scale", f"a {kind} survey is scored {want[0]} to {want[1]}, got {got_min} to {got_max}")
        elif kind not in KINDS and got_min < got_max:
            scale_min, scale_max = got_min, got_max  # judge the bands by the file's own scale
        low_label = check.texts(scale["low"], "scale.low")
        high_label = check.texts(scale["high"], "scale.high")

    questions: list[Question] = []
    if not isinstance(data["questions"], list) or not data["questions"]:
        check.fail("questions", "must list at least one question")
    else:
        seen: set[str] = set()
        for i, question in enumerate(data["questions"]):
            key = f"questions[{i}]"
            if not isinstance(question, dict) or not check.keys(question, key, {"id", "text"}, {"low", "high"}):
                continue
            qid = check.identifier(question["id"], f"{key}.id")
            if qid in seen:
                check.fail(f"{key}.id", f"duplicate question id {qid!r}")
            seen.add(qid)
            low = check.texts(question["low"], f"{key}.low") if "low" in question else None
            high = check.texts(question["high"], f"{key}.high") if "high" in question else None
            questions.append(Question(qid, check.texts(question["text"], f"{key}.text"), low, high))

    bands: list[Band] = []
    if not isinstance(data["bands"], list) or not data["bands"]:
        check.fail("bands", "must list the score bands")
    else:
        expected = scale_min
        for i, band in enumerate(data["bands"]):
            key = f"bands[{i}]"
            if not isinstance(band, dict) or not check.keys(band, key, {"name", "from", "to", "unhappy", "why"}):
                continue
            low = check.integer(band, f"{key}.", "from", scale_min, scale_max)
            high = check.integer(band, f"{key}.", "to", scale_min, scale_max)
            if low != expected:
                check.fail(f"{key}.from", f"must be {expected} so the bands cover the scale without gaps or overlap")
            if high < low:
                check.fail(f"{key}.to", f"must not be below from ({low})")
            expected = high + 1
            if not isinstance(band["unhappy"], bool):
                check.fail(f"{key}.unhappy", "must be true or false")
            name = check.identifier(band["name"], f"{key}.name")
            bands.append(Band(name, low, high, bool(band["unhappy"]), check.texts(band["why"], f"{key}.why")))
        if expected != scale_max + 1 and bands:
            check.fail("bands", f"must end at the top of the scale ({scale_max})")

    trigger = _parse_trigger(data.get("trigger"), check, audience)
    schedule = _parse_schedule(data.get("schedule"), check, audience, len(questions))
    if check.messages:
        return None
    return Survey(
        id=survey_id,
        kind=kind,
        audience=audience,
        title=title,
        subject=subject,
        scale_min=scale_min,
        scale_max=scale_max,
        low_label=low_label,
        high_label=high_label,
        questions=tuple(questions),
        bands=tuple(bands),
        trigger=trigger,
        checksum=hashlib.sha256(raw).hexdigest(),
        schedule=schedule,
        source=source,
        definition=MappingProxyType(data),
        reminder_subject=reminder_subject,
    )


def _parse_trigger(trigger: Any, check: _Checker, audience: str) -> Trigger | None:
    if trigger is None:
        return None
    if audience == "employee":
        check.fail("trigger", "employee surveys are sent on a schedule, not by touchpoints")
        return None
    if not isinstance(trigger, dict):
        check.fail("trigger", "must be a table")
        return None
    required = {"touchpoint_types", "delay_minutes", "sampling_rate", "priority", "max_event_age_days"}
    if not check.keys(trigger, "trigger", required, {"fatigue_days"}):
        return None
    types = trigger["touchpoint_types"]
    if not isinstance(types, list) or not types:
        check.fail("trigger.touchpoint_types", "must list at least one touchpoint type")
        types = []
    for i, value in enumerate(types):
        check.identifier(value, f"trigger.touchpoint_types[{i}]")
    rate = trigger["sampling_rate"]
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        check.fail("trigger.sampling_rate", "must be a number between 0 and 1")
        rate = 0
    fatigue = trigger.get("fatigue_days")
    return Trigger(
        touchpoint_types=tuple(str(t) for t in types),
        delay_minutes=check.integer(trigger, "trigger.", "delay_minutes", 0, 60 * 24 * 30),
        sampling_rate=float(rate),
        priority=check.integer(trigger, "trigger.", "priority", 0, 1000),
        max_event_age_days=check.integer(trigger, "trigger.", "max_event_age_days", 1, 365),
        fatigue_days=None if fatigue is None else check.integer(trigger, "trigger.", "fatigue_days", 0, 365),
    )


def _parse_schedule(schedule: Any, check: _Checker, audience: str, questions: int) -> Schedule | None:
    if schedule is None:
        return None
    if audience != "employee":
        check.fail("schedule", "only employee surveys run on a schedule; customer surveys use a trigger")
        return None
    if not isinstance(schedule, dict) or not check.keys(
        schedule, "schedule", {"cadence", "questions_per_pulse", "open_days", "reminder_after_days"}
    ):
        return None
    cadence = schedule["cadence"]
    if cadence not in CADENCES:
        check.fail("schedule.cadence", f"must be one of {', '.join(CADENCES)}, got {cadence!r}")
        cadence = "weekly"
    per_pulse = check.integer(schedule, "schedule.", "questions_per_pulse", 1, max(questions, 1))
    open_days = check.integer(schedule, "schedule.", "open_days", 1, CADENCES[cadence])
    reminder = check.integer(schedule, "schedule.", "reminder_after_days", 1, 27)
    if reminder >= open_days:
        check.fail("schedule.reminder_after_days", f"must be less than open_days ({open_days})")
    return Schedule(cadence, per_pulse, open_days, reminder)


def load_catalog(directory: str | Path) -> Catalog:
    """Load and validate every surveys/*.toml; raise CatalogError listing every fault found."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError([f"{directory}: the survey folder does not exist (set PULSE_SURVEYS_DIR)"])
    messages: list[str] = []
    surveys: dict[str, Survey] = {}
    for path in sorted(directory.glob("*.toml")):
        label = f"{directory.name}/{path.name}"
        raw = path.read_bytes()
        check = _Checker(label)
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            messages.append(f"{label}: (file): not valid TOML: {error}")
            continue
        survey = _parse(data, check, label, raw)
        messages.extend(check.messages)
        if survey is None:
            continue
        if survey.id in surveys:
            messages.append(f"{label}: id: {survey.id!r} is already defined in {surveys[survey.id].source}")
            continue
        surveys[survey.id] = survey
    if not surveys and not messages:
        messages.append(f"{directory}: no survey definitions (*.toml) found")
    if messages:
        raise CatalogError(messages)
    return Catalog(MappingProxyType(surveys))
