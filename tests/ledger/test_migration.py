"""0011_ledger_speed on a populated ledger: entries written under the full indexes stay
findable through the partial ones, and the log still verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from marketplace import create_app
from marketplace.db import get_database, transaction
from marketplace.ledger import services as ledger
from marketplace.ledger.audit import verify_all
from marketplace.ledger.kinds import EntryKind
from marketplace.migrate import upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_partial_subject_indexes_on_a_populated_ledger(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'm.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("empty_postgres_url")
    )
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True},
        instance_path=str(tmp_path / "instance"),
    )
    engine = get_database(app).engine
    upgrade(engine, "0010_optout_speed")
    session = get_database(app).sessions()
    try:
        with app.app_context():
            with transaction(session):
                ledger.append_many(
                    session,
                    [
                        ledger.NewEntry(EntryKind.STOCK_REGISTERED, {"stock": i}, {"n": i})
                        if i % 3
                        else ledger.NewEntry(EntryKind.WORK_REGISTERED, {"work": i}, {"n": i})
                        for i in range(300)
                    ],
                )
            session.close()
            upgrade(engine)
            indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("ledger_entries")}
            for column in ("work_id", "artist_id", "order_id", "organization_id"):
                name = f"ix_ledger_entries_{column}"
                assert indexes[name]["column_names"] == [column]
                definition = session.scalar(
                    text("SELECT sql FROM sqlite_master WHERE name = :n")
                    if backend == "sqlite"
                    else text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                    {"n": name},
                )
                assert f"{column} IS NOT NULL" in definition
            session.rollback()
            assert [e.seq for e in ledger.entries_for(session, work=30)] == [30]
            with transaction(session):
                ledger.append(session, EntryKind.WORK_REGISTERED, subject={"work": 30})
            assert [e.seq for e in ledger.entries_for(session, work=30)] == [30, 300]
            assert verify_all(session).ok
    finally:
        session.close()
        engine.dispose()
