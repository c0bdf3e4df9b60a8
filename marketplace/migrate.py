"""Alembic, driven from the app: `marketplace db upgrade` is the only way the schema is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Full-text search objects the catalog migration makes by raw SQL (not declared as models).
NOT_MODELLED = frozenset({"search_vector", "ix_catalog_items_search_vector"})


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate's filter: leave the FTS5 tables and the tsvector column to the migration."""
    if type_ == "table" and name and name.startswith("catalog_fts"):
        return False
    return name not in NOT_MODELLED


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(slug)s"
    )
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def revision(engine: Engine, message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(engine), message=message, autogenerate=autogenerate)


def current(engine: Engine) -> None:
    command.current(alembic_config(engine), verbose=True)
