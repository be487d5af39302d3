"""Wire shapes of the code lists."""

from __future__ import annotations

import marshmallow as ma

from service.openapi import Codes, code
from service.schemas import CamelSchema
from service.taxonomy.service import load_taxonomy

TAXONOMY = load_taxonomy()
TAXONOMY_LABELS = "English and Dutch labels of every code: GET /taxonomy."
# The code lists as the OpenAPI document names them: one component each, referred to wherever a code travels.
KIND = Codes.of_terms("Kind", TAXONOMY.kinds, f"What was noticed. {TAXONOMY_LABELS}")
EXPLOITATION_TYPE = Codes.of_terms("ExploitationType", TAXONOMY.exploitation_types,
                                   f"The form of exploitation suspected. {TAXONOMY_LABELS}")
AGE_BAND = Codes.of_terms("AgeBand", TAXONOMY.age_bands,
                          f"An age band in years (for a visitor: as estimated by staff). {TAXONOMY_LABELS}",
                          prefix="AGE")
INDICATOR = Codes.of_terms("Indicator", TAXONOMY.indicators,
                           f"A signal staff noticed; each applies to some kinds only (GET /taxonomy says which). "
                           f"{TAXONOMY_LABELS}")
RISK_LEVEL = Codes.of_terms("RiskLevel", TAXONOMY.risk_levels,
                            f"The institution's assessment of the risk during an absence. {TAXONOMY_LABELS}")
RELATION_CLAIMED = Codes.of_terms("RelationClaimed", TAXONOMY.relations_claimed,
                                  f"What a visitor said they were to the resident. {TAXONOMY_LABELS}")
REPORTED_TO = Codes.of_terms("ReportedTo", TAXONOMY.reported_to,
                             f"An authority a signal was formally reported to. {TAXONOMY_LABELS}")


class TermOut(CamelSchema):
    """A code with its English and Dutch labels."""

    # Field names are the wire names (camelCase already): the document is served as Taxonomy.as_document()
    # builds it, the taxonomy file's own shape.

    code = ma.fields.Raw(required=True, metadata={"description": "A string code (meldcode steps: 1-5)"})
    labelEn = ma.fields.String(required=True, metadata={"description": "Label in English",
                                                        "example": "Recruitment attempt"})
    labelNl = ma.fields.String(required=True, metadata={"description": "Label in Dutch", "example": "Wervingspoging"})


class IndicatorOut(TermOut):
    """An indicator, its group and the kinds of signal it applies to."""

    group = ma.fields.String(required=True, metadata={"description": "The indicators' group (recruitment, sexual, "
                                                                     "criminal, visitor, ...)",
                                                      "example": "recruitment"})
    kinds = ma.fields.List(code(KIND), required=True, metadata={"description": "Kinds it applies to"})


def _terms(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.Nested(TermOut), required=True, metadata={"description": description})


class TaxonomyOut(CamelSchema):
    """The versioned code lists incidents are checked against, with labels to show to staff."""

    version = ma.fields.String(required=True, metadata={
        "description": "The taxonomy's version; every incident records the version it was checked against",
        "example": TAXONOMY.version})
    kinds = _terms("Kinds of signal (`kind`)")
    exploitationTypes = _terms("Forms of exploitation (`exploitationType`)")
    ageBands = _terms("Age bands (`residentAgeBand`, `visitor.estimatedAgeBand`)")
    indicators = ma.fields.List(ma.fields.Nested(IndicatorOut), required=True,
                                metadata={"description": "Indicators (`indicators`), each with the kinds it fits"})
    meldcodeSteps = _terms("Steps of the reporting code for domestic violence and child abuse "
                           "(`followUp.meldcodeStep`); codes are the step numbers")
    reportedTo = _terms("Authorities a signal may be reported to (`followUp.reportedTo`)")
    riskLevels = _terms("Risk levels of an absence (`absence.riskLevel`)")
    relationsClaimed = _terms("Relations a visitor may claim (`visitor.relationClaimed`)")
