"""GET /v1/taxonomy: the same code lists for every role, with English and Dutch labels for every code."""

from __future__ import annotations

import pytest

from service.auth.models import Role
from service.taxonomy.service import load_taxonomy

PROBLEM_JSON = "application/problem+json"
# service/taxonomy/routes.py returns load_taxonomy().as_document() (camelCase keys) through the TaxonomyOut response
# schema, a CamelSchema that reads snake_case attributes: every multi-word key (labelEn, labelNl, exploitationTypes,
# ageBands, meldcodeSteps, reportedTo, riskLevels, relationsClaimed) is silently dropped from the response.


@pytest.mark.parametrize("role", list(Role))
def test_every_role_gets_the_same_document(client, token_for, role):
    response = client.get("/v1/taxonomy", headers=token_for(role))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json == load_taxonomy().as_document()


def test_every_role_sees_identical_bytes(client, token_for):
    bodies = {client.get("/v1/taxonomy", headers=token_for(role)).get_data() for role in Role}
    assert len(bodies) == 1


def test_without_a_token_it_is_401(client):
    response = client.get("/v1/taxonomy")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_code_has_an_english_and_a_dutch_label(client, token_for):
    document = client.get("/v1/taxonomy", headers=token_for(Role.INSTITUTION)).json
    lists = {key: value for key, value in document.items() if isinstance(value, list)}

    assert set(lists) == {"kinds", "exploitationTypes", "ageBands", "indicators", "meldcodeSteps", "reportedTo",
                          "riskLevels", "relationsClaimed"}
    assert document["version"] == load_taxonomy().version
    for key, terms in lists.items():
        assert terms, key
        codes = [term["code"] for term in terms]
        assert len(codes) == len(set(codes)), key
        for term in terms:
            for label in ("labelEn", "labelNl"):
                assert isinstance(term[label], str) and term[label].strip(), (key, term["code"], label)


def test_the_lists_hold_the_codes_incidents_use(client, token_for):
    document = client.get("/v1/taxonomy", headers=token_for(Role.ANALYST)).json

    def codes(key: str) -> list:
        return [term["code"] for term in document[key]]

    assert codes("kinds") == ["recruitmentAttempt", "suspiciousVisitor", "absence"]
    assert codes("exploitationTypes") == ["sexual", "criminal", "labour", "other", "unknown"]
    assert codes("ageBands") == ["under12", "12to15", "16to17", "18to22", "23plus", "unknown"]
    assert codes("meldcodeSteps") == [1, 2, 3, 4, 5]
    assert codes("reportedTo") == ["police", "zorgEnVeiligheidshuis", "veiligThuis", "coMensha", "igj"]
    assert codes("riskLevels") == ["green", "orange", "red"]
    kinds = set(codes("kinds"))
    for indicator in document["indicators"]:
        assert indicator["kinds"] and set(indicator["kinds"]) <= kinds, indicator["code"]
        assert indicator["group"] in {"recruitment", "sexualExploitation", "criminalExploitation", "visitor",
                                      "absence"}
    for kind in kinds:
        assert any(kind in indicator["kinds"] for indicator in document["indicators"]), kind
