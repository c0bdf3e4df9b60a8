"""What the benchmarks share: a database per backend, a buyer, and the Markdown table they
print."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file in `workdir`, or a scratch PostgreSQL
    database made on BENCH_POSTGRES_URL's server and dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"mkt_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def print_table(title: str, rows: Sequence[dict[str, str]]) -> None:
    """The figures as a Markdown table, ready for the README's performance section."""
    headers = list(rows[0])
    print(f"{title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row[h] for h in headers) + " |")


def bench_buyer(session: Any) -> Any:
    """The buyer (with organization "Bench Labs") that places the benchmarks' orders."""
    from marketplace.accounts import services as accounts
    from marketplace.accounts.models import UserRole

    return accounts.sign_up(
        session,
        email="bench-buyer@example.com",
        password="bench-password-2026",  # noqa: S106
        role=UserRole.BUYER,
        display_name="Bench buyer",
        organization_name="Bench Labs",
    )
