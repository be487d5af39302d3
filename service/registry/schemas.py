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
        "metadata": {"description": "Shown to analysts in statistics; refused when it holds identifying data (a "
                                    "phone number, an address, ...)", "example": "Het Anker"}}
MUNICIPALITY = {"description": "CBS municipality code (GM and four digits)", "example": "GM0014"}


class InstitutionIn(CamelSchema):
    """A new care institution."""

    name = ma.fields.String(required=True, **NAME)
    sector = ma.fields.Enum(Sector, by_value=True, required=True)
    municipality_code = ma.fields.String(required=True, validate=MUNICIPALITY_CODE,
                                         metadata={**MUNICIPALITY, "description": "Where its main office is"})


class InstitutionOut(CamelSchema):
    """A care institution."""

    id = ma.fields.UUID(required=True, metadata={"description": "The institution's id"})
    name = ma.fields.String(required=True, metadata={"description": "Its name", "example": "Het Anker"})
    sector = ma.fields.Enum(Sector, by_value=True, required=True)
    municipality_code = ma.fields.String(required=True, metadata={**MUNICIPALITY,
                                                                  "description": "Where its main office is"})
    created_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it was registered"})


class CapacityIn(CamelSchema):
    """The number of places at a location from a date on."""

    EXAMPLE = {"validFrom": "2026-01-01", "places": 12}

    valid_from = ma.fields.Date(required=True, metadata={"description": "First day the places existed"})
    places = ma.fields.Integer(required=True, validate=ma.validate.Range(0, 10_000),
                               metadata={"description": "Places (beds) from validFrom on", "example": 12})


class CapacityOut(CamelSchema):
    """The number of places at a location from a date on."""

    valid_from = ma.fields.Date(required=True, metadata={"description": "First day the places existed"})
    places = ma.fields.Integer(required=True, metadata={"description": "Places (beds) from validFrom on",
                                                       "example": 12})


class LocationIn(CamelSchema):
    """A new location of an institution, with its capacity history (statistics need the places of each period)."""

    name = ma.fields.String(required=True, **NAME)
    postcode4 = ma.fields.String(required=True, validate=POSTCODE4, metadata={
        "description": "The four digits of its postcode (PC4 area)", "example": "9712"})
    municipality_code = ma.fields.String(required=True, validate=MUNICIPALITY_CODE, metadata=MUNICIPALITY)
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
    """A location of an institution, with its capacity history."""

    id = ma.fields.UUID(required=True, metadata={"description": "The location's id (locationId of incidents)"})
    institution_id = ma.fields.UUID(required=True, metadata={"description": "The institution it belongs to"})
    name = ma.fields.String(required=True, metadata={"description": "Its name", "example": "Het Anker, Noord"})
    postcode4 = ma.fields.String(required=True, metadata={"description": "The four digits of its postcode",
                                                          "example": "9712"})
    municipality_code = ma.fields.String(required=True, metadata=MUNICIPALITY)
    setting = ma.fields.Enum(Setting, by_value=True, required=True)
    capacities = ma.fields.List(ma.fields.Nested(CapacityOut), required=True,
                                metadata={"description": "Capacity history, oldest first"})
    created_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it was registered"})
