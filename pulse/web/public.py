"""Pages for people without an account: the one-click answer page, public survey links, unsubscribe.

A GET (or HEAD, or OPTIONS) of a survey link never records anything: link scanners fetch every link.
The page's script posts the score on the first trusted interaction, at least a second after rendering;
without JavaScript, a Confirm button does it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus, urlencode

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from pulse import fields, i18n, responses, tokens
from pulse.catalog import Survey, localized
from pulse.errors import BadRequest, NotFound, PulseError, TooManyRequests
from pulse.i18n import N_, N_plural
from pulse.mail import RECOVERY_SUBJECT
from pulse.models import Contact, Invitation, Team
from pulse.models import Response as Answer
from pulse.outbox import suppress_scheduled
from pulse.ratelimit import RateLimiter
from pulse.web.auth import CSRF_FIELD, check_csrf, csrf_token, set_csrf_cookie
from pulse.web.templating import render, request_locale, respond

# An unsubscribe link must keep working long after the survey closes (RFC 8058 senders are judged on it).
UNSUBSCRIBE_MAX_AGE = timedelta(days=365)
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


def _token(request: Request, purpose: str, max_age: timedelta) -> tuple[int | None, bool]:
    """The invitation id a link's token names (None if an expired token no longer tells), and whether it has
    expired; a token that is not ours → 404 page."""
    secret = request.app.state.settings.secret_key
    try:
        return tokens.read_token(secret, purpose, request.path_params["token"], int(max_age.total_seconds())), False
    except tokens.TokenInvalid:
        raise NotFound(N_("This link is not valid.")) from None
    except tokens.TokenExpired as expired:
        return expired.invitation_id, True


async def _invitation(request: Request, purpose: str, max_age: timedelta) -> tuple[Invitation | None, bool]:
    """The invitation a link's token names, and whether the token has expired; unknown → 404 page."""
    invitation_id, expired = _token(request, purpose, max_age)
    if expired:
        return (await Invitation.get_or_none(id=invitation_id) if invitation_id else None), True
    invitation = await Invitation.get_or_none(id=invitation_id).select_related("contact", "touchpoint")
    if invitation is None or invitation.contact is None:
        raise NotFound(N_("This link is not valid."))
    return invitation, False


async def unsubscribe(request: Request) -> Response:
    """GET shows a confirm button and changes nothing; POST (the button, or RFC 8058 one-click) opts out."""
    invitation, expired = await _invitation(request, "unsubscribe", UNSUBSCRIBE_MAX_AGE)
    locale = request_locale(request, invitation.locale if invitation else None)
    if expired or invitation is None:
        return render(request, "public/link_expired.html", {}, status_code=410, locale=locale)
    contact: Contact = invitation.contact
    if request.method == "POST":
        # RFC 8058: the mailbox provider posts the one field, urlencoded or (as it SHOULD) multipart, with no
        # cookie; the URL's signed token is what authorises it. The page's own button carries a CSRF token.
        form = await request.form(max_files=0, max_fields=10)
        if form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
            if CSRF_FIELD not in form:
                raise BadRequest("Post List-Unsubscribe=One-Click as a form, or use the Unsubscribe button.")
            check_csrf(request, str(form.get(CSRF_FIELD) or ""))
        async with in_transaction():
            if contact.opted_out_at is None:
                await Contact.filter(id=contact.id, opted_out_at=None).update(opted_out_at=datetime.now(UTC))
            await suppress_scheduled(contact.id, "the contact opted out")
        return render(request, "public/unsubscribed.html", {}, locale=locale)
    context = {"already": contact.opted_out_at is not None, "csrf_token": csrf_token(request)}
    return set_csrf_cookie(request, render(request, "public/unsubscribe.html", context, locale=locale))


HONEYPOT_FIELD = "website"


def _page(
    request: Request,
    survey: Survey,
    locale: str,
    subject: str,
    score: int | None,
    action: str,
    extra: dict | None = None,
) -> dict:
    """What the answer page shows: the question, the scale, each band's "why?", a fresh nonce."""
    settings = request.app.state.settings
    company = settings.company_name
    band = survey.band_for(score) if score is not None else None
    nonce = (extra or {}).get("nonce") or tokens.make_nonce(settings.secret_key, subject, time.time())
    # the language links keep the page's own query (a public link's ref and team), its score and its nonce
    keep = {k: v for k, v in request.query_params.items() if k not in ("lang", "score", "nonce")}
    keep.update({"score": str(score)} if score is not None else {}, nonce=nonce)
    return {
        "lang_keep": urlencode(keep),
        "survey": survey,
        "question": localized(survey.question.text, locale, company),
        "low_label": localized(survey.low_label, locale, company),
        "high_label": localized(survey.high_label, locale, company),
        "score": score,
        "why": localized(band.why, locale, company) if band else "",
        "bands": [(b.low, b.high, localized(b.why, locale, company)) for b in survey.bands],
        "honeypot": HONEYPOT_FIELD,
        "action": action,
        "thanks": False,
        "not_saved": False,
        "stored": None,
        "proposed": None,
        "comment": "",
        "lead": "",  # a line above the question: a case's follow-up asks whether the issue was resolved
        **(extra or {}),
        "nonce": nonce,
    }


def _score(raw: str | None, survey: Survey) -> int | None:
    if raw in (None, ""):
        return None
    if not fields.WHOLE_NUMBER.fullmatch(raw):  # int() would take "٣", " 3" and "3_0"
        raise BadRequest(
            N_("score must be a whole number between %(low)s and %(high)s"), low=survey.scale_min, high=survey.scale_max
        )
    value = int(raw)
    if value not in survey.scores:
        raise BadRequest(N_("score must be between %(low)s and %(high)s"), low=survey.scale_min, high=survey.scale_max)
    return value


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _read_answer(request: Request, survey: Survey, subject: str, locale: str) -> tuple[responses.Answer, str]:
    form = await request.form()
    nonce = str(form.get("nonce") or "")
    score = _score(str(form.get("score") or ""), survey)
    if score is None:
        raise BadRequest(N_("Choose a score first."))
    try:
        rendered_at = tokens.read_nonce(request.app.state.settings.secret_key, subject, nonce)
    except tokens.TokenInvalid:
        raise BadRequest(N_("This form is not valid any more. Reload the page and answer again.")) from None
    comment = form.get("comment")
    if comment is not None and len(str(comment)) > responses.MAX_COMMENT:
        raise BadRequest(
            N_plural(
                "The comment must be at most %(num)s character.", "The comment must be at most %(num)s characters."
            ),
            num=responses.MAX_COMMENT,
        )
    if comment is not None and (problem := fields.unstorable(str(comment))):
        raise BadRequest(f"The comment {problem}.")
    answer = responses.Answer(
        score=score,
        comment=None if comment is None else str(comment).strip(),
        locale=locale,
        rendered_at=rendered_at,
        honeypot=str(form.get(HONEYPOT_FIELD) or ""),
        flurry=str(form.get("flurry") or "") == "1",
    )
    return answer, nonce


def _answered(
    request: Request,
    survey: Survey,
    locale: str,
    answer: responses.Answer,
    outcome: str,
    action: str,
    subject: str,
    lead: str = "",
) -> Response:
    """The truth about what was stored: "saved" only when the answer counts (now or once it settles)."""
    counts = outcome in responses.COUNTED
    if _wants_json(request):
        from starlette.responses import JSONResponse

        if not counts:
            return JSONResponse({"status": "not_saved", "counts": False})
        return JSONResponse({"status": "saved", "counts": True, "score": answer.score})
    extra = {"thanks": counts, "not_saved": not counts, "comment": answer.comment or "", "lead": lead}
    context = _page(request, survey, locale, subject, answer.score if counts else None, action, extra)
    return _answer_page(request, context, locale)


# The answer page differs from one request to the next only by its nonce and its form's URL (and a comment or
# stored score, which are not cached): rendered once per language, survey and score, then reused with the
# request's own nonce and URL put in. Under load the thanks page cost more than recording the answer itself. Kept
# per app: its settings (the company's name, the static files' URLs) are part of the page.
_MAX_PAGES = 2048
_NONCE_MARK, _QUERY_NONCE_MARK = "pulse0nonce0mark", "pulse0query0nonce0mark"
_ACTION_MARK = "pulse0action0mark"  # the form's URL: each invitation's own link


def _answer_page(request: Request, context: dict, locale: str) -> Response:
    """The answer page for this context, from the cache when only the nonce differs."""
    nonce = context["nonce"]
    if context["comment"] or context["stored"] is not None or quote_plus(nonce) not in context["lang_keep"]:
        return render(request, "public/answer.html", context, locale=locale)
    survey: Survey = context["survey"]
    lang_keep = context["lang_keep"].replace(quote_plus(nonce), _QUERY_NONCE_MARK)
    key = (
        locale, survey.id, survey.checksum, context["score"], context["thanks"], context["not_saved"], context["lead"],
        lang_keep,
    )  # fmt: skip
    pages: dict[tuple, str] = request.app.state.answer_pages
    html = pages.get(key)
    if html is None:
        marked = {**context, "nonce": _NONCE_MARK, "lang_keep": lang_keep, "action": _ACTION_MARK}
        html = render(request, "public/answer.html", marked, locale=locale).body.decode()
        if len(pages) >= _MAX_PAGES:
            pages.clear()
        pages[key] = html
    html = html.replace(_NONCE_MARK, str(escape(nonce))).replace(_QUERY_NONCE_MARK, str(escape(quote_plus(nonce))))
    html = html.replace(_ACTION_MARK, str(escape(context["action"])))
    return respond(request, html)


def _reuse_nonce(request: Request, subject: str) -> str | None:
    """The nonce of the page a language switch came from, when it is genuine: the page keeps its render time
    (and a public link keeps its one answer)."""
    raw = request.query_params.get("nonce") or ""
    if not raw:
        return None
    try:
        tokens.read_nonce(request.app.state.settings.secret_key, subject, raw)
    except tokens.TokenInvalid:
        return None
    return raw


async def survey_page(request: Request) -> Response:
    """GET shows the question with the score from the e-mail selected; POST records the answer."""
    settings = request.app.state.settings
    invitation_id, expired = _token(request, "survey", timedelta(days=settings.token_max_age_days))
    if expired:
        found = await Invitation.get_or_none(id=invitation_id) if invitation_id else None
        locale = request_locale(request, found.locale if found else None)
        return render(request, "public/closed.html", {}, status_code=410, locale=locale)
    # the invitation, its contact and its touchpoint in one fixed statement: this runs for every answer
    invitation = await responses.invited(invitation_id)
    if invitation is None:
        raise NotFound(N_("This link is not valid."))
    locale = request_locale(request, invitation.locale)
    survey = request.app.state.catalog.get(invitation.survey_id)
    if survey is None:
        return render(request, "public/closed.html", {}, status_code=410, locale=locale)
    subject = f"invitation:{invitation.id}"
    # a language chosen on the page stays for the answer it sends
    action = request.url.path + (f"?lang={locale}" if request.query_params.get("lang") else "")
    lead = i18n.translate(locale, RECOVERY_SUBJECT) if invitation.recovery else ""
    if request.method in {"GET", "HEAD"}:
        try:
            score = _score(request.query_params.get("score"), survey)
        except BadRequest:
            score = None  # a mangled link still shows the question
        extra: dict = {"lead": lead}
        if nonce := _reuse_nonce(request, subject):
            extra["nonce"] = nonce
        stored = await Answer.filter(invitation_id=invitation.id, discarded=False).first()
        if stored is not None:  # reopened: show what is stored, and ask before changing it
            extra.update(stored=stored.score, comment=stored.comment, proposed=score if score != stored.score else None)
            score = stored.score
        context = _page(request, survey, locale, subject, score, action, extra)
        return _answer_page(request, context, locale)
    try:
        answer, _ = await _read_answer(request, survey, subject, locale)
    except BadRequest:
        await responses.flag(survey.id, responses.BAD_NONCE, invitation.id)
        raise
    outcome = await responses.answer_invitation(request.app.state.writer, invitation, survey, answer, settings)
    return _answered(request, survey, locale, answer, outcome, action, subject, lead)


async def link_page(request: Request) -> Response:
    """A public survey link (QR code, chat): anyone may answer; ?ref= and ?team= become dimensions."""
    settings = request.app.state.settings
    survey = request.app.state.catalog.get(request.path_params["survey_id"])
    if survey is None or survey.audience != "customer":
        raise NotFound(N_("No such survey."))
    locale = request_locale(request)
    subject = f"link:{survey.id}"
    action = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    if request.method in {"GET", "HEAD"}:
        try:
            score = _score(request.query_params.get("score"), survey)
        except BadRequest:
            score = None
        nonce = _reuse_nonce(request, subject)
        context = _page(request, survey, locale, subject, score, action, {"nonce": nonce} if nonce else None)
        return _answer_page(request, context, locale)
    limiter: RateLimiter = request.app.state.link_limiter
    client = request.client.host if request.client else "unknown"
    # counted in the database, so every web process shares one limit; a statement of its own, outside the group
    # commit, so its row is locked only for that statement (two batches taking two clients' rows in opposite
    # orders could deadlock)
    if not await limiter.allow(client):
        raise TooManyRequests(N_("Too many answers from this address. Please wait a minute."))
    try:
        answer, nonce = await _read_answer(request, survey, subject, locale)
    except BadRequest:
        await responses.flag(survey.id, responses.BAD_NONCE)
        raise
    ref = (request.query_params.get("ref") or "")[:64]
    team_slug = (request.query_params.get("team") or "")[:64]
    if fields.unstorable(ref + team_slug):  # the printed link was changed: nothing can be kept of it
        raise BadRequest(N_("ref and team must not contain NUL characters."))
    team = await Team.get_or_none(slug=team_slug) if team_slug else None
    dimensions = {"channel": "link", **({"ref": ref} if ref else {})}
    team_id = team.id if team else None
    outcome = await request.app.state.writer.run(
        lambda: responses.record_link_answer(survey, nonce, dimensions, team_id, answer, settings)
    )
    return _answered(request, survey, locale, answer, outcome, action, subject)


ROUTES = [
    Route("/s/{token}", survey_page, methods=["GET", "POST"], name="survey"),
    Route("/l/{survey_id}", link_page, methods=["GET", "POST"], name="survey_link"),
    Route("/u/{token}", unsubscribe, methods=["GET", "POST"], name="unsubscribe"),
]


async def pulse_page(request: Request) -> Response:
    """An employee's pulse: every question of the round on one page; answers are stored anonymously."""
    from pulse import engagement
    from pulse.models import PulseRound

    settings = request.app.state.settings
    secret = settings.secret_key
    # the token is opaque: only its hash finds the invitation, and nothing in it can be decoded
    token_hash = tokens.token_hash(request.path_params["token"])
    invitation = await Invitation.get_or_none(token_hash=token_hash, round_id__not_isnull=True)
    if invitation is None:
        raise NotFound(N_("This link is not valid."))
    locale = request_locale(request, invitation.locale)
    survey = request.app.state.catalog.get(invitation.survey_id)
    pulse_round = await PulseRound.get(id=invitation.round_id)
    if survey is None or pulse_round.status != "open":
        return render(request, "public/closed.html", {}, status_code=410, locale=locale)
    if invitation.status == "answered":
        return render(request, "public/pulse_done.html", {"already": True}, locale=locale)
    company = settings.company_name
    by_id = {q.id: q for q in survey.questions}
    questions = [
        {
            "id": qid,
            "text": localized(by_id[qid].text, locale, company),
            "low": localized(by_id[qid].low or survey.low_label, locale, company),
            "high": localized(by_id[qid].high or survey.high_label, locale, company),
        }
        for qid in pulse_round.questions
        if qid in by_id
    ]
    subject = f"pulse:{token_hash[:32]}"  # the nonce is signed, not encrypted: it names no invitation
    context = {
        "questions": questions,
        "nonce": tokens.make_nonce(secret, subject, time.time()),
        "honeypot": HONEYPOT_FIELD,
        "error": None,
        "k": settings.anonymity_min_group,
        "comments_k": settings.anonymity_min_comments,
        "chosen": {},
        "comments": {},
    }
    if request.method in {"GET", "HEAD"}:
        return render(request, "public/pulse.html", context, locale=locale)
    form = await request.form()
    try:
        rendered_at = tokens.read_nonce(secret, subject, str(form.get("nonce") or ""))
    except tokens.TokenInvalid:
        await responses.flag(survey.id, responses.BAD_NONCE)  # never which invitation: that would name the person
        raise BadRequest(N_("This form is not valid any more. Reload the page and answer again.")) from None
    if str(form.get(HONEYPOT_FIELD) or "").strip() or time.time() - rendered_at < responses.MIN_RENDER_SECONDS:
        reason = responses.HONEYPOT if str(form.get(HONEYPOT_FIELD) or "").strip() else responses.TOO_FAST
        await responses.flag(survey.id, reason)
        return render(request, "public/pulse_done.html", {"already": False}, locale=locale)
    scores: dict[str, int] = {}
    for question in questions:
        raw = str(form.get(f"q_{question['id']}") or "")
        if fields.WHOLE_NUMBER.fullmatch(raw) and 0 <= int(raw) <= 10:
            scores[question["id"]] = int(raw)
    comments = {q["id"]: str(form.get(f"c_{q['id']}") or "").strip()[: responses.MAX_COMMENT] for q in questions}
    comments = {qid: text for qid, text in comments.items() if text}
    if any(fields.unstorable(text) for text in comments.values()):
        raise BadRequest(N_("A comment must not contain NUL characters."))
    if len(scores) != len(questions):
        context.update(
            error=i18n.translate(locale, "Please answer every question; the comments are optional."),
            chosen=scores,
            comments=comments,
            nonce=tokens.make_nonce(secret, subject, time.time() - 2),
        )
        return render(request, "public/pulse.html", context, locale=locale, status_code=400)
    try:
        await engagement.record(invitation, survey, engagement.Submission(scores, comments), datetime.now(UTC).date())
    except PulseError as refused:
        if refused.status_code == 409:
            return render(request, "public/pulse_done.html", {"already": True}, locale=locale)
        raise
    return render(request, "public/pulse_done.html", {"already": False}, locale=locale)


ROUTES.append(Route("/p/{token}", pulse_page, methods=["GET", "POST"], name="pulse"))
