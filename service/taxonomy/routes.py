"""The code lists every client validates against."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from service.auth.access import requires
from service.auth.models import Role
from service.http import Blueprint
from service.schemas import CamelSchema
from service.taxonomy.service import load_taxonomy

blp = Blueprint("taxonomy", __name__, url_prefix="/v1/taxonomy", description="Versioned code lists with labels")


class TermOut(CamelSchema):
    code = ma.fields.Raw(required=True, metadata={"description": "A string code (meldcode steps: 1-5)"})
    label_en = ma.fields.String(required=True)
    label_nl = ma.fields.String(required=True)


class IndicatorOut(TermOut):
    group = ma.fields.String(required=True)
    kinds = ma.fields.List(ma.fields.String(), required=True)


class TaxonomyOut(CamelSchema):
    version = ma.fields.String(required=True)
    kinds = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    exploitation_types = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    age_bands = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    indicators = ma.fields.List(ma.fields.Nested(IndicatorOut), required=True)
    meldcode_steps = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    reported_to = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    risk_levels = ma.fields.List(ma.fields.Nested(TermOut), required=True)
    relations_claimed = ma.fields.List(ma.fields.Nested(TermOut), required=True)


@blp.route("")
class Taxonomy(MethodView):
    @blp.response(200, TaxonomyOut)
    @requires(*Role)
    def get(self) -> dict[str, Any]:
        """Get the code lists

        Incident kinds, exploitation types, age bands, indicators (with the kinds they apply to), meldcode steps
        and follow-up bodies, each with an English and a Dutch label. Every incident records the version it was
        validated against.
        """
        return load_taxonomy().as_document()
