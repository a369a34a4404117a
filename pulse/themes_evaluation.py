"""How well the theme rules find the themes people would: precision and recall on labelled comments.

The labelled sets are tests/data/themes_<language>.jsonl, one {"text": ..., "themes": [...]} per line, written
for this purpose (customer comments as people write them: typos, negations, several themes or none).
`pulse themes evaluate` prints the table; tests/test_themes_precision.py holds the floors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pulse.themes import LANGUAGES, Themes

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"


@dataclass(frozen=True)
class Score:
    """One theme in one language: how many comments it was rightly, wrongly and not found in."""

    found: int  # true positives
    wrong: int  # false positives
    missed: int  # false negatives

    @property
    def precision(self) -> float | None:
        return self.found / (self.found + self.wrong) if self.found + self.wrong else None

    @property
    def recall(self) -> float | None:
        return self.found / (self.found + self.missed) if self.found + self.missed else None


def labelled(language: str, directory: Path = DATA_DIR) -> list[tuple[str, set[str]]]:
    """The labelled comments of one language."""
    path = directory / f"themes_{language}.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append((item["text"], set(item["themes"])))
    return rows


def evaluate(themes: Themes, language: str, directory: Path = DATA_DIR) -> dict[str, Score]:
    """Per theme id (and "all", micro-averaged), the score of the rules on one language's labelled set."""
    counts = {theme.id: [0, 0, 0] for theme in themes}
    for text, expected in labelled(language, directory):
        got = themes.classify(text, language)
        for theme_id, tally in counts.items():
            if theme_id in got and theme_id in expected:
                tally[0] += 1
            elif theme_id in got:
                tally[1] += 1
            elif theme_id in expected:
                tally[2] += 1
    scores = {theme_id: Score(*tally) for theme_id, tally in counts.items()}
    scores["all"] = Score(*(sum(s[i] for s in counts.values()) for i in range(3)))
    return scores


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def table(themes: Themes, directory: Path = DATA_DIR) -> str:
    """A Markdown table: precision / recall per theme (rows) and language (columns), and the comment counts."""
    results = {language: evaluate(themes, language, directory) for language in LANGUAGES}
    sizes = {language: len(labelled(language, directory)) for language in LANGUAGES}
    header = "| Theme | " + " | ".join(f"{lang} (n={sizes[lang]})" for lang in LANGUAGES) + " |"
    lines = [header, "|---" * (len(LANGUAGES) + 1) + "|"]
    for theme_id in [theme.id for theme in themes] + ["all"]:
        cells = [
            f"{_percent(results[lang][theme_id].precision)} / {_percent(results[lang][theme_id].recall)}"
            for lang in LANGUAGES
        ]
        lines.append(f"| {theme_id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
