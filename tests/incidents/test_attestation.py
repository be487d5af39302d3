"""The signed statement of one resident's signals: what it holds (and never holds), where each signal sits in the
access log, that it verifies with the published keys and fails after any changed byte or once its key is rotated
out, that another institution's resident is indistinguishable from none, and the offline verify command."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from service.audit.models import AccessEvent
from service.auth.models import Role
from service.cli import main
from service.config import Settings
from service.incidents.attestation import commitment
from service.signing import InvalidStatement, signing_keys, verify_statement
from tests.factories import make_institution, make_location
from tests.incidents.factories import OMIT, incident_body

pytestmark = pytest.mark.clock("2026-11-20")
URL = "/v1/incidents/_attestation"
NOTE = "Stond lang bij het hek te wachten en sprak twee bewoners aan."


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def institution(session):  # type: ignore[no-untyped-def]
    return make_institution(session)


@pytest.fixture
def headers(token_for, institution):  # type: ignore[no-untyped-def]
    return token_for(Role.INSTITUTION, institution_id=institution.id)


@pytest.fixture
def recorded(client, session, headers, institution) -> list[str]:  # type: ignore[no-untyped-def]
    """Three signals about CL-0042 (one corrected, one retracted) and one about someone else."""
    location = make_location(session, institution)

    def post(**overrides: Any) -> str:
        response = client.post("/v1/incidents", json=incident_body(location.id, **overrides), headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json["id"]

    first = post(occurredAt="2026-10-01T21:00:00+02:00", note=NOTE)
    second = post(occurredAt="2026-10-15T14:00:00+02:00", kind="absence", followUp=OMIT,
                  absence={"whereaboutsKnown": False, "riskLevel": "red"})
    third = post(occurredAt="2026-11-02T09:00:00+01:00", exploitationType="sexual")
    post(residentRef="CL-0099")
    corrected = client.patch(f"/v1/incidents/{second}", headers={**headers, "If-Match": '"1"'},
                             json={"followUp": {"meldcodeStep": 3}, "note": "Na gesprek bijgewerkt.",
                                   "reason": "Stap drie gezet."})
    assert corrected.status_code == 200, corrected.get_data(as_text=True)
    assert client.post(f"/v1/incidents/{third}/retraction", json={"reason": "Dubbel ingevoerd."},
                       headers=headers).status_code == 200
    return [first, second, third]


def attest(client, headers, resident_ref: str = "CL-0042") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.post(URL, json={"residentRef": resident_ref}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.json


def test_the_statement_holds_every_signal_about_the_resident_and_never_the_note(client, session, headers,
                                                                               institution, recorded):
    body = attest(client, headers)

    statement = body["statement"]
    assert [s["id"] for s in statement["signals"]] == recorded
    assert statement["institutionId"] == str(institution.id) and statement["type"] == "signalAttestation"
    first, second, third = statement["signals"]
    assert (first["kind"], first["exploitationType"], first["occurredAt"], first["indicators"]) == (
        "recruitmentAttempt", "criminal", "2026-10-01T19:00:00+00:00", ["approachedAtEntrance", "offeredMoneyOrGifts"])
    assert first["followUp"]["reportedTo"] == ["veiligThuis"] and first["revisions"] == []
    assert second["absence"]["riskLevel"] == "red" and second["followUp"]["meldcodeStep"] == 3
    assert [(r["action"], r["fields"]) for r in second["revisions"]] == [
        ("correction", ["followUp/meldcodeStep", "note"])]
    assert (third["status"], third["revisions"][0]["action"]) == ("retracted", "retraction")
    assert third["retractedAt"].startswith("2026-11-20T11:00") and third["revisions"][0]["changedAt"]
    text = json.dumps(body)
    assert NOTE not in text and "Na gesprek" not in text and "CL-0042" not in text and "Stap drie" not in text


def test_each_signal_names_the_access_event_of_its_creation(client, session, headers, recorded):
    statement = attest(client, headers)["statement"]

    for signal in statement["signals"]:
        event = session.scalars(select(AccessEvent).where(AccessEvent.seq == signal["accessLog"]["seq"])).one()
        assert (event.event_type, event.records, event.hash, event.chain_seq) == (
            "create", [signal["id"]], signal["accessLog"]["hash"], signal["accessLog"]["chainSeq"])
        assert event.hash is not None  # asking seals first: every create has its place in the chain


def test_it_verifies_with_the_published_key_set(client, headers, recorded):
    body = attest(client, headers)
    jwks = client.get("/v1/oauth/jwks.json").json

    assert verify_statement(body["jws"], jwks) == body["statement"]
    assert body["kid"] in {key["kid"] for key in jwks["keys"]}


def _segments(token: str) -> list[bytearray]:
    return [bytearray(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in token.split(".")]


def _encoded(segments: list[bytearray]) -> str:
    return ".".join(base64.urlsafe_b64encode(bytes(s)).decode().rstrip("=") for s in segments)


def test_it_fails_after_any_byte_changes(client, headers, recorded):
    body = attest(client, headers)
    jwks = client.get("/v1/oauth/jwks.json").json
    segments = _segments(body["jws"])
    assert _encoded(segments) == body["jws"]

    changed = 0
    for part, segment in enumerate(segments):
        for i in range(len(segment)):
            altered = [bytearray(s) for s in segments]
            altered[part][i] ^= 0x01
            with pytest.raises(InvalidStatement):
                verify_statement(_encoded(altered), jwks)
            changed += 1
    assert changed == sum(len(s) for s in segments) > 1000


def test_a_rotated_out_key_no_longer_verifies_and_one_kept_in_the_ring_does(app, settings, tmp_path):
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    signed = signing_keys(settings.with_overrides(attestation_private_key=pem(old))).sign({"signals": []})

    rotated = signing_keys(settings.with_overrides(attestation_private_key=pem(new),
                                                   attestation_previous_public_keys=public_pem(old)))
    rotated_out = signing_keys(settings.with_overrides(attestation_private_key=pem(new)))

    assert verify_statement(signed, {"keys": rotated.jwks()}) == {"signals": []}
    assert len(rotated.jwks()) == 2
    with pytest.raises(InvalidStatement, match="rotated out"):
        verify_statement(signed, {"keys": rotated_out.jwks()})


def test_another_institutions_resident_is_indistinguishable_from_none(client, session, recorded, token_for):
    other = token_for(Role.INSTITUTION, institution_id=make_institution(session).id)

    theirs, nobody = attest(client, other, "CL-0042"), attest(client, other, "CL-7777")

    assert theirs["statement"]["signals"] == [] and theirs["kid"] == nobody["kid"]
    unique = {"issuedAt": None, "id": None, "subject": None}  # the time, the statement's id, the salted commitment
    assert {**theirs["statement"], **unique} == {**nobody["statement"], **unique}


def test_a_statement_is_bound_to_its_resident_only_for_whoever_holds_the_salt(client, headers, recorded):
    body = attest(client, headers)
    again = attest(client, headers)
    subject = body["statement"]["subject"]

    assert subject["commitment"] == commitment(body["subjectSalt"], "CL-0042")
    assert subject["commitment"] != commitment(body["subjectSalt"], "CL-0099")
    assert "CL-0042" not in json.dumps(body["statement"]) and body["subjectSalt"] not in body["jws"]
    # Two statements about the same resident are not linkable without their salts, and each has its own id.
    assert again["statement"]["subject"]["commitment"] != subject["commitment"]
    assert again["statement"]["id"] != body["statement"]["id"]


def test_a_resident_with_more_than_a_thousand_signals_gets_a_statement(client, session, headers, institution):
    location = make_location(session, institution)
    items = [incident_body(location.id, clientReference=f"many-{n}", residentRef="CL-0500") for n in range(1010)]
    for start in range(0, len(items), 500):
        response = client.post("/v1/incidents/_batch", json={"items": items[start:start + 500]}, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)

    signals = attest(client, headers, "CL-0500")["statement"]["signals"]

    assert len(signals) == 1010 and all(signal["accessLog"]["hash"] for signal in signals)


def test_asking_is_an_access_event_of_its_own_without_the_residents_number(client, session, headers, recorded):
    attest(client, headers)

    event = session.scalars(select(AccessEvent).order_by(AccessEvent.seq.desc()).limit(1)).one()
    assert (event.event_type, event.route, event.records, event.filters, event.outcome) == (
        "attestation", "POST /v1/incidents/_attestation", recorded, {"residentRef": "given"}, 200)


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR, Role.ADMIN])
def test_only_institutions_ask(client, token_for, role):
    assert client.post(URL, json={"residentRef": "CL-0042"}, headers=token_for(role)).status_code == 403


def test_a_missing_resident_is_refused(client, headers):
    response = client.post(URL, json={}, headers=headers)
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json["errors"]] == ["/residentRef"]


def test_production_without_a_key_signs_nothing(tmp_path):
    keys = signing_keys(Settings(environment="production", instance_path=tmp_path))
    assert keys.private_key is None and keys.jwks() == []
    assert list(tmp_path.iterdir()) == []  # no key generated in production


def test_the_verify_command_checks_a_saved_statement_offline(client, headers, recorded, tmp_path):
    body = attest(client, headers)
    saved, jwks = tmp_path / "statement.json", tmp_path / "jwks.json"
    saved.write_text(json.dumps(body))
    jwks.write_text(client.get("/v1/oauth/jwks.json").get_data(as_text=True))
    runner = CliRunner()

    good = runner.invoke(main, ["attestation", "verify", str(saved), "--jwks", str(jwks)])
    saved.write_text(body["jws"].replace(".", ".x", 1))
    bad = runner.invoke(main, ["attestation", "verify", str(saved), "--jwks", str(jwks)])

    assert good.exit_code == 0, good.output
    assert json.loads(good.output) == {"valid": True, "kid": body["kid"], "statement": body["statement"]}
    assert bad.exit_code == 1 and json.loads(bad.output)["valid"] is False

    # Signed under a published key, but not a statement (as an access token would be): refused.
    saved.write_text(client.application.extensions["signing_keys"].sign({"sub": "a client", "aud": "the API"}))
    other = runner.invoke(main, ["attestation", "verify", str(saved), "--jwks", str(jwks)])
    assert other.exit_code == 1 and "not a statement of signals" in json.loads(other.output)["problem"]
