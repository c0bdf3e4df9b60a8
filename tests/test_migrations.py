"""Alembic alone makes the schema, and it agrees with the models on both backends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from marketplace.db import make_engine
from marketplace.migrate import alembic_config, downgrade, include_object, upgrade
from marketplace.models import metadata


def test_there_is_one_head():
    engine = make_engine("sqlite://")
    assert len(ScriptDirectory.from_config(alembic_config(engine)).get_heads()) == 1


def _diff(url: str) -> list:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "render_as_batch": True,
                    "include_object": include_object,
                },
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_models_and_migrations_agree_on_sqlite(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'm.sqlite'}") == []


def test_models_and_migrations_agree_on_postgresql(empty_postgres_url):
    assert _diff(empty_postgres_url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_downgrade_to_base_and_up_again(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'd.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("empty_postgres_url")
    )
    engine = make_engine(url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert "ledger_entries" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_cli_db_upgrade_on_an_empty_postgresql_database(empty_postgres_url, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": empty_postgres_url,
        "SECRET_KEY": "x" * 40,
        "HOME": str(tmp_path),
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    script = "from marketplace.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", script, "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine = make_engine(empty_postgres_url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            triggers = connection.execute(
                text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ledger_%'")
            ).scalar_one()
        assert {"users", "organizations", "api_tokens", "ledger_entries"} <= tables
        assert triggers >= 12
    finally:
        engine.dispose()
