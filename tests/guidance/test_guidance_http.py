"""Guidance over HTTP: its whole shape, the municipality's routes (and an admin's override of them), the guidance
every create, batch item and correction carries, invalid input and roles."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from service.auth.models import Role
from service.guidance.data import load_guidance
from service.guidance.models import MunicipalityGuidance
from tests.factories import make_institution, make_location
from tests.incidents.factories import incident_body

ZVH_OWN = {"code": "zorgEnVeiligheidshuis", "labelEn": "Care and Safety House Test", "labelNl": "ZVH Test",
           "purposeEn": "Case consultation", "purposeNl": "Casusoverleg", "meldcodeSteps": [2, 5],
           "reportedTo": "zorgEnVeiligheidshuis", "phone": "050-0000000", "website": "https://zvh.example.org",
           "source": "Gemeente Test", "date": "2026-11-30"}


def wire_route(code: str, scope: str = "national") -> dict[str, Any]:
    data = load_guidance()
    route = data.national.get(code) or next(r for r in data.municipal("GM0014").routes if r["code"] == code)
    camel = {"label_en": "labelEn", "label_nl": "labelNl", "purpose_en": "purposeEn", "purpose_nl": "purposeNl",
             "meldcode_steps": "meldcodeSteps", "reported_to": "reportedTo"}
    return {camel.get(k, k): v for k, v in route.items()} | {"scope": scope}


@pytest.fixture
def institution(session):  # type: ignore[no-untyped-def]
    return make_institution(session, municipality_code="GM0014")


@pytest.fixture
def headers(token_for, institution):  # type: ignore[no-untyped-def]
    return token_for(Role.INSTITUTION, institution_id=institution.id)


def test_guidance_for_a_signal_not_logged_yet_is_the_whole_advice(client, headers):
    response = client.get("/v1/guidance", headers=headers, query_string={
        "kind": "recruitmentAttempt", "exploitationType": "sexual", "residentAgeBand": "12to15",
        "indicators": ["nameTattoo"], "meldcodeStep": 1})

    assert response.status_code == 200, response.get_data(as_text=True)
    rules = {rule.code: rule for rule in load_guidance().rules}
    assert response.json == {
        "version": "2026.1",
        "nextMeldcodeStep": {
            "step": 2, "labelEn": "Consult a colleague and, if needed, Veilig Thuis or an expert",
            "labelNl": "Collegiale consultatie en zo nodig Veilig Thuis of een deskundige raadplegen",
            "questionEn": "Have you consulted a colleague and, if needed, Veilig Thuis or an expert?",
            "questionNl": "Heeft u een collega geraadpleegd en zo nodig Veilig Thuis of een deskundige?"},
        "routes": [wire_route("veiligThuis"), wire_route("fier")],
        "rules": ["minorSexualExploitation", "minorSexualIndicators"],
        "reasonEn": f"{rules['minorSexualExploitation'].reason_en} {rules['minorSexualIndicators'].reason_en}",
        "reasonNl": f"{rules['minorSexualExploitation'].reason_nl} {rules['minorSexualIndicators'].reason_nl}",
    }


def test_without_a_rule_the_reason_is_the_next_steps_question(client, headers):
    body = client.get("/v1/guidance", headers=headers, query_string={
        "kind": "recruitmentAttempt", "exploitationType": "unknown", "meldcodeStep": 2}).json

    assert body["rules"] == [] and body["routes"] == []
    assert body["reasonEn"] == "Meldcode step 3: Have you talked with the young person (and, where it is safe, " \
                               "the parents or carers)?"
    assert body["nextMeldcodeStep"]["step"] == 3


def test_groningen_gets_its_own_zorg_en_veiligheidshuis_and_others_the_regional_pointer(client, session, token_for):
    query = {"kind": "recruitmentAttempt", "exploitationType": "criminal", "indicators": ["multiplePhones"]}
    elsewhere = token_for(Role.INSTITUTION, institution_id=make_institution(session, municipality_code="GM0363").id)
    groningen = token_for(Role.INSTITUTION, institution_id=make_institution(session, municipality_code="GM0014").id)

    def zvh(headers: dict[str, str]) -> dict[str, Any]:
        body = client.get("/v1/guidance", headers=headers, query_string=query).json
        return next(route for route in body["routes"] if route["code"] == "zorgEnVeiligheidshuis")

    assert zvh(groningen)["labelNl"] == "Zorg- en Veiligheidshuis Groningen"
    assert zvh(groningen)["scope"] == "municipal"
    assert zvh(elsewhere)["labelNl"] == "Het Zorg- en Veiligheidshuis van uw regio"


def test_an_admin_replaces_a_municipalitys_routes_and_creates_then_carry_them(client, session, headers,
                                                                                institution, token_for):
    admin = token_for(Role.ADMIN)
    url = "/v1/guidance/municipalities/GM0014"
    assert client.get(url, headers=admin).json["source"] == "dataFile"

    put = client.put(url, json={"routes": [ZVH_OWN], "followUpDays": 5}, headers=admin)

    assert put.status_code == 200, put.get_data(as_text=True)
    assert put.json == {"municipalityCode": "GM0014", "source": "override", "routes": [ZVH_OWN],
                        "followUpDays": 5, "updatedAt": put.json["updatedAt"]}
    location = make_location(session, institution)
    created = client.post("/v1/incidents", headers=headers, json=incident_body(
        location.id, exploitationType="criminal", indicators=["multiplePhones"], followUp=None))
    assert created.status_code == 201, created.get_data(as_text=True)
    routes = created.json["guidance"]["routes"]
    assert ZVH_OWN | {"scope": "municipal"} in routes
    assert created.json["guidance"]["rules"] == ["criminalExploitation"]
    assert created.json["guidance"]["nextMeldcodeStep"]["step"] == 1

    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).json["source"] == "dataFile"


@pytest.mark.parametrize(("body", "pointers"), [
    ({"routes": [{**ZVH_OWN, "code": "veiligThuis"}], "followUpDays": 7}, ["/routes/0/code"]),
    ({"routes": [ZVH_OWN, ZVH_OWN], "followUpDays": 7}, ["/routes/1/code"]),
    ({"routes": [{**ZVH_OWN, "meldcodeSteps": [6], "website": "http://x.example.org"}], "followUpDays": 0},
     ["/followUpDays", "/routes/0/meldcodeSteps/0", "/routes/0/website"]),
    ({"routes": [{**ZVH_OWN, "purposeNl": "Bel 06-12345678"}], "followUpDays": 7}, ["/routes/0/purposeNl"]),
])
def test_invalid_routes_are_refused_naming_every_field_and_change_nothing(client, session, token_for, body,
                                                                           pointers):
    response = client.put("/v1/guidance/municipalities/GM0014", json=body, headers=token_for(Role.ADMIN))

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert sorted(error["pointer"] for error in response.json["errors"]) == pointers
    assert session.scalar(select(func.count()).select_from(MunicipalityGuidance)) == 0


def test_a_path_that_is_no_municipality_code_is_not_found(client, token_for):
    response = client.get("/v1/guidance/municipalities/Groningen", headers=token_for(Role.ADMIN))
    assert response.status_code == 404


@pytest.mark.parametrize(("query", "pointers"), [
    ({"kind": "recruitmentAttempt"}, ["/exploitationType"]),
    ({"kind": "recruitmentAttempt", "exploitationType": "sexual", "riskLevel": "red"}, ["/riskLevel"]),
    ({"kind": "suspiciousVisitor", "exploitationType": "sexual", "indicators": ["nameTattoo"]}, ["/indicators"]),
    ({"kind": "absence", "exploitationType": "sexual", "meldcodeStep": 6, "residentAgeBand": "old"},
     ["/meldcodeStep", "/residentAgeBand"]),
])
def test_an_invalid_signal_is_refused_naming_every_field(client, headers, query, pointers):
    response = client.get("/v1/guidance", headers=headers, query_string=query)

    assert response.status_code == 400
    assert sorted(error["pointer"] for error in response.json["errors"]) == pointers


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.ADMIN])
def test_only_institutions_ask_for_guidance(client, token_for, role):
    response = client.get("/v1/guidance", headers=token_for(role),
                          query_string={"kind": "absence", "exploitationType": "sexual"})
    assert response.status_code == 403


@pytest.mark.parametrize("role", [Role.INSTITUTION, Role.ANALYST, Role.AUDITOR])
def test_only_admins_set_routes(client, token_for, role):
    url = "/v1/guidance/municipalities/GM0014"
    assert client.get(url, headers=token_for(role)).status_code == 403
    assert client.put(url, json={"routes": [], "followUpDays": 7}, headers=token_for(role)).status_code == 403


def test_every_batch_item_and_a_correction_carry_their_own_guidance(client, session, headers, institution):
    location = make_location(session, institution)
    items = [incident_body(location.id, kind="absence", followUp=None, clientReference="G-1",
                           absence={"whereaboutsKnown": False, "riskLevel": "red"}),
             incident_body(location.id, exploitationType="labour", followUp={"meldcodeStep": 3},
                           clientReference="G-2")]

    batch = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers)

    assert batch.status_code == 201, batch.get_data(as_text=True)
    first, second = (item["guidance"] for item in batch.json["items"])
    assert first["rules"] == ["redRiskAbsence"] and [r["code"] for r in first["routes"]] == ["police"]
    assert second["rules"] == ["labourExploitation"] and second["nextMeldcodeStep"]["step"] == 4

    incident = batch.json["items"][1]
    corrected = client.patch(f"/v1/incidents/{incident['id']}", json={"followUp": {"meldcodeStep": 4},
                                                                      "reason": "Stap bijgewerkt."},
                             headers={**headers, "If-Match": '"1"'})

    assert corrected.status_code == 200, corrected.get_data(as_text=True)
    assert corrected.json["guidance"]["rules"] == ["labourExploitation", "weighingDone"]
    assert corrected.json["guidance"]["nextMeldcodeStep"]["step"] == 5


def test_the_next_create_and_batch_read_an_override_set_or_removed_just_before(client, session, headers,
                                                                               institution, token_for):
    """Guidance is read in the statement that checks the locations, never kept between requests: an admin's
    change shows in the very next create and batch, in every worker."""
    admin, url = token_for(Role.ADMIN), "/v1/guidance/municipalities/GM0014"
    location = make_location(session, institution)
    signal = {"exploitationType": "criminal", "indicators": ["multiplePhones"], "followUp": None}

    def zvh(response: Any) -> dict[str, Any]:
        assert response.status_code == 201, response.get_data(as_text=True)
        guidance = response.json["items"][0]["guidance"] if "items" in response.json else response.json["guidance"]
        return next(route for route in guidance["routes"] if route["code"] == "zorgEnVeiligheidshuis")

    def create(reference: str) -> dict[str, Any]:
        return zvh(client.post("/v1/incidents", headers=headers,
                               json=incident_body(location.id, clientReference=reference, **signal)))

    def batch(reference: str) -> dict[str, Any]:
        return zvh(client.post("/v1/incidents/_batch", headers=headers, json={
            "items": [incident_body(location.id, clientReference=reference, **signal)]}))

    data_file = wire_route("zorgEnVeiligheidshuis", "municipal")
    assert create("O-1") == data_file and batch("O-2") == data_file

    assert client.put(url, json={"routes": [ZVH_OWN], "followUpDays": 5}, headers=admin).status_code == 200
    assert create("O-3") == ZVH_OWN | {"scope": "municipal"}
    assert batch("O-4") == ZVH_OWN | {"scope": "municipal"}

    renamed = ZVH_OWN | {"labelEn": "Care and Safety House Renamed"}
    assert client.put(url, json={"routes": [renamed], "followUpDays": 5}, headers=admin).status_code == 200
    assert create("O-5") == renamed | {"scope": "municipal"}

    assert client.delete(url, headers=admin).status_code == 204
    assert create("O-6") == data_file and batch("O-7") == data_file
