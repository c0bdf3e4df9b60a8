"""Alembic environment: the engine comes from the app (or DATABASE_URL via the app factory)."""

from __future__ import annotations

from alembic import context

from marketplace.migrate import include_object
from marketplace.models import metadata

config = context.config


def _engine():
    engine = config.attributes.get("engine")
    if engine is None:
        from marketplace import create_app
        from marketplace.db import get_database

        engine = get_database(create_app()).engine
    return engine


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run them online.")
run_migrations_online()
