"""What every response gets: problem+json errors, API-Version, security headers, a request id, one log line."""

from __future__ import annotations

import http
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, Response, current_app, g, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, NotAcceptable, UnsupportedMediaType

from service import logs, openapi
from service.arguments import ArgumentsParser, BodyJSONProvider, RegisterRequest
from service.config import API_VERSION
from service.db import db
from service.errors import DomainError, FieldError, field_errors
from service.screening import screen_text

log = logging.getLogger("service.request")

PROBLEM_JSON = "application/problem+json"
LOCATIONS = {"json": "body", "form": "body", "querystring": "query", "headers": "header"}
JSON = "application/json"
# A caller's request id is kept (logged, stored in the access log, echoed) only in a token shape that holds no
# identifying data; anything else is replaced by an id of our own.
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
# marshmallow's message for a key the schema does not know; the key may be anything a client sent.
UNKNOWN_FIELD = "Unknown field."
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
RETRY_AFTER_SECONDS = "5"
SERVER_ERROR = "The server could not complete the request. Quote the instance when reporting it."

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
CREATED_AT = {"description": "URL of the created resource", "schema": {"type": "string"}}
API_CSP = "default-src 'none'; frame-ancestors 'none'"  # the docs pages set their own (service/docs)


class FieldErrorSchema(ma.Schema):
    """One invalid field of a request."""

    pointer = ma.fields.String(
        required=True, metadata={"description": "JSON pointer into the body, or the parameter's name"}
    )
    detail = ma.fields.String(required=True, metadata={"description": "What is wrong with it",
                                                       "example": "Missing data for required field."})
    location = ma.fields.String(
        data_key="in", metadata={"description": "Where the field is: body (default), query, header or path"}
    )


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with `errors` listing every invalid field."""

    class Meta:
        # Problem details may carry extension members (the OAuth endpoints add RFC 6749's `error`).
        unknown = ma.INCLUDE

    type = ma.fields.String(required=True, metadata={"description": "Always about:blank: the status says it",
                                                     "example": "about:blank"})
    title = ma.fields.String(required=True, metadata={"description": "The status phrase, or a short title",
                                                      "example": "Invalid input"})
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status", "example": 400})
    detail = ma.fields.String(required=True, metadata={"description": "What went wrong, for a person to read",
                                                       "example": "1 invalid field(s); see errors."})
    instance = ma.fields.String(required=True, metadata={"description": "The request id, as a URN",
                                                         "example": "urn:request:0b6f3c1e-8a2d-4f5e-9c7b-1d2e3f4a5b6c"})
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema), metadata={
        "description": "Every invalid field, when the input was invalid"})


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Iterable[FieldError | Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    """Build the one error shape of the service."""
    body = problem_document(status, detail, g.get("request_id", "unknown"), title=title)
    listed = [e if isinstance(e, Mapping) else e.as_dict() for e in errors]
    if listed:
        body["errors"] = listed
    body.update(extra or {})
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def problem_document(status: int, detail: str, request_id: str, *, title: str | None = None) -> dict[str, object]:
    """The body of a problem (RFC 9457), without `errors`: what `problem` and the gunicorn worker both send."""
    return {
        "type": "about:blank",
        "title": title or http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": f"urn:request:{request_id}",
    }


def validation_errors(messages: Mapping[str, Any]) -> list[FieldError]:
    """webargs reports {location: messages}; JSON and form bodies are 'body' to a client."""
    return [_unechoed(error) for location, located in messages.items()
            for error in field_errors(located, location=LOCATIONS.get(location, location))]


def is_field_name(name: str) -> bool:
    """Whether a name a client sent (a key, a parameter) may be repeated: it looks like a field name and holds no
    identifying data. A client may send anything as a key ({"06-12345678": 1})."""
    return FIELD_NAME.fullmatch(name) is not None and not screen_text(name)


def _unechoed(error: FieldError) -> FieldError:
    """An unknown key is named only when it is a field name (`is_field_name`): the pointer would echo it."""
    if error.detail != UNKNOWN_FIELD:
        return error
    parent, _, name = error.pointer.rpartition("/")
    if is_field_name(name):
        return error
    return FieldError(parent or "/", "Unknown field (name not shown).", error.location)


# SQLSTATE classes that mean "not now" rather than "wrong": connection exceptions, a read-only transaction
# (a standby, or default_transaction_read_only during maintenance), an operator intervention (shutdown).
UNAVAILABLE_SQLSTATES = ("08", "25006", "57P")


def database_is_unavailable(exc: BaseException | None) -> bool:
    if isinstance(exc, OperationalError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def problem_for_http_exception(error: HTTPException) -> Response:
    """Render any werkzeug/webargs HTTP error, including routing errors and unexpected exceptions."""
    headers = dict(error.get_headers())
    headers.pop("Content-Type", None)
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    code = error.code or 500
    if isinstance(error, InternalServerError):
        original = getattr(error, "original_exception", None)
        if database_is_unavailable(original):
            return database_unavailable(original)
        return problem(500, SERVER_ERROR)
    if "messages" in data:
        errors = validation_errors(data["messages"])
        # RFC 6749 §5.2: the token endpoints name the error kind too.
        oauth = {"error": "invalid_request"} if request.blueprint == "oauth" else None
        return problem(code, f"{len(errors)} invalid field(s); see errors.", title="Invalid input",
                       errors=errors, headers=headers, extra=oauth)
    return problem(code, data.get("message") or error.description or "", headers=headers)


def database_unavailable(exc: BaseException | None) -> Response:
    read_only = getattr(getattr(exc, "orig", None), "sqlstate", None) == "25006"
    log.warning("database unavailable (%s)", type(getattr(exc, "orig", exc)).__name__)
    detail = ("The register accepts no changes right now." if read_only
              else "The register's database is unavailable.") + " Nothing was recorded; retry later."
    return problem(503, detail, headers={"Retry-After": RETRY_AFTER_SECONDS})


def _database_error(error: DBAPIError) -> Response:
    """Unavailability is a 503 the client may retry; any other database error is a bug: a plain 500."""
    if database_is_unavailable(error):
        return database_unavailable(error)
    raise error


def _domain_problem(error: DomainError) -> Response:
    return problem(error.status, error.detail, title=error.title, errors=error.errors,
                   extra=error.extra.get("members"), headers=error.extra.get("headers"))


# Headers on every answer (component names in the document), and on every answer under a rate limit.
EVERY_RESPONSE_HEADERS = {"API-Version": "API_VERSION", "X-Request-ID": "X_REQUEST_ID"}
RATE_LIMITED_HEADERS = {"RateLimit": "RATE_LIMIT", "RateLimit-Policy": "RATE_LIMIT_POLICY"}


class RegisterApi(flask_smorest.Api):
    """flask-smorest's Api with problem+json as the one documented and produced error shape."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problem_for_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status >= 400:
                headers = {"X-Request-ID": "X_REQUEST_ID"} | RETRY_HEADERS.get(status, {})
                self.spec.components.response(status.name, {
                    "description": ERROR_DESCRIPTIONS.get(status, status.phrase),
                    "headers": headers,
                    "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}},
                }, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "Any other error, as problem details",
            "headers": {"X-Request-ID": "X_REQUEST_ID"},
            "content": {PROBLEM_JSON: {"schema": self.ERROR_SCHEMA}},
        }, lazy=True)

    def _register_pagination_header(self) -> None:
        """Lists page by cursor (service.pagination): flask-smorest's page-number metadata is not ours to show."""


# What an integrator may do about an error, where the status phrase alone does not say it.
ERROR_DESCRIPTIONS = {
    http.HTTPStatus.BAD_REQUEST: "Invalid input: `errors` names every invalid field; nothing was changed",
    http.HTTPStatus.UNAUTHORIZED: "No valid access token: fetch one from POST /v1/oauth/token",
    http.HTTPStatus.FORBIDDEN: "The client's role may not use this operation",
    http.HTTPStatus.NOT_FOUND: "No such resource in the caller's scope (another institution's record is 404 too)",
    http.HTTPStatus.TOO_MANY_REQUESTS: "Rate limit reached: wait Retry-After seconds",
    http.HTTPStatus.SERVICE_UNAVAILABLE: "The database is unavailable or read-only; nothing was recorded, retry "
                                         "after Retry-After seconds",
}
RETRY_HEADERS = {
    http.HTTPStatus.TOO_MANY_REQUESTS: {"Retry-After": "RETRY_AFTER", **RATE_LIMITED_HEADERS},
    http.HTTPStatus.SERVICE_UNAVAILABLE: {"Retry-After": "RETRY_AFTER"},
}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()

    def arguments(self, schema: type[ma.Schema] | ma.Schema, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """As flask-smorest's, with a schema class built once: webargs builds a class anew on every request,
        deep-copying its fields (and its nested schemas' fields), which showed in the write path's profile."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)


def view_handler(view: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """The function that will answer this request (for method views, the method)."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = "get" if request.method == "HEAD" else request.method.lower()
    return getattr(view_class, method, None)


def body_media_types(handler: Callable[..., Any]) -> set[str]:
    """The media types a handler's declared arguments accept as a body."""
    params = getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    locations = {p["in"] for p in params}
    return ({JSON} if "json" in locations else set()) | (
        {"application/x-www-form-urlencoded"} if "form" in locations else set())


def produced_media_types(handler: Callable[..., Any]) -> tuple[str, ...]:
    return getattr(handler, "produces", (JSON,))


def produces(*media_types: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare what a view answers with when it is not JSON (negotiated against Accept)."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.produces = media_types  # type: ignore[attr-defined]
        return func

    return mark


def negotiated(*offered: str) -> str:
    """The media type of `offered` the caller prefers (by Accept; the first when it accepts any)."""
    return request.accept_mimetypes.best_match(offered) or offered[0]


def checks_secrets(view: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a view that checks client secrets (slow on purpose: Argon2): service/ratelimit.py limits it per
    address with TOKEN_RATE_LIMIT, counted where every worker and host shares the count."""
    view.checks_secrets = True  # type: ignore[attr-defined]
    return view


def _negotiate_media_types() -> None:
    handler = view_handler(current_app.view_functions.get(request.endpoint or ""))
    if handler is None:
        return
    accepted = body_media_types(handler)
    if accepted and request.method in ("POST", "PUT", "PATCH") and request.mimetype not in accepted:
        raise UnsupportedMediaType(f"Send the body as {' or '.join(sorted(accepted))}.")
    offered = produced_media_types(handler)
    if request.accept_mimetypes.provided and request.accept_mimetypes.best_match(
        [*offered, PROBLEM_JSON] if JSON in offered else offered
    ) is None:
        raise NotAcceptable(f"This resource is available as {', '.join(offered)}.")


def request_id_of(incoming: str) -> str:
    """The caller's X-Request-ID when it is a safe token (8-64 letters, digits and dashes, such as a UUID, holding
    no identifying data); otherwise a new id."""
    if REQUEST_ID.fullmatch(incoming) and not screen_text(incoming):
        return incoming
    return uuid.uuid4().hex


def conventional_headers(request_id: str) -> dict[str, str]:
    """The headers every response carries (a view may set its own Content-Security-Policy and Cache-Control)."""
    return {"API-Version": API_VERSION, "X-Request-ID": request_id, **SECURITY_HEADERS,
            "Content-Security-Policy": API_CSP, "Cache-Control": "no-store"}


OWN_CHOICE = ("Content-Security-Policy", "Cache-Control")


def _start_request() -> None:
    g.request_id = request_id_of(request.headers.get("X-Request-ID", ""))
    g.started = time.perf_counter()


def on_finish(app: Flask, hook: Callable[[Response], Response]) -> None:
    """Run `hook` on every response just before the request's one commit (or rollback), in the order registered."""
    app.extensions.setdefault("finishing", []).append(hook)


def _finish_request(response: Response) -> Response:
    for hook in current_app.extensions.get("finishing", ()):
        response = hook(response)
    try:
        # The one commit point: a request's work commits when it succeeded; a refused one keeps only what a finishing
        # hook asked to keep (its access event, after rolling back its work).
        db.finish(commit=response.status_code < 400 or g.pop("commit_refused", False))
    except DBAPIError as exc:
        if not database_is_unavailable(exc):
            raise
        response = database_unavailable(exc)  # nothing was committed: the client may retry
    for name, value in conventional_headers(g.get("request_id", "")).items():
        if name in OWN_CHOICE:
            response.headers.setdefault(name, value)
        else:
            response.headers[name] = value
    # Route patterns, client ids and counts only: never bodies, never query strings.
    logs.log_request(response, time.perf_counter() - g.get("started", time.perf_counter()))
    return response


class ConventionsPlugin(BasePlugin):
    """Documents, on every operation, what `init_app` guarantees at run time (NL API Design Rules): an operationId
    derived from the summary, both ways to present a token, the errors any request may meet, and the headers of
    every response."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **_: Any) -> None:
        for method, operation in (operations or {}).items():
            if operation.get("summary"):
                operation.setdefault("operationId", openapi.operation_id(operation["summary"]))
            if operation.get("security") == [{"bearerAuth": []}]:
                operation["security"] = [{"bearerAuth": []}, {"oauth2": []}]
            responses = operation.setdefault("responses", {})
            for code in list(responses):
                response = responses[code]
                if str(code)[0] in "23" and isinstance(response, dict):
                    headers = response.setdefault("headers", {})
                    for name, component in (EVERY_RESPONSE_HEADERS | RATE_LIMITED_HEADERS).items():
                        headers.setdefault(name, component)
            has_input = method in ("post", "put", "patch") or operation.get("parameters")
            extra = {"400": "BAD_REQUEST"} if has_input else {}
            if operation.get("security"):
                extra |= {"401": "UNAUTHORIZED", "403": "FORBIDDEN"}
            if "{" in (path or ""):
                extra |= {"404": "NOT_FOUND"}
            if method in ("post", "put", "patch") and "requestBody" in operation:
                extra |= {"413": "REQUEST_ENTITY_TOO_LARGE", "415": "UNSUPPORTED_MEDIA_TYPE"}
            extra |= {"406": "NOT_ACCEPTABLE", "429": "TOO_MANY_REQUESTS", "503": "SERVICE_UNAVAILABLE"}
            for code, name in extra.items():
                if code not in {str(c) for c in responses}:
                    responses[code] = name


def register_conventions(spec: Any, token_url: str) -> None:
    """Components that ConventionsPlugin refers to."""
    spec.components.header("API_VERSION", {
        "description": "The full version of this API (semantic versioning)",
        "schema": {"type": "string", "example": API_VERSION},
    })
    spec.components.header("X_REQUEST_ID", {
        "description": "The request's id: the caller's X-Request-ID when it is 8 to 64 letters, digits and dashes "
                       "(a UUID will do), otherwise one of ours. Quote it when reporting a problem.",
        "schema": {"type": "string", "example": "0b6f3c1e-8a2d-4f5e-9c7b-1d2e3f4a5b6c"},
    })
    spec.components.header("RATE_LIMIT", {
        "description": "Where the caller stands against its rate limit (draft-ietf-httpapi-ratelimit-headers): "
                       "requests allowed in the window, requests left, seconds until the window resets.",
        "schema": {"type": "string", "example": "limit=600, remaining=599, reset=60"},
    })
    spec.components.header("RATE_LIMIT_POLICY", {
        "description": "The rate limit that applies: requests per window of w seconds.",
        "schema": {"type": "string", "example": "600;w=60"},
    })
    spec.components.header("RETRY_AFTER", {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "example": "5"},
    })
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token from POST /v1/oauth/token (client credentials).",
    })
    spec.components.security_scheme("oauth2", {
        "type": "oauth2",
        "description": "OAuth 2.0 client credentials (RFC 6749 section 4.4): the client authenticates with its id "
                       "and secret (HTTP Basic or form fields) and receives a JWT access token for 15 minutes. "
                       "The client's role and scope are fixed at registration, so no scopes are asked for.",
        "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": {}}},
    })


def init_negotiation(app: Flask) -> None:
    """415 and 406, checked once the caller is known (an anonymous caller learns nothing but 401)."""
    app.before_request(_negotiate_media_types)


def init_app(app: Flask) -> None:
    """Install the conventions on every route of the app, routing errors included."""
    app.request_class = RegisterRequest
    app.json = BodyJSONProvider(app)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_error_handler(DomainError, _domain_problem)
    app.register_error_handler(DBAPIError, _database_error)
