"""Themes of comments: inflected words match their lemmas, a comment carries several themes or none, the file is
checked with messages that say what is wrong, and a new theme needs nothing but an edit of the file."""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import pytest

from pulse import themes
from pulse.catalog import CatalogError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped() -> themes.Themes:
    return themes.load(ROOT / "surveys")


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        ("en", "The courier was late and the invoice was wrong", {"delivery", "billing"}),
        ("pl", "Konsultantki były niemiłe, a przesyłkę dostarczono po tygodniu", {"staff_attitude", "delivery"}),
        ("it", "Le fatture arrivano doppie e l'applicazione si blocca", {"billing", "app_website"}),
        ("sl", "Pošiljko so dostavili pozno, cene pa so previsoke", {"delivery", "price"}),
        ("pl-PL", "Za drogo", {"price"}),  # a regional locale uses its language's rules
        ("en", "All good, thank you!", set()),
        ("sl", "", set()),
    ],
)
def test_classify_finds_the_themes_of_inflected_words(shipped, locale, text, expected):
    assert themes.classify(text, locale, shipped) == expected


def test_a_locale_without_rules_is_read_with_the_english_ones(shipped):
    assert themes.classify("The price is too high", "de", shipped) == {"price"}


def test_every_shipped_theme_has_a_label_in_every_language(shipped):
    assert {t.id for t in shipped} >= {
        "waiting_time", "staff_attitude", "price", "product_quality", "delivery", "billing", "app_website",
    }  # fmt: skip
    for theme in shipped:
        assert set(theme.labels) == set(themes.LANGUAGES)
    assert shipped.get("delivery").label("pl") == "Dostawa"


NEW_THEME = """
[[themes]]
id = "parking"

[themes.label]
en = "Parking"
pl = "Parking"
it = "Parcheggio"
sl = "Parkiranje"

[themes.rules.en]
lemmas = ["parking", "park"]

[themes.rules.pl]
lemmas = ["parking", "parkować", "zaparkować"]

[themes.rules.it]
lemmas = ["parcheggio", "parcheggiare"]

[themes.rules.sl]
lemmas = ["parkirišče", "parkirati"]
phrases = ["parkirno mesto"]
"""


def test_a_new_theme_needs_only_an_edit_of_the_file(tmp_path):
    folder = tmp_path / "surveys"
    (folder / "insights").mkdir(parents=True)
    shutil.copy(ROOT / "surveys" / themes.FILE, folder / themes.FILE)
    before = themes.load(folder)
    assert "parking" not in {t.id for t in before}
    with (folder / themes.FILE).open("a", encoding="utf-8") as file:
        file.write(NEW_THEME)
    after = themes.load(folder)  # read again: the file changed
    assert after.get("parking").label("it") == "Parcheggio"
    assert themes.classify("Nie było gdzie zaparkować", "pl", after) == {"parking"}
    assert themes.classify("Ni bilo prostih parkirnih mest", "sl", after) == {"parking"}  # phrase by its lemmas
    assert themes.classify("Impossibile parcheggiare, e il prezzo è alto", "it", after) == {"parking", "price"}


def test_no_file_means_no_themes(tmp_path):
    assert len(themes.load(tmp_path)) == 0


HEAD = '[[themes]]\nid = "x"\nlabel = {en = "x", pl = "x", it = "x", sl = "x"}\n[themes.rules.en]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("themes = 3", "themes: must list at least one theme as [[themes]]"),
        ("[[themes]\n", "(file): not valid TOML"),
        (
            '[[themes]]\nid = "Bad Id"\nlabel = {en = "x", pl = "x", it = "x", sl = "x"}\n',
            "themes[0].id: must be lowercase letters, digits and underscores, starting with a letter",
        ),
        (
            '[[themes]]\nid = "x"\nlabel = {en = "x", pl = "x", it = "x"}\n',
            "themes[0] (x).label.sl: must be a label of 1 to 80 characters",
        ),
        (
            HEAD + 'lemmas = ["two words"]\n',
            "themes[0] (x).rules.en.lemmas[0]: 'two words' has several words: put it under phrases",
        ),
        (
            HEAD + 'lemmas = ["a"]\n',
            "themes[0] (x).rules.pl: missing: every theme needs rules in every language",
        ),
        (
            HEAD + 'stems = ["a"]\n',
            "themes[0] (x).rules.en.stems: unknown key (expected lemmas, forms, prefixes, phrases)",
        ),
        (
            HEAD + 'prefixes = ["ab"]\n',
            "themes[0] (x).rules.en.prefixes[0]: 'ab' is too short for a prefix (3 letters at least)",
        ),
    ],
)
def test_the_loader_says_what_is_wrong(text, message):
    with pytest.raises(CatalogError) as raised:
        themes.parse(text.encode(), "surveys/insights/themes.toml")
    assert f"surveys/insights/themes.toml: {message}" in "\n".join(raised.value.messages)


def test_a_theme_id_used_twice_is_refused():
    one = NEW_THEME
    with pytest.raises(CatalogError) as raised:
        themes.parse((one + one).encode(), "t.toml")
    assert "t.toml: themes[1].id: 'parking' is already used by another theme" in raised.value.messages


def test_a_few_thousand_comments_classify_fast_enough_for_a_page(shipped):
    rows = [
        (text, language)
        for language in themes.LANGUAGES
        for text in (
            Path(ROOT / "tests" / "data" / f"themes_{language}.jsonl").read_text(encoding="utf-8")
        ).splitlines()
    ]
    for text, language in rows:  # load each language's dictionary once (Polish takes seconds)
        shipped.classify(text, language)
    fresh = themes.Themes(shipped.themes)  # an empty comment cache; the lemma cache stays warm, as in a server
    comments = [(f"{text} #{i}", language) for i in range(4) for text, language in rows]  # ~3,500 distinct
    started = time.process_time()
    for text, language in comments:
        fresh.classify(text, language)
    first = time.process_time() - started
    started = time.process_time()
    for text, language in comments:
        fresh.classify(text, language)
    again = time.process_time() - started
    assert len(comments) > 3000
    assert first < 2.0  # CPU time of this process; measured 0.15 s for 3,492 comments
    assert again < 0.1  # cached: a dictionary lookup per comment


class Survey:
    """The two things summarize reads of a survey: its bands, and the band of a score."""

    def __init__(self):
        from pulse.catalog import Band

        self.bands = (
            Band("detractor", 0, 6, True, {}),
            Band("passive", 7, 8, False, {}),
            Band("promoter", 9, 10, False, {}),
        )

    def band_for(self, score):
        return next(band for band in self.bands if score in band)


def test_summary_counts_themes_by_score_band_and_week(shipped):
    comments = [
        themes.Comment("Delivery was late and the courier rude", 2, "en", date(2026, 11, 18)),
        themes.Comment("Dostawa szybka", 10, "pl", date(2026, 11, 10)),
        themes.Comment("Cena OK, dostava hitra", 8, "sl", date(2026, 11, 3)),
        themes.Comment("Nothing to add", 9, "en", date(2026, 11, 3)),
    ]
    result = themes.summarize(shipped, Survey(), comments, date(2026, 11, 1), date(2026, 11, 30))
    assert result["interval"] == "week"
    assert result["comments"] == {"unhappy": 1, "top": 2, "other": 1, "total": 4}
    assert result["untagged"] == {"unhappy": 0, "top": 1, "other": 0}
    delivery = next(row for row in result["themes"] if row["id"] == "delivery")
    assert delivery["counts"] == {"unhappy": 1, "top": 1, "other": 1}
    assert delivery["shares"] == {"unhappy": 1.0, "top": 0.5, "other": 1.0}
    assert [p["count"] for p in delivery["trend"]] == [0, 1, 1, 1, 0, 0]  # weeks from Monday 26 October to 30 November
    assert [e["group"] for e in delivery["examples"]] == ["unhappy", "top", "other"]
    assert result["themes"][0]["id"] in {"delivery", "staff_attitude"}  # the most unhappy comments first


def test_a_file_broken_while_the_app_runs_keeps_the_last_good_themes(tmp_path):
    folder = tmp_path / "surveys"
    (folder / "insights").mkdir(parents=True)
    path = folder / themes.FILE
    path.write_text(NEW_THEME, encoding="utf-8")
    assert [t.id for t in themes.load(folder)] == ["parking"]
    path.write_text(NEW_THEME.replace('id = "parking"', 'id = "Parking!"') + "\n# edited\n", encoding="utf-8")
    assert [t.id for t in themes.load(folder)] == ["parking"]  # the log says what is wrong
    with pytest.raises(CatalogError):
        themes.parse(path.read_bytes(), "themes.toml")
