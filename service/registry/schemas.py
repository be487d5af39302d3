"""Wire shapes of institutions, locations and capacity. One schema per direction."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.registry.models import Sector, Setting
from service.schemas import CamelSchema, FullMatch, screened

MUNICIPALITY_CODE = FullMatch(r"^GM[0-9]{4}$", error="Use a CBS municipality code such as GM0014.")
POSTCODE4 = FullMatch(r"^[1-9][0-9]{3}$", error="Use the four digits of a postcode, such as 9712.")
# Shown to analysts in every statistics unit: screened like a note.
NAME = {"validate": [ma.validate.Length(1, 200), screened],
        "metadata": {"description": "Refused when it holds identifying data (a phone number, an address, ...)"}}


class InstitutionIn(CamelSchema):
    name = ma.fields.String(required=True, **NAME)
    sector = ma.fields.Enum(Sector, by_value=True, required=True)
    municipality_code = ma.fields.String(required=True, validate=MUNICIPALITY_CODE,
                                         metadata={"example": "GM0014"})


class InstitutionOut(CamelSchema):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    sector = ma.fields.Enum(Sector, by_value=True, required=True)
    municipality_code = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class CapacityIn(CamelSchema):
    valid_from = ma.fields.Date(required=True, metadata={"description": "First day the places existed"})
    places = ma.fields.Integer(required=True, validate=ma.validate.Range(0, 10_000))


class CapacityOut(CamelSchema):
    valid_from = ma.fields.Date(required=True)
    places = ma.fields.Integer(required=True)


class LocationIn(CamelSchema):
    name = ma.fields.String(required=True, **NAME)
    postcode4 = ma.fields.String(required=True, validate=POSTCODE4, metadata={"example": "9712"})
    municipality_code = ma.fields.String(required=True, validate=MUNICIPALITY_CODE,
                                         metadata={"example": "GM0014"})
    setting = ma.fields.Enum(Setting, by_value=True, required=True)
    capacities = ma.fields.List(ma.fields.Nested(CapacityIn), required=True,
                                validate=ma.validate.Length(1, 400),
                                metadata={"description": "Capacity history: places from each validFrom on"})

    @ma.validates("capacities")
    def _distinct_dates(self, value: list[dict[str, Any]], **_: Any) -> None:
        dates = [c["valid_from"] for c in value if "valid_from" in c]
        if len(dates) != len(set(dates)):
            raise ma.ValidationError("Each validFrom may appear once.")


class LocationOut(CamelSchema):
    id = ma.fields.UUID(required=True)
    institution_id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    postcode4 = ma.fields.String(required=True)
    municipality_code = ma.fields.String(required=True)
    setting = ma.fields.Enum(Setting, by_value=True, required=True)
    capacities = ma.fields.List(ma.fields.Nested(CapacityOut), required=True)
    created_at = ma.fields.AwareDateTime(required=True)
