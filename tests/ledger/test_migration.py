"""Ledger migrations on a populated ledger: its entries, proofs and checkpoints survive them.

A ledger in the layout of before 0016 (every tree node stored, keyed `index << 6 | level`) is
what 0016's downgrade writes; the tests check that against a rebuild from the leaves, so the
upgrade is exercised on exactly what the earlier code stored.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import inspect, text

from marketplace import create_app
from marketplace.db import get_database, transaction
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.audit import verify_all
from marketplace.ledger.kinds import EntryKind
from marketplace.migrate import downgrade, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_app(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'm.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("empty_postgres_url")
    )
    app = create_app(
        {"DATABASE_URL": url, "REDIS_URL": None, "TESTING": True},
        instance_path=str(tmp_path / "instance"),
    )
    engine = get_database(app).engine
    upgrade(engine)
    session = get_database(app).sessions()
    try:
        with app.app_context():
            yield app, engine, session
    finally:
        session.close()
        engine.dispose()


def _append(session, batches: list[int]) -> None:
    """Entries in transactions of these sizes; a third name a work, the rest a stock record."""
    seq = ledger.tree_size(session)
    for count in batches:
        with transaction(session):
            ledger.append_many(
                session,
                [
                    ledger.NewEntry(EntryKind.WORK_REGISTERED, {"work": i}, {"n": i})
                    if i % 3 == 0
                    else ledger.NewEntry(EntryKind.STOCK_REGISTERED, {"stock": i}, {"n": i})
                    for i in range(seq, seq + count)
                ],
            )
        seq += count


def _leaf_hashes(session) -> list[bytes]:
    rows = session.execute(text("SELECT leaf_hash FROM ledger_entries ORDER BY seq"))
    leaves = [bytes(leaf) for (leaf,) in rows]
    session.rollback()
    return leaves


def _old_layout(leaves: list[bytes]) -> dict[int, bytes]:
    """Every node of level >= 1 by the key the code before 0016 stored it under."""
    result = merkle.append_leaf_hashes(0, [], leaves)
    return {(index << 6) | level: digest for level, index, digest in result.new_nodes}


def _nodes(session) -> dict[int, bytes]:
    rows = session.execute(text("SELECT key, hash FROM ledger_nodes"))
    nodes = {int(key): bytes(digest) for key, digest in rows}
    session.rollback()
    return nodes


def _proofs_match_the_reference(session, leaves: list[bytes], rng: random.Random) -> None:
    sizes = sorted({len(leaves), *rng.sample(range(1, len(leaves) + 1), 12)})
    for size in sizes:
        for seq in {0, size - 1, *rng.sample(range(size), min(size, 15))}:
            expected = [
                merkle.root_from_leaf_hashes(leaves[start:end])
                for start, end in merkle.inclusion_proof_ranges(seq, size)
            ]
            assert ledger.inclusion_proof(session, seq, size) == expected, (seq, size)
    session.rollback()


def test_0016_keeps_every_fourth_level_and_proofs_stay_the_same(ledger_app):
    _app, engine, session = ledger_app
    _append(session, [1, 2, 97, 300, 3, 64, 133, 1])  # 601 entries, ten checkpoints
    leaves = _leaf_hashes(session)
    checkpoints = session.execute(
        text("SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY tree_size")
    ).all()
    session.close()

    downgrade(engine, "0015_certificate_revision")
    assert _nodes(session) == _old_layout(leaves), "0016's downgrade writes the old layout"
    session.close()

    upgrade(engine)
    stored = _nodes(session)
    assert len(stored) == 601 // 16 + 601 // 256  # levels 4 and 8 only
    full = merkle.append_leaf_hashes(0, [], leaves).new_nodes
    assert stored == {
        (level << 56) | index: digest for level, index, digest in full if level % 4 == 0
    }
    names = {ix["name"] for ix in inspect(engine).get_indexes("ledger_entries")}
    assert "ix_ledger_entries_kind" not in names
    _proofs_match_the_reference(session, leaves, random.Random(13))
    for size, root in checkpoints:
        assert ledger.root_hash(session, size) == bytes(root)
    assert verify_all(session).ok
    _append(session, [40, 7])  # appends continue from the migrated nodes
    assert verify_all(session).ok
    session.rollback()


def test_0016_refuses_changes_to_the_nodes_after_the_migration(ledger_app):
    _app, engine, session = ledger_app
    _append(session, [40])
    session.close()
    downgrade(engine, "0015_certificate_revision")
    upgrade(engine)
    for statement in ("UPDATE ledger_nodes SET hash = hash", "DELETE FROM ledger_nodes"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def test_0011_partial_subject_indexes_on_a_populated_ledger(ledger_app):
    """Entries written under the full subject indexes stay findable through the partial ones."""
    _app, engine, session = ledger_app
    _append(session, [300])
    session.close()
    downgrade(engine, "0010_optout_speed")  # the full indexes, rebuilt over the 300 entries
    upgrade(engine)
    backend = engine.dialect.name
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
    session.rollback()
