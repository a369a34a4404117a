"""Does the risk list foretell anything? Score customers as of a day in the past, using only what happened before
it, then look at what they did afterwards, against every customer's base rate.

A customer "went bad" when, after that day, they churned (no touchpoint at all for `churn_days`) or gave an
unhappy answer (a band with unhappy = true, e.g. an NPS detractor). The population is every customer with a
touchpoint in the history_days before the day: who was a customer then.
"""

# ruff: noqa: S608 - the SQL here is constant text, "?" placeholders and ids the catalog and the weights file
# checked (survey ids, a contact attribute name): no input reaches it unbound
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pulse import db
from pulse.catalog import Catalog
from pulse.risk_config import RiskConfig


@dataclass
class Backtest:
    as_of: datetime
    days: int
    churn_days: int
    customers: int
    flagged: int
    flagged_bad: int
    flagged_churned: int
    flagged_unhappy: int
    base_bad: int
    base_churned: int
    base_unhappy: int

    @property
    def flagged_rate(self) -> float | None:
        return self.flagged_bad / self.flagged if self.flagged else None

    @property
    def base_rate(self) -> float | None:
        return self.base_bad / self.customers if self.customers else None

    @property
    def lift(self) -> float | None:
        if self.flagged_rate is None or not self.base_rate:
            return None
        return self.flagged_rate / self.base_rate

    def lines(self) -> list[str]:
        """The result as a person reads it on the command line."""

        def share(part: int, whole: int) -> str:
            return f"{100 * part / whole:.0f}%" if whole else "–"

        lift = f"{self.lift:.1f}×" if self.lift is not None else "–"
        return [
            f"As of {self.as_of.date().isoformat()} ({self.days} days ago), {self.flagged} of {self.customers}"
            f" customers were flagged at risk.",
            f"Of the flagged, {self.flagged_bad} ({share(self.flagged_bad, self.flagged)}) then churned (no touchpoint"
            f" for {self.churn_days} days) or gave an unhappy score: {self.flagged_churned} churned,"
            f" {self.flagged_unhappy} unhappy.",
            f"Of all {self.customers} customers, {self.base_bad} ({share(self.base_bad, self.customers)}) did:"
            f" {self.base_churned} churned, {self.base_unhappy} unhappy.",
            f"Lift: {lift} the base rate.",
        ]


async def run(
    catalog: Catalog, config: RiskConfig, days: int, churn_days: int, now: datetime | None = None
) -> Backtest:
    """Flag customers as of `days` ago and count who then churned or was unhappy, flagged and overall."""
    from pulse import risk  # here, not at the top: every `pulse` command builds this module's parser

    if churn_days > days:
        raise ValueError(f"--churn-days ({churn_days}) must not be more than --days ({days}): it must have passed.")
    now = now or datetime.now(UTC)
    as_of = now - timedelta(days=days)
    flagged = {found.contact_id for found in risk.listed(await risk.assess(catalog, config, as_of), config)}
    stamp = db.bound_time(as_of)
    customers = {
        row[0]
        for row in await db.fetch(
            "SELECT DISTINCT contact_id FROM touchpoint WHERE occurred_at < ? AND occurred_at >= ?",
            [stamp, db.bound_time(as_of - timedelta(days=config.history_days))],
        )
    }
    flagged &= customers  # a customer flagged only for an old case, with no touchpoint in a year, is no customer
    active = {
        row[0]
        for row in await db.fetch(
            "SELECT DISTINCT contact_id FROM touchpoint WHERE occurred_at >= ? AND occurred_at < ?",
            [stamp, db.bound_time(as_of + timedelta(days=churn_days))],
        )
    }
    params: list = [True, False, stamp]
    unhappy_sql = risk.unhappy_sql(catalog, params)
    unhappy = {
        row[0]
        for row in await db.fetch(
            "SELECT DISTINCT i.contact_id FROM response r JOIN invitation i ON i.id = r.invitation_id"
            f" WHERE r.confirmed = ? AND r.discarded = ? AND r.answered_at >= ? AND {unhappy_sql}",
            params,
        )
    }
    churned = customers - active
    bad = churned | (unhappy & customers)
    return Backtest(
        as_of=as_of,
        days=days,
        churn_days=churn_days,
        customers=len(customers),
        flagged=len(flagged),
        flagged_bad=len(flagged & bad),
        flagged_churned=len(flagged & churned),
        flagged_unhappy=len(flagged & unhappy),
        base_bad=len(bad),
        base_churned=len(churned),
        base_unhappy=len(unhappy & customers),
    )


async def command(settings, days: int, churn_days: int) -> int:
    """`pulse insights backtest`: run the backtest on the configured database and print it."""
    from pulse import risk_config
    from pulse.catalog import load_catalog

    if not 1 <= days <= 3650 or not 1 <= churn_days <= 3650:
        print("Error: --days and --churn-days must be whole numbers from 1 to 3650.", file=sys.stderr)
        return 2
    if churn_days > days:
        print(
            f"Error: --churn-days ({churn_days}) must not be more than --days ({days}): the churn window must have"
            " passed by today.",
            file=sys.stderr,
        )
        return 2
    catalog, config = load_catalog(settings.surveys_dir), risk_config.load(settings.surveys_dir)
    async with db.connected(settings.database_url):
        result = await run(catalog, config, days, churn_days)
    print("\n".join(result.lines()))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `pulse insights backtest` to the command line (joining an `insights` command another module made)."""
    insights = commands.choices.get("insights") or commands.add_parser("insights", help="Insights on the command line.")
    actions = next((a for a in insights._actions if isinstance(a, argparse._SubParsersAction)), None)
    if actions is None:
        actions = insights.add_subparsers(dest="insights_command", metavar="ACTION", required=True)
    backtest = actions.add_parser(
        "backtest",
        help="Flag customers at risk as of --days ago (with what was known then) and count how many then churned or"
        " gave an unhappy score, against the base rate.",
    )
    backtest.add_argument("--days", type=int, default=180, help="Score customers as of this many days ago (180).")
    backtest.add_argument(
        "--churn-days", type=int, default=90, help="Churned: no touchpoint for this many days after that day (90)."
    )
    backtest.set_defaults(func=lambda s, a: asyncio.run(command(s, a.days, a.churn_days)))
