"""The survey catalog: the shipped surveys load, and every kind of fault stops start-up with its message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pulse.catalog import CatalogError, load_catalog
from pulse.settings import LOCALES

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_surveys_load_with_every_locale(catalog):
    assert {s.id for s in catalog} == {"nps", "csat", "ces", "enps"}
    scales = {s.id: (s.scale_min, s.scale_max) for s in catalog}
    assert scales == {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "enps": (0, 10)}
    for survey in catalog:
        for texts in [
            survey.title,
            survey.subject,
            survey.question.text,
            survey.low_label,
            survey.high_label,
        ]:
            assert set(texts) == set(LOCALES)
        for band in survey.bands:
            assert set(band.why) == set(LOCALES)
    assert catalog.get("enps").audience == "employee"
    assert catalog.get("enps").trigger is None


def test_unhappy_bands_match_the_defaults(catalog):
    unhappy = {s.id: [n for n in s.scores if s.is_unhappy(n)] for s in catalog}
    assert unhappy == {
        "nps": [0, 1, 2, 3, 4, 5, 6],
        "enps": [0, 1, 2, 3, 4, 5, 6],
        "csat": [1, 2],
        "ces": [1, 2, 3],
    }


def test_touchpoint_types_pick_surveys_by_priority(catalog):
    assert [s.id for s in catalog.for_touchpoint("purchase")] == ["nps"]
    assert [s.id for s in catalog.for_touchpoint("support_ticket_closed")] == ["csat"]
    assert catalog.for_touchpoint("unknown_type") == []


@pytest.fixture
def survey_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "surveys"
    shutil.copytree(ROOT / "surveys", folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def messages(folder: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(folder)
    return caught.value.messages


def test_unknown_key(survey_dir):
    edit(survey_dir, "nps.toml", 'audience = "customer"', 'audience = "customer"\ncolour = "blue"')
    assert messages(survey_dir) == ["surveys/nps.toml: colour: unknown key"]


def test_missing_translation(survey_dir):
    text = (survey_dir / "csat.toml").read_text(encoding="utf-8")
    start = text.index("[questions.text]")
    sl_line = next(line for line in text[start:].splitlines() if line.startswith("sl = "))
    edit(survey_dir, "csat.toml", text[start:].split(sl_line)[0] + sl_line, text[start:].split(sl_line)[0])
    assert messages(survey_dir) == ["surveys/csat.toml: questions[0].text.sl: missing translation"]


def test_scale_out_of_range(survey_dir):
    edit(survey_dir, "nps.toml", "max = 10", "max = 11")
    assert messages(survey_dir) == [
        "surveys/nps.toml: scale.max: must be between 0 and 10, got 11",
        "surveys/nps.toml: scale: a nps survey is scored 0 to 10, got 0 to 11",
    ]


def test_duplicate_id(survey_dir):
    shutil.copyfile(survey_dir / "nps.toml", survey_dir / "nps_copy.toml")
    assert messages(survey_dir) == ["surveys/nps_copy.toml: id: 'nps' is already defined in surveys/nps.toml"]


def test_bands_must_cover_the_scale(survey_dir):
    edit(survey_dir, "csat.toml", "from = 3\nto = 3", "from = 4\nto = 4")
    assert "surveys/csat.toml: bands[1].from: must be 3 so the bands cover the scale without gaps or overlap" in (
        messages(survey_dir)
    )


def test_unknown_placeholder(survey_dir):
    edit(survey_dir, "nps.toml", "{company} to a friend", "{brand} to a friend")
    assert messages(survey_dir) == [
        "surveys/nps.toml: questions[0].text.en: unknown placeholder {brand} (allowed: {company})"
    ]


def test_employee_surveys_have_no_trigger(survey_dir):
    text = (survey_dir / "csat.toml").read_text(encoding="utf-8")
    trigger = text[text.index("[trigger]") :]
    (survey_dir / "enps.toml").write_text((survey_dir / "enps.toml").read_text() + "\n" + trigger)
    assert messages(survey_dir) == [
        "surveys/enps.toml: trigger: employee surveys are sent on a schedule, not by touchpoints"
    ]


def test_invalid_toml_names_the_file(survey_dir):
    (survey_dir / "broken.toml").write_text('id = "broken\n')
    [message] = messages(survey_dir)
    assert message.startswith("surveys/broken.toml: (file): not valid TOML: ")


def test_every_fault_of_a_file_is_listed_at_once(survey_dir):
    edit(survey_dir, "ces.toml", 'kind = "ces"', 'kind = "effort"')
    edit(survey_dir, "ces.toml", "sampling_rate = 1.0", "sampling_rate = 1.5")
    assert messages(survey_dir) == [
        "surveys/ces.toml: kind: must be one of nps, csat, ces, enps, got 'effort'",
        "surveys/ces.toml: trigger.sampling_rate: must be a number between 0 and 1",
    ]
