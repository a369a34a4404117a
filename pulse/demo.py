"""Demo data that tells a story: several teams and touchpoints over months, and loyalty that erodes
after the sale in one team, a segment that is satisfied but not loyal, and a support fix that shows."""

from __future__ import annotations

import math
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.connection import connections

from pulse import accounts, followups, themes_demo
from pulse.catalog import Catalog, Survey
from pulse.models import (
    Contact,
    FollowUpCase,
    Invitation,
    Response,
    SurveyVersion,
    Team,
    Touchpoint,
    User,
    UserTeam,
)

DEMO_ADMIN_EMAIL = "admin@pulse.local"
# Every demo account's password, printed by `pulse demo`; it exists only in demo databases.
DEMO_PASSWORD = "pulse-demo-2026"  # noqa: S105

TEAMS = [
    # slug, name, parent, country of its customers
    ("customer-care", "Customer Care", None, None),
    ("support-warsaw", "Support Warsaw", "customer-care", "pl"),
    ("support-ljubljana", "Support Ljubljana", "customer-care", "sl"),
    ("support-milan", "Support Milan", "customer-care", "it"),
    ("sales", "Sales", None, None),
    ("onboarding", "Onboarding", "sales", "en"),
    ("account-management", "Account Management", "sales", "en"),
]
ZONES = {"pl": "Europe/Warsaw", "sl": "Europe/Ljubljana", "it": "Europe/Rome", "en": "Europe/London"}
FIRST_NAMES = {
    "pl": ["Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Paweł"],
    "sl": ["Maja", "Luka", "Nina", "Matej", "Eva", "Jure"],
    "it": ["Giulia", "Marco", "Francesca", "Luca", "Chiara", "Andrea"],
    "en": ["Emma", "James", "Olivia", "Harry", "Amelia", "George"],
}
LAST_NAMES = {
    "pl": ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamińska"],
    "sl": ["Novak", "Horvat", "Krajnc", "Zupančič", "Kovačič"],
    "it": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi"],
    "en": ["Smith", "Jones", "Taylor", "Brown", "Wilson"],
}
PLANS = [("basic", 0.5), ("pro", 0.35), ("enterprise", 0.15)]
COMMENTS = {
    "low": ["Nobody called me back.", "The hotline menu sent me in circles.", "Too slow to resolve."],
    "mid": ["Fine, but it took a while.", "OK overall.", "Good, the app could be simpler."],
    "high": ["Quick and friendly, thank you!", "Solved on the first call.", "Great onboarding."],
}


@dataclass
class DemoSummary:
    teams: int
    contacts: int
    touchpoints: int
    invitations: int
    responses: int


def demo_sign_ins() -> list[tuple[str, str]]:
    """(role, e-mail) of every demo account, all with DEMO_PASSWORD: what `pulse demo` prints."""
    managers = [("manager", f"{slug}@pulse.local") for slug, _, parent, _ in TEAMS if parent]
    return [("admin", DEMO_ADMIN_EMAIL), ("hr", "hr@pulse.local"), ("analyst", "analyst@pulse.local"), *managers]


async def demo_present() -> bool:
    return await User.exists(email=DEMO_ADMIN_EMAIL)


def _ascii(text: str) -> str:
    """'Wiśniewska' -> 'wisniewska', for demo e-mail addresses."""
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in folded if c.isascii()).lower()


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _score(rng: random.Random, survey: Survey, mood: float) -> int:
    """A score on the survey's scale around `mood` (0 = very unhappy, 1 = delighted)."""
    span = survey.scale_max - survey.scale_min
    value = survey.scale_min + span * min(1.0, max(0.0, rng.gauss(mood, 0.18)))
    return round(value)


def _mood(team: str, survey: Survey, plan: str, days_since_sale: int, when: datetime, fix_at: datetime) -> float:
    """The story of the demo, as a customer's mood for one answer."""
    mood = 0.84
    if team == "onboarding" and survey.kind == "nps":
        mood -= 0.32 * (1 - math.exp(-days_since_sale / 120))  # loyalty erodes after the sale
    if plan == "basic":
        mood += 0.12 if survey.kind == "csat" else (-0.16 if survey.kind == "nps" else 0)  # satisfied, not loyal
    if team == "support-warsaw" and survey.kind in {"csat", "ces"}:
        mood += 0.15 if when >= fix_at else -0.15  # the IVR was fixed
    return mood


async def load_demo(
    catalog: Catalog,
    *,
    contacts: int = 600,
    months: int = 12,
    seed: int = 7,
    timezone: str = "UTC",
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    segments: tuple[str, ...] = ("plan", "region"),
) -> DemoSummary:
    """Fill an empty database with demo data; `progress` is called with each batch of contacts done."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = now - timedelta(days=30 * months)
    fix_at = now - timedelta(days=30 * months // 3)
    org_zone = ZoneInfo(timezone)
    versions = {v.survey_id: v for v in await SurveyVersion.all()}

    admin = await accounts.create_user(DEMO_ADMIN_EMAIL, DEMO_PASSWORD, "admin", display_name="Demo Admin")
    teams: dict[str, Team] = {}
    for slug, name, parent, country in TEAMS:
        owner = None
        if parent:
            owner = await accounts.create_user(
                f"{slug}@pulse.local",
                DEMO_PASSWORD,
                "manager",
                display_name=f"{name} Lead",
                locale=country or "en",
            )
        teams[slug] = await Team.create(slug=slug, name=name, parent=teams.get(parent or ""), owner=owner or admin)
        if owner is not None:
            await UserTeam.create(user=owner, team=teams[slug])
    for slug in ("customer-care", "sales"):
        await UserTeam.create(user=admin, team=teams[slug])  # the admin is also the top-level owner
    await accounts.create_user("hr@pulse.local", DEMO_PASSWORD, "hr", display_name="Demo HR")
    await accounts.create_user("analyst@pulse.local", DEMO_PASSWORD, "analyst", display_name="Demo Analyst")

    leaf_teams = [t for t in TEAMS if t[2]]
    contact_rows, touch_rows, invite_rows, response_rows = [], [], [], []
    next_ids = {"tp": 1, "inv": 1, "resp": 1}
    case_rows: list[FollowUpCase] = []
    tz_org = ZoneInfo(timezone)
    for number in range(1, contacts + 1):
        sales_team = rng.choice(["onboarding", "account-management"])
        support_slug, _, _, country = rng.choice([t for t in leaf_teams if t[0].startswith("support")])
        locale = country if rng.random() < 0.8 else "en"
        plan = _pick(rng, PLANS)
        first = rng.choice(FIRST_NAMES[locale])
        last = rng.choice(LAST_NAMES[locale])
        sale = start + timedelta(days=rng.uniform(0, 30 * months - 7))
        contact = Contact(
            id=number,
            external_id=f"CRM-{number:06d}",
            email=f"{_ascii(first)}.{_ascii(last)}.{number}@example.com",
            name=f"{first} {last}",
            locale=locale,
            timezone=ZONES[country],
            first_purchase_at=sale,
            attributes={"plan": plan, "region": country.upper()},
        )
        contact_rows.append(contact)
        events = [(sale, "purchase", sales_team, "pre_sale", "web")]
        events.append(
            (
                sale + timedelta(days=rng.uniform(3, 20)),
                "onboarding_visit",
                "onboarding",
                "onboarding",
                "visit",
            )
        )
        moment = sale + timedelta(days=rng.uniform(15, 60))
        while moment < now:
            kind = _pick(
                rng,
                [
                    ("support_ticket_closed", 0.6),
                    ("complaint_closed", 0.1),
                    ("return_processed", 0.15),
                    ("self_service_completed", 0.15),
                ],
            )
            channel = "phone" if kind != "self_service_completed" else "web"
            events.append((moment, kind, support_slug, "active", channel))
            moment += timedelta(days=rng.expovariate(1 / 55))
        review = sale + timedelta(days=rng.uniform(80, 100))
        while review < now and review < sale + timedelta(days=360):  # quarterly reviews with the sales team
            events.append((review, "account_review", sales_team, "active", "video"))
            review += timedelta(days=rng.uniform(80, 100))
        if sale + timedelta(days=365) < now:
            events.append((sale + timedelta(days=365), "renewal", "account-management", "renewal", "email"))
        last_invited: datetime | None = None
        for occurred, kind, team_slug, stage, channel in sorted(events):
            if occurred >= now:
                continue
            tp_id = next_ids["tp"]
            next_ids["tp"] += 1
            touch_rows.append(
                Touchpoint(
                    id=tp_id,
                    source="demo",
                    external_id=f"EV-{tp_id:08d}",
                    type=kind,
                    occurred_at=occurred,
                    contact_id=number,
                    team_id=teams[team_slug].id,
                    agent=f"agent-{rng.randint(1, 12)}",
                    channel=channel,
                    stage=stage,
                )
            )
            surveys = catalog.for_touchpoint(kind)
            if not surveys:
                continue
            survey = surveys[0]
            send_at = occurred + timedelta(minutes=survey.trigger.delay_minutes)  # type: ignore[union-attr]
            if send_at >= now:
                continue
            inv_id = next_ids["inv"]
            next_ids["inv"] += 1
            skip = None
            if last_invited and send_at - last_invited < timedelta(days=30):
                skip = "fatigue"
            elif rng.random() > survey.trigger.sampling_rate:  # type: ignore[union-attr]
                skip = "sampled_out"
            if skip:
                invite_rows.append(
                    Invitation(
                        id=inv_id,
                        survey_id=survey.id,
                        contact_id=number,
                        touchpoint_id=tp_id,
                        locale=locale,
                        status="skipped",
                        skip_reason=skip,
                    )
                )
                continue
            last_invited = send_at
            answered_at = send_at + timedelta(hours=rng.uniform(0.2, 60))
            answered = rng.random() < 0.42 and answered_at < now
            expires = send_at + timedelta(days=30)
            status = "answered" if answered else ("expired" if expires < now else "sent")
            invite_rows.append(
                Invitation(
                    id=inv_id,
                    survey_id=survey.id,
                    contact_id=number,
                    touchpoint_id=tp_id,
                    locale=locale,
                    status=status,
                    send_at=send_at,
                    sent_at=send_at,
                    expires_at=expires,
                    answered_at=answered_at if answered else None,
                )
            )
            if not answered:
                continue
            days_since_sale = (occurred - sale).days
            score = _score(rng, survey, _mood(team_slug, survey, plan, days_since_sale, occurred, fix_at))
            band = survey.band_for(score)
            tone = "low" if band.unhappy else ("high" if band is survey.bands[-1] else "mid")
            comment = rng.choice(COMMENTS[tone]) if rng.random() < 0.3 else ""
            response_id = next_ids["resp"]
            next_ids["resp"] += 1
            if comment:  # the same draws as before; the words in the customer's language
                comment = themes_demo.comment(tone, locale, response_id, seed)
            if band.unhappy:  # no complaint is orphaned, in the demo either
                case_rows.append(
                    _demo_case(rng, response_id, number, teams[team_slug], survey.id, score, answered_at, now, tz_org)
                )
            response_rows.append(
                Response(
                    id=response_id,
                    survey_id=survey.id,
                    survey_version_id=getattr(versions.get(survey.id), "id", None),
                    invitation_id=inv_id,
                    question_id=survey.question.id,
                    score=score,
                    scores={survey.question.id: score},
                    comment=comment,
                    locale=locale,
                    answered_at=answered_at,
                    day=answered_at.astimezone(org_zone).date(),
                    confirmed=True,
                    touchpoint_type=kind,
                    team_id=teams[team_slug].id,
                    channel=channel,
                    stage=stage,
                    dimensions={"plan": plan, "region": country.upper(), "days_since_sale": days_since_sale},
                )
            )
        if number % 100 == 0 or number == contacts:
            await _flush(contact_rows, touch_rows, invite_rows, response_rows, case_rows)
            if progress:
                progress(number % 100 or 100)
    from pulse import risk_demo

    await risk_demo.load_story(catalog, contacts, now, seed, timezone)  # customers who soured, and steady ones
    await _fix_sequences()
    from pulse import recovery_demo  # after the sequences: it adds rows with ids the database gives

    await recovery_demo.load_story(catalog, now, seed, timezone)  # cases worked at each team's pace, follow-ups
    from pulse import loyalty
    from pulse.rollups import rebuild

    await rebuild(segments)
    await loyalty.rebuild()
    return DemoSummary(
        teams=len(TEAMS),
        contacts=contacts,
        touchpoints=next_ids["tp"] - 1,
        invitations=next_ids["inv"] - 1,
        responses=await Response.all().count(),
    )


def _demo_case(
    rng: random.Random,
    response_id: int,
    contact_id: int,
    team: Team,
    survey_id: str,
    score: int,
    answered_at: datetime,
    now: datetime,
    tz: ZoneInfo,
) -> FollowUpCase:
    """A case as the team would have left it: old ones handled, recent ones still waiting."""
    age = now - answered_at
    if age > timedelta(days=10):
        status = "resolved" if rng.random() < 0.85 else "closed_no_action"
    else:
        status = "open" if rng.random() < 0.6 else "in_progress"
    return FollowUpCase(
        response_id=response_id,
        contact_id=contact_id,
        team_id=team.id,
        owner_id=team.owner_id,
        status=status,
        due_at=followups.add_business_days(answered_at, 2, tz),
        survey_id=survey_id,
        score=score,
        created_at=answered_at,
        updated_at=answered_at,
    )


async def _flush(*batches: list) -> None:
    for rows in batches:
        if rows:
            await type(rows[0]).bulk_create(rows, batch_size=1000)
            rows.clear()


async def _fix_sequences() -> None:
    """Rows were inserted with explicit ids: move PostgreSQL's sequences past them."""
    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        return
    for table in ("contact", "touchpoint", "invitation", "response"):
        # table names come from the tuple above, never from input
        sequence = f"pg_get_serial_sequence('{table}', 'id')"
        highest = f"COALESCE((SELECT MAX(id) FROM {table}), 1)"  # noqa: S608
        await connection.execute_script(f"SELECT setval({sequence}, {highest})")


LIVE_PEOPLE = [
    ("en", "Emma Taylor", "support_ticket_closed", "support-warsaw"),
    ("pl", "Anna Nowak", "purchase", "onboarding"),
    ("it", "Giulia Rossi", "complaint_closed", "support-milan"),
    ("sl", "Maja Novak", "return_processed", "support-ljubljana"),
    ("pl", "Piotr Wójcik", "support_ticket_closed", "support-warsaw"),
    ("it", "Marco Bianchi", "renewal", "account-management"),
    ("sl", "Luka Horvat", "support_ticket_closed", "support-ljubljana"),
    ("en", "James Smith", "self_service_completed", "support-warsaw"),
]
DAYTIME_ZONES = [
    "Europe/Warsaw",
    "America/New_York",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Pacific/Auckland",
]


async def live_touchpoints(catalog: Catalog, settings, now: datetime | None = None) -> int:
    """A few touchpoints that just happened, through the real API path, so surveys arrive in the inbox now."""
    from pulse.rules import sample
    from pulse.touchpoints import ingest

    now = now or datetime.now(UTC)
    # people whose local time is daytime now, so quiet hours do not hold their e-mail until morning
    zone = next(z for z in DAYTIME_ZONES if 9 <= now.astimezone(ZoneInfo(z)).hour < 18)
    events = []
    for number, (locale, name, kind, team) in enumerate(LIVE_PEOPLE, start=1):
        survey = catalog.for_touchpoint(kind)[0]
        rate = survey.trigger.sampling_rate
        keys = (f"LIVE-{number}-{n}" for n in range(1000))
        key = next(k for k in keys if sample(survey.id, f"LIVE-{number}", f"demo:{k}") < rate)
        occurred = now - timedelta(minutes=survey.trigger.delay_minutes + 1)
        first, last = name.split()
        events.append(
            {
                "external_id": key,
                "source": "demo",
                "type": kind,
                "occurred_at": occurred.isoformat(),
                "team": team,
                "channel": "phone",
                "contact": {
                    "external_id": f"LIVE-{number}",
                    "email": f"{_ascii(first)}.{_ascii(last)}@example.com",
                    "name": name,
                    "locale": locale,
                    "timezone": zone,
                    "attributes": {"plan": "pro"},
                },
            }
        )
    outcomes = await ingest(events, catalog, settings, now=now)
    return sum(o.status == "invited" for o in outcomes)


ROSTER = {"support-warsaw": 14, "support-ljubljana": 9, "support-milan": 11, "onboarding": 8, "account-management": 3}
LOCATIONS = {
    "support-warsaw": "Warsaw",
    "support-ljubljana": "Ljubljana",
    "support-milan": "Milan",
    "onboarding": "London",
    "account-management": "London",
}


async def load_engagement(catalog: Catalog, *, months: int = 12, seed: int = 7, now: datetime | None = None) -> int:
    """A roster and a year of closed pulse rounds (Account Management, three people, always stays hidden)."""
    from pulse.engagement import programme, round_questions
    from pulse.models import Employee, PulseAnswer, PulseRound
    from pulse.roster import tenure_band

    survey = programme(catalog)
    if survey is None or survey.schedule is None:
        return 0
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    teams = {t.slug: t for t in await Team.filter(slug__in=list(ROSTER))}
    people = []
    for slug, size in ROSTER.items():
        country = next((c for s, _, _, c in TEAMS if s == slug), "en") or "en"
        for i in range(size):
            first, last = rng.choice(FIRST_NAMES[country]), rng.choice(LAST_NAMES[country])
            start = (now - timedelta(days=rng.randint(30, 3000))).date()
            people.append(
                await Employee.create(
                    external_id=f"EMP-{slug}-{i}",
                    email=f"{_ascii(first)}.{_ascii(last)}.{slug}.{i}@staff.example.com",
                    name=f"{first} {last}",
                    team=teams[slug],
                    locale=country,
                    timezone=ZONES[country],
                    start_date=start,
                    attributes={
                        "location": LOCATIONS[slug],
                        "role_family": "Sales" if slug in ("onboarding", "account-management") else "Support",
                    },
                )
            )
    every = survey.schedule.every_days
    rounds = 0
    opens = now - timedelta(days=30 * months)
    fix_at = now - timedelta(days=30 * months // 3)
    responses = []
    while opens + timedelta(days=survey.schedule.open_days) < now:
        rounds += 1
        questions = round_questions(survey, rounds)
        closes = opens + timedelta(days=survey.schedule.open_days)
        pulse_round = await PulseRound.create(
            survey_id=survey.id,
            number=rounds,
            questions=questions,
            opens_at=opens,
            remind_at=opens + timedelta(days=survey.schedule.reminder_after_days),
            closes_at=closes,
            status="closed",
            reminded=True,
            invited=len(people),
        )
        for person in people:
            if rng.random() > 0.75:
                continue
            mood = 0.72
            if person.team_id == teams["support-warsaw"].id:
                mood += 0.12 if opens >= fix_at else -0.14  # the IVR fix made the team's days better too
            if person.team_id == teams["onboarding"].id:
                mood -= 0.08
            comment = rng.choice(
                [
                    "",
                    "",
                    "More time for training would help.",
                    "Great colleagues.",
                    "The new phone system saves us a lot of stress.",
                ]
            )
            for question in questions:
                score = min(10, max(0, round(10 * rng.gauss(mood, 0.17))))
                responses.append(
                    PulseAnswer(
                        id=uuid.UUID(int=rng.getrandbits(128), version=4),
                        round_id=pulse_round.id,
                        question_id=question,
                        score=score,
                        comment=comment if question == survey.question.id else "",
                        team_id=person.team_id,
                        dimensions={
                            "location": person.attributes["location"],
                            "role_family": person.attributes["role_family"],
                            "tenure": tenure_band(person.start_date, closes.date()),
                        },
                    )
                )
        opens += timedelta(days=every)
    rng.shuffle(responses)  # as a closed round is stored: in no particular order
    await PulseAnswer.bulk_create(responses, batch_size=1000)
    return rounds
