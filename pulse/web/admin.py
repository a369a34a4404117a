"""Admin pages: users, teams, API keys, the survey catalog, and delivery health."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.functions import Count

from pulse import accounts, fields, health
from pulse.catalog import localized
from pulse.errors import BadRequest, NotFound, PulseError
from pulse.models import ApiKey, FlaggedAttempt, OutboxMessage, Team, User, UserTeam, WebhookDelivery
from pulse.web.auth import CSRF_FIELD, check_csrf
from pulse.web.dashboard import Page, page

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    check_csrf(request, str(form.get(CSRF_FIELD) or ""))
    return {key: str(value) for key, value in form.multi_items()}


async def users(request: Request) -> Response:
    p = await page(request, "admin")
    error = None
    if request.method == "POST":
        form = await _form(request)
        try:
            await accounts.create_user(
                form.get("email", ""),
                form.get("password", ""),
                form.get("role", ""),
                display_name=form.get("name", ""),
                locale=form.get("locale", "en"),
                teams=[t for t in (form.get("team") or "").split(",") if t],
            )
        except PulseError as refused:
            error = refused.message
        else:
            return RedirectResponse("/admin/users", status_code=303)
    return await _users_page(p, error)


async def _users_page(p: Page, error: str | None) -> Response:
    listed = await User.all().order_by("email")
    links = await UserTeam.all().select_related("team")
    scopes: dict[int, list[str]] = {}
    for link in links:
        scopes.setdefault(link.user_id, []).append(link.team.slug)
    return p.render(
        "admin/users.html",
        {
            "users": listed,
            "scopes": scopes,
            "error": error,
            "roles": accounts.ROLES,
            "teams": await Team.all().order_by("slug"),
        },
        status_code=400 if error else 200,
    )


async def user_update(request: Request) -> Response:
    p = await page(request, "admin")
    user_id = fields.identifier(request.path_params["user_id"])
    target = await User.get_or_none(id=user_id) if user_id is not None else None
    if target is None:
        raise NotFound("No such user.")
    form = await _form(request)
    if form.get("action") == "deactivate":
        if target.id == p.user.id:
            return await _users_page(p, p.t("You cannot deactivate yourself."))
        await User.filter(id=target.id).update(is_active=False)
        from pulse.sessions import end_all

        await end_all(target)
    elif form.get("action") == "activate":
        await User.filter(id=target.id).update(is_active=True)
    else:
        raise BadRequest("Unknown action.")
    return RedirectResponse("/admin/users", status_code=303)


async def teams(request: Request) -> Response:
    p = await page(request, "admin")
    error = None
    if request.method == "POST":
        form = await _form(request)
        try:
            await _save_team(None, form)
        except PulseError as refused:
            error = refused.message
        else:
            return RedirectResponse("/admin/teams", status_code=303)
    return await _teams_page(p, error)


async def _teams_page(p: Page, error: str | None) -> Response:
    listed = await Team.all().select_related("owner", "parent").order_by("slug")
    managers = await User.filter(is_active=True).order_by("email")
    return p.render(
        "admin/teams.html", {"teams": listed, "users": managers, "error": error}, status_code=400 if error else 200
    )


async def _save_team(team: Team | None, form: dict[str, str]) -> Team:
    name = form.get("name", "").strip()
    slug = form.get("slug", "").strip()
    if not name:
        raise BadRequest("A team needs a name.")
    if team is None:
        if not SLUG.match(slug):
            raise BadRequest("The slug must be lowercase letters, digits and dashes, such as support-warsaw.")
        if await Team.exists(slug=slug):
            raise BadRequest(f"A team with the slug {slug} already exists.")
    parent = await Team.get_or_none(slug=form["parent"]) if form.get("parent") else None
    if form.get("parent") and parent is None:
        raise BadRequest("No such parent team.")
    owner = await User.get_or_none(email=form["owner"], is_active=True) if form.get("owner") else None
    if form.get("owner") and owner is None:
        raise BadRequest("No active user has that e-mail.")
    if team is not None and parent is not None:
        ancestor: Team | None = parent
        while ancestor is not None:  # a team cannot sit below itself
            if ancestor.id == team.id:
                raise BadRequest("A team cannot be placed under itself or one of its sub-teams.")
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
        raise NotFound("No such team.")
    form = await _form(request)
    try:
        await _save_team(team, form)
    except PulseError as refused:
        return await _teams_page(p, refused.message)
    return RedirectResponse("/admin/teams", status_code=303)


async def api_keys(request: Request) -> Response:
    p = await page(request, "admin")
    created, error = None, None
    if request.method == "POST":
        form = await request.form()
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        try:
            key, secret = await accounts.create_api_key(
                str(form.get("name") or ""), [str(s) for s in form.getlist("scope")]
            )
            created = {"key": key, "secret": secret}  # shown once, on this response only
        except PulseError as refused:
            error = refused.message
    keys = await ApiKey.all().order_by("-id")
    response = p.render(
        "admin/api_keys.html",
        {"keys": keys, "created": created, "error": error, "scopes": accounts.SCOPES},
        status_code=400 if error else 200,
    )
    response.headers["cache-control"] = "no-store"
    return response


async def api_key_revoke(request: Request) -> Response:
    await page(request, "admin")
    await _form(request)
    if not await accounts.revoke_api_key(request.path_params["prefix"]):
        raise NotFound("No such active key.")
    return RedirectResponse("/admin/api-keys", status_code=303)


async def surveys(request: Request) -> Response:
    p = await page(request, "admin")
    company = p.state.settings.company_name
    listed = [
        {
            "survey": s,
            "title": localized(s.title, p.locale, company),
            "question": localized(s.question.text, p.locale, company),
        }
        for s in p.state.catalog
    ]
    return p.render("admin/surveys.html", {"surveys": listed})


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
    Route("/admin/users/{user_id}", user_update, methods=["POST"], name="admin_user"),
    Route("/admin/teams", teams, methods=["GET", "POST"], name="admin_teams"),
    Route("/admin/teams/{slug}", team_update, methods=["POST"], name="admin_team"),
    Route("/admin/api-keys", api_keys, methods=["GET", "POST"], name="admin_api_keys"),
    Route("/admin/api-keys/{prefix}/revoke", api_key_revoke, methods=["POST"], name="admin_api_key_revoke"),
    Route("/admin/surveys", surveys, name="admin_surveys"),
    Route("/admin/delivery", delivery, name="admin_delivery"),
]
