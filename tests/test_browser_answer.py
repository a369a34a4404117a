"""In a real browser: opening a link records nothing, a person's click does, the comment confirms, the case
reaches its owner, the webhook hears of it — and scanners of every kind record nothing that counts."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from playwright.async_api import expect

from pulse import i18n, responses, webhooks
from pulse.app import create_app
from pulse.demo import live_touchpoints
from pulse.models import Contact, FlaggedAttempt, FollowUpCase, Response
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.browser import Watched, chromium, serve
from tests.conftest import make_org, make_settings, sent_invitation, survey_url
from tests.test_webhooks import SECRET, Receiver, receiver  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.browser
DONE = re.compile(r".*[^…]$")  # the status line once saving is over


@pytest.fixture
async def site(database_url, catalog, smtp, receiver):  # noqa: F811
    settings = make_settings(
        database_url,
        PULSE_WEBHOOK_URL=receiver.url,
        PULSE_WEBHOOK_SECRET=SECRET,
        PULSE_SMTP_PORT=str(smtp.port),
        PULSE_QUIET_HOURS="off",
    )
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        org = await make_org()
        async with serve(app) as base:
            settings = settings.replace(base_url=base)
            app.state.settings = settings
            yield app, settings, base, org


async def counted() -> int:
    return await Response.filter(confirmed=True, discarded=False).count()


async def test_a_person_answers_with_one_click_and_a_comment(site, catalog, smtp, receiver):  # noqa: F811
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{base}{survey_url(settings, invitation.id)}?score=2")
        await asyncio.sleep(1.5)
        assert await Response.all().count() == 0  # opening the link alone records nothing
        await page.screenshot("answer-page")
        await page.page.mouse.move(200, 300)
        await page.page.mouse.down()  # a person's first touch of the page: the score from the e-mail goes
        await page.page.mouse.up()
        await expect(page.page.locator("#status")).to_have_text(DONE)
        response = await Response.get(invitation_id=invitation.id)
        assert (response.score, response.confirmed) == (2, False)
        await page.page.fill("#comment", "The IVR sent me in circles <script>alert(1)</script>")
        await page.page.click("#confirm")
        await expect(page.page.locator("#status")).to_have_text(DONE)
        await page.screenshot("answer-page-thanks")
        assert page.errors == []  # no script errors, no CSP violations
    response = await Response.get(id=response.id)
    assert (response.score, response.confirmed) == (2, True)
    assert response.comment == "The IVR sent me in circles <script>alert(1)</script>"
    case = await FollowUpCase.get(response_id=response.id).select_related("owner")
    assert case.owner.email == "bob@example.com"
    await Dispatcher(settings, catalog, environment()).step()
    assert smtp.by_recipient("bob@example.com"), "the case owner got the e-mail"
    assert await webhooks.deliver_due(settings) == 2
    for headers, body in receiver.requests:
        assert webhooks.verify(SECRET, headers["x-pulse-signature"], body)
    assert {h["x-pulse-event"] for h, _ in receiver.requests} == {"case.opened", "response.recorded"}


async def test_scanners_record_nothing_that_counts(site, catalog, smtp):
    _app, settings, _base, _org = site
    assert await live_touchpoints(catalog, settings) == 8
    await Dispatcher(settings, catalog, environment()).step()
    links = sorted(
        {
            link
            for mail in smtp.received
            for part in ("plain", "html")
            for link in re.findall(r"https?://[^\s\"<>]+", mail.get_body((part,)).get_content())
            if "/s/" in link or "/u/" in link
        }
    )
    assert len(links) >= 8 * 6
    # 1. a link checker fetches every link (GET and HEAD)
    async with httpx.AsyncClient() as http:
        for link in links:
            for method in ("GET", "HEAD"):
                assert (await http.request(method, link.replace("&amp;", "&"))).status_code == 200
    # 2. a headless browser opens links and runs their scripts, without touching the page
    sample = [link for link in links if link.endswith(("score=0", "score=1", "score=5")) or "/u/" in link]
    async with chromium() as browser:
        for start in range(0, len(sample), 8):
            pages = [await browser.new_page() for _ in sample[start : start + 8]]
            await asyncio.gather(*(p.goto(link) for p, link in zip(pages, sample[start : start + 8], strict=True)))
            await asyncio.sleep(1.3)
            for page in pages:
                await page.close()
        # 3. a script clicks every button within 200 ms of load: untrusted clicks, then trusted ones
        for mail in smtp.received[:4]:
            link = re.search(r"https?://[^\s\"<>]+/s/[^\s\"<>?]+\?score=\d+", mail.get_body(("plain",)).get_content())
            page = await browser.new_page()
            await page.goto(link.group(0))
            await page.evaluate("document.querySelectorAll('input, button').forEach(el => el.click())")
            # the clicks come at once; the timeouts only bound how long a busy machine's browser may take to do them
            for label in await page.query_selector_all("label.score"):
                await label.click(timeout=10_000, no_wait_after=True)
            await page.click("#confirm", timeout=10_000, no_wait_after=True)
            await asyncio.sleep(1.5 + len(await page.query_selector_all("label.score")) * 0.05)
            await page.close()
    await asyncio.sleep(0.5)
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    await responses.confirm_due(catalog, settings, now=later)
    assert await counted() == 0
    assert await Contact.filter(opted_out_at__not_isnull=True).count() == 0
    assert await FollowUpCase.all().count() == 0
    assert await FlaggedAttempt.filter(reason="score_flurry").count() > 0


def score_label(score: int) -> str:
    return f"label.score:has(input[value='{score}'])"


async def settled(page) -> None:
    """Wait until the page has sent what it will send and shows how it went."""
    await asyncio.sleep(1.3)
    await expect(page.locator("#status")).to_have_text(DONE)


async def test_a_keyboard_user_walks_the_scale_and_the_score_they_stop_at_counts(site, catalog):
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{base}{survey_url(settings, invitation.id)}?score=2")
        await asyncio.sleep(1.1)
        await page.page.focus("input[name=score][value='2']")
        for _ in range(3):  # 2 → 5, one arrow press after another
            await page.page.keyboard.press("ArrowRight")
            await asyncio.sleep(0.15)
        await settled(page.page)
        saved = i18n.translate(invitation.locale, "Thank you! Your answer is saved.")
        await expect(page.page.locator("#status")).to_have_text(saved)
        assert page.errors == []
    response = await Response.get(invitation_id=invitation.id)
    assert (response.score, response.discarded) == (5, False)
    assert await FlaggedAttempt.all().count() == 0


async def test_a_tap_then_another_tap_later_counts_the_second(site, catalog):
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{base}{survey_url(settings, invitation.id)}?score=4")
        await asyncio.sleep(1.1)
        await page.page.click(score_label(4))
        await settled(page.page)
        assert (await Response.get(invitation_id=invitation.id)).score == 4
        await asyncio.sleep(1.5)
        await page.page.click(score_label(5))
        await settled(page.page)
        saved = i18n.translate(invitation.locale, "Thank you! Your answer is saved.")
        await expect(page.page.locator("#status")).to_have_text(saved)
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    await responses.confirm_due(catalog, settings, now=later)
    response = await Response.get(invitation_id=invitation.id)
    assert (response.score, response.confirmed, response.discarded) == (5, True, False)
    assert await FlaggedAttempt.all().count() == 0


async def test_a_reopened_link_shows_the_answer_and_changes_it_only_when_asked(site, catalog):
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    url = f"{base}{survey_url(settings, invitation.id)}"
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{url}?score=4")
        await asyncio.sleep(1.1)
        await page.page.fill("#comment", "Quick and kind")
        await page.page.click(score_label(4))
        await page.page.click("#confirm")
        await settled(page.page)
        again = Watched(await browser.new_page())  # the person reads the e-mail again and clicks 2
        await again.page.goto(f"{url}?score=2")
        await asyncio.sleep(1.1)
        await again.page.mouse.wheel(0, 300)
        await again.page.mouse.move(100, 100)
        await asyncio.sleep(1.5)
        assert (await Response.get(invitation_id=invitation.id)).score == 4  # scrolling changed nothing
        assert await again.page.locator("input[name=score][value='4']").is_checked()
        assert await again.page.input_value("#comment") == "Quick and kind"
        await again.page.click("#change button")
        await again.page.wait_for_load_state()
        assert again.errors == [] and page.errors == []
    response = await Response.get(invitation_id=invitation.id)
    assert response.score == 2
    assert (response.history[-1]["score"], response.history[-1]["comment"]) == (4, "Quick and kind")


async def test_switching_the_language_keeps_the_score(site, catalog):
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{base}{survey_url(settings, invitation.id)}?score=3")
        await page.page.click("nav.languages a[hreflang='it']")
        await page.page.wait_for_load_state()
        assert await page.page.get_attribute("html", "lang") == "it"
        assert await page.page.locator("input[name=score][value='3']").is_checked()
        await asyncio.sleep(0.3)
        await page.page.mouse.move(100, 200)
        await page.page.mouse.down()
        await page.page.mouse.up()
        await settled(page.page)
    response = await Response.get(invitation_id=invitation.id)
    assert (response.score, response.locale) == (3, "it")


async def test_a_bot_clicking_every_score_in_a_blink_records_nothing(site, catalog):
    _app, settings, base, _org = site
    invitation = await sent_invitation(settings, catalog)
    survey = catalog.get(invitation.survey_id)
    async with chromium() as browser:
        page = Watched(await browser.new_page())
        await page.page.goto(f"{base}{survey_url(settings, invitation.id)}?score=1")
        # where each score is, found before the clock starts: a bot aims once, then clicks (real mouse clicks, but
        # without Playwright's per-click waits for the element, which alone take a second on a slow machine)
        spots = []
        for score in survey.scores:
            box = await page.page.locator(score_label(score)).bounding_box()
            spots.append((box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
        await asyncio.sleep(1.1)
        began = asyncio.get_running_loop().time()
        for x, y in spots:
            await page.page.mouse.click(x, y)
        assert asyncio.get_running_loop().time() - began < 1.0
        await settled(page.page)
        saved = i18n.translate(invitation.locale, "Thank you! Your answer is saved.")
        assert await page.page.locator("#status").text_content() != saved  # never "saved" for what does not count
    later = datetime.now(UTC) + timedelta(seconds=responses.SETTLE_SECONDS + 1)
    await responses.confirm_due(catalog, settings, now=later)
    assert await counted() == 0
    assert await FlaggedAttempt.filter(reason="score_flurry").count() >= 1
