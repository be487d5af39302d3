"""Alembic environment: the database URL comes from the service's settings unless the caller gives one."""

from __future__ import annotations

from alembic import context

from service.config import load_settings
from service.db import Base, UTCDateTime, make_engine
from service.models import load_all_models

load_all_models()
config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run_migrations() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render the UTC timestamp decorator as the plain column type it stores, so revisions import nothing of ours."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        render_item=_render_item,
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
