"""The route table, read top to bottom, is what we mean it to be."""

from __future__ import annotations

from starlette.routing import Mount, Route

from pulse.app import routes
from tests.conftest import make_settings


def _table(settings):
    rows = []
    for route in routes(settings):
        if isinstance(route, Mount):
            rows.append(("MOUNT", route.path))
        else:
            assert isinstance(route, Route)
            rows.append((",".join(sorted(route.methods or [])), route.path))
    return rows


def test_route_table():
    assert _table(make_settings("sqlite://x.sqlite3")) == [
        ("GET,HEAD", "/"),
        ("GET,HEAD,POST", "/s/{token}"),
        ("GET,HEAD,POST", "/l/{survey_id}"),
        ("GET,HEAD,POST", "/u/{token}"),
        ("GET,HEAD,POST", "/p/{token}"),
        ("GET,HEAD", "/livez"),
        ("GET,HEAD", "/healthz"),
        ("GET,HEAD,POST", "/login"),
        ("POST", "/logout"),
        ("GET,HEAD,POST", "/password-reset"),
        ("GET,HEAD,POST", "/password-reset/{token}"),
        ("GET,HEAD", "/dashboard"),
        ("GET,HEAD", "/dashboard/breakdown"),
        ("GET,HEAD", "/dashboard/loyalty"),
        ("GET,HEAD", "/dashboard/loyalty.csv"),
        ("GET,HEAD", "/dashboard/after-sale"),
        ("GET,HEAD,POST", "/account"),
        ("GET,HEAD", "/dashboard/at-risk"),
        ("GET,HEAD", "/api/v1/insights/at-risk"),
        ("GET,HEAD", "/cases/recovery"),
        ("GET,HEAD", "/api/v1/cases/recovery"),
        ("GET,HEAD", "/contacts"),
        ("GET,HEAD", "/contacts/{external_id}"),
        ("GET,HEAD", "/cases"),
        ("GET,HEAD,POST", "/cases/{case_id}"),
        ("GET,HEAD,POST", "/contacts/{external_id}/erase"),
        ("GET,HEAD", "/contacts/{external_id}/personal-data.json"),
        ("GET,HEAD", "/responses"),
        ("GET,HEAD", "/responses.csv"),
        ("GET,HEAD,POST", "/admin/users"),
        ("GET,HEAD,POST", "/admin/users/{user_id}"),
        ("GET,HEAD,POST", "/admin/teams"),
        ("POST", "/admin/teams/{slug}"),
        ("GET,HEAD,POST", "/admin/api-keys"),
        ("POST", "/admin/api-keys/{prefix}/revoke"),
        ("GET,HEAD", "/admin/surveys"),
        ("GET,HEAD", "/admin/delivery"),
        ("POST", "/admin/surveys/translations"),
        ("GET,HEAD", "/admin/surveys/translations/{locale}"),
        ("GET,HEAD", "/api/v1/surveys/translations"),
        ("GET,HEAD", "/api/v1/surveys/translations/{locale}"),
        ("GET,HEAD", "/admin/audit"),
        ("GET,HEAD", "/admin/audit.csv"),
        ("GET,HEAD", "/engagement"),
        ("GET,HEAD", "/api/v1/engagement/rounds"),
        ("GET,HEAD", "/api/v1/engagement/results"),
        ("GET,HEAD", "/api/v1/engagement/comments"),
        ("GET,HEAD", "/api/v1/engagement/ex-cx"),
        ("POST", "/api/v1/touchpoints"),
        ("POST", "/api/v1/employees"),
        ("GET,HEAD", "/api/v1/cases"),
        ("GET,HEAD", "/api/v1/cases/orphans"),
        ("GET,HEAD", "/api/v1/cases/{case_id}"),
        ("PATCH", "/api/v1/cases/{case_id}"),
        ("GET,HEAD", "/api/v1/responses"),
        ("GET,HEAD", "/api/v1/contacts/{external_id}/timeline"),
        ("GET,HEAD", "/api/v1/contacts/{external_id}/export"),
        ("DELETE", "/api/v1/contacts/{external_id}"),
        ("DELETE", "/api/v1/employees/{external_id}"),
        ("DELETE", "/api/v1/suppressions/{value}"),
        ("GET,HEAD", "/api/v1/trends"),
        ("GET,HEAD", "/api/v1/trends/compare"),
        ("GET,HEAD", "/api/v1/insights/loyalty-quadrant"),
        ("GET,HEAD", "/api/v1/insights/lifecycle"),
        ("GET,HEAD", "/api/v1/responses.csv"),
        ("GET,HEAD", "/dashboard/themes"),
        ("GET,HEAD", "/api/v1/insights/themes"),
        ("GET,HEAD", "/api/v1/openapi.json"),
        ("MOUNT", "/static"),
    ]


def test_dev_mail_routes_exist_only_with_the_catcher_on():
    paths = [path for _, path in _table(make_settings("sqlite://x.sqlite3", PULSE_DEV_MAIL_CATCHER="true"))]
    assert paths[-4:] == [
        "/dev/mail",
        "/dev/mail/{mail_id}",
        "/dev/mail/{mail_id}/html",
        "/dev/mail/{mail_id}/raw",
    ]
