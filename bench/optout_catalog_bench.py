"""Opted-out items leaving the catalog: what it costs the ingest, and registering a domain rule
that matches a whole museum.

    python bench/optout_catalog_bench.py [--records 100000] [--database-url URL]

Two fresh databases load the same generated records through `ingest_records`: one as the
project runs (the opt-out hook records each item's addresses and checks them against the
registry), one with the hook replaced by a no-op (the floor). Then a domain rule matching every
record is registered through the service (match, mark unavailable, one transaction) beside the
floor of a plain `UPDATE catalog_items SET available = false` over the same rows; and the rule
is withdrawn again. Prints a Markdown table (one run each: this is minutes at 100k).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select, update

from marketplace import create_app
from marketplace.accounts.models import User, UserRole
from marketplace.catalog import ingest
from marketplace.catalog.models import CatalogItem
from marketplace.catalog.sources.base import CC0_URI, StockFields
from marketplace.db import get_database, transaction
from marketplace.migrate import upgrade
from marketplace.optout import services as optout
from marketplace.optout.models import RuleKind


def records(n: int) -> list[StockFields]:
    return [
        StockFields(
            source_id=f"b-{i}",
            title=f"Study {i}",
            creator="Unknown",
            rights_uri=CC0_URI,
            raw={"i": i},
            image_urls=(f"https://images.museum.example/objects/{i}/full.jpg",),
            page_url=f"https://www.museum.example/collection/{i}",
        )
        for i in range(n)
    ]


def make_app(url: str | None, workdir: Path, name: str) -> Flask:
    database = url or f"sqlite:///{workdir / f'{name}.sqlite'}"
    app = create_app(
        {
            "DATABASE_URL": database,
            "REDIS_URL": None,
            "TESTING": True,
            "SEARCH_ENGINE": "database",
        },
        instance_path=str(workdir / f"instance-{name}"),
    )
    upgrade(get_database(app).engine)
    return app


def timed_ingest(app: Flask, data: list[StockFields]) -> float:
    with app.app_context():
        started = time.perf_counter()
        ingest.ingest_records("met", data)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: SQLite files in a temporary folder")
    args = parser.parse_args()
    data = records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        floor_app = make_app(None, workdir, "floor")
        hook = ingest.apply_optouts
        ingest.apply_optouts = lambda session, ids, **kwargs: []  # type: ignore[assignment]
        try:
            floor_ingest = timed_ingest(floor_app, data)
        finally:
            ingest.apply_optouts = hook
        app = make_app(args.database_url, workdir, "project")
        ours_ingest = timed_ingest(app, data)

        with app.app_context():
            with transaction() as session:
                owner = User(
                    email="bench@example.com",
                    role=UserRole.ARTIST,
                    password_hash="-",  # noqa: S106 - no one logs in
                    display_name="Bench",
                )
                session.add(owner)
            started = time.perf_counter()
            with transaction() as session:
                rule = optout.register_address(
                    session, session.merge(owner), RuleKind.DOMAIN, "museum.example"
                )
                rule_id = rule.id
            register = time.perf_counter() - started
            with transaction() as session:
                left = session.scalar(
                    select(func.count()).select_from(CatalogItem).where(CatalogItem.available)
                )
            started = time.perf_counter()
            with transaction() as session:
                optout.remove_rule(session, session.merge(owner), rule_id)
            remove = time.perf_counter() - started
        with floor_app.app_context():
            started = time.perf_counter()
            with transaction() as session:
                session.execute(update(CatalogItem).values(available=False))
            floor_update = time.perf_counter() - started

    n = args.records
    print(f"| step | project | floor | ratio |  ({n:,} records, {left} left available)")
    print("|---|---|---|---|")
    print(
        f"| ingest | {ours_ingest:.1f} s ({n / ours_ingest:,.0f}/s) | {floor_ingest:.1f} s "
        f"({n / floor_ingest:,.0f}/s, hook off) | {ours_ingest / floor_ingest:.2f}x |"
    )
    print(
        f"| domain rule matching all | {register:.2f} s | {floor_update:.2f} s (plain UPDATE) | "
        f"{register / floor_update:.1f}x |"
    )
    print(f"| rule withdrawn, all offered again | {remove:.2f} s | - | - |")


if __name__ == "__main__":
    main()
