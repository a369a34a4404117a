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


def labelled(language: str, directory: Path = DATA_DIR, name: str = "themes") -> list[tuple[str, set[str]]]:
    """The labelled comments of one language: `name` "themes" (the rules were tuned on these) or
    "themes_holdout" (written after the rules were frozen, never used to tune them)."""
    path = directory / f"{name}_{language}.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append((item["text"], set(item["themes"])))
    return rows


def evaluate(themes: Themes, language: str, directory: Path = DATA_DIR, name: str = "themes") -> dict[str, Score]:
    """Per theme id (and "all", micro-averaged), the score of the rules on one language's labelled set."""
    counts = {theme.id: [0, 0, 0] for theme in themes}
    for text, expected in labelled(language, directory, name):
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


def table(themes: Themes, directory: Path = DATA_DIR, name: str = "themes") -> str:
    """A Markdown table: precision / recall per theme (rows) and language (columns), and the comment counts."""
    results = {language: evaluate(themes, language, directory, name) for language in LANGUAGES}
    sizes = {language: len(labelled(language, directory, name)) for language in LANGUAGES}
    header = "| Theme | " + " | ".join(f"{lang} (n={sizes[lang]})" for lang in LANGUAGES) + " |"
    lines = [header, "|---" * (len(LANGUAGES) + 1) + "|"]
    for theme_id in [theme.id for theme in themes] + ["all"]:
        cells = [
            f"{_percent(results[lang][theme_id].precision)} / {_percent(results[lang][theme_id].recall)}"
            for lang in LANGUAGES
        ]
        lines.append(f"| {theme_id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_check(settings, args) -> int:
    """`pulse themes check`: validate the themes file; CatalogError (caught by main) lists every fault."""
    from pulse.themes import load, path_in

    path = path_in(settings.surveys_dir)
    if not path.is_file():
        print(f"No themes file at {path}: the themes page will say so.")
        return 1
    found = load(settings.surveys_dir)
    print(f"{path}: {len(found)} themes, each with rules in {', '.join(LANGUAGES)}.")
    return 0


def cmd_evaluate(settings, args) -> int:
    """`pulse themes evaluate`: precision / recall of the rules on the labelled comments, as a Markdown table."""
    from pulse.themes import load

    directory = Path(args.data) if args.data else DATA_DIR
    missing = [lang for lang in LANGUAGES if not (directory / f"themes_{lang}.jsonl").is_file()]
    if missing:
        print(f"Error: no labelled comments for {', '.join(missing)} in {directory} (use --data DIR).")
        return 1
    found = load(settings.surveys_dir)
    if not len(found):
        print("Error: no themes file (surveys/insights/themes.toml) to evaluate.")
        return 1
    print(f"Precision / recall of each theme per language, labelled comments in {directory}.\n")
    print("The set the rules were tuned on (themes_<language>.jsonl):\n")
    print(table(found, directory))
    if all((directory / f"themes_holdout_{lang}.jsonl").is_file() for lang in LANGUAGES):
        print("\nHeld out, never used to tune the rules (themes_holdout_<language>.jsonl):\n")
        print(table(found, directory, "themes_holdout"))
    return 0


def add_commands(commands) -> None:
    """`pulse themes check` and `pulse themes evaluate`, added to the CLI's subcommands."""
    parser = commands.add_parser("themes", help="Check the comment themes, and measure them on labelled comments.")
    actions = parser.add_subparsers(dest="themes_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="Validate surveys/insights/themes.toml; exit 1 with every fault found.")
    check.set_defaults(func=cmd_check)
    evaluate = actions.add_parser("evaluate", help="Print precision and recall per theme and language.")
    evaluate.add_argument("--data", help="Folder of themes_<language>.jsonl (default: the repository's tests/data).")
    evaluate.set_defaults(func=cmd_evaluate)
