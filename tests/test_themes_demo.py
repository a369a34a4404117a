"""The demo's comments are in the customers' four languages and the themes page finds themes in each."""

from __future__ import annotations

import httpx

from pulse import demo, themes
from pulse.models import Response
from tests.conftest import ROOT, make_key, sign_in


async def test_the_demo_comments_in_four_languages_carry_themes(app, catalog):
    await demo.load_demo(catalog, contacts=200, months=6)
    rules = themes.load(ROOT / "surveys")
    found: dict[str, set[str]] = {}
    for text, locale in await Response.exclude(comment="").values_list("comment", "locale"):
        found.setdefault(locale, set()).update(rules.classify(text, locale))
    for language in ("en", "pl", "it", "sl"):
        assert len(found.get(language, set())) >= 5, (language, found.get(language))
    key = await make_key("analytics:read")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        reply = await client.get("/api/v1/insights/themes?survey=nps", headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["comments"]["unhappy"] > 0 and body["comments"]["top"] > 0
    assert sum(1 for theme in body["themes"] if theme["counts"]["unhappy"]) >= 5
    async with sign_in(app, demo.DEMO_ADMIN_EMAIL, demo.DEMO_PASSWORD) as admin:
        page = await admin.get("/dashboard/themes?survey=nps&lang=sl")
    assert page.status_code == 200
    assert "Dostava" in page.text and 'lang="pl"' in page.text and 'lang="it"' in page.text
