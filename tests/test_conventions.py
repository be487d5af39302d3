"""DESIGN §7 over every route of the URL map, not a sample."""

from __future__ import annotations

from service.auth.models import Role
from service.config import API_VERSION
from service.http import PROBLEM_JSON, SECURITY_HEADERS
from tests.routes import all_routes

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def _assert_common_headers(response, what):  # type: ignore[no-untyped-def]
    assert response.headers["API-Version"] == API_VERSION, what
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{what}: {name}"
    assert response.headers.get("X-Request-ID"), what
    assert "Content-Security-Policy" in response.headers, what


def _assert_problem(response, status, what):  # type: ignore[no-untyped-def]
    assert response.status_code == status, f"{what}: {response.status_code}"
    assert response.mimetype == PROBLEM_JSON, what
    assert set(response.json) >= PROBLEM_MEMBERS, what
    assert response.json["status"] == status, what
    assert "Traceback" not in response.get_data(as_text=True), what


def test_every_response_carries_version_and_security_headers(app, client, token_for):
    admin = token_for(Role.ADMIN)
    for route in all_routes(app):
        response = client.open(route.url, method=route.method, headers=admin)
        _assert_common_headers(response, str(route))
        if response.status_code >= 400:
            _assert_problem(response, response.status_code, str(route))


def test_trailing_slash_is_404_not_redirect(app, client, token_for):
    admin = token_for(Role.ADMIN)
    for route in all_routes(app):
        response = client.open(route.url + "/", method=route.method, headers=admin)
        _assert_problem(response, 404, f"{route} with trailing slash")
        _assert_common_headers(response, str(route))


def test_unsupported_method_is_405_with_allow(app, client, token_for):
    admin = token_for(Role.ADMIN)
    seen = set()
    for route in all_routes(app):
        if route.rule in seen:
            continue
        seen.add(route.rule)
        methods = {r.method for r in all_routes(app) if r.rule == route.rule}
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods:
            response = client.open(route.url, method=method, headers=admin)
            _assert_problem(response, 405, f"{method} {route.rule}")
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert methods <= allowed, f"{method} {route.rule}: Allow {allowed}"


def test_non_json_body_is_415(app, client, token_for):
    checked = 0
    for route in all_routes(app):
        if "application/json" not in route.body_types:
            continue
        role = next(iter(route.roles))
        response = client.open(route.url, method=route.method, headers=token_for(role),
                               data="name=x", content_type="text/plain")
        _assert_problem(response, 415, str(route))
        checked += 1
    assert checked >= 4


def test_form_endpoint_refuses_json_with_415(client):
    response = client.post("/v1/oauth/token", json={"grant_type": "client_credentials"})
    _assert_problem(response, 415, "token endpoint with JSON")


def test_unacceptable_accept_is_406(client, token_for):
    response = client.get("/v1/institutions", headers=token_for(Role.ADMIN) | {"Accept": "text/csv"})
    _assert_problem(response, 406, "Accept text/csv")


def test_wildcard_and_problem_accept_are_fine(client, token_for):
    for accept in ("*/*", "application/*", "application/json", "application/problem+json, application/json"):
        response = client.get("/v1/institutions", headers=token_for(Role.ADMIN) | {"Accept": accept})
        assert response.status_code == 200, accept


def test_oversized_body_is_413(client, token_for, app):
    body = '{"name": "' + "x" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN), data=body,
                           content_type="application/json")
    _assert_problem(response, 413, "oversized body")


def test_invalid_json_is_400(client, token_for):
    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN), data="{not json",
                           content_type="application/json")
    _assert_problem(response, 400, "broken JSON")
    assert response.json["errors"][0]["pointer"] == "/"


def test_every_invalid_field_is_listed(client, token_for):
    response = client.post("/v1/institutions", headers=token_for(Role.ADMIN),
                           json={"name": "", "sector": "castle", "municipalityCode": "0014", "color": "red"})
    _assert_problem(response, 400, "invalid institution")
    assert sorted(response.json["errors"], key=lambda e: e["pointer"]) == [
        {"pointer": "/color", "detail": "Unknown field."},
        {"pointer": "/municipalityCode", "detail": "Use a CBS municipality code such as GM0014."},
        {"pointer": "/name", "detail": "Length must be between 1 and 200."},
        {"pointer": "/sector", "detail": "Must be one of: youthCare, secureYouthCare, disabilityCare, "
                                         "mentalHealth, shelter, other."},
    ]


def test_unknown_query_parameter_is_400(client, token_for):
    response = client.get("/v1/institutions?pageSize=5", headers=token_for(Role.ADMIN))
    _assert_problem(response, 400, "unknown query parameter")
    assert response.json["errors"] == [{"pointer": "/pageSize", "detail": "Unknown field.", "in": "query"}]


def test_unknown_path_is_problem_404(client):
    response = client.get("/v1/nothing-here")
    _assert_problem(response, 404, "unknown path")
    _assert_common_headers(response, "unknown path")
