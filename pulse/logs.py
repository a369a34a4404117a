"""Log lines that cannot identify anyone: no link token in them, and no address beside the anonymous pulse page.

A token in a path is the key to one person's answer page, and an access log writes every path in order with the
time and the client's address: pairing the `POST /p/<token>` lines with the answers re-identified anonymous
employees (issue #11). So the access log writes the route instead (`POST /p/… 200`), values of query parameters
that carry secrets are hidden, and for the employee pulse page the client address is written as `-`, because
address and time say who answered. Which paths carry a token is read from the app's own route table (every path
with a `{token}` parameter), so a new link route is covered the day it is added.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.routing import PARAM_REGEX, BaseRoute, Mount
from starlette.types import ASGIApp

HIDDEN = "…"
SECRET_PARAMS = frozenset({"token"})
# a query parameter whose name holds one of these words carries a secret: its value is never written
SECRET_QUERY_WORDS = ("token", "key", "secret", "password", "signature", "nonce")
# routes (by name) of anonymous answers: their log lines keep no client address
ANONYMOUS_ROUTES = frozenset({"pulse"})


@dataclass(frozen=True)
class SecretRoute:
    """A route whose path carries a secret: any path it could match, and what to write instead."""

    pattern: re.Pattern[str]
    label: str
    anonymous: bool


def _secret_route(path: str, name: str) -> SecretRoute | None:
    pattern, label, end = "", "", 0
    for match in PARAM_REGEX.finditer(path):
        literal = path[end : match.start()]
        pattern, label = pattern + re.escape(literal), label + literal
        if match.group(1) in SECRET_PARAMS:
            # a prefix: everything from the token on is hidden, so a trailing slash or a mangled suffix is too
            return SecretRoute(re.compile(pattern), label + HIDDEN, name in ANONYMOUS_ROUTES)
        pattern, label, end = pattern + "[^/]+", label + match.group(0), match.end()
    return None


def secret_routes(routes: Sequence[BaseRoute], prefix: str = "") -> list[SecretRoute]:
    """The routes of a route table (mounts included) whose path has a `{token}` parameter."""
    found: list[SecretRoute] = []
    for route in routes:
        path = prefix + getattr(route, "path", "")
        if isinstance(route, Mount):
            found += secret_routes(route.routes, path)
        elif secret := _secret_route(path, getattr(route, "name", "")):
            found.append(secret)
    return found


def _query(routes: Sequence[SecretRoute], query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        name, has_value, value = pair.partition("=")
        secret_name = any(word in unquote_plus(name).lower() for word in SECRET_QUERY_WORDS)
        # a link passed along as a value, such as /login?next=/s/<token>, is as secret as the link
        if has_value and (secret_name or any(r.pattern.match(unquote_plus(value)) for r in routes)):
            pair = f"{name}={HIDDEN}"
        pairs.append(pair)
    return "&".join(pairs)


def redact(routes: Sequence[SecretRoute], target: str) -> tuple[str, bool]:
    """A path (with its query) fit for a log line, and whether its route is anonymous."""
    path, has_query, query = target.partition("?")
    for route in routes:
        if route.pattern.match(path):
            path, anonymous = route.label, route.anonymous
            break
    else:
        anonymous = False
    return path + (f"?{_query(routes, query)}" if has_query else ""), anonymous


class AccessLogRedaction(logging.Filter):
    """Rewrites uvicorn's access-log records: the route instead of a token, `-` for an anonymous client."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__()
        self.routes = secret_routes(routes)

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path?query, version, status)
        if not (isinstance(record.args, tuple) and len(record.args) == 5):
            return False  # a record we cannot read is dropped rather than risk writing a token
        client, method, target, version, status = record.args
        target, anonymous = redact(self.routes, str(target))
        record.args = ("-" if anonymous else client, method, target, version, status)
        return True


def configure(log_level: str) -> None:
    """Pulse's own log lines at `log_level`; chatty libraries quieter, revealing ones never below WARNING."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level != "debug":
        for chatty in ("tortoise", "aiosqlite", "asyncio"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        # asyncpg's pool logs each failed reconnection with a traceback; the worker's own line says the database
        # is away, once, and when it is back
        logging.getLogger("asyncpg").setLevel(logging.ERROR)
    # Never below WARNING, even when debugging: aiosmtpd (the development mail catcher) logs every line of every
    # message at DEBUG, links included, and httpx logs each request's full URL at INFO (a webhook URL may hold
    # a secret).
    for revealing in ("mail.log", "httpx"):
        logging.getLogger(revealing).setLevel(logging.WARNING)


def install(app: ASGIApp) -> None:
    """Redact the access log of a server about to serve `app` (call after uvicorn has configured logging)."""
    access = logging.getLogger("uvicorn.access")
    for existing in [f for f in access.filters if isinstance(f, AccessLogRedaction)]:
        access.removeFilter(existing)
    access.addFilter(AccessLogRedaction(getattr(app, "routes", [])))
