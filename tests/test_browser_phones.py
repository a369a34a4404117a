"""Phones: every page at 390 px (public pages also at 320 px) keeps each table's column headers, links and
controls visible — on the screen or by scrolling the table's own box, never hidden — and the page itself never
scrolls sideways. A table that scrolls shows a cue at its edge and can be scrolled with the keyboard.
Screenshots go to test-artifacts/phone-<page>-<width>.png."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from pulse import accounts, engagement, tokens
from pulse.app import create_app
from pulse.demo import DEMO_PASSWORD, load_demo, load_engagement
from pulse.models import Contact, FollowUpCase, Invitation, WorkerHeartbeat
from tests.browser import Watched, chromium, serve
from tests.conftest import make_settings, pulse_link

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Every page a person can open. Add a row for each new page: name (of its screenshot), address ({…} are filled
# from the demo site below), who is signed in (None for public pages), the screen widths to try, and whether the
# page shows a table with rows (so an empty state cannot pass for a table that fits).
PHONE, SMALL_PHONE = 390, 320
TABLE, NO_TABLE = True, False
PAGES = [
    ("overview", "/dashboard", "admin", (PHONE,), NO_TABLE),
    ("breakdown", "/dashboard/breakdown?survey=csat&by=team", "admin", (PHONE,), TABLE),
    ("loyalty", "/dashboard/loyalty", "admin", (PHONE,), TABLE),
    ("at-risk", "/dashboard/at-risk", "admin", (PHONE,), TABLE),
    ("after-sale", "/dashboard/after-sale", "admin", (PHONE,), NO_TABLE),
    ("themes", "/dashboard/themes?survey=nps", "admin", (PHONE,), TABLE),
    ("contacts", "/contacts?q=a", "admin", (PHONE,), TABLE),
    ("contact", "/contacts/{contact}", "admin", (PHONE,), NO_TABLE),
    ("cases", "/cases", "admin", (PHONE,), TABLE),
    ("case", "/cases/{case}", "admin", (PHONE,), NO_TABLE),
    ("recovery", "/cases/recovery", "admin", (PHONE,), TABLE),
    ("responses", "/responses", "admin", (PHONE,), TABLE),
    ("engagement", "/engagement", "admin", (PHONE,), TABLE),
    ("admin-users", "/admin/users", "admin", (PHONE,), TABLE),
    ("admin-teams", "/admin/teams", "admin", (PHONE,), TABLE),
    ("admin-surveys", "/admin/surveys", "admin", (PHONE,), TABLE),
    ("admin-api-keys", "/admin/api-keys", "admin", (PHONE,), TABLE),
    ("admin-delivery", "/admin/delivery", "admin", (PHONE,), TABLE),
    ("account", "/account", "admin", (PHONE,), NO_TABLE),
    ("sign-in", "/login", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("password-reset", "/password-reset", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("answer-nps", "{answer_nps}", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("answer-csat", "{answer_csat}", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("answer-ces", "{answer_ces}", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("pulse", "{pulse}", None, (SMALL_PHONE, PHONE), NO_TABLE),
    ("unsubscribe", "{unsubscribe}", None, (SMALL_PHONE, PHONE), NO_TABLE),
]

# What a person could not see or reach, for every table header, and every link and control inside a table.
PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth}px on a ${window.innerWidth}px screen`);
  }
  const name = el => (el.textContent || el.getAttribute("aria-label") || el.tagName).trim().replace(/\\s+/g, " ");
  const shown = el => {
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && box.width > 1 && box.height > 1 && !el.closest("[hidden]");
  };
  // the part of `el` a person can bring into view: cut by every ancestor that clips, not by ones that scroll
  const reachable = el => {
    let box = el.getBoundingClientRect(), left = box.left, right = box.right;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      const edge = up.getBoundingClientRect();
      if (overflow === "auto" || overflow === "scroll") {  // scrolls: anything inside it can be brought into its view
        left = edge.left;
        right = edge.right;
      } else if (overflow === "hidden" || overflow === "clip") {
        left = Math.max(left, edge.left);
        right = Math.min(right, edge.right);
      }
    }
    return right - left > 1 && left >= -1 && right <= window.innerWidth + 1;
  };
  const column = (cell) => {
    let index = 0;
    for (const other of cell.parentElement.cells) { if (other === cell) return index; index += other.colSpan; }
    return -1;
  };
  document.querySelectorAll("main table").forEach((table, t) => {
    const where = `table ${t + 1}`;
    table.querySelectorAll("thead th").forEach(th => {
      if (shown(th) && reachable(th)) return;
      // a table laid out as cards hides its header row: each cell then names its column itself
      const i = column(th), label = name(th);
      for (const row of table.tBodies[0] ? table.tBodies[0].rows : []) {
        const cell = Array.from(row.cells).find(c => column(c) <= i && i < column(c) + c.colSpan);
        const before = cell && getComputedStyle(cell, "::before").content;
        if (!cell || !cell.dataset.label || !before || before === "none" || !shown(cell) ||
            (cell.colSpan === 1 && cell.dataset.label.trim() !== label)) {
          problems.push(`${where}: the column "${label}" is hidden and its cells do not name it`);
          return;
        }
      }
    });
    table.querySelectorAll("a, button, select, textarea, input:not([type=hidden])").forEach(el => {
      if (!shown(el)) problems.push(`${where}: "${name(el)}" (${el.tagName.toLowerCase()}) is hidden`);
      else if (!reachable(el)) problems.push(`${where}: "${name(el)}" (${el.tagName.toLowerCase()}) is cut off`);
    });
  });
  return problems;
}"""

# Every box that scrolls sideways: does it show a cue at the edge, and can a keyboard reach it?
SCROLLERS = """() => Array.from(document.querySelectorAll("main *")).filter(el => {
    const overflow = getComputedStyle(el).overflowX;
    return (overflow === "auto" || overflow === "scroll") && el.scrollWidth > el.clientWidth + 1;
  }).map(el => {
    const style = getComputedStyle(el);
    return {
      what: el.className || el.tagName,
      cue: style.backgroundImage.includes("gradient") && style.backgroundAttachment.includes("local"),
      focusable: el.tabIndex >= 0 && el.getAttribute("role") === "region" && !!el.getAttribute("aria-label"),
    };
  })"""


@pytest.fixture(scope="module")
def module_database_url(databases, tmp_path_factory) -> str:
    return databases.fresh(tmp_path_factory.mktemp("phones"))  # outside the event loop: it may run one itself


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(module_database_url, catalog):
    """The demo, served, with one signed-in admin context and one signed-out context; the addresses to fill."""
    settings = make_settings(module_database_url, PULSE_QUIET_HOURS="off")
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=80, months=6, seed=3, timezone="UTC")
        await load_engagement(catalog, months=6, seed=3)
        await engagement.open_round(engagement.programme(catalog), settings, datetime.now(UTC))
        case = await FollowUpCase.filter(team__parent_id__not_isnull=True).order_by("-id").first()
        await FollowUpCase.filter(id=case.id).update(status="open")  # the inbox lists open cases
        contact = await Contact.get(id=case.contact_id)
        filled = {"case": case.id, "contact": contact.external_id}
        for survey in ("nps", "csat", "ces"):
            invitation = await Invitation.filter(survey_id=survey, contact_id__not_isnull=True, status="sent").first()
            assert invitation is not None, f"the demo has {survey} invitations"
            filled[f"answer_{survey}"] = f"/s/{tokens.make_token(settings.secret_key, 'survey', invitation.id)}"
        filled["unsubscribe"] = f"/u/{tokens.make_token(settings.secret_key, 'unsubscribe', invitation.id)}"
        await accounts.create_api_key("CRM connector", ["touchpoints:write", "responses:read"])
        now = datetime.now(UTC)
        await WorkerHeartbeat.create(
            name="pulse-host-1.example.com:4242",
            started_at=now,
            last_loop_at=now,
            last_smtp_error="451 4.3.0 Mailbox busy, try again later",
            last_smtp_error_at=now,
        )
        employee = await Invitation.filter(round__status="open").first()
        filled["pulse"] = pulse_link(settings, employee.id)[0]
        async with serve(app) as base, chromium() as browser:
            admin = await browser.new_context()
            page = await admin.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#email", "admin@pulse.local")
            await page.fill("#password", DEMO_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/dashboard")
            await page.close()
            public = await browser.new_context()
            yield base, filled, {"admin": admin, None: public}


@pytest.mark.parametrize(
    ("name", "address", "who", "width", "table"),
    [pytest.param(n, a, who, w, table, id=f"{n}-{w}") for n, a, who, widths, table in PAGES for w in widths],
)
async def test_a_page_on_a_phone_keeps_every_column_and_link_within_reach(site, name, address, who, width, table):
    base, filled, contexts = site
    page = Watched(await contexts[who].new_page())
    try:
        await page.page.set_viewport_size({"width": width, "height": 800})
        reply = await page.page.goto(base + address.format(**filled))
        assert reply.status == 200, f"{name}: {reply.status}"
        await page.page.wait_for_load_state("load")
        if await page.page.locator("script.figure").count():
            await page.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        await page.screenshot(f"phone-{name}-{width}")
        if table:
            assert await page.page.locator("main table tbody tr").count() > 0, f"{name} shows no table rows"
        assert await page.page.evaluate(PROBLEMS) == []
        for box in await page.page.evaluate(SCROLLERS):
            assert box["cue"], f"{box['what']} scrolls sideways with no shadow at its edge"
            assert box["focusable"], f"{box['what']} scrolls but is not a named region a keyboard can reach"
        assert page.errors == []
    finally:
        await page.page.close()


# Each scale's score buttons and its two end labels (the text itself, not the box around it), in CSS pixels.
SCALES = """() => Array.from(document.querySelectorAll("fieldset.scale")).map(scale => {
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height});
  const text = el => { const range = document.createRange(); range.selectNodeContents(el);
                       return box(range.getBoundingClientRect()); };
  return {
    buttons: Array.from(scale.querySelectorAll("label.score span")).map(s => box(s.getBoundingClientRect())),
    low: text(scale.querySelector(".end.low")),
    high: text(scale.querySelector(".end.high")),
  };
})"""


def rows(buttons: list[dict]) -> list[list[dict]]:
    found: list[list[dict]] = []
    for button in buttons:
        if found and abs(found[-1][0]["top"] - button["top"]) < 2:
            found[-1].append(button)
        else:
            found.append([button])
    return found


def beside(label: dict, button: dict, row_tops: list[float]) -> bool:
    """The label sits right above or below the button's row, with no other row of buttons between them."""
    above, below = label["bottom"] <= button["top"] + 1, label["top"] >= button["bottom"] - 1
    between = [t for t in row_tops if (above and label["bottom"] < t < button["top"] - 1)
               or (below and button["top"] < t < label["top"])]  # fmt: skip
    return (above or below) and not between


@pytest.mark.parametrize("width", [SMALL_PHONE, PHONE, 1280])
@pytest.mark.parametrize("name", ["answer-nps", "answer-csat", "answer-ces", "pulse"])
async def test_a_scale_fits_the_screen_with_its_labels_at_the_true_ends(site, name, width):
    base, filled, contexts = site
    [address] = [a for n, a, *_ in PAGES if n == name]
    page = await contexts[None].new_page()
    try:
        await page.set_viewport_size({"width": width, "height": 800})
        await page.goto(base + address.format(**filled))
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        scales = await page.evaluate(SCALES)
        assert scales
        for scale in scales:
            buttons, low, high = scale["buttons"], scale["low"], scale["high"]
            lines = rows(buttons)
            assert len(lines) <= 2, f"{len(buttons)} scores in {len(lines)} rows"
            for button in buttons:  # a finger's target
                assert button["height"] >= 44 and button["width"] >= 44, button
            for line in lines:  # each row is a row of equal buttons from edge to edge
                assert max(b["width"] for b in line) - min(b["width"] for b in line) < 1.5
                assert abs(line[0]["left"] - buttons[0]["left"]) < 1.5
                assert abs(line[-1]["right"] - buttons[0]["left"] - (lines[0][-1]["right"] - buttons[0]["left"])) < 1.5
            tops = [line[0]["top"] for line in lines]
            first, last = buttons[0], buttons[-1]
            assert abs(low["left"] - first["left"]) < 3 and beside(low, first, tops), ("the low label by", low, first)
            assert abs(high["right"] - last["right"]) < 3 and beside(high, last, tops), (
                "the high label by",
                high,
                last,
            )
            assert low["bottom"] <= high["top"] or low["right"] <= high["left"], "the two labels overlap"
    finally:
        await page.close()


# Every piece of text Plotly drew in the loyalty quadrant, as boxes, and the plot's own box.
QUADRANT_TEXT = """() => {
  const plot = document.querySelector(".chart.js-plotly-plot");
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
  const texts = Array.from(plot.querySelectorAll(".textpoint text, .annotation-text"))
    .filter(t => t.textContent.trim())
    .map(t => ({text: t.textContent, ...box(t.getBoundingClientRect())}));
  return {plot: box(plot.querySelector(".main-svg").getBoundingClientRect()), texts};
}"""


def overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"] - 1
        and b["left"] < a["right"] - 1
        and a["top"] < b["bottom"] - 1
        and (b["top"] < a["bottom"] - 1)
    )


@pytest.mark.parametrize("width", [SMALL_PHONE, PHONE, 1280])
async def test_the_loyalty_quadrant_labels_never_collide(site, width):
    base, _, contexts = site
    page = await contexts["admin"].new_page()
    try:
        await page.set_viewport_size({"width": width, "height": 800})
        await page.goto(f"{base}/dashboard/loyalty")
        await page.wait_for_function("document.querySelector('.chart.js-plotly-plot .main-svg')")
        drawn = await page.evaluate(QUADRANT_TEXT)
        texts, plot = drawn["texts"], drawn["plot"]
        assert len(texts) >= 4
        for text in texts:  # inside the chart, not cut at its edge
            assert plot["left"] <= text["left"] and text["right"] <= plot["right"], text
            assert plot["top"] <= text["top"] and text["bottom"] <= plot["bottom"], text
        collisions = [(a["text"], b["text"]) for i, a in enumerate(texts) for b in texts[i + 1 :] if overlap(a, b)]
        assert collisions == []
    finally:
        await page.close()
