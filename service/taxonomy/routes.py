"""The code lists every client validates against."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from service.auth.access import requires
from service.auth.models import Role
from service.http import Blueprint
from service.taxonomy.service import load_taxonomy

blp = Blueprint("taxonomy", __name__, url_prefix="/v1/taxonomy", description="Versioned code lists with labels")


class TermOut(ma.Schema):
    """Field names are the wire names: the document is served as Taxonomy.as_document() builds it."""

    code = ma.fields.Raw(required=True, metadata={"description": "A string code (meldcode steps: 1-5)"})
    labelEn = ma.fields.String(required=True)
    labelNl = ma.fields.String(required=True)


class IndicatorOut(TermOut):
    group = ma.fields.String(required=True)
    kinds = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Kinds it applies to"})


def _terms() -> ma.fields.List:
    return ma.fields.List(ma.fields.Nested(TermOut), required=True)


class TaxonomyOut(ma.Schema):
    version = ma.fields.String(required=True)
    kinds = _terms()
    exploitationTypes = _terms()
    ageBands = _terms()
    indicators = ma.fields.List(ma.fields.Nested(IndicatorOut), required=True)
    meldcodeSteps = _terms()
    reportedTo = _terms()
    riskLevels = _terms()
    relationsClaimed = _terms()


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
