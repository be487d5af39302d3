"""The base every wire schema derives from: camelCase keys, unknown fields refused."""

from __future__ import annotations

import marshmallow as ma


def camelcase(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelSchema(ma.Schema):
    """Attribute names stay snake_case in Python and become camelCase on the wire."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
