"""create_app(settings) -> Starlette: the route table, middleware, error handlers and lifespan."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from tortoise.connection import connections
from tortoise.contrib.starlette import RegisterTortoise

from pulse import db, logs, translations, worker
from pulse.catalog import Catalog, load_catalog
from pulse.devmail import MailCatcher
from pulse.models import SurveyVersion
from pulse.ratelimit import RateLimiter
from pulse.rendering import environment
from pulse.risk_config import load as load_risk_config
from pulse.settings import Settings, load_settings
from pulse.sqlite_engine import serving
from pulse.web import (
    admin,
    analytics,
    api,
    audit_log,
    cases,
    dashboard,
    devmail,
    engagement,
    errors,
    explore,
    openapi,
    privacy,
    public,
    recovery,
    signin,
    survey_translations,
    system,
)
from pulse.web import risk as at_risk
from pulse.web import themes as comment_themes
from pulse.web.assets import PLOTLY_JS, StaticAssets
from pulse.web.security import SecurityHeaders
from pulse.writer import GroupCommit

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@functools.cache
def static_files() -> StaticAssets:
    """The files under static/ and plotly.js (no CDN, and its version always matches the plotly package)."""
    return StaticAssets(STATIC_DIR, {"vendor/plotly.min.js": PLOTLY_JS})


log = logging.getLogger("pulse")


def routes(settings: Settings) -> list[Route | Mount]:
    """The whole route table, top to bottom."""
    table: list[Route | Mount] = [
        Route("/", dashboard.root, name="home"),
        *public.ROUTES,  # first: the answer links are the busiest routes, and Starlette tries routes in order
        Route("/livez", system.livez, name="livez"),
        Route("/healthz", system.healthz, name="healthz"),
        *signin.ROUTES,
        *dashboard.ROUTES,
        *at_risk.ROUTES,
        *recovery.ROUTES,  # before cases and api: /cases/recovery is no case id
        *cases.ROUTES,
        *privacy.ROUTES,
        *explore.ROUTES,
        *admin.ROUTES,
        *survey_translations.ROUTES,  # the translator files and their upload, for admins and the API
        *audit_log.ROUTES,
        *engagement.ROUTES,
        *api.ROUTES,
        *analytics.ROUTES,
        *comment_themes.ROUTES,
        *openapi.ROUTES,
        Mount("/static", static_files(), name="static"),  # plotly.js too, from the installed plotly package
    ]
    if settings.dev_mail_catcher:
        table += devmail.ROUTES
    return table


async def record_survey_versions(catalog: Catalog) -> None:
    """Keep each distinct definition a response may point at (idempotent on the file's checksum)."""
    for survey in catalog:
        await SurveyVersion.get_or_create(
            survey_id=survey.id, checksum=survey.checksum, defaults={"definition": dict(survey.definition)}
        )


def create_app(settings: Settings, *, catalog: Catalog | None = None, run_worker: bool = False) -> Starlette:
    """Build the app. The survey catalog is validated here, so a bad definition stops start-up."""
    risk = load_risk_config(settings.surveys_dir)  # the at-risk weights: a bad file stops start-up too
    catalog = translations.for_sending(catalog or load_catalog(settings.surveys_dir), settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        catcher = MailCatcher(settings.dev_mail_catcher_port) if settings.dev_mail_catcher else None
        async with RegisterTortoise(app, config=db.tortoise_config(settings.database_url)):
            await record_survey_versions(catalog)
            if catcher:
                catcher.start()
                app.state.mail_catcher = catcher
            async with (
                serving(connections.get("default")),
                app.state.writer.running(),
                worker.running(settings, catalog, enabled=run_worker),
            ):
                try:
                    yield
                finally:
                    if catcher:
                        catcher.stop()

    app = Starlette(
        routes=routes(settings),
        middleware=[Middleware(SecurityHeaders, https=settings.https)],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog = catalog
    comment_themes.check(settings)  # a themes file that does not validate stops start-up too
    app.state.risk = risk
    app.state.templates = environment()
    app.state.templates.globals["static_url"] = static_files().url
    app.state.link_limiter = RateLimiter(settings.link_rate_limit, settings.secret_key)
    app.state.writer = GroupCommit()
    app.state.answer_pages = {}  # pulse/web/public.py: answer pages rendered once, reused with each nonce
    return app


def app_from_environment() -> Starlette:
    """The app of one web process of `pulse serve --processes N`: uvicorn imports and calls this in each child it
    spawns, which reads the settings from the environment (as the parent did) and runs no worker loops."""
    settings = load_settings()
    logs.configure(settings.log_level)
    app = create_app(settings, run_worker=False)
    logs.install(app)  # uvicorn configured this child's loggers before calling the factory
    return app
