"""Every word in the reader's language: each page and e-mail, rendered in pl, it and sl with the demo data, shows
no English word of a small stop-list and no raw code (a code of pulse.labels, or any snake_case word). Data people
typed (names, comments, team names) is taken out first: it is theirs, in whatever language they wrote it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from html.parser import HTMLParser

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from pulse import engagement, labels, outbox, sessions, tokens
from pulse.accounts import create_api_key
from pulse.app import create_app
from pulse.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD, load_demo, load_engagement
from pulse.models import (
    ApiKey,
    Contact,
    Employee,
    FlaggedAttempt,
    FollowUpCase,
    Invitation,
    OutboxMessage,
    PulseAnswer,
    Response,
    Team,
    User,
    WebhookDelivery,
    WorkerHeartbeat,
)
from tests.conftest import make_settings, pulse_link

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOCALES = ("pl", "it", "sl")

# English words that are no word of Polish, Italian or Slovenian: one of them on a page means a string was missed.
STOP_WORDS = {
    "the", "and", "of", "with", "without", "no", "not", "yet", "your", "you", "this", "that", "these", "from", "has",
    "have", "been", "are", "will", "there", "which", "when", "what", "who", "here", "please", "all", "none", "only",
    "answer", "answers", "answered", "team", "teams", "survey", "surveys", "day", "days", "week", "weeks", "month",
    "months", "customer", "customers", "people", "period", "since", "until", "open", "overdue", "sent",
    "score", "scores", "reminder", "password", "sign", "cases", "owner", "comment", "comments",
    "touchpoint", "touchpoints", "stage", "channel", "settings", "users", "delivery", "save", "search", "back",
}  # fmt: skip
# Proper names and acronyms that read the same in every language.
ALLOWED = {"NPS", "CSAT", "CES", "eNPS", "CSV", "API", "CRM", "Pulse", "SMTP", "HR", "URL", "ID", "JSON", "Acme"}
ALLOWED |= {"surveys"}  # the folder the survey files are in, named as it is on disk
PROPER_NAMES = ("Employee Net Promoter Score", "Net Promoter Score", "Customer Effort Score")  # the metrics' names
# English words a language has taken in as its own (Italian says "il team", "la password", "il manager").
LOANWORDS = {"pl": set(), "it": {"team", "password", "manager"}, "sl": set()}
# Codes that are also ordinary words of a language; a lowercase one there is that word, not the code.
NATIVE = {
    "pl": {"plan", "region", "video", "chat", "web", "sms", "admin"},
    "it": {"video", "chat", "web", "sms", "app", "manager"},
    "sl": {"video", "chat", "web", "sms", "plan"},
}
SNAKE_CASE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# addresses, paths, e-mails, file names, and API scopes (touchpoints:write), which the API spells so
NOT_PROSE = re.compile(r"\S*[/@]\S*|\S+\.(?:toml|csv|json|js|css)\b|\b[a-z]+:[a-z]+\b")
FIGURE_KEYS = {"name", "text", "ticktext", "hovertemplate", "title", "x", "y", "labels"}
SKIPPED_ELEMENTS = {"script", "style", "code", "template"}
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "data-label"}  # data-label shows on phones


class Visible(HTMLParser):
    """The text a person reads: text nodes and the attributes shown or spoken, without scripts or code;
    and the strings of each chart's figure JSON, which a person reads as legends, ticks and hover text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.figures: list[str] = []
        self.skipping: list[str] = []
        self.in_figure = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "script" and "figure" in (values.get("class") or "").split():
            self.in_figure = True
        if tag in SKIPPED_ELEMENTS:
            self.skipping.append(tag)
        if not self.skipping:
            self.parts += [value for name, value in attrs if name in READ_ATTRIBUTES and value]
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.parts.append(values["value"])

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()
        if tag == "script":
            self.in_figure = False

    def handle_data(self, data):
        if self.in_figure:
            self.figures.extend(_figure_strings(json.loads(data)))
        elif not self.skipping:
            self.parts.append(data)


def _figure_strings(value, key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _figure_strings(v, k)]
    if isinstance(value, list):
        return [s for v in value for s in _figure_strings(v, key)]
    if isinstance(value, str) and key in FIGURE_KEYS and not re.fullmatch(r"[\d\-:T.+ ]+", value):
        return [re.sub(r"%\{[^}]*\}|<[^>]+>", " ", value)]
    return []


def problems(text: str, locale: str, data: re.Pattern, slugs: frozenset[str], slugs_shown: bool = False) -> list[str]:
    """The English words and raw codes (and team slugs, unless `slugs_shown`) in `text`, after the data people
    typed is taken out."""
    text = NOT_PROSE.sub(" ", text)
    found = [f"code {code!r}" for code in SNAKE_CASE.findall(text)]
    text = data.sub(" ", SNAKE_CASE.sub(" ", text))
    for slug in slugs:
        if re.search(rf"(?<![\w-]){re.escape(slug)}(?![\w-])", text):
            found += [] if slugs_shown else [f"team slug {slug!r}"]
            text = re.sub(rf"(?<![\w-]){re.escape(slug)}(?![\w-])", " ", text)
    known = labels.codes() - NATIVE[locale]
    for word in WORD.findall(text):
        if word in ALLOWED:
            continue
        if word.lower() in STOP_WORDS and word.lower() not in LOANWORDS[locale]:
            found.append(f"English {word!r}")
        elif word in known:
            found.append(f"code {word!r}")
    return sorted(set(found))


def check_html(html: str, locale: str, data: re.Pattern, slugs: frozenset[str], slugs_shown: bool = False) -> list[str]:
    parser = Visible()
    parser.feed(html)
    found = problems(" \n ".join(parser.parts), locale, data, slugs, slugs_shown)
    found += [f"chart: {p}" for p in problems(" \n ".join(parser.figures), locale, data, slugs, slugs_shown)]
    return found


async def _data_pattern() -> re.Pattern:
    """Everything people typed or the demo made up as data: names, comments, addresses, attribute values."""
    strings: set[str] = {"Demo Admin", "CRM connector", *PROPER_NAMES}
    for name, email, external_id, attributes in await Contact.all().values_list(
        "name", "email", "external_id", "attributes"
    ):
        strings |= {name, email, external_id, *map(str, (attributes or {}).values())}
    strings |= {c for c in await Response.all().values_list("comment", flat=True) if c}
    strings |= {c for c in await PulseAnswer.all().values_list("comment", flat=True) if c}
    for values in (
        await Team.all().values_list("name"),
        await User.all().values_list("display_name", "email"),
        await Employee.all().values_list("name", "email"),
        await ApiKey.all().values_list("name", "prefix"),
        await WorkerHeartbeat.all().values_list("name", "last_smtp_error"),
    ):
        strings |= {s for row in values for s in row if s}
    ordered = sorted((s.strip() for s in strings if s and s.strip()), key=len, reverse=True)
    return re.compile("(?<!\\w)(?:" + "|".join(re.escape(s) for s in ordered) + ")(?!\\w)")


@pytest.fixture(scope="module")
def module_database_url(databases, tmp_path_factory) -> str:
    return databases.fresh(tmp_path_factory.mktemp("words"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(module_database_url, catalog):
    """The demo with a little of everything a page can show: an open case, skipped invitations, flagged answers,
    e-mails in every state, an API key, a worker, an open pulse round. Returns the app, addresses and data."""
    settings = make_settings(module_database_url, PULSE_QUIET_HOURS="off")
    app = create_app(settings, catalog=catalog)
    async with LifespanManager(app):
        await load_demo(catalog, contacts=60, months=4, seed=3, timezone="UTC")
        await load_engagement(catalog, months=4, seed=3)
        await engagement.open_round(engagement.programme(catalog), settings, datetime.now(UTC))
        case = await FollowUpCase.filter(team__parent_id__not_isnull=True).order_by("-id").first()
        await FollowUpCase.filter(id=case.id).update(status="open")
        skipped = await Invitation.filter(status="skipped", contact_id__not_isnull=True).first()
        contact = await Contact.get(id=(skipped or case).contact_id)
        now = datetime.now(UTC)
        for reason in ("score_flurry", "too_fast", "honeypot"):
            await FlaggedAttempt.create(survey_id="csat", reason=reason, score=1)
        await WebhookDelivery.create(event="response.created", payload={}, status="failed", next_attempt_at=now)
        await create_api_key("CRM connector", ["touchpoints:write", "responses:read"])
        await WorkerHeartbeat.create(
            name="pulse-host-1.example.com:4242",
            started_at=now,
            last_loop_at=now,
            last_smtp_error="451 4.3.0 Mailbox busy, try again later",
            last_smtp_error_at=now,
        )
        admin = await User.get(email=DEMO_ADMIN_EMAIL)
        addresses = {"case": case.id, "contact": contact.external_id, "user": admin.id}
        for survey in ("nps", "csat", "ces"):
            invitation = await Invitation.filter(survey_id=survey, contact_id__not_isnull=True, status="sent").first()
            addresses[f"answer_{survey}"] = f"/s/{tokens.make_token(settings.secret_key, 'survey', invitation.id)}"
        addresses["unsubscribe"] = f"/u/{tokens.make_token(settings.secret_key, 'unsubscribe', invitation.id)}"
        employee = await Invitation.filter(round__status="open").first()
        addresses["pulse"] = pulse_link(settings, employee.id)[0]
        addresses["reset"] = f"/password-reset/{sessions.reset_token(settings.secret_key, admin)}"
        slugs = frozenset(await Team.all().values_list("slug", flat=True))
        yield app, addresses, await _data_pattern(), slugs


# (name, address with {…} filled from the site, who is signed in: "admin", "hr" or None)
PAGES = [
    ("overview", "/dashboard", "admin"),
    *[
        (f"breakdown-{by}", f"/dashboard/breakdown?survey=nps&by={by}", "admin")
        for by in ("touchpoint", "team", "channel", "stage", "lifecycle", "plan", "region")
    ],
    ("breakdown-csat", "/dashboard/breakdown?survey=csat&by=touchpoint", "admin"),
    ("loyalty", "/dashboard/loyalty", "admin"),
    ("at-risk", "/dashboard/at-risk", "admin"),
    ("after-sale", "/dashboard/after-sale?survey=nps", "admin"),
    ("themes", "/dashboard/themes?survey=nps", "admin"),
    ("contacts", "/contacts?q=a", "admin"),
    ("contact", "/contacts/{contact}", "admin"),
    ("contact-erase", "/contacts/{contact}/erase", "admin"),
    ("cases", "/cases?status=any", "admin"),
    ("case", "/cases/{case}", "admin"),
    ("recovery", "/cases/recovery", "admin"),
    ("responses", "/responses", "admin"),
    ("engagement", "/engagement", "admin"),
    ("engagement-hr", "/engagement", "hr"),
    ("admin-users", "/admin/users", "admin"),
    ("admin-user", "/admin/users/{user}", "admin"),
    ("admin-teams", "/admin/teams", "admin"),
    ("admin-surveys", "/admin/surveys", "admin"),
    ("admin-api-keys", "/admin/api-keys", "admin"),
    ("admin-delivery", "/admin/delivery", "admin"),
    ("admin-audit", "/admin/audit", "admin"),
    ("account", "/account", "admin"),
    ("not-found", "/dashboard/nowhere", "admin"),
    ("forbidden", "/dashboard", "hr"),
    ("sign-in", "/login", None),
    ("password-reset", "/password-reset", None),
    ("password-reset-link", "{reset}", None),
    ("password-reset-bad-link", "/password-reset/not-a-token", None),
    ("answer-nps", "{answer_nps}", None),
    ("answer-csat", "{answer_csat}", None),
    ("answer-ces", "{answer_ces}", None),
    ("answer-bad-link", "/s/not-a-token", None),
    ("answer-public-link", "/l/nps", None),
    ("pulse", "{pulse}", None),
    ("unsubscribe", "{unsubscribe}", None),
    ("not-found-public", "/nowhere", None),
]


async def _client(app, who: str | None, locale: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),  # a 500 is reported with the rest
        base_url="http://testserver",
        cookies={"pulse_lang": locale},
    )
    if who is not None:
        email = DEMO_ADMIN_EMAIL if who == "admin" else "hr@pulse.local"
        page = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        reply = await http.post("/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token})
        assert reply.status_code == 303, f"{email} cannot sign in: {reply.status_code}"
        await http.get(f"/account?lang={locale}")  # their language from now on, as the language links do
    return http


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_page_shows_no_english_word_and_no_code(site, locale):
    app, addresses, data, slugs = site
    report = []
    clients = {who: await _client(app, who, locale) for who in ("admin", "hr", None)}
    try:
        for name, address, who in PAGES:
            reply = await clients[who].get(address.format(**addresses))
            if reply.status_code >= 500 or f'<html lang="{locale}"' not in reply.text:
                report.append(f"{name}: not rendered in {locale} (status {reply.status_code})")
                continue
            shown = name == "admin-teams"  # where slugs are edited, they are shown
            report += [f"{name}: {p}" for p in check_html(reply.text, locale, data, slugs, shown)]
    finally:
        for http in clients.values():
            await http.aclose()
    assert not report, f"{len(report)} problems in {locale}:\n" + "\n".join(report)


async def _outbox_rows(locale: str) -> list[int]:
    """One e-mail of each kind, to be rendered in `locale` the way the worker renders it."""
    invitation = await Invitation.filter(contact_id__not_isnull=True, status="sent").select_related("contact").first()
    employee = await Invitation.filter(round__status="open").select_related("employee").first()
    case = await FollowUpCase.filter(owner_id__not_isnull=True).first()
    admin = await User.get(email=DEMO_ADMIN_EMAIL)
    kinds = [
        ("invitation", invitation.id, invitation.contact.email, {}),
        ("pulse_invitation", employee.id, employee.employee.email, {}),
        ("pulse_reminder", employee.id, employee.employee.email, {}),
        ("case_opened", None, admin.email, {"case_id": case.id, "user_id": admin.id}),
        ("case_escalated", None, admin.email, {"case_id": case.id, "user_id": admin.id}),
        ("password_reset", None, admin.email, {"user_id": admin.id}),
    ]
    ids = []
    for kind, invitation_id, to, payload in kinds:
        row = await OutboxMessage.create(
            kind=kind,
            invitation_id=invitation_id,
            to_email=to,
            locale=locale,
            payload=payload,
            status="cancelled",  # never sent: only rendered here
            next_attempt_at=datetime.now(UTC),
            message_id=f"<words-{kind}-{locale}@example.com>",
        )
        ids.append(row.id)
    return ids


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_email_shows_no_english_word_and_no_code(site, catalog, locale):
    app, _, data, slugs = site
    dispatcher = outbox.Dispatcher(app.state.settings, catalog, app.state.templates)
    messages = await outbox.load(await _outbox_rows(locale))
    case_ids = [m.payload["case_id"] for m in messages if m.kind in outbox.CASE_KINDS]
    cases = FollowUpCase.filter(id__in=case_ids).select_related("response", "contact", "team", "owner")
    dispatcher.cases = {c.id: c for c in await cases}
    dispatcher.users = {u.id: u for u in await User.filter(email=DEMO_ADMIN_EMAIL)}
    report = []
    for row in messages:
        mail = message_from_bytes(dispatcher.render(row).data, policy=policy.default)
        assert mail["Content-Language"] == locale, row.kind
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        for part, found in (
            ("subject", problems(str(mail["Subject"]), locale, data, slugs)),
            ("text", problems(text, locale, data, slugs)),
            ("html", check_html(html, locale, data, slugs)),
        ):
            report += [f"{row.kind} ({part}): {p}" for p in found]
    assert not report, f"{len(report)} problems in {locale} e-mails:\n" + "\n".join(report)


async def test_the_check_finds_english_codes_and_slugs_but_not_data_addresses_or_markup():
    data = re.compile(r"(?<!\w)(?:Anna Nowak|Great onboarding\.)(?!\w)")
    page = """<html lang="pl"><head><title>Kontakt</title><script>var the = "pre_sale";</script></head><body>
      <a href="/contacts?stage=pre_sale&team=support-warsaw" title="Etap">Anna Nowak</a> · anna@example.com
      <p>Etap: pre_sale · active · support-warsaw</p><p data-label="Answers">NPS 9</p>
      <blockquote>Great onboarding.</blockquote>
      <code>pulse serve --no-worker</code><p>Zobacz https://example.com/the/survey</p>
      <script type="application/json" class="figure">{"data":[{"name":"renewal","x":["2026-01-01"],"y":[1]}]}</script>
    </body></html>"""
    assert check_html(page, "pl", data, frozenset({"support-warsaw"})) == [
        "English 'Answers'",
        "code 'active'",
        "code 'pre_sale'",
        "team slug 'support-warsaw'",
        "chart: code 'renewal'",
    ]
    assert check_html(page.replace("support-warsaw", "Wsparcie"), "pl", data, frozenset({"support-warsaw"}))[-1] == (
        "chart: code 'renewal'"
    )
    assert problems("Plan i region klienta", "pl", data, frozenset()) == []  # Polish words, not the codes
    assert problems("NPS, CSAT, eNPS i CSV", "sl", data, frozenset()) == []
