"""Static files: compressed (brotli, gzip) as the browser accepts, cached for a year under a content-hashed URL,
revalidated by ETag under the plain one; plotly.js is linked only by the script that draws charts."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import brotli
import httpx
import plotly

from pulse.app import STATIC_DIR
from tests.conftest import make_org, sign_in

IMMUTABLE = "public, max-age=31536000, immutable"
PLOTLY_BYTES = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


def hashed(page: str, name: str) -> str:
    stem, _, suffix = name.rpartition(".")
    found = re.search(rf'"(/static/{re.escape(stem)}\.[0-9a-f]{{12}}\.{suffix})"', page)
    assert found, f"{name} is not linked by a hashed URL"
    return found.group(1)


async def test_pages_link_static_files_by_content_hash(client: httpx.AsyncClient):
    page = (await client.get("/login")).text
    css = hashed(page, "pulse.css")
    digest = hashlib.sha256((STATIC_DIR / "pulse.css").read_bytes()).hexdigest()[:12]
    assert css == f"/static/pulse.{digest}.css"
    assert hashed(page, "favicon.svg")
    assert '"/static/pulse.css"' not in page


async def test_a_hashed_url_is_cached_for_a_year_and_compressed(client: httpx.AsyncClient):
    css = hashed((await client.get("/login")).text, "pulse.css")
    plain = (STATIC_DIR / "pulse.css").read_bytes()
    zipped = await client.get(css, headers={"accept-encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["cache-control"] == IMMUTABLE
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["content-type"] == "text/css; charset=utf-8"
    assert zipped.content == plain  # httpx decodes it
    assert int(zipped.headers["content-length"]) < len(plain)
    squeezed = await client.get(css, headers={"accept-encoding": "gzip, deflate, br"})
    assert squeezed.headers["content-encoding"] == "br"
    assert squeezed.content == plain
    assert squeezed.headers["etag"] != zipped.headers["etag"]  # one ETag per representation
    identity = await client.get(css, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in identity.headers and identity.content == plain
    refused = await client.get(css, headers={"accept-encoding": "br;q=0, gzip"})
    assert refused.headers["content-encoding"] == "gzip"


async def test_a_plain_url_still_works_and_revalidates_by_etag(client: httpx.AsyncClient):
    first = await client.get("/static/pulse.css", headers={"accept-encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, no-cache"
    etag = first.headers["etag"]
    again = await client.get("/static/pulse.css", headers={"accept-encoding": "gzip", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["vary"] == "Accept-Encoding"
    other = await client.get("/static/pulse.css", headers={"accept-encoding": "gzip", "if-none-match": '"nope"'})
    assert other.status_code == 200
    head = await client.head("/static/pulse.css")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


async def test_an_old_hash_gets_the_current_file_without_the_year_long_cache(client: httpx.AsyncClient):
    stale = await client.get("/static/pulse.000000000000.css")
    assert stale.status_code == 200
    assert stale.content == (STATIC_DIR / "pulse.css").read_bytes()
    assert stale.headers["cache-control"] == "public, no-cache"


async def test_missing_files_and_escapes_are_404(client: httpx.AsyncClient):
    for path in ("/static/nope.css", "/static/../pulse/app.py", "/static/%2e%2e/pulse/app.py", "/static/"):
        assert (await client.get(path)).status_code == 404, path


async def test_plotly_is_served_compressed_and_immutable_from_the_installed_package(mail_app):
    await make_org()
    async with sign_in(mail_app, "alice@example.com") as alice:
        page = (await alice.get("/dashboard")).text
        script = re.search(r'<script src="(/static/dashboard\.[0-9a-f]{12}\.js)" data-plotly="([^"]+)" defer>', page)
        assert script, "dashboard.js is deferred and names plotly's hashed URL"
        assert "plotly.min" not in page.replace(script.group(2), "")  # no <script src=plotly>: loaded only to draw
        raw = await alice.get(script.group(2), headers={"accept-encoding": "gzip"})
        assert raw.headers["cache-control"] == IMMUTABLE
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["content-type"] == "text/javascript; charset=utf-8"
        assert int(raw.headers["content-length"]) < len(PLOTLY_BYTES) / 3
        assert raw.content == PLOTLY_BYTES
        best = await alice.get(script.group(2), headers={"accept-encoding": "br"})
        assert best.headers["content-encoding"] == "br" and best.content == PLOTLY_BYTES  # httpx decodes br
        admin = (await alice.get("/admin/users")).text
        assert page.count("plotly.min") == admin.count("plotly.min") == 1  # only as data-plotly


def test_gzip_and_brotli_bodies_are_what_a_browser_decodes():
    from pulse.web.assets import StaticAssets

    asset = StaticAssets(STATIC_DIR).encoded("pulse.css")
    plain = (STATIC_DIR / "pulse.css").read_bytes()
    assert asset.body == plain
    assert gzip.decompress(asset.variants["gzip"]) == plain
    assert brotli.decompress(asset.variants["br"]) == plain
