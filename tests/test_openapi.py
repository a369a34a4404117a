"""The OpenAPI document describes exactly the API the route table serves."""

from __future__ import annotations

from starlette.routing import Route

from pulse.app import routes
from pulse.web.openapi import document
from tests.conftest import make_settings


def test_every_api_route_is_documented_and_nothing_else():
    served = set()
    for route in routes(make_settings("sqlite://x.sqlite3")):
        if isinstance(route, Route) and route.path.startswith("/api/"):
            for method in route.methods or ():
                if method != "HEAD":
                    served.add((method.lower(), route.path))
    documented = {(method, path) for path, methods in document()["paths"].items() for method in methods}
    assert documented == served


def test_protected_operations_name_their_scope(catalog):
    for path, methods in document()["paths"].items():
        for method, operation in methods.items():
            assert operation["summary"], (method, path)
            if path != "/api/v1/openapi.json":
                [requirement] = operation["security"]
                assert requirement["apiKey"][0] in operation["description"]


async def test_the_document_is_served(client):
    reply = await client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    assert reply.json()["openapi"] == "3.1.0"


def test_the_document_states_what_storage_holds_and_what_the_catalog_offers(catalog):
    from pulse.models import Contact

    paths = document(catalog, ("plan",))["paths"]
    body = paths["/api/v1/touchpoints"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    contact = body["oneOf"][0]["properties"]["contact"]["properties"]
    assert contact["locale"]["maxLength"] == Contact._meta.fields_map["locale"].max_length == 8
    survey, *_ = paths["/api/v1/trends"]["get"]["parameters"]
    assert survey["schema"]["enum"] == ["ces", "csat", "nps"]  # customer surveys only: enps is not a trend
    limit = next(p for p in paths["/api/v1/cases"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["type"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == ("integer", 1, 1000)
