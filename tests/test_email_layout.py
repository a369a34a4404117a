"""The invitation e-mail on a phone: at 320 and 390 px every score link is a finger-sized cell (at least 40 px
each way) with its number inside it, the rows are rows of equal cells, the end labels stand by the first and the
last score, and nothing makes the message scroll sideways. The e-mail is the one the worker sends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from pulse import mail
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from pulse.touchpoints import ingest
from tests.browser import ARTIFACTS, chromium
from tests.conftest import event
from tests.test_browser_phones import beside, rows

pytestmark = pytest.mark.browser

# The links and the end labels ("0 = Not at all likely") as boxes: each link's own box and its number's.
LAYOUT = """() => {
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height});
  const text = node => { const range = document.createRange(); range.selectNodeContents(node);
                         return box(range.getBoundingClientRect()); };
  const links = Array.from(document.querySelectorAll("a[href*='score=']"));
  const label = score => {
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      if (node.data.trim().startsWith(score + " =")) return text(node);
    }
    return null;
  };
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    links: links.map(a => ({score: a.textContent.trim(), box: box(a.getBoundingClientRect()), text: text(a)})),
    low: label(links[0].textContent.trim()),
    high: label(links[links.length - 1].textContent.trim()),
  };
}"""


async def sent_by_the_worker(mail_settings, catalog, smtp) -> str:
    """The HTML of a CSAT invitation, sent by the worker through the SMTP sink."""
    occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    [outcome] = await ingest([event(1, occurred_at=occurred, contact_locale="sl")], catalog, mail_settings)
    assert outcome.status == "invited", outcome.as_json()
    assert await Dispatcher(mail_settings, catalog, environment()).step() == 1
    [message] = smtp.received
    return message.get_body(("html",)).get_content()


def rendered(mail_settings, catalog, survey_id: str, locale: str) -> str:
    """The HTML the worker would send for this survey and language (the same function renders it)."""
    message = mail.survey_message(
        environment(),
        mail_settings,
        survey=catalog.get(survey_id),
        locale=locale,
        to="person@example.com",
        name="Person",
        touchpoint_type="purchase",
        score_url="https://pulse.example.com/s/" + "t" * 40,
        unsubscribe_url="https://pulse.example.com/u/" + "u" * 40,
        expires_at=datetime.now(UTC) + timedelta(days=30),
        message_id="<x@pulse.example.com>",
    )
    return message_from_bytes(message.data, policy=policy.default).get_body(("html",)).get_content()


async def test_score_links_are_finger_sized_on_small_phones(mail_app, mail_settings, catalog, smtp):
    bodies = {"csat-sl-sent": await sent_by_the_worker(mail_settings, catalog, smtp)}
    for survey_id in ("nps", "ces", "csat"):
        for locale in ("en", "pl"):
            bodies[f"{survey_id}-{locale}"] = rendered(mail_settings, catalog, survey_id, locale)
    async with chromium() as browser:
        page = await browser.new_page()
        for name, html in bodies.items():
            scores = [int(n) for n in re.findall(r"\?score=(\d+)", html)]
            assert scores == sorted(scores) and len(scores) in (5, 7, 11), name  # the one-click links, in order
            for width in (320, 390):
                await page.set_viewport_size({"width": width, "height": 900})
                await page.set_content(html)
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / f"email-{name}-{width}.png"), full_page=True)
                found = await page.evaluate(LAYOUT)
                where = f"{name} at {width}px"
                assert found["overflow"] <= 0, f"{where}: the e-mail scrolls sideways by {found['overflow']}px"
                links = found["links"]
                assert [int(link["score"]) for link in links] == scores, where
                for link in links:
                    box, text = link["box"], link["text"]
                    assert box["width"] >= 40 and box["height"] >= 40, (where, link)
                    assert box["left"] <= text["left"] and text["right"] <= box["right"], (where, "number spills", link)
                buttons = [link["box"] for link in links]
                lines = rows(buttons)
                assert len(lines) <= 2, (where, len(lines))
                for line in lines:  # equal cells from edge to edge
                    assert max(b["width"] for b in line) - min(b["width"] for b in line) < 1.5, where
                    assert abs(line[0]["left"] - buttons[0]["left"]) < 1.5, where
                    assert abs(line[-1]["right"] - lines[0][-1]["right"]) < 1.5, where
                tops = [line[0]["top"] for line in lines]
                low, high = found["low"], found["high"]
                assert abs(low["left"] - buttons[0]["left"]) < 3 and beside(low, buttons[0], tops), (where, low)
                assert abs(high["right"] - buttons[-1]["right"]) < 3 and beside(high, buttons[-1], tops), (where, high)
