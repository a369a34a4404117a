"""The at-risk weights file: the shipped file holds the documented defaults, a missing file means the defaults,
and a wrong key or value stops start-up with a sentence naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pulse import risk_config
from pulse.app import create_app
from pulse.catalog import CatalogError
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent


def faults(text: str) -> list[str]:
    with pytest.raises(CatalogError) as refused:
        risk_config.parse(text.encode(), "surveys/insights/risk.toml")
    return refused.value.messages


def test_the_shipped_file_holds_exactly_the_defaults():
    shipped = risk_config.load(ROOT / "surveys")
    assert shipped.source == "surveys/insights/risk.toml"
    assert {s: dict(v) for s, v in shipped.values.items()} == {
        s: dict(v) for s, v in risk_config.defaults().values.items()
    }


def test_a_missing_file_or_key_takes_the_default(tmp_path):
    assert risk_config.load(tmp_path).threshold == 40
    config = risk_config.parse(b"threshold = 60\n[complaints]\ntypes = ['complaint_*', 'refund_requested']\n", "x")
    assert (config.threshold, config["complaints"]["types"], config["detractor"]["weight"]) == (
        60,
        ("complaint_*", "refund_requested"),
        30,
    )


def test_every_fault_is_told_with_its_key_and_what_to_do():
    assert faults("threshold = 0\n[score_drop]\nwieght = 3\nmin_drop = 'a lot'\n[colour]\nx = 1\n") == [
        "surveys/insights/risk.toml: threshold: must be a whole number from 1 to 1000",
        "surveys/insights/risk.toml: score_drop.wieght: no such setting ([score_drop] takes weight, min_drop)",
        "surveys/insights/risk.toml: score_drop.min_drop: must be a number from 0.01 to 1",
        "surveys/insights/risk.toml: [colour]: no such section (the sections are score_drop, below_segment,"
        " unanswered, fewer_touchpoints, open_case, detractor, complaints)",
    ]
    assert faults('[below_segment]\nattribute = "plan\'; DROP TABLE contact"\n') == [
        "surveys/insights/risk.toml: below_segment.attribute: must be a contact attribute name (letters, digits, _)"
    ]
    assert faults("[complaints]\ntypes = []\n") == [
        "surveys/insights/risk.toml: complaints.types: must list touchpoint types (a-z, 0-9, _ and * for any text),"
        ' e.g. ["complaint_*"]'
    ]
    assert faults("recent_days = 400\n") == [
        "surveys/insights/risk.toml: history_days: must be more than recent_days (400)"
    ]
    assert faults("threshold = true\n") == [
        "surveys/insights/risk.toml: threshold: must be a whole number from 1 to 1000"
    ]
    assert faults("threshold = [")[0].startswith("surveys/insights/risk.toml: not valid TOML (")


def test_a_wrong_weights_file_stops_start_up(tmp_path, database_url):
    surveys = tmp_path / "surveys"
    shutil.copytree(ROOT / "surveys", surveys)
    (surveys / "insights" / "risk.toml").write_text("[detractor]\nweight = -5\n")
    with pytest.raises(CatalogError) as refused:
        create_app(make_settings(database_url, PULSE_SURVEYS_DIR=str(surveys)))
    assert refused.value.messages == [
        "surveys/insights/risk.toml: detractor.weight: must be a whole number from 0 to 1000"
    ]


def test_surveys_check_checks_the_weights_file_too(tmp_path):
    from tests.test_cli import pulse

    ok = pulse("surveys", "check")
    assert "ok  surveys/insights/risk.toml: customers-at-risk weights (listed from 40 points)" in ok.stdout
    surveys = tmp_path / "surveys"
    shutil.copytree(ROOT / "surveys", surveys)
    (surveys / "insights" / "risk.toml").write_text("threshold = 'high'\n")
    bad = pulse("surveys", "check", PULSE_SURVEYS_DIR=str(surveys))
    assert bad.returncode == 1
    assert "  surveys/insights/risk.toml: threshold: must be a whole number from 1 to 1000" in bad.stderr
