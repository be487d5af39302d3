"""What a request says: its JSON body, read once and strictly, and its query parameters, typed for the strict fields
of service.schemas. Unreadable input is a 400 that says why, never what the input held."""

from __future__ import annotations

import json as standard_json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask.json.provider import DefaultJSONProvider
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from service.errors import FieldError, InvalidInput

MAX_JSON_DEPTH = 32
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class UnreadableBody(ValueError):
    """A request body that is not JSON the service reads; the message says why, never what the body held."""


def _not_json(_constant: str) -> NoReturn:
    raise UnreadableBody("NaN and Infinity are not JSON.")


def _nests_within(value: Any, depth: int) -> bool:
    """Whether arrays and objects in parsed JSON nest at most `depth` deep (level by level: no recursion). About
    half a parse's time for a batch of 500 incidents; the body is parsed once per request."""
    level = [value]
    for _ in range(depth):
        nested: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item if type(item) is list else ()
            nested += [child for child in children if type(child) is dict or type(child) is list]
        if not nested:
            return True
        level = nested
    return False


class BodyJSONProvider(DefaultJSONProvider):
    """Flask's JSON, parsing request bodies with the standard library (a lone surrogate in a string parses, and
    the field that holds it refuses it by name) and refusing what is not JSON (NaN, Infinity) or nests deeper
    than MAX_JSON_DEPTH (a body of 200,000 brackets would otherwise exhaust the parser's recursion)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        too_deep = UnreadableBody(f"Arrays and objects may nest at most {MAX_JSON_DEPTH} deep.")
        try:
            value = standard_json.loads(s, parse_constant=_not_json, **kwargs)
        except RecursionError:
            raise too_deep from None
        if not _nests_within(value, MAX_JSON_DEPTH):
            raise too_deep
        return value


class RegisterRequest(flask.Request):
    """A request whose unreadable JSON body is a 400 problem saying why, without echoing what it held."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)  # not a JSON media type: 415
        # Only our own reasons are shown: the parser's messages may quote the body.
        reason = str(e) if isinstance(e, UnreadableBody) else "Not valid JSON (RFC 8259) in UTF-8."
        raise InvalidInput("The body is not JSON the register can read.", errors=[FieldError("/", reason)])


class ArgumentsParser(FlaskParser):
    """Invalid input is a 400, and unknown query parameters are refused rather than ignored."""

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE,
                                   "querystring": ma.RAISE}

    def handle_error(self, error: ma.ValidationError, req: flask.Request, schema: ma.Schema, *,
                     error_status_code: int | None, error_headers: Mapping[str, str] | None) -> NoReturn:
        """Refuse the input. A body's schema may also name what only the database finds wrong with it (a location
        of another institution: `errors_beside(body)`), so that one answer names every invalid field."""
        beside = getattr(schema, "errors_beside", None)
        messages = error.messages if isinstance(error.messages, dict) else {}
        body = self.load_json(req, schema) if beside is not None else webargs_core.missing
        if body is not webargs_core.missing and isinstance(messages.get("json"), dict):
            for found in beside(body):
                _add_message(messages["json"], found.pointer, found.detail)
        super().handle_error(error, req, schema, error_status_code=error_status_code, error_headers=error_headers)

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        """The body as Flask parses it (BodyJSONProvider), once per request: the views that hash or log the body
        read the same parse from Flask's cache."""
        if not req.is_json or not req.get_data(cache=True):
            return webargs_core.missing
        return req.get_json()

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> Any:
        """Query parameters are text: an integer or boolean parameter written as JSON writes it (50, true) is
        read as one here, so that the same strict fields check the query and the body."""
        fields = {field.data_key or name: field for name, field in schema.fields.items()}
        typed: MultiDict[str, Any] = MultiDict()
        for key, value in req.args.items(multi=True):
            typed.add(key, _from_text(fields.get(key), value))
        return MultiDictProxy(typed, schema)


def _add_message(messages: dict[Any, Any], pointer: str, detail: str) -> None:
    """Add `detail` at `pointer` (/items/3/locationId) to marshmallow-style nested messages (list items by index),
    unless a message already refuses what holds it (the items list itself, say)."""
    *path, last = [int(part) if part.isdigit() else part for part in pointer.strip("/").split("/")]
    for key in path:
        messages = messages.setdefault(key, {})
        if not isinstance(messages, dict):
            return
    found = messages.setdefault(last, [])
    if isinstance(found, list) and detail not in found:
        found.append(detail)


def _from_text(field: ma.fields.Field | None, value: str) -> Any:
    if isinstance(field, ma.fields.List):
        field = field.inner
    if isinstance(field, ma.fields.Integer) and len(value) <= 32 and JSON_NUMBER.fullmatch(value):
        return standard_json.loads(value)  # the field decides: 50 and 50.0 are integers, 7.9 is not
    if isinstance(field, ma.fields.Boolean) and value in ("true", "false"):
        return value == "true"
    return value
