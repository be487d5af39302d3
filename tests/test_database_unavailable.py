"""A database that cannot take writes (read-only, a standby, maintenance) gives 503 with Retry-After, not 500."""

from __future__ import annotations

import logging
import secrets

import pytest
from alembic import command
from flask_jwt_extended import create_access_token
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.http import PROBLEM_JSON
from service.operations import alembic_config
from tests.factories import make_client, make_institution


@pytest.fixture
def read_only_app(postgres_databases, settings):  # type: ignore[no-untyped-def]
    url = postgres_databases.create()
    command.upgrade(alembic_config(url), "head")
    app = create_app(settings.with_overrides(database_url=url))
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        client, _ = make_client(session, role=Role.ADMIN)
        institution = make_institution(session)
        writer, _ = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
        session.commit()
    with app.app_context():
        token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
        writer_token = create_access_token(identity=str(writer.id),
                                           additional_claims=auth_service.token_claims(writer))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        name = make_url(url).database
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    engine.dispose()
    app.extensions["database"]["engine"].dispose()  # new connections pick the setting up
    app.config["writer"] = {"Authorization": f"Bearer {writer_token}"}
    yield app, {"Authorization": f"Bearer {token}"}
    app.extensions["database"]["engine"].dispose()


def test_writes_to_a_read_only_database_are_503_and_reads_go_on(read_only_app):
    app, headers = read_only_app
    http = app.test_client()

    write = http.post("/v1/institutions", headers=headers,
                      json={"name": f"X {secrets.token_hex(2)}", "sector": "other", "municipalityCode": "GM0014"})
    read = http.get("/v1/institutions", headers=headers)

    assert write.status_code == 503 and write.mimetype == PROBLEM_JSON
    assert write.headers["Retry-After"] == "5"
    assert "accepts no changes" in write.json["detail"] and "Traceback" not in write.get_data(as_text=True)
    assert read.status_code == 200


def test_a_read_that_must_be_logged_is_withheld_with_a_503_and_no_error_is_logged(read_only_app, caplog):
    app, _admin = read_only_app
    caplog.set_level(logging.WARNING)

    response = app.test_client().get("/v1/incidents", headers=app.config["writer"])

    # No access without its access event: the answer is withheld, and that is maintenance, not an error.
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.mimetype == PROBLEM_JSON
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
