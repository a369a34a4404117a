"""The weights and thresholds of the customers-at-risk score, read from surveys/insights/risk.toml and checked.

Every key has a default (DEFAULTS, the same values as the shipped file), so the file may be missing or hold only
what differs. A wrong key, type or range stops start-up with one `file: key: problem` line per fault, like the
survey catalog: it is a CatalogError, so `pulse serve` and `pulse surveys check` report it the same way.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pulse.catalog import CatalogError

FILE = Path("insights") / "risk.toml"  # inside the surveys folder, out of reach of its *.toml glob
ATTRIBUTE = re.compile(r"[A-Za-z0-9_]{1,64}")
TYPE_PATTERN = re.compile(r"[a-z0-9_*]{1,64}")

# section -> key -> (default, kind, lowest, highest); "" is the top level
DEFAULTS: dict[str, dict[str, tuple[Any, str, float, float]]] = {
    "": {"threshold": (40, "int", 1, 1000), "recent_days": (90, "int", 7, 730), "history_days": (365, "int", 30, 3650)},
    "score_drop": {"weight": (25, "int", 0, 1000), "min_drop": (0.2, "float", 0.01, 1)},
    "below_segment": {
        "weight": (15, "int", 0, 1000),
        "min_gap": (0.25, "float", 0.01, 1),
        "attribute": ("plan", "attribute", 0, 0),
        "min_answers": (5, "int", 1, 1_000_000),
    },
    "unanswered": {
        "weight": (10, "int", 0, 1000),
        "min_surveys": (2, "int", 1, 100),
        "days": (120, "int", 7, 730),
        "grace_days": (7, "int", 0, 60),
    },
    "fewer_touchpoints": {
        "weight": (15, "int", 0, 1000),
        "ratio": (0.5, "float", 0, 1),
        "min_usual": (2.0, "float", 0.1, 1000),
    },
    "open_case": {"weight": (15, "int", 0, 1000), "overdue_weight": (10, "int", 0, 1000)},
    "detractor": {"weight": (30, "int", 0, 1000)},
    "complaints": {
        "weight": (10, "int", 0, 1000),
        "max_count": (2, "int", 1, 100),
        "types": (("complaint_*",), "types", 0, 0),
    },
}


@dataclass(frozen=True)
class RiskConfig:
    """The checked settings: `config["score_drop"]["weight"]`; top-level keys under `config[""]`."""

    values: Mapping[str, Mapping[str, Any]]
    source: str = "defaults"

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.values[section]

    @property
    def threshold(self) -> int:
        return self.values[""]["threshold"]

    @property
    def recent_days(self) -> int:
        return self.values[""]["recent_days"]

    @property
    def history_days(self) -> int:
        return self.values[""]["history_days"]


def defaults() -> RiskConfig:
    return RiskConfig(
        MappingProxyType({s: MappingProxyType({k: v[0] for k, v in keys.items()}) for s, keys in DEFAULTS.items()})
    )


def load(surveys_dir: str | Path) -> RiskConfig:
    """The settings of `<surveys_dir>/insights/risk.toml`, or the defaults when there is no such file."""
    path = Path(surveys_dir) / FILE
    if not path.is_file():
        return defaults()
    return parse(path.read_bytes(), f"{Path(surveys_dir).name}/{FILE.as_posix()}")


def parse(raw: bytes, label: str) -> RiskConfig:
    """Check the TOML text `raw` (named `label` in messages); raise CatalogError listing every fault."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CatalogError([f"{label}: not valid TOML ({error})"]) from None
    faults: list[str] = []
    values: dict[str, dict[str, Any]] = {section: {} for section in DEFAULTS}
    sections = [name for name in DEFAULTS if name]
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in DEFAULTS or not key:
                faults.append(f"{label}: [{key}]: no such section (the sections are {', '.join(sections)})")
                continue
            for inner, item in value.items():
                _check(values, faults, label, key, inner, item)
        else:
            _check(values, faults, label, "", key, value)
    for section, keys in DEFAULTS.items():
        for key, (default, *_) in keys.items():
            values[section].setdefault(key, default)
    if not faults and values[""]["history_days"] <= values[""]["recent_days"]:
        faults.append(f"{label}: history_days: must be more than recent_days ({values['']['recent_days']})")
    if faults:
        raise CatalogError(faults)
    return RiskConfig(MappingProxyType({s: MappingProxyType(v) for s, v in values.items()}), label)


def _check(values: dict, faults: list[str], label: str, section: str, key: str, value: Any) -> None:
    name = f"{section}.{key}" if section else key
    spec = DEFAULTS[section].get(key)
    if spec is None:
        known = ", ".join(DEFAULTS[section])
        where = f"[{section}] takes" if section else "the top level takes"
        faults.append(f"{label}: {name}: no such setting ({where} {known})")
        return
    _, kind, low, high = spec
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            faults.append(f"{label}: {name}: must be a whole number from {low} to {high}")
            return
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            faults.append(f"{label}: {name}: must be a number from {low} to {high}")
            return
        value = float(value)
    elif kind == "attribute":
        if not isinstance(value, str) or not ATTRIBUTE.fullmatch(value):
            faults.append(f"{label}: {name}: must be a contact attribute name (letters, digits, _)")
            return
    elif kind == "types":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and TYPE_PATTERN.fullmatch(item) for item in value)
        ):
            faults.append(
                f'{label}: {name}: must list touchpoint types (a-z, 0-9, _ and * for any text), e.g. ["complaint_*"]'
            )
            return
        value = tuple(value)
    values[section][key] = value
