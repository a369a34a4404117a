"""Stale survey translations on the web: the admin Surveys page's part, the translator files, and the API."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulse import audit, translation_files, translations
from pulse.catalog import CatalogError
from pulse.errors import BadRequest, Conflict, PulseError
from pulse.i18n import N_
from pulse.translations import STALE, TRANSLATED, UNRECORDED
from pulse.web.auth import CSRF_FIELD, api_key, check_csrf
from pulse.web.dashboard import Page, page

MEDIA = {"po": "text/x-gettext-translation; charset=utf-8", "xliff": "application/xliff+xml; charset=utf-8"}
SUFFIX = {"po": "po", "xliff": "xlf"}
NO_FILE = N_("Choose a PO or XLIFF file to import.")
UNREADABLE_RECORD = N_("The record of translated texts cannot be read: %(problem)s")


@contextlib.contextmanager
def _record_readable() -> Iterator[None]:
    """A damaged surveys/translated-from file is the server's state, not the request's: 409 with what to repair."""
    try:
        yield
    except CatalogError as error:
        raise Conflict(UNREADABLE_RECORD, problem="; ".join(error.messages)) from None


def page_context(p: Page) -> dict:
    """What the Surveys page shows of translations: per survey and language the stale and unrecorded counts,
    and the stale texts themselves."""
    try:
        found = translations.report(p.state.catalog, p.state.settings.surveys_dir)
        unreadable = None
    except CatalogError as error:  # the page still lists the surveys, and says what to repair
        found, unreadable = [], "; ".join(error.messages)
    counts = Counter((e.survey_id, e.locale, e.state) for e in found)
    return {
        "translated_locales": TRANSLATED,
        "translation_counts": {
            s.id: {
                locale: {"stale": counts[(s.id, locale, STALE)], "unrecorded": counts[(s.id, locale, UNRECORDED)]}
                for locale in TRANSLATED
            }
            for s in p.state.catalog
        },
        "stale_entries": [e for e in found if e.state == STALE],
        "unrecorded_count": sum(1 for e in found if e.state == UNRECORDED),
        "stale_in_english": p.state.settings.stale_translations == "english",
        "record_error": unreadable,
        "imported": None,
        "import_error": None,
    }


def _locale(request: Request) -> str:
    locale = request.path_params["locale"]
    if locale not in TRANSLATED:
        raise BadRequest(translation_files.NOT_A_LANGUAGE, choices=", ".join(TRANSLATED))
    return locale


def _format(request: Request) -> str:
    fmt = request.query_params.get("format", "po")
    if fmt not in translation_files.FORMATS:
        raise BadRequest(N_("The format must be po or xliff."))
    return fmt


def _file(request: Request, locale: str, fmt: str) -> Response:
    state = request.app.state
    with _record_readable():
        data = translation_files.export(state.catalog, state.settings.surveys_dir, locale, fmt)
    name = f"surveys-{locale}.{SUFFIX[fmt]}"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return Response(data, media_type=MEDIA[fmt], headers=headers)


async def download(request: Request) -> Response:
    """One language's survey texts for a translator (admin)."""
    await page(request, "admin")
    return _file(request, _locale(request), _format(request))


async def upload(request: Request) -> Response:
    """Import a translator's file into the survey files (admin); the page says what changed, or why not."""
    from pulse.web.admin import surveys_page

    p = await page(request, "admin")
    async with request.form(max_files=1, max_fields=5) as form:  # closes the spooled upload
        check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        upload = form.get("file")
        expected = str(form.get("lang") or "") or None
        name = (upload.filename or "") if isinstance(upload, UploadFile) else ""
        data = await upload.read(translation_files.MAX_BYTES + 1) if isinstance(upload, UploadFile) else b""
    try:
        if not name:
            raise BadRequest(NO_FILE)
        if expected is not None and expected not in TRANSLATED:
            raise BadRequest(translation_files.NOT_A_LANGUAGE, choices=", ".join(TRANSLATED))
        fmt = "xliff" if name.lower().endswith((".xlf", ".xliff")) else None
        state = p.state
        with _record_readable():
            result = translation_files.import_file(
                state.catalog, state.settings.surveys_dir, data, locale=expected, fmt=fmt
            )
    except PulseError as refused:
        return surveys_page(p, {"import_error": refused.localized(p.locale)}, status_code=refused.status_code)
    counts = {
        "changed": len(result.changed),
        "marked_current": len(result.marked_current),
        "still_stale": len(result.still_stale),
    }
    await audit.record(
        "surveys.translations_imported",
        actor=p.user.email,
        target=f"survey translations ({result.locale})",
        source=audit.source_of(request),
        details={"locale": result.locale, **counts},
    )
    return surveys_page(p, {"imported": {"locale": result.locale, **counts}})


async def api_state(request: Request) -> Response:
    """Every translation's state, per survey, language and key (the same facts as `pulse surveys check`)."""
    await api_key(request, "analytics:read")
    state = request.app.state
    wanted = request.query_params.get("lang")
    if wanted is not None and wanted not in TRANSLATED:
        raise BadRequest(f"lang must be one of {', '.join(TRANSLATED)}, not {wanted!r}.")
    with _record_readable():
        found = translations.report(state.catalog, state.settings.surveys_dir)
    found = [e for e in found if wanted in (None, e.locale)]
    counts = Counter(e.state for e in found)
    return JSONResponse(
        {
            "stale_translations": state.settings.stale_translations,
            "counts": {name: counts[name] for name in (translations.CURRENT, STALE, UNRECORDED)},
            "translations": [
                {"survey": e.survey_id, "key": e.key, "lang": e.locale, "state": e.state, "english": e.english}
                for e in found
            ],
        }
    )


async def api_file(request: Request) -> Response:
    """One language's survey texts as PO or XLIFF 1.2, for a translation system that fetches them."""
    await api_key(request, "analytics:read")
    locale = request.path_params["locale"]
    if locale not in TRANSLATED:
        raise BadRequest(f"The language must be one of {', '.join(TRANSLATED)}, not {locale!r}.")
    fmt = request.query_params.get("format", "po")
    if fmt not in translation_files.FORMATS:
        raise BadRequest(f"format must be po or xliff, not {fmt!r}.")
    return _file(request, locale, fmt)


ROUTES = [
    Route("/admin/surveys/translations", upload, methods=["POST"], name="admin_translations_import"),
    Route("/admin/surveys/translations/{locale}", download, name="admin_translations_export"),
    Route("/api/v1/surveys/translations", api_state, methods=["GET"], name="api_translations"),
    Route("/api/v1/surveys/translations/{locale}", api_file, methods=["GET"], name="api_translations_file"),
]
