"""Admin pages: users, teams, API keys, the survey catalog, and delivery health."""

from __future__ import annotations

import re

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from pulse import accounts, audit, fields, health
from pulse.catalog import localized
from pulse.errors import BadRequest, NotFound, PulseError
from pulse.i18n import N_
from pulse.models import ApiKey, FlaggedAttempt, OutboxMessage, Team, User, UserTeam, WebhookDelivery
from pulse.web.auth import CSRF_FIELD, check_csrf
from pulse.web.dashboard import Page, page

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


ROLE_NAMES = {
    "admin": N_("Admin: everything, and this admin area"),
    "hr": N_("HR partner: employee engagement only"),
    "manager": N_("Manager: the dashboards and cases of their teams"),
    "analyst": N_("Analyst: every dashboard, read-only"),
}
LAST_ADMIN = N_("Pulse needs at least one active admin: make another user an admin first.")
MANAGER_WITHOUT_TEAM = N_("A manager needs at least one team: without one they see nothing.")


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    return form


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "")


def _teams(form: FormData) -> list[str]:
    return sorted({str(slug) for slug in form.getlist("team") if str(slug)})


def role_refusal(current_role: str, is_active: bool, new_role: str, teams: list[str], other_admins: int) -> str | None:
    """Why this role and these teams cannot be saved (an untranslated sentence), or None."""
    if current_role == "admin" and is_active and new_role != "admin" and other_admins == 0:
        return LAST_ADMIN
    if new_role == "manager" and not teams:
        return MANAGER_WITHOUT_TEAM
    return None


async def _known_teams(slugs: list[str]) -> list[Team]:
    found = await Team.filter(slug__in=slugs)
    missing = sorted(set(slugs) - {t.slug for t in found})
    if missing:
        raise BadRequest(N_("No team with the slug %(slugs)s."), slugs=", ".join(missing))
    return found


def _check_role(role: str) -> None:
    if role not in accounts.ROLES:
        raise BadRequest(
            N_("The role must be one of %(roles)s, not %(role)s."), roles=", ".join(accounts.ROLES), role=repr(role)
        )


async def users(request: Request) -> Response:
    p = await page(request, "admin")
    error = None
    if request.method == "POST":
        form = await _form(request)
        teams = _teams(form)
        refusal = role_refusal("", False, _text(form, "role"), teams, 0)
        if not _text(form, "role"):
            error = p.t("Choose a role.")
        elif refusal:
            error = p.t(refusal)
        else:
            try:
                await accounts.create_user(
                    _text(form, "email"),
                    _text(form, "password"),
                    _text(form, "role"),
                    display_name=_text(form, "name"),
                    locale=_text(form, "locale") or "en",
                    teams=teams,
                    actor=p.user.email,
                    source=audit.source_of(request),
                )
            except PulseError as refused:
                error = refused.localized(p.locale)
            else:
                return RedirectResponse("/admin/users?saved=1", status_code=303)
    return await _users_page(p, error)


async def _scopes() -> dict[int, list[str]]:
    scopes: dict[int, list[str]] = {}
    for link in await UserTeam.all().select_related("team").order_by("team__slug"):
        scopes.setdefault(link.user_id, []).append(link.team.slug)
    return scopes


async def _users_page(p: Page, error: str | None) -> Response:
    return p.render(
        "admin/users.html",
        {
            "users": await User.all().order_by("email"),
            "scopes": await _scopes(),
            "team_names": dict(await Team.all().values_list("slug", "name")),  # the list shows names, not slugs
            "error": error,
            "saved": p.request.query_params.get("saved") == "1" and not error,
            "roles": ROLE_NAMES,
            "teams": await Team.all().order_by("slug"),
        },
        status_code=400 if error else 200,
    )


async def _user_page(p: Page, target: User, error: str | None = None, chosen: dict | None = None) -> Response:
    scopes = await _scopes()
    return p.render(
        "admin/user.html",
        {
            "target": target,
            "role": (chosen or {}).get("role", target.role),
            "chosen_teams": set((chosen or {}).get("teams", scopes.get(target.id, []))),
            "roles": ROLE_NAMES,
            "teams": await Team.all().order_by("slug"),
            "owned": await Team.filter(owner_id=target.id).order_by("name").values_list("name", flat=True),
            "error": error,
        },
        status_code=400 if error else 200,
    )


async def save_role_and_teams(
    target: User, role: str, slugs: list[str], actor: str | None = None, source: str = ""
) -> str | None:
    """Give `target` this role and exactly these teams; the refusal sentence (untranslated) if that is not allowed.
    With an `actor`, a change is in the audit log (`user.role_changed`, or `user.teams_changed` for teams only)."""
    _check_role(role)
    teams = await _known_teams(slugs)
    async with in_transaction():
        others = await User.filter(role="admin", is_active=True).exclude(id=target.id).count()
        refusal = role_refusal(target.role, target.is_active, role, slugs, others)
        if refusal:
            return refusal
        before = sorted(await UserTeam.filter(user_id=target.id).values_list("team__slug", flat=True))
        await User.filter(id=target.id).update(role=role)
        await UserTeam.filter(user_id=target.id).delete()
        for team in teams:
            await UserTeam.create(user_id=target.id, team=team)
        after = sorted(t.slug for t in teams)
        if actor is not None and (role != target.role or before != after):
            await audit.record(
                "user.role_changed" if role != target.role else "user.teams_changed",
                actor=actor,
                target=f"user {target.email}",
                source=source,
                details={"role": [target.role, role], "teams": [before, after]},
            )
    return None


async def user_update(request: Request) -> Response:
    p = await page(request, "admin")
    user_id = fields.identifier(request.path_params["user_id"])
    target = await User.get_or_none(id=user_id) if user_id is not None else None
    if target is None:
        raise NotFound(N_("No such user."))
    if request.method == "GET":
        return await _user_page(p, target)
    form = await _form(request)
    action = form.get("action")
    if action == "save":
        role, slugs = _text(form, "role"), _teams(form)
        try:
            refusal = await save_role_and_teams(target, role, slugs, p.user.email, audit.source_of(request))
        except PulseError as refused:
            return await _user_page(p, target, refused.localized(p.locale), {"role": role, "teams": slugs})
        if refusal:
            return await _user_page(p, target, p.t(refusal), {"role": role, "teams": slugs})
    elif action == "deactivate":
        if target.id == p.user.id:
            return await _users_page(p, p.t("You cannot deactivate yourself."))
        from pulse.sessions import end_all

        async with in_transaction():
            if await User.filter(id=target.id, is_active=True).update(is_active=False):
                await audit.record(
                    "user.deactivated",
                    actor=p.user.email,
                    target=f"user {target.email}",
                    source=audit.source_of(request),
                )
            await end_all(target)
    elif action == "activate":
        async with in_transaction():
            if await User.filter(id=target.id, is_active=False).update(is_active=True):
                await audit.record(
                    "user.activated", actor=p.user.email, target=f"user {target.email}", source=audit.source_of(request)
                )
    else:
        raise BadRequest(N_("Unknown action."))
    return RedirectResponse("/admin/users?saved=1", status_code=303)


async def teams(request: Request) -> Response:
    p = await page(request, "admin")
    error = None
    if request.method == "POST":
        form = await _form(request)
        try:
            await _save_team(None, form)
        except PulseError as refused:
            error = refused.localized(p.locale)
        else:
            return RedirectResponse("/admin/teams", status_code=303)
    return await _teams_page(p, error)


async def _teams_page(p: Page, error: str | None) -> Response:
    listed = await Team.all().select_related("owner", "parent").order_by("slug")
    managers = await User.filter(is_active=True).order_by("email")
    return p.render(
        "admin/teams.html", {"teams": listed, "users": managers, "error": error}, status_code=400 if error else 200
    )


async def _save_team(team: Team | None, form: FormData) -> Team:
    name = _text(form, "name").strip()
    slug = _text(form, "slug").strip()
    if not name:
        raise BadRequest(N_("A team needs a name."))
    if team is None:
        if not SLUG.match(slug):
            raise BadRequest(N_("The slug must be lowercase letters, digits and dashes, such as support-warsaw."))
        if await Team.exists(slug=slug):
            raise BadRequest(N_("A team with the slug %(slug)s already exists."), slug=slug)
    parent = await Team.get_or_none(slug=_text(form, "parent")) if form.get("parent") else None
    if form.get("parent") and parent is None:
        raise BadRequest(N_("No such parent team."))
    owner = await User.get_or_none(email=_text(form, "owner"), is_active=True) if form.get("owner") else None
    if form.get("owner") and owner is None:
        raise BadRequest(N_("No active user has that e-mail."))
    if team is not None and parent is not None:
        ancestor: Team | None = parent
        while ancestor is not None:  # a team cannot sit below itself
            if ancestor.id == team.id:
                raise BadRequest(N_("A team cannot be placed under itself or one of its sub-teams."))
            ancestor = await Team.get_or_none(id=ancestor.parent_id) if ancestor.parent_id else None
    if team is None:
        return await Team.create(slug=slug, name=name, parent=parent, owner=owner)
    team.name, team.parent, team.owner = name, parent, owner
    await team.save()
    return team


async def team_update(request: Request) -> Response:
    p = await page(request, "admin")
    team = await Team.get_or_none(slug=request.path_params["slug"])
    if team is None:
        raise NotFound(N_("No such team."))
    form = await _form(request)
    try:
        await _save_team(team, form)
    except PulseError as refused:
        return await _teams_page(p, refused.localized(p.locale))
    return RedirectResponse("/admin/teams", status_code=303)


async def api_keys(request: Request) -> Response:
    p = await page(request, "admin")
    created, error = None, None
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        try:
            key, secret = await accounts.create_api_key(
                str(form.get("name") or ""),
                [str(s) for s in form.getlist("scope")],
                actor=p.user.email,
                source=audit.source_of(request),
            )
            created = {"key": key, "secret": secret}  # shown once, on this response only
        except PulseError as refused:
            error = refused.localized(p.locale)
    keys = await ApiKey.all().order_by("-id")
    response = p.render(
        "admin/api_keys.html",
        {"keys": keys, "created": created, "error": error, "scopes": accounts.SCOPES},
        status_code=400 if error else 200,
    )
    response.headers["cache-control"] = "no-store"
    return response


async def api_key_revoke(request: Request) -> Response:
    p = await page(request, "admin")
    await _form(request)
    revoked = await accounts.revoke_api_key(
        request.path_params["prefix"], actor=p.user.email, source=audit.source_of(request)
    )
    if not revoked:
        raise NotFound(N_("No such active key."))
    return RedirectResponse("/admin/api-keys", status_code=303)


async def surveys(request: Request) -> Response:
    return surveys_page(await page(request, "admin"))


def surveys_page(p: Page, extra: dict | None = None, status_code: int = 200) -> Response:
    """The survey catalog, with the state of its translations (and what an import did, when one just ran)."""
    from pulse.web import survey_translations

    company = p.state.settings.company_name
    listed = [
        {
            "survey": s,
            "title": localized(s.title, p.locale, company),
            "question": localized(s.question.text, p.locale, company),
        }
        for s in p.state.catalog
    ]
    context = {"surveys": listed, **survey_translations.page_context(p), **(extra or {})}
    return p.render("admin/surveys.html", context, status_code=status_code)


async def delivery(request: Request) -> Response:
    p = await page(request, "admin")
    outbox = dict(await OutboxMessage.all().annotate(n=Count("id")).group_by("status").values_list("status", "n"))
    flagged = dict(await FlaggedAttempt.all().annotate(n=Count("id")).group_by("reason").values_list("reason", "n"))
    hooks = dict(await WebhookDelivery.all().annotate(n=Count("id")).group_by("status").values_list("status", "n"))
    failures = await OutboxMessage.filter(status="failed").order_by("-id").limit(20)
    context = {"outbox": outbox, "flagged": flagged, "hooks": hooks, "failures": failures}
    found = await health.report(p.state.settings, probe=False)  # the same facts /healthz reports
    context |= {"health": found, "stale_after": health.stale_after(p.state.settings), "due_limit": health.DUE_LIMIT}
    return p.render("admin/delivery.html", context)


ROUTES = [
    Route("/admin/users", users, methods=["GET", "POST"], name="admin_users"),
    Route("/admin/users/{user_id}", user_update, methods=["GET", "POST"], name="admin_user"),
    Route("/admin/teams", teams, methods=["GET", "POST"], name="admin_teams"),
    Route("/admin/teams/{slug}", team_update, methods=["POST"], name="admin_team"),
    Route("/admin/api-keys", api_keys, methods=["GET", "POST"], name="admin_api_keys"),
    Route("/admin/api-keys/{prefix}/revoke", api_key_revoke, methods=["POST"], name="admin_api_key_revoke"),
    Route("/admin/surveys", surveys, name="admin_surveys"),
    Route("/admin/delivery", delivery, name="admin_delivery"),
]
