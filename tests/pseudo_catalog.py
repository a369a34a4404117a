"""Pseudo-translations for messages the catalogs do not translate yet: the real catalogs of pl, it and sl plus a
marked translation ("⟦pl⟧ Owner: %(owner)s.") of each msgid a test names. A page that shows English where it
should go through gettext with the msgid and its variables then differs from i18n.translate, before any
translator has filled the catalog."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from pulse import i18n
from tests.conftest import ROOT

PSEUDO_LOCALES = ("pl", "it", "sl")


def install(msgids: list[str], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make i18n read catalogs (written under `folder`) in which each of `msgids` is translated; undone with
    `monkeypatch` and `reset`."""
    for locale in PSEUDO_LOCALES:
        with open(ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po", "rb") as file:
            catalog = read_po(file, locale=locale)
        for msgid in msgids:
            found = catalog.get(msgid)
            if found is None or not found.string or found.fuzzy:
                catalog.add(msgid, f"⟦{locale}⟧ {msgid}")
        target = folder / locale / "LC_MESSAGES"
        target.mkdir(parents=True, exist_ok=True)
        with open(target / "messages.mo", "wb") as file:
            write_mo(file, catalog)
    monkeypatch.setattr(i18n, "LOCALES_DIR", folder)
    i18n.translations.cache_clear()


def reset() -> None:
    """Forget the pseudo catalogs: the next test reads the real ones again."""
    i18n.translations.cache_clear()


def marked_messages(*modules: str) -> list[str]:
    """Every literal msgid given to N_() in these source files (paths from the repository root)."""
    found: list[str] = []
    for module in modules:
        tree = ast.parse(Path(ROOT / module).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "N_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append(node.args[0].value)
    return found
