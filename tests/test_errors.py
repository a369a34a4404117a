"""Unknown routes and failures render a localized page (or JSON for the API), never a bare 500."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from pulse import i18n


async def test_unknown_route_is_a_localized_404_page(client: httpx.AsyncClient):
    response = await client.get("/no/such/page", headers={"accept-language": "sl"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert i18n.translate("sl", "Page not found") in response.text
    assert '<html lang="sl">' in response.text


async def test_unknown_api_route_is_json(client: httpx.AsyncClient):
    response = await client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": "No such endpoint.", "errors": []}


async def test_wrong_method_is_405_not_500(client: httpx.AsyncClient):
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"] == "Method not allowed."


async def test_an_unexpected_error_is_a_500_page_that_leaks_nothing(app, client: httpx.AsyncClient):
    async def boom(request):
        raise RuntimeError("secret internals")

    app.router.routes.append(Route("/boom", boom))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/boom", headers={"accept-language": "it"})
    assert response.status_code == 500
    assert i18n.translate("it", "Something went wrong on our side") in response.text
    assert "secret internals" not in response.text


async def test_security_headers_on_every_response(client: httpx.AsyncClient):
    for path in ("/", "/healthz", "/missing", "/static/pulse.css"):
        headers = (await client.get(path)).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # only when served over https


async def test_comment_like_text_is_escaped_in_pages(client: httpx.AsyncClient):
    response = await client.get("/missing?lang=<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in response.text


async def test_security_headers_fill_in_only_what_a_response_did_not_set():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse

    from pulse.web.security import SecurityHeaders

    async def own(request):
        return PlainTextResponse("x", headers={"Content-Security-Policy": "default-src 'none'"})

    app = Starlette(routes=[Route("/own", own)], middleware=[Middleware(SecurityHeaders, https=True)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        response = await http.get("/own")
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert response.headers.get_list("strict-transport-security") == ["max-age=31536000; includeSubDomains"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-type"].startswith("text/plain")
