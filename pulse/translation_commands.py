"""`pulse surveys` actions for translations: the stale check, mark-current, export- and import-translations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pulse import translation_files, translations
from pulse.catalog import Catalog, load_catalog
from pulse.settings import Settings
from pulse.translations import STALE, TRANSLATED, UNRECORDED

WHY = {
    STALE: "stale: the English text changed since it was translated",
    UNRECORDED: "unrecorded: no record of the English text it was translated from",
}


def print_stale(catalog: Catalog, settings: Settings) -> int:
    """Warn about each stale or unrecorded translation (per language and key); return how many are stale."""
    found = [e for e in translations.report(catalog, settings.surveys_dir) if e.state != translations.CURRENT]
    for entry in found:
        print(f"warn  {entry.locale}  {entry.context}: {WHY[entry.state]}")
    stale = sum(1 for e in found if e.state == STALE)
    if stale:
        shown = "the English text is sent instead" if settings.stale_translations == "english" else "sent as they are"
        print(
            f"{stale} stale translation(s) ({shown}; PULSE_STALE_TRANSLATIONS={settings.stale_translations}). "
            "Have them updated (pulse surveys export-translations), or after checking them run "
            "`pulse surveys mark-current`."
        )
    if any(e.state == UNRECORDED for e in found):
        print("Record the English text of the unrecorded ones, once checked, with `pulse surveys mark-current`.")
    return stale


def cmd_mark_current(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.surveys_dir)
    unknown = sorted(set(args.survey or ()) - set(catalog.surveys))
    if unknown:
        print(f"Error: no survey {', '.join(unknown)} (surveys: {', '.join(catalog.surveys)}).", file=sys.stderr)
        return 2
    changed = translations.mark_current(
        catalog,
        settings.surveys_dir,
        locales=tuple(args.lang or TRANSLATED),
        survey_ids=tuple(args.survey or ()),
        keys=tuple(args.key or ()),
    )
    for entry in changed:
        print(f"current  {entry.locale}  {entry.context} (was {entry.state})")
    print(f"Marked {len(changed)} translation(s) as current.")
    return 0


def _format(args: argparse.Namespace, name: str) -> str:
    if args.format:
        return args.format
    return "xliff" if Path(name).suffix.lower() in {".xlf", ".xliff"} else "po"


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.surveys_dir)
    data = translation_files.export(catalog, settings.surveys_dir, args.lang, _format(args, args.out))
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.out).write_bytes(data)
        count = sum(1 for e in translations.report(catalog, settings.surveys_dir) if e.locale == args.lang)
        print(f"Wrote {count} {args.lang} text(s) to {args.out}.")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.surveys_dir)
    data = Path(args.file).read_bytes()
    fmt = args.format or ("xliff" if Path(args.file).suffix.lower() in {".xlf", ".xliff"} else None)
    result = translation_files.import_file(catalog, settings.surveys_dir, data, locale=args.lang, fmt=fmt)
    for context in result.still_stale:
        print(f"still stale  {result.locale}  {context}: fuzzy, or translated from an older English text")
    for context in result.untranslated:
        print(f"skipped  {result.locale}  {context}: empty in the file")
    print(
        f"Imported {result.locale}: {len(result.changed)} text(s) changed, {len(result.marked_current)} marked "
        f"current, {len(result.still_stale)} still stale. Restart Pulse to send the new wording."
    )
    return 0


def write_demo_copy(settings: Settings, target: str) -> None:
    """`pulse demo --surveys-copy DIR`: the survey folder copied with one stale translation, and how to see it."""
    stale = translations.write_demo_copy(settings.surveys_dir, target)
    print(
        f"Wrote a copy of the surveys to {target} in which the English text of {stale.context} changed after its "
        f"{stale.locale} translation. Serve it with PULSE_SURVEYS_DIR={target} to see the stale translation on "
        f"Admin > Surveys (the surveys in {settings.surveys_dir} are unchanged)."
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the translation actions under `pulse surveys`."""
    mark = commands.add_parser(
        "mark-current", help="Record today's English text as the source of translations (after checking them)."
    )
    mark.add_argument("--lang", action="append", choices=TRANSLATED, help="Only this language (repeatable).")
    mark.add_argument("--survey", action="append", help="Only this survey id (repeatable).")
    mark.add_argument("--key", action="append", help="Only this text, e.g. questions.recommend.text (repeatable).")
    mark.set_defaults(func=cmd_mark_current)
    export = commands.add_parser("export-translations", help="Write one language's survey texts as PO or XLIFF 1.2.")
    export.add_argument("--lang", required=True, choices=TRANSLATED)
    export.add_argument("--out", required=True, help="File to write (.po, or .xlf/.xliff), or - for stdout.")
    export.add_argument("--format", choices=translation_files.FORMATS, help="Default: from --out's suffix, else po.")
    export.set_defaults(func=cmd_export)
    imports = commands.add_parser(
        "import-translations", help="Write a translator's PO or XLIFF file back into surveys/*.toml."
    )
    imports.add_argument("file", help="The .po or .xlf/.xliff file.")
    imports.add_argument("--lang", choices=TRANSLATED, help="Refuse the file unless it is for this language.")
    imports.add_argument("--format", choices=translation_files.FORMATS, help="Default: from the file.")
    imports.set_defaults(func=cmd_import)
