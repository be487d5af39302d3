"""Alembic is the only way the schema changes: models and migrations agree, and downgrade to base works."""

from __future__ import annotations

import datetime as dt
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect
from sqlalchemy.orm import Session

from service.db import Base
from service.incidents.models import Incident
from service.models import load_all_models
from service.operations import alembic_config, newest_revision
from service.stats import rollups
from tests.factories import make_institution, make_location
from tests.stats.test_rollups import rollup_rows


def test_models_and_migrations_agree(database_url):
    load_all_models()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_base_and_upgrade_again(scratch_databases):
    url = scratch_databases.create()
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = create_engine(url)
    assert {"institution", "location", "capacity", "api_client", "revoked_token"} <= set(
        inspect(engine).get_table_names())
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == newest_revision()
    engine.dispose()


def test_upgrading_a_register_with_incidents_counts_its_statistics_as_a_rebuild_would(scratch_databases):
    """Revisions are frozen: upgrading from 0005 with incidents recorded fills the rollups (contributor noise
    included) exactly as the application's rebuild does today, without calling it."""
    url = scratch_databases.create()
    config = alembic_config(url)
    command.upgrade(config, "0005")
    engine = create_engine(url)
    with Session(engine) as session:
        institution = make_institution(session)
        locations = [make_location(session, institution), make_location(session, institution, postcode4="9713")]
        start = dt.datetime(2026, 3, 30, 20, tzinfo=dt.UTC)  # across a month, a quarter and summer time
        session.execute(insert(Incident), [{
            "id": uuid.uuid4(), "institution_id": institution.id, "location_id": locations[n % 2].id,
            "client_reference": f"MIG-{n}", "kind": ("absence", "recruitmentAttempt")[n % 2],
            "exploitation_type": "criminal", "occurred_at": start + dt.timedelta(hours=7 * n),
            "recorded_at": start + dt.timedelta(hours=7 * n), "resident_pseudonym": f"{n % 5:064x}" if n % 3 else None,
            "resident_key_version": 1 if n % 3 else None, "resident_age_band": "16to17", "indicators": [],
            "meldcode_step": n % 6 or None, "reported_to": ["veiligThuis"] if n % 4 == 0 else [],
            "reported_at": start + dt.timedelta(hours=7 * n + 1) if n % 4 == 0 else None,
            "status": "retracted" if n % 11 == 0 else "active", "version": 1, "taxonomy_version": "2026.1",
            "record_key": (37 * n) % 256} for n in range(60)])
        session.commit()
    command.upgrade(config, "head")
    with Session(engine) as session:
        migrated = rollup_rows(session)
        rollups.rebuild(session)
        assert migrated == rollup_rows(session)
        assert migrated["unit_tally"] and migrated["incident_rollup"]
    engine.dispose()
