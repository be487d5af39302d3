"""Every route of the URL map, for every role and for no token, answers as its declared roles say."""

from __future__ import annotations

import pytest

from service.auth.access import OPERATOR, PUBLIC
from service.auth.models import Role
from tests.routes import all_routes

CALLERS = [None, *Role]


def _request(client, route, headers):  # type: ignore[no-untyped-def]
    kwargs = {"headers": headers}
    if "application/json" in route.body_types:
        kwargs["json"] = {}
    elif route.body_types:
        kwargs["data"] = {}
    return client.open(route.url, method=route.method, **kwargs)


def test_every_route_declares_its_roles(app):
    undeclared = [str(r) for r in all_routes(app) if r.roles is None]
    assert undeclared == [], "routes without @requires(...) or @public"


def test_role_matrix(app, client, token_for):
    headers = {caller: ({} if caller is None else token_for(caller)) for caller in CALLERS}
    wrong = []
    for route in all_routes(app):
        for caller in CALLERS:
            status = _request(client, route, headers[caller]).status_code
            if route.roles == PUBLIC:
                allowed = status not in (401, 403)
            elif route.roles == OPERATOR:
                allowed = status == 401  # no OAuth token opens it: only METRICS_TOKEN (tests/test_metrics.py)
            elif caller is None:
                allowed = status == 401
            elif caller in route.roles:
                allowed = status not in (401, 403, 405, 500)
            else:
                allowed = status == 403
            if not allowed:
                wrong.append(f"{route} as {caller}: {status}")
    assert wrong == []


@pytest.mark.parametrize("role", list(Role))
def test_roles_are_documented_in_openapi(app, role):
    document = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "security" in operation:
                assert operation["x-roles"], f"{method} {path} has security but no roles"
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
