"""Filters live in the URL: the main navigation and the language links carry them, and a bad one is told beside
its field on the same page (navigation and form kept), never a bare error page."""

from __future__ import annotations

import html
import re

from tests.conftest import sign_in

FILTERS = "team=support-warsaw&window=7d&interval=day&from=2026-06-01&to=2026-09-30"


def links(page: str, nav: str) -> dict[str, str]:
    """The links of one <nav> by their text, with their query unescaped as the browser reads it."""
    block = re.search(rf'<nav aria-label="{nav}"[^>]*>(.*?)</nav>', page, re.S).group(1)
    found = re.findall(r'href="([^"]*)"[^>]*>([^<]*)<', block)
    return {html.unescape(text).strip(): html.unescape(href) for href, text in found}


async def test_the_main_navigation_carries_the_shared_filters_and_drops_page_ones(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        overview = await alice.get(f"/dashboard?{FILTERS}")
        breakdown = await alice.get(f"/dashboard/breakdown?survey=csat&by=channel&{FILTERS}")
    assert overview.status_code == breakdown.status_code == 200
    for page in (overview.text, breakdown.text):
        nav = links(page, "Main")
        for name, path in (("Overview", "/dashboard"), ("Breakdown", "/dashboard/breakdown"),
                           ("Loyalty", "/dashboard/loyalty"), ("After the sale", "/dashboard/after-sale")):  # fmt: skip
            assert nav[name] == f"{path}?{FILTERS}"
    # the breakdown's own choices stay on the breakdown
    assert "survey=" not in links(breakdown.text, "Main")["Overview"]


async def test_the_language_links_keep_every_filter_and_replace_only_the_language(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get(f"/dashboard/breakdown?survey=csat&by=channel&{FILTERS}&lang=en")
    languages = links(page.text, "Language")
    assert languages["IT"] == f"?survey=csat&by=channel&{FILTERS}&lang=it"
    assert languages["PL"].count("lang=") == 1


async def test_a_shared_url_shows_the_same_view_in_a_fresh_session(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as first:
        mine = await first.get(f"/dashboard/breakdown?survey=csat&by=channel&{FILTERS}")
    async with sign_in(mail_app, "ana@example.com") as second:
        theirs = await second.get(f"/dashboard/breakdown?survey=csat&by=channel&{FILTERS}")
    for page in (mine.text, theirs.text):
        assert re.search(r'<option value="csat" selected>', page)
        assert re.search(r'<option value="channel" selected>', page)
        assert re.search(r'<option value="support-warsaw" selected>', page)
        assert re.search(r'<option value="7d" selected>', page)
        assert re.search(r'<option value="day" selected>', page)
        assert 'name="from" value="2026-06-01"' in page and 'name="to" value="2026-09-30"' in page


def field_message(page: str, name: str) -> str:
    """The message shown beside a field of the filter form (the element its aria-describedby names)."""
    field = re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field, field
    described = re.search(r'aria-describedby="([^"]+)"', field).group(1)
    return html.unescape(re.search(rf'id="{described}"[^>]*>([^<]*)<', page).group(1)).strip()


async def test_a_bad_range_is_told_beside_the_field_with_the_navigation_kept(mail_app, org):
    cases = [
        ("/dashboard?from=2026-09-01&to=2026-08-01", "to", "'Until' must be on or after 'Since'."),
        ("/dashboard/breakdown?from=2026-13-45", "from", "'Since' is not a date."),
        ("/dashboard/after-sale?to=yesterday", "to", "'Until' is not a date."),
        ("/dashboard/loyalty?from=2026-09-01&to=2026-08-01", "to", "'Until' must be on or after 'Since'."),
        ("/dashboard?window=9999d", "window", "'Window' must be from 1 to 730 days."),
        ("/dashboard?interval=fortnight", "interval", "'Interval' must be a day, a week or a month."),
    ]
    async with sign_in(mail_app, "alice@example.com") as alice:
        for url, name, message in cases:
            page = await alice.get(url)
            assert page.status_code == 400, url
            assert '<nav aria-label="Main"' in page.text, url
            assert '<form method="get" class="filters"' in page.text, url
            assert field_message(page.text, name) == message, url
            assert "This request could not be understood" not in page.text


async def test_date_fields_tell_the_browser_their_bounds(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard")
    for name in ("from", "to"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page.text).group(0)
        assert re.search(r'min="\d{4}-\d\d-\d\d"', field) and re.search(r'max="\d{4}-\d\d-\d\d"', field), field


async def test_after_the_sale_filters_by_date(mail_app, org):
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard/after-sale?survey=csat&from=2026-03-01&to=2026-04-30")
    assert page.status_code == 200
    assert "Answers from Mar 1, 2026 to Apr 30, 2026" in page.text
    assert 'name="from" value="2026-03-01"' in page.text
