"""Static files: compressed (brotli, gzip) as the browser accepts, and cached for a year under a content-hashed URL.

Templates link `static_url("pulse.css")`, which is `/static/pulse.<hash>.css`: that URL names one content forever,
so it may be cached immutably. The plain `/static/pulse.css` still works, revalidated by its ETag. Each file is
compressed once per content, in a thread, on its first request, and kept in memory for the process.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import plotly
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from pulse.errors import NotFound

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<suffix>\.[A-Za-z0-9]+)$")
TEXT = {"text/css", "text/javascript", "image/svg+xml", "application/json", "text/plain"}
MIN_SIZE = 512  # below this a compressed body saves less than its headers cost
BROTLI_QUALITY = 9  # 11 takes ~7 s on plotly.js for 10% less; 9 takes ~0.5 s
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}


@dataclass(frozen=True)
class Asset:
    """One file's content, its hash, and its compressed bodies by content-coding ("br", "gzip")."""

    media_type: str
    body: bytes
    digest: str
    variants: dict[str, bytes] = field(default_factory=dict)

    def etag(self, coding: str | None) -> str:
        return f'"{self.digest}-{coding}"' if coding else f'"{self.digest}"'


# Process-wide, keyed by (path, mtime, size): tests build many apps, and an edited file gets a new entry.
_digests: dict[tuple[str, int, int], str] = {}
_assets: dict[tuple[str, int, int], Asset] = {}
_lock = threading.Lock()


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    found = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{found}; charset=utf-8" if found in TEXT or found.startswith("text/") else found


def _compress(name: str, body: bytes) -> dict[str, bytes]:
    if media_type(name).split(";")[0] not in TEXT or len(body) < MIN_SIZE:
        return {}
    return {"br": brotli.compress(body, quality=BROTLI_QUALITY), "gzip": gzip.compress(body, 9, mtime=0)}


def accepted(header: str | None) -> list[str]:
    """The content-codings the client accepts (q > 0), of those we make, best first."""
    weights: dict[str, float] = {}
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        weights[coding.strip().lower()] = quality
    star = weights.get("*", 0.0)
    return [c for c in ("br", "gzip") if weights.get(c, star) > 0]


def _matches(header: str, etags: set[str]) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or bool(tags & etags)


class StaticAssets:
    """The files under `directory` (plus `extra` ones, by name), served at /static; an ASGI app to mount."""

    def __init__(self, directory: Path, extra: Mapping[str, Path] | None = None) -> None:
        found = {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*")) if p.is_file()}
        self.files: dict[str, Path] = {**found, **(extra or {})}
        self.router = Router([Route("/{name:path}", self.serve, methods=["GET", "HEAD"])])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    def digest(self, name: str) -> str:
        """The first 12 hex digits of the SHA-256 of the file's content."""
        key = _key(self.files[name])
        if key not in _digests:
            _digests[key] = hashlib.sha256(self.files[name].read_bytes()).hexdigest()[:12]
        return _digests[key]

    def url(self, name: str) -> str:
        """The URL of `name` that carries its content hash (a Jinja global: `static_url("pulse.css")`)."""
        if name not in self.files:
            raise KeyError(f"no static file {name!r} in {sorted(self.files)}")
        stem, dot, suffix = name.rpartition(".")
        return f"/static/{stem}.{self.digest(name)}.{suffix}" if dot else f"/static/{name}?v={self.digest(name)}"

    def encoded(self, name: str) -> Asset:
        """The file with its compressed bodies, made once per content (blocking: call it in a thread)."""
        path = self.files[name]
        key = _key(path)
        with _lock:  # two first requests at once compress once
            if key not in _assets:
                body = path.read_bytes()
                digest = hashlib.sha256(body).hexdigest()[:12]
                _digests[key] = digest
                _assets[key] = Asset(media_type(name), body, digest, _compress(name, body))
            return _assets[key]

    def resolve(self, name: str) -> tuple[str, bool] | None:
        """(file name, whether the URL named its current hash) for a request path, or None."""
        if name in self.files:
            return name, False
        match = HASHED.match(name)
        if match is None:
            return None
        plain = match["stem"] + match["suffix"]
        if plain not in self.files:
            return None
        return plain, match["digest"] == self.digest(plain)

    async def serve(self, request: Request) -> Response:
        found = self.resolve(request.path_params["name"])
        if found is None:
            raise NotFound("No such file.")
        name, current = found
        asset = await asyncio.to_thread(self.encoded, name)
        coding = next((c for c in accepted(request.headers.get("accept-encoding")) if c in asset.variants), None)
        headers = {"cache-control": IMMUTABLE if current else REVALIDATE, "etag": asset.etag(coding)}
        if asset.variants:
            headers["vary"] = "Accept-Encoding"
        if _matches(request.headers.get("if-none-match", ""), {asset.etag(coding)}):
            return Response(status_code=304, headers=headers)
        body = asset.variants[coding] if coding else asset.body
        if coding:
            headers["content-encoding"] = coding
        if request.method == "HEAD":
            headers["content-length"] = str(len(body))
            return Response(b"", media_type=asset.media_type, headers=headers)
        return Response(body, media_type=asset.media_type, headers=headers)
