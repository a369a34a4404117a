"""The demo's customers-at-risk story (pulse/demo.py calls `load_story`): customers who soured and left, and
steady customers who plainly should not be on the list.

A soured customer is content for months (good answers, a touchpoint every few weeks), then on their turning day
files a complaint, answers it with a low score whose case nobody resolves, complains again, leaves two surveys
unanswered and falls silent: what the at-risk signals look for, and what the backtest should find. Turning days
spread over the last ten months, so some soured before the backtest's day and churned after it. Their own random
generator keeps the rest of the demo exactly as it was.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pulse import db, followups
from pulse.catalog import Catalog
from pulse.models import Contact, FollowUpCase, Invitation, Response, SurveyVersion, Team, Touchpoint

SOURED_BASE = 900_000  # soured customers are CRM-900001, CRM-900002, …; the first two turned three weeks ago
STEADY_BASE = 950_000  # steady customers are CRM-950001, …
SUPPORT = [("support-warsaw", "pl"), ("support-milan", "it"), ("support-ljubljana", "sl")]
NAMES = {
    "pl": [("Zofia", "Lewandowska"), ("Marek", "Zieliński"), ("Ewa", "Szymańska"), ("Jan", "Dąbrowski")],
    "it": [("Sara", "Romano"), ("Paolo", "Colombo"), ("Elena", "Ricci"), ("Davide", "Marino")],
    "sl": [("Ana", "Kos"), ("Tadej", "Vidmar"), ("Špela", "Golob"), ("Rok", "Mlakar")],
}


def soured_ids(contacts: int) -> list[str]:
    return [f"CRM-{SOURED_BASE + n:06d}" for n in range(1, soured_count(contacts) + 1)]


def steady_ids(contacts: int) -> list[str]:
    return [f"CRM-{STEADY_BASE + n:06d}" for n in range(1, steady_count(contacts) + 1)]


def soured_count(contacts: int) -> int:
    return max(4, contacts // 15)


def steady_count(contacts: int) -> int:
    return max(3, contacts // 60)


class _Story:
    def __init__(self, catalog: Catalog, now: datetime, tz: ZoneInfo, teams: dict[str, Team], ids: dict) -> None:
        self.catalog, self.now, self.tz, self.teams, self.ids = catalog, now, tz, teams, ids
        self.rows: dict[str, list] = {"contact": [], "touchpoint": [], "invitation": [], "response": [], "case": []}
        self.versions: dict[str, int] = {}

    def next(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def contact(self, contact_id: int, external_id: str, name: tuple[str, str], country: str, sale: datetime) -> None:
        first, last = name
        self.rows["contact"].append(
            Contact(
                id=contact_id,
                external_id=external_id,
                email=f"{external_id.lower()}@example.com",
                name=f"{first} {last}",
                locale=country,
                first_purchase_at=sale,
                attributes={"plan": "pro", "region": country.upper()},
            )
        )

    def event(
        self, contact_id: int, when: datetime, kind: str, team: str, sale: datetime, score: int | None, country: str
    ) -> None:
        """A touchpoint; with `score`, its survey answered with it a few hours later; with None, left unanswered."""
        if when >= self.now:
            return
        tp_id = self.next("touchpoint")
        channel = "web" if kind == "purchase" else "phone"
        self.rows["touchpoint"].append(
            Touchpoint(
                id=tp_id,
                source="demo",
                external_id=f"RISK-{tp_id:08d}",
                type=kind,
                occurred_at=when,
                contact_id=contact_id,
                team_id=self.teams[team].id,
                channel=channel,
                stage="active",
            )
        )
        surveys = self.catalog.for_touchpoint(kind)
        if not surveys:
            return
        survey = surveys[0]
        sent = when + timedelta(hours=2)
        answered = sent + timedelta(hours=5) if score is not None else None
        if answered is not None and answered >= self.now:
            return
        inv_id = self.next("invitation")
        status = "answered" if answered else ("expired" if sent + timedelta(days=30) < self.now else "sent")
        self.rows["invitation"].append(
            Invitation(
                id=inv_id,
                survey_id=survey.id,
                contact_id=contact_id,
                touchpoint_id=tp_id,
                locale=country,
                status=status,
                send_at=sent,
                sent_at=sent,
                expires_at=sent + timedelta(days=30),
                answered_at=answered,
            )
        )
        if answered is None:
            return
        score = max(survey.scale_min, min(survey.scale_max, score))
        response_id = self.next("response")
        self.rows["response"].append(
            Response(
                id=response_id,
                survey_id=survey.id,
                survey_version_id=self.versions.get(survey.id),
                invitation_id=inv_id,
                question_id=survey.question.id,
                score=score,
                scores={survey.question.id: score},
                comment="Nobody called me back." if survey.is_unhappy(score) else "",
                locale=country,
                answered_at=answered,
                day=answered.astimezone(self.tz).date(),
                confirmed=True,
                touchpoint_type=kind,
                team_id=self.teams[team].id,
                channel=channel,
                stage="active",
                dimensions={"plan": "pro", "region": country.upper(), "days_since_sale": (when - sale).days},
            )
        )
        if survey.is_unhappy(score):  # the case is opened, and nobody ever resolves it
            self.rows["case"].append(
                FollowUpCase(
                    response_id=response_id,
                    contact_id=contact_id,
                    team_id=self.teams[team].id,
                    owner_id=self.teams[team].owner_id,
                    status="open",
                    due_at=followups.add_business_days(answered, 2, self.tz),
                    survey_id=survey.id,
                    score=score,
                    created_at=answered,
                    updated_at=answered,
                )
            )


def _team_of(kind: str, support: str) -> str:
    """Reviews are the account managers' (support teams send no NPS survey in the demo); the rest is support's."""
    return "account-management" if kind == "account_review" else support


def _happy(rng: random.Random, kind: str) -> int:
    return 10 if kind in {"purchase", "account_review"} else rng.choice([5, 5, 7])  # NPS 10, CSAT 5, CES 7


async def load_story(catalog: Catalog, contacts: int, now: datetime, seed: int, timezone: str) -> None:
    """Add the soured and the steady customers to a demo database (after the main demo's rows)."""
    rng = random.Random(seed * 1000 + 18)
    # the demo gives its handled cases the answer's time as their last change, but bulk_create's auto_now wrote the
    # loading time over it: put it back, or every case would look resolved only today, and the backtest would see
    # months of open cases that the demo's team had in fact closed
    await db.execute(
        "UPDATE followup_case SET updated_at = created_at WHERE status NOT IN (?, ?)", list(followups.OPEN_STATUSES)
    )
    ids = {}
    for table in ("contact", "touchpoint", "invitation", "response"):
        [(highest,)] = await db.fetch(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - constant names
        ids[table] = highest
    teams = {team.slug: team for team in await Team.all()}
    story = _Story(catalog, now, ZoneInfo(timezone), teams, ids)
    story.versions = {v.survey_id: v.id for v in await SurveyVersion.all()}
    for n in range(1, soured_count(contacts) + 1):
        team, country = SUPPORT[(n - 1) % len(SUPPORT)]
        contact_id = story.next("contact")
        turn = now - timedelta(days=21 if n <= 2 else rng.uniform(25, 300))
        sale = turn - timedelta(days=rng.uniform(240, 330))
        name = NAMES[country][(n - 1) // len(SUPPORT) % len(NAMES[country])]
        story.contact(contact_id, f"CRM-{SOURED_BASE + n:06d}", name, country, sale)
        story.event(contact_id, sale, "purchase", "onboarding", sale, 10, country)
        moment = sale + timedelta(days=rng.uniform(10, 20))
        while moment < turn - timedelta(days=10):  # content: a touchpoint every three to five weeks
            kind = "account_review" if rng.random() < 0.25 else "support_ticket_closed"
            story.event(contact_id, moment, kind, _team_of(kind, team), sale, _happy(rng, kind), country)
            moment += timedelta(days=rng.uniform(20, 35))
        story.event(contact_id, turn, "complaint_closed", team, sale, 1, country)  # unhappy; the case stays open
        story.event(contact_id, turn + timedelta(days=6), "complaint_closed", team, sale, None, country)
        story.event(contact_id, turn + timedelta(days=12), "support_ticket_closed", team, sale, None, country)
        # …and then nothing: the customer has gone
    for n in range(1, steady_count(contacts) + 1):
        team, country = SUPPORT[(n - 1) % len(SUPPORT)]
        contact_id = story.next("contact")
        sale = now - timedelta(days=rng.uniform(300, 340))
        name = NAMES[country][-1 - (n - 1) // len(SUPPORT) % len(NAMES[country])]
        story.contact(contact_id, f"CRM-{STEADY_BASE + n:06d}", name, country, sale)
        story.event(contact_id, sale, "purchase", "onboarding", sale, 10, country)
        moment = sale + timedelta(days=rng.uniform(10, 20))
        while moment < now - timedelta(days=2):
            kind = "account_review" if rng.random() < 0.25 else "support_ticket_closed"
            story.event(contact_id, moment, kind, _team_of(kind, team), sale, _happy(rng, kind), country)
            moment += timedelta(days=rng.uniform(18, 28))
    for table, model in (
        ("contact", Contact),
        ("touchpoint", Touchpoint),
        ("invitation", Invitation),
        ("response", Response),
        ("case", FollowUpCase),
    ):
        if story.rows[table]:
            await model.bulk_create(story.rows[table], batch_size=1000)
