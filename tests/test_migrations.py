"""Alembic is the only way the schema changes: models and migrations agree, and downgrade to base works."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.db import Base
from service.models import load_all_models
from service.operations import alembic_config, newest_revision


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
