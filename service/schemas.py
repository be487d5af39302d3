"""The base every wire schema derives from: JSON types taken strictly, camelCase keys, unknown fields refused."""

from __future__ import annotations

import functools
import re
from typing import Any

import marshmallow as ma

from service.screening import screen_text

# Control characters (but tab and line breaks) and unpaired surrogates: PostgreSQL cannot store NUL, a lone
# surrogate cannot be written as UTF-8, and neither belongs in text a person wrote.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# The same rule as the OpenAPI document states it (a JSON string cannot carry a lone surrogate but as an escape).
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"
NOT_TEXT_MESSAGE = "Must not contain control characters (other than tab and line breaks) or unpaired surrogates."


class Text(ma.fields.String):
    """A JSON string holding text: no control characters but tab and line breaks, no unpaired surrogates."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if NOT_TEXT.search(value):
            raise ma.ValidationError(NOT_TEXT_MESSAGE)
        return value


class Integer(ma.fields.Integer):
    """A JSON integer as JSON Schema (and so the OpenAPI document) defines one: a number without a fractional
    part (7, or 7.0). 7.9 and 2.5e-42 are refused rather than truncated, "7" and true rather than cast."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
        raise self.make_error("invalid")


class Boolean(ma.fields.Boolean):
    """A JSON boolean: "true", 1 and "yes" are refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True and value is not False:
            raise self.make_error("invalid")
        return value


STRICT = {ma.fields.String: Text, ma.fields.Integer: Integer, ma.fields.Boolean: Boolean}


def _documents_its_own_shape(field: ma.fields.Field) -> bool:
    return any(isinstance(v, ma.validate.Regexp | ma.validate.OneOf) for v in field.validators)


def strict_json(field: ma.fields.Field) -> None:
    """Give a field of marshmallow's lenient types (and the fields inside it) the strict type above, in place.

    Schema instances hold their own copies of their fields, so the declared fields are left as they are. Free text
    gets the text pattern in the OpenAPI document too, so that generated clients (and the contract fuzz) send
    text the service accepts."""
    strict = STRICT.get(type(field))
    if strict is not None:
        field.__class__ = strict
        if strict is Text and not _documents_its_own_shape(field):
            field.metadata = {"pattern": TEXT_PATTERN, **field.metadata}
    for inner in (getattr(field, "inner", None), getattr(field, "key_field", None),
                  getattr(field, "value_field", None), *getattr(field, "tuple_fields", ())):
        if inner is not None:
            strict_json(inner)


def screened(value: str) -> None:
    """A marshmallow validator: the text must not identify anyone. Names the kinds found, never the text."""
    kinds = screen_text(value)
    if kinds:
        raise ma.ValidationError(f"Contains identifying data ({', '.join(kinds)}); the register must not identify "
                                 "anyone.")


class FullMatch(ma.validate.Regexp):
    """A pattern the whole value must match: Python's `$` also matches before a final newline, and `\\d` any
    Unicode digit, so "GM0014\\n" or Arabic-Indic digits would pass a plain Regexp."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


@functools.cache
def camelcase(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camelised(value: Any) -> Any:
    """`value` with every mapping key in camelCase: what a CamelSchema dump of it gives when the schema names every
    key and the values already have their wire types. For responses of thousands of fields (statistics), where a
    field-by-field dump costs more than computing them; tests compare the two for every such response."""
    if isinstance(value, dict):
        return {camelcase(key): camelised(item) if isinstance(item, dict | list) else item
                for key, item in value.items()}
    if isinstance(value, list):
        return [camelised(item) if isinstance(item, dict | list) else item for item in value]
    return value


class StrictSchema(ma.Schema):
    """JSON types taken at their word: integers are JSON integers, booleans are booleans, strings are text.

    Every field of marshmallow's lenient String, Integer and Boolean is made strict when a schema is built, so no
    schema can forget (and a subclass that overrides on_bind_field cannot skip it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            strict_json(field)


class CamelSchema(StrictSchema):
    """Attribute names stay snake_case in Python and become camelCase on the wire."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
