"""How each language addresses its reader, and catalog rules a translator keeps: customers and employees are
addressed formally (Lei, Pan/Pani, vikanje), staff screens in Italian with tu, in Polish without Pan/Pani; no
"dal 8" elisions before an Italian date; ranges with an en dash; Italian with two plural forms through `make catalog`.

Which reader sees a message comes from where the code uses it (an extraction with locations), so a new string
is checked as soon as it is translated."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = next(
    line.split(":=", 1)[1].split()
    for line in (ROOT / "Makefile").read_text().splitlines()
    if line.startswith("BABEL_KEYWORDS")
)  # the ones `make catalog` uses

# Pages and e-mails for customers and employees; error pages are seen by everyone.
PUBLIC = (
    "pulse/templates/public/",
    "pulse/templates/email/survey.",
    "pulse/templates/email/pulse.",
    "pulse/web/public.py",
)
SHARED = ("pulse/templates/base.html", "pulse/templates/error.html", "pulse/web/errors.py")
STAFF_MAIL_FUNCTIONS = {"case_message", "reset_message"}  # in pulse/mail.py; the rest of it writes to customers

# Small, explicit lists of words that give a register away (whole words).
IT_INFORMAL = re.compile(
    r"\b(tu|ti|tuo|tua|tuoi|tue|puoi|hai|vuoi|scegli|apri|rispondi|scrivi|riprova|inserisci|accedi|lascia)\b",
    re.IGNORECASE,
)
IT_FORMAL = re.compile(
    r"\b(Lei|Suo|Sua|Suoi|Sue)\b"  # capitalised pronouns; "La"/"Le" only inside a sentence or glued to a verb
    r"|(?<=[a-zàèéìòù,] )(La|Le)\b|[a-z](La|Le)\b"
    r"|(?i:\b(la preghiamo|ha dimenticato|scelga|apra|inserisca|riprovi|attenda|acceda|aggiunga|riavvii|scriva|"
    r"ripeta|chieda|scorra|veda|ricominci|copi|avvii|renda|ignori|intervenga|non ha accesso)\b)"
)
PL_FORMAL = re.compile(r"\b(Pan|Pana|Panu|Panem|Pani|Panią|Państwo|Państwa)\b")
PL_POLITE_REQUEST = re.compile(r"\b(proszę|prosimy)\b", re.IGNORECASE)  # staff screens say "Wybierz…"
PL_INFORMAL = re.compile(
    r"\b(twój|twoja|twoje|twoją|twojego|twoich|twoim|tobie|ciebie|cię|spróbuj|wybierz|kliknij|otwórz|wpisz)\b"
    r"|\b(wypisz|zaloguj) się\b",
    re.IGNORECASE,
)
SL_INFORMAL = re.compile(
    r"\b(tvoj|tvoja|tvoje|tvojo|tvojega|tebi|tebe|izberi|shrani|pošlji|odpri|poskusi|prikaži|vpiši|klikni|"
    r"dodaj|uredi|prijavi se|odjavi se)\b",
    re.IGNORECASE,
)


def _staff_functions() -> list[tuple[int, int]]:
    tree = ast.parse((ROOT / "pulse" / "mail.py").read_text(encoding="utf-8"))
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in STAFF_MAIL_FUNCTIONS
    ]


def _audience(path: str, line: int | None, staff_mail: list[tuple[int, int]]) -> str:
    if path.startswith(PUBLIC):
        return "public"
    if path in SHARED:
        return "shared"
    if path == "pulse/mail.py":
        inside = any(start <= (line or 0) <= end for start, end in staff_mail)
        return "staff" if inside else "public"
    return "staff"


@cache
def readers() -> dict[str, set[str]]:
    """msgid -> the readers it is shown to (public, shared, staff), from an extraction with locations."""
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    pot = out / "register-where.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", *KEYWORDS, "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    staff_mail = _staff_functions()
    with pot.open("rb") as handle:
        return {
            (m.id if isinstance(m.id, str) else m.id[0]): {_audience(p, n, staff_mail) for p, n in m.locations}
            for m in read_po(handle)
            if m.id
        }


def translations(locale: str) -> list[tuple[str, str]]:
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    found = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found.extend((key, s) for s in strings if s)
    return found


def offences(locale: str, pattern: re.Pattern, audiences: set[str]) -> list[str]:
    where = readers()
    return [
        f"{key!r} -> {text!r}"
        for key, text in translations(locale)
        if where.get(key, set()) & audiences and pattern.search(text)
    ]


def test_italian_addresses_customers_and_employees_with_lei():
    assert offences("it", IT_INFORMAL, {"public", "shared"}) == []


def test_italian_staff_screens_say_tu():
    assert offences("it", IT_FORMAL, {"staff", "shared"}) == []


def test_polish_staff_screens_have_no_pan_or_pani():
    assert offences("pl", PL_FORMAL, {"staff", "shared"}) == []


def test_polish_staff_screens_use_plain_imperatives():
    assert offences("pl", PL_POLITE_REQUEST, {"staff"}) == []


def test_polish_customers_and_employees_are_not_addressed_informally():
    assert offences("pl", PL_INFORMAL, {"public", "shared"}) == []


def test_slovenian_says_vi_everywhere():
    assert offences("sl", SL_INFORMAL, {"public", "shared", "staff"}) == []


def test_the_audience_map_knows_the_pages():
    where = readers()
    assert where["Send my answers"] == {"public"}
    assert where["You receive this e-mail because you recently made a purchase."] == {"public"}
    assert where["Open the case: %(url)s"] == {"staff"}
    assert where["Page not found"] == {"shared"}


def test_italian_never_elides_before_a_date():
    # "dal %(date)s" reads "dal 8 mar": the article must not touch a placeholder that may start with a vowel sound
    glued = re.compile(r"\b(dal|al|del|nel|sul|dall'|all')\s*%\(")
    assert [f"{k!r} -> {t!r}" for k, t in translations("it") if glued.search(t)] == []


@pytest.mark.parametrize("locale", ["pl", "it", "sl"])
def test_ranges_use_an_en_dash(locale):
    hyphen = re.compile(r"\d ?- ?\d")
    assert [f"{k!r} -> {t!r}" for k, t in translations(locale) if hyphen.search(t)] == []


def test_survey_files_write_ranges_with_an_en_dash():
    hyphen = re.compile(r"\d ?- ?\d")
    for path in sorted((ROOT / "surveys").glob("*.toml")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if hyphen.search(line)]
        assert lines == [], path.name


def test_italian_has_two_plural_forms_and_make_catalog_keeps_them(tmp_path):
    copy = tmp_path / "locales"
    shutil.copytree(ROOT / "locales", copy, ignore=shutil.ignore_patterns("*.mo"))
    subprocess.run(
        ["make", "-o", ".venv/.installed", "catalog", f"LOCALES_DIR={copy}", f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for path in (ROOT / "locales" / "it" / "LC_MESSAGES" / "messages.po", copy / "it" / "LC_MESSAGES" / "messages.po"):
        with path.open("rb") as handle:
            catalog = read_po(handle)
        assert catalog.plural_forms == "nplurals=2; plural=(n != 1);", path
        wrong = [m.id[0] for m in catalog if m.pluralizable and len(m.string) != 2]
        assert wrong == [], path


@pytest.mark.parametrize("locale", ["pl", "it", "sl"])
def test_each_metric_has_one_name_the_title_and_the_chart_axis_share(locale):
    from pulse import i18n
    from pulse.catalog import load_catalog

    surveys = load_catalog(ROOT / "surveys")
    titles = {kind: surveys.get(kind).title[locale] for kind in ("nps", "csat", "ces")}
    assert i18n.translate(locale, "Net Promoter Score") == titles["nps"]
    assert i18n.translate(locale, "Satisfied (4–5), %%").startswith(titles["csat"])
    assert i18n.translate(locale, "Customers' CSAT, %%").startswith(titles["csat"])
    assert i18n.translate(locale, "Ease of effort (1–7)").startswith(titles["ces"].removesuffix(")"))


@pytest.mark.parametrize(
    ("locale", "msgid", "wording"),
    [
        ("pl", "Satisfied but not loyal", "Zadowoleni, ale nie lojalni"),
        ("pl", "Neither: at risk", "Ani zadowoleni, ani lojalni: ryzyko odejścia"),
        ("sl", "Optional. Your comment goes to the team that served you.", "ki je obravnavala vašo zadevo"),
        ("sl", "You receive this e-mail because we recently reviewed your account with you.", "naše sodelovanje"),
        ("sl", "Delivery", "Pošiljanje e-pošte"),
    ],
)
def test_the_reviewed_wordings_stay(locale, msgid, wording):
    from pulse import i18n

    assert wording in i18n.translate(locale, msgid)


def test_survey_wording_does_not_assume_the_readers_gender():
    text = (ROOT / "surveys" / "csat.toml").read_text(encoding="utf-8")
    assert "/a" not in text and "zadowolona" not in text
    assert "Jak ocenia Pan/Pani ostatnią obsługę w firmie {company}?" in text
    assert "mi ha reso facile" in (ROOT / "surveys" / "ces.toml").read_text(encoding="utf-8")
