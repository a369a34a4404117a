"""`pulse themes check` and `pulse themes evaluate`, run as a user runs them; a broken themes file stops start-up
with its faults listed."""

from __future__ import annotations

import shutil

import pytest

from pulse.app import create_app
from pulse.catalog import CatalogError
from pulse.themes import FILE
from tests.conftest import make_settings
from tests.test_cli import ROOT, pulse


def _broken_copy(tmp_path):
    folder = tmp_path / "surveys"
    shutil.copytree(ROOT / "surveys", folder)
    path = folder / FILE
    path.write_text(path.read_text(encoding="utf-8").replace('id = "price"', 'id = "Price!"'), encoding="utf-8")
    return folder


def test_evaluate_prints_precision_and_recall_per_theme_and_language():
    result = pulse("themes", "evaluate")
    assert result.returncode == 0, result.stderr
    assert "| Theme | en (n=" in result.stdout and "sl (n=" in result.stdout
    assert "| delivery |" in result.stdout and "| all |" in result.stdout


def test_check_says_what_is_wrong_with_the_file(tmp_path):
    good = pulse("themes", "check")
    assert good.returncode == 0 and "7 themes" in good.stdout
    bad = pulse("themes", "check", PULSE_SURVEYS_DIR=str(_broken_copy(tmp_path)))
    assert bad.returncode == 1
    assert (
        "surveys/insights/themes.toml: themes[2].id: must be lowercase letters, digits and underscores, "
        "starting with a letter" in bad.stderr
    )


def test_a_broken_themes_file_stops_start_up(tmp_path):
    settings = make_settings("sqlite://unused.sqlite3", PULSE_SURVEYS_DIR=str(_broken_copy(tmp_path)))
    with pytest.raises(CatalogError) as raised:
        create_app(settings)
    assert any("themes[2].id" in message for message in raised.value.messages)
