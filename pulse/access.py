"""Who may see what: roles, and the teams a manager is scoped to (with their sub-teams)."""

from __future__ import annotations

from pulse.errors import Forbidden
from pulse.i18n import N_
from pulse.models import Team, User, UserTeam
from pulse.teams import subtree_ids

# what each role may open; every page and API call checks it on the server
PERMISSIONS = {
    "admin": {"dashboards", "cases", "cases:write", "contacts", "admin", "engagement", "employee_comments"},
    "analyst": {"dashboards", "cases", "contacts", "engagement"},
    "manager": {"dashboards", "cases", "cases:write", "contacts", "engagement"},
    "hr": {"engagement", "employee_comments"},
}


def allowed(user: User, permission: str) -> bool:
    return permission in PERMISSIONS.get(user.role, set())


def require(user: User, permission: str) -> None:
    if not allowed(user, permission):
        raise Forbidden(N_("Your role does not give access to this page."))


async def team_ids(user: User) -> set[int] | None:
    """The ids of the teams a user may see, or None for every team (admins, analysts, HR)."""
    if user.role != "manager":
        return None
    found: set[int] = set()
    assigned = set(await UserTeam.filter(user_id=user.id).values_list("team_id", flat=True))
    assigned |= set(await Team.filter(owner_id=user.id).values_list("id", flat=True))  # owning a team counts
    for team_id in assigned:
        found.update(await subtree_ids(team_id))
    return found


async def team_slugs(user: User) -> list[str] | None:
    ids = await team_ids(user)
    if ids is None:
        return None
    return sorted(await Team.filter(id__in=ids).values_list("slug", flat=True))


async def top_teams(user: User) -> list[Team]:
    """The teams a manager was given (not their sub-teams): their natural starting point."""
    ids = set(await UserTeam.filter(user_id=user.id).values_list("team_id", flat=True))
    ids |= set(await Team.filter(owner_id=user.id).values_list("id", flat=True))
    return await Team.filter(id__in=ids).order_by("name")
