"""The base every wire schema derives from: camelCase keys, unknown fields refused."""

from __future__ import annotations

import functools
from typing import Any

import marshmallow as ma


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


class CamelSchema(ma.Schema):
    """Attribute names stay snake_case in Python and become camelCase on the wire."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
