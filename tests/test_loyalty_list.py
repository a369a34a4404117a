"""Loyalty: the "satisfied but not loyal" list filtered by team and period, in pages of 50, and a CSV of all of
it that a spreadsheet cannot run, each scoped to the teams a reader may see; a period's list cached per filter."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta

from pulse import insights, loyalty
from pulse.models import Contact, Invitation, Response
from tests.conftest import sign_in


async def satisfied_not_loyal(team, number: int, first: int = 1, when: date | None = None, name: str = "") -> None:
    """`number` customers of `team` who gave CSAT 5 and NPS 6 on `when` (counted: the latest answers are kept as
    when the answer path confirms them)."""
    day = when or datetime.now(UTC).date() - timedelta(days=3)
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    for n in range(first, first + number):
        contact = await Contact.create(external_id=f"L-{n:04d}", name=name or f"Customer {n}", email=f"l{n}@x.io")
        for survey_id, question, score in (("csat", "satisfaction", 5), ("nps", "recommend", 6)):
            invitation = await Invitation.create(
                survey_id=survey_id, contact=contact, locale="en", status="answered", answered_at=moment
            )
            response = await Response.create(
                survey_id=survey_id, invitation=invitation, question_id=question, score=score, locale="en",
                answered_at=moment, day=day, confirmed=True, team=team,
            )  # fmt: skip
            await loyalty.record(response)


def names(page: str) -> list[str]:
    table = re.search(r'<table class="table" id="satisfied-not-loyal">(.*?)</table>', page, re.S)
    if table is None:
        assert "Nobody in this group yet." in page
        return []
    return [html.unescape(n) for n in re.findall(r'<a href="/contacts/[^"]+">([^<]+)</a>', table.group(1))]


async def test_the_list_comes_in_pages_of_50_with_links_that_keep_the_filters(mail_app, org):
    await satisfied_not_loyal(org.warsaw, 120)
    async with sign_in(mail_app, "alice@example.com") as alice:
        first = await alice.get("/dashboard/loyalty?team=support-warsaw")
        third = await alice.get("/dashboard/loyalty?team=support-warsaw&page=3")
        beyond = await alice.get("/dashboard/loyalty?team=support-warsaw&page=9")
    assert len(names(first.text)) == 50 and len(names(third.text)) == 20
    assert "Page 1 of 3" in first.text and "Page 3 of 3" in third.text
    assert set(names(first.text)).isdisjoint(names(third.text))
    following = html.unescape(re.search(r'<a href="([^"]+)" rel="next"', first.text).group(1))
    assert "team=support-warsaw" in following and "page=2" in following
    assert beyond.status_code == 200 and "Page 3 of 3" in beyond.text


async def test_the_team_and_period_filters_narrow_the_list(mail_app, org):
    await satisfied_not_loyal(org.warsaw, 3, name="Warsaw customer")
    await satisfied_not_loyal(org.milan, 2, first=100, name="Milan customer")
    await satisfied_not_loyal(org.milan, 1, first=200, when=date(2025, 1, 10), name="Old Milan customer")
    async with sign_in(mail_app, "alice@example.com") as alice:
        everyone = names((await alice.get("/dashboard/loyalty")).text)
        milan = names((await alice.get("/dashboard/loyalty?team=support-milan")).text)
        month_ago = date.today() - timedelta(days=30)
        recent = names((await alice.get(f"/dashboard/loyalty?team=support-milan&from={month_ago}")).text)
        old = names((await alice.get("/dashboard/loyalty?from=2025-01-01&to=2025-01-31")).text)
    assert len(everyone) == 6
    assert sorted(milan) == ["Milan customer"] * 2 + ["Old Milan customer"]
    assert recent == ["Milan customer"] * 2
    assert old == ["Old Milan customer"]


async def test_a_manager_sees_and_downloads_only_their_teams(mail_app, org):
    await satisfied_not_loyal(org.warsaw, 2, name="Warsaw customer")
    await satisfied_not_loyal(org.milan, 2, first=100, name="Milan customer")
    async with sign_in(mail_app, "bob@example.com") as bob:
        page = await bob.get("/dashboard/loyalty?lang=en")
        download = await bob.get("/dashboard/loyalty.csv")
        other = await bob.get("/dashboard/loyalty.csv?team=support-milan")
    assert names(page.text) == ["Warsaw customer"] * 2
    rows = list(csv.reader(io.StringIO(download.text)))
    assert [r[1] for r in rows[1:]] == ["Warsaw customer"] * 2
    assert other.status_code == 403


async def test_the_csv_has_every_row_and_cannot_run_in_a_spreadsheet(mail_app, org):
    await satisfied_not_loyal(org.warsaw, 60)
    await satisfied_not_loyal(org.warsaw, 1, first=900, name='=HYPERLINK("http://evil","x")')
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = await alice.get("/dashboard/loyalty?team=support-warsaw")
        link = html.unescape(re.search(r'<a[^>]*href="(/dashboard/loyalty\.csv[^"]*)"', page.text).group(1))
        download = await alice.get(link)
    assert "team=support-warsaw" in link
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["external_id", "name", "email", "csat", "nps", "team", "last_answer_at"]
    assert len(rows) == 62
    assert ['\'=HYPERLINK("http://evil","x")'] == [r[1] for r in rows if "HYPERLINK" in r[1]]


async def test_only_a_period_is_cached_and_each_filter_and_scope_apart(mail_app, org):
    insights._cache.clear()
    await satisfied_not_loyal(org.warsaw, 2, name="Warsaw customer")
    await satisfied_not_loyal(org.milan, 3, first=100, name="Milan customer")
    async with sign_in(mail_app, "alice@example.com") as alice:
        assert len(names((await alice.get("/dashboard/loyalty?team=support-warsaw")).text)) == 2
        assert len(names((await alice.get("/dashboard/loyalty")).text)) == 5
        assert not insights._cache  # without a period the page reads loyalty_standing: nothing to remember
        assert len(names((await alice.get("/dashboard/loyalty?team=support-milan&from=2000-01-01")).text)) == 3
        assert len(names((await alice.get("/dashboard/loyalty?team=support-milan&to=2020-01-01")).text)) == 0
        assert len(names((await alice.get("/dashboard/loyalty?from=2000-01-01")).text)) == 5
    assert len(insights._cache) == 3
