"""Wire shapes of the code lists."""

from __future__ import annotations

import marshmallow as ma

from service.schemas import CamelSchema


class TermOut(CamelSchema):
    """Field names are the wire names (camelCase already): the document is served as Taxonomy.as_document()
    builds it, the taxonomy file's own shape."""

    code = ma.fields.Raw(required=True, metadata={"description": "A string code (meldcode steps: 1-5)"})
    labelEn = ma.fields.String(required=True)
    labelNl = ma.fields.String(required=True)


class IndicatorOut(TermOut):
    group = ma.fields.String(required=True)
    kinds = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Kinds it applies to"})


def _terms() -> ma.fields.List:
    return ma.fields.List(ma.fields.Nested(TermOut), required=True)


class TaxonomyOut(CamelSchema):
    version = ma.fields.String(required=True)
    kinds = _terms()
    exploitationTypes = _terms()
    ageBands = _terms()
    indicators = ma.fields.List(ma.fields.Nested(IndicatorOut), required=True)
    meldcodeSteps = _terms()
    reportedTo = _terms()
    riskLevels = _terms()
    relationsClaimed = _terms()
