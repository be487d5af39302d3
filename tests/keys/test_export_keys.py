"""Export key versions (issue 19): an export re-keys pseudonyms under the active EXPORT_KEYS version and names it,
and the pseudonym key version, in its metadata and headers; before key rings, exports are as they were."""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy.orm import Session

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.exports.service import export_key
from service.incidents.service import IdentityKeys, record_incidents
from tests.factories import make_client, make_institution, make_location
from tests.stats.factories import caller_of, incident_values

pytestmark = pytest.mark.clock("2026-11-20")


def _export(app: Flask, session: Session) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    client, _secret = make_client(session, role=Role.AUDITOR, municipality_codes=["GM0014"])
    with app.app_context():
        token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
    response = app.test_client().get("/v1/exports/incidents", query_string={"from": "2026", "to": "2026"},
                                     headers={"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"})
    assert response.status_code == 200, response.get_data(as_text=True)
    records = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    return records[:-1], records[-1]["metadata"], response.headers


def test_exports_rekey_pseudonyms_per_export_key_version_and_say_which(settings, connection, session):
    location = make_location(session, make_institution(session, municipality_code="GM0014"))
    [incident] = record_incidents(session, caller_of(location.institution_id),
                                  [incident_values(location, resident="R-export")],
                                  IdentityKeys.from_settings(settings))
    new_key = secrets.token_bytes(32)
    apps = {}
    for name, overrides in {"before": {}, "rotated": {"export_key_ring": (
            (1, settings.pseudonym_master_key), (2, new_key))}}.items():
        apps[name] = create_app(settings.with_overrides(**overrides))
        apps[name].extensions["database"]["sessionmaker"].configure(bind=connection,
                                                                    join_transaction_mode="create_savepoint")
        apps[name].extensions["database"]["reader"].configure(bind=connection,
                                                              join_transaction_mode="rollback_only")

    exported = {}
    for name, app in apps.items():
        rows, metadata, headers = _export(app, session)
        [row] = [r for r in rows if r["id"] == str(incident.id)]
        exported[name] = row["residentPseudonym"]
        version = 2 if name == "rotated" else 1
        assert metadata["exportKeyVersion"] == version and metadata["pseudonymKeyVersion"] == 1
        assert headers["Export-Key-Version"] == str(version) and headers["Pseudonym-Key-Version"] == "1"

    stored = incident.resident_pseudonym.encode()
    # Before rings, the export key is the one every earlier export used.
    assert exported["before"] == hmac.digest(export_key(settings.pseudonym_master_key), stored, "sha256").hex()
    assert exported["rotated"] == hmac.digest(export_key(new_key, 2), stored, "sha256").hex()
    assert exported["rotated"] != exported["before"]
