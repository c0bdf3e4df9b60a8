"""Fixtures of the payout tests: a migrated PostgreSQL database for the tests of races and
crashes, whatever the suite's main database is (row locks and advisory locks are the point)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import PostgresDatabases, _migrate


@pytest.fixture
def postgres_database_url(postgres: PostgresDatabases) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database; a module uses it as its `database_url`."""
    name = postgres.create()
    url = postgres.url_for(name)
    _migrate(url)
    yield url
    postgres.drop(name)
