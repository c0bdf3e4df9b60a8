"""The provenance log through the service layer and the public API."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from marketplace.db import transaction
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.canonical import NotCanonical
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerCheckpoint, LedgerEntry
from marketplace.ledger.note import Verifier, open_note, parse_checkpoint


def append_entries(app, db, count: int, *, per_transaction: int = 1) -> None:
    with app.app_context():
        done = 0
        while done < count:
            n = min(per_transaction, count - done)
            with transaction(db) as session:
                ledger.append_many(
                    session,
                    (
                        ledger.NewEntry(
                            EntryKind.WORK_REGISTERED,
                            {"work": done + i, "artist": 7},
                            {"sha256": f"{done + i:064x}", "title": f"Work {done + i}"},
                        )
                        for i in range(n)
                    ),
                )
            done += n


def public_verifier(client) -> Verifier:
    key = client.get("/api/v1/ledger/public-key").get_json()
    return Verifier.from_string(key["verifier_key"])


def test_entry_endpoint_proves_inclusion_under_the_signed_checkpoint(app, client, db):
    append_entries(app, db, 13, per_transaction=5)
    verifier = public_verifier(client)
    note = client.get("/api/v1/ledger/checkpoint")
    assert note.status_code == 200
    assert note.mimetype == "text/plain"
    checkpoint = parse_checkpoint(open_note(note.get_data(as_text=True), [verifier]).text)
    assert checkpoint.size == 13
    assert checkpoint.origin == app.config["LEDGER_ORIGIN"]
    for seq in range(13):
        body = client.get(f"/api/v1/ledger/entries/{seq}").get_json()
        assert set(body) == {
            "seq",
            "kind",
            "timestamp",
            "entry",
            "leaf_hash",
            "tree_size",
            "inclusion_proof",
        }
        data = base64.b64decode(body["entry"])
        assert merkle.leaf_hash(data).hex() == body["leaf_hash"]
        assert body["tree_size"] == 13
        proof = [bytes.fromhex(h) for h in body["inclusion_proof"]]
        assert merkle.verify_inclusion(
            bytes.fromhex(body["leaf_hash"]), seq, 13, proof, checkpoint.root_hash
        )
        parsed = json.loads(data)
        assert parsed["seq"] == seq
        assert parsed["kind"] == body["kind"] == "work.registered"
        assert parsed["subject"] == {"artist": 7, "work": seq}


def test_entry_bytes_are_rfc8785_canonical(app, db):
    with app.app_context(), transaction(db) as session:
        seq = ledger.append(
            session,
            EntryKind.WORK_TERMS_SET,
            subject={"work": 1},
            payload={"z": 1, "a": "é", "price_minor": 500, "uses": ["b", "a"]},
        )
    data = bytes(db.get(LedgerEntry, seq).entry)
    assert (
        data
        == json.dumps(
            json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert b'"a":"\xc3\xa9"' in data


def test_floats_and_unknown_kinds_are_refused_before_anything_is_written(app, db):
    with app.app_context():
        with pytest.raises(NotCanonical), transaction(db) as session:
            ledger.append(session, EntryKind.WORK_REGISTERED, payload={"price": 0.5})
        with pytest.raises(ledger.InvalidEntry), transaction(db) as session:
            ledger.append(session, "work.exploded")  # type: ignore[arg-type]
        with pytest.raises(ledger.InvalidEntry), transaction(db) as session:
            ledger.append(session, EntryKind.WORK_REGISTERED, subject={"planet": 3})
        for subject in ({"work": True}, {"work": "3"}, {"work": 3, "artist": None}):
            with pytest.raises(ledger.InvalidEntry), transaction(db) as session:
                ledger.append_many(
                    session,
                    [
                        ledger.NewEntry(EntryKind.WORK_REGISTERED, {"work": 1}),
                        ledger.NewEntry(EntryKind.WORK_REGISTERED, subject),  # type: ignore[arg-type]
                    ],
                )
    assert db.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert db.scalar(select(func.count()).select_from(LedgerCheckpoint)) == 0


def test_one_checkpoint_per_committed_transaction(app, db):
    append_entries(app, db, 10, per_transaction=3)
    sizes = db.scalars(select(LedgerCheckpoint.tree_size).order_by(LedgerCheckpoint.tree_size))
    assert list(sizes) == [3, 6, 9, 10]


def test_a_transaction_that_appends_nothing_publishes_nothing(app, db):
    from sqlalchemy import event, text

    from marketplace.db import get_database

    with app.app_context(), transaction(db) as session:
        session.execute(text("SELECT 1"))
    assert db.scalar(select(func.count()).select_from(LedgerCheckpoint)) == 0  # not even size 0

    append_entries(app, db, 2)
    statements: list[str] = []
    engine = get_database(app).engine

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with app.app_context(), transaction(db) as session:
            session.execute(text("SELECT 2"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [s for s in statements if "ledger_" in s or "advisory" in s] == []
    sizes = db.scalars(select(LedgerCheckpoint.tree_size).order_by(LedgerCheckpoint.tree_size))
    assert list(sizes) == [1, 2]


def test_rolled_back_append_leaves_no_entry_and_no_checkpoint(app, db):
    append_entries(app, db, 2)
    with app.app_context(), pytest.raises(RuntimeError), transaction(db) as session:
        ledger.append(session, EntryKind.WORK_REGISTERED, subject={"work": 99})
        raise RuntimeError("boom")
    assert ledger.tree_size(db) == 2
    assert db.scalar(select(func.max(LedgerCheckpoint.tree_size))) == 2


def test_batched_roots_match_the_reference_tree(app, db):
    append_entries(app, db, 1000, per_transaction=333)
    leaves = [bytes(h) for h in db.scalars(select(LedgerEntry.leaf_hash).order_by(LedgerEntry.seq))]
    for size in (333, 666, 999, 1000):
        checkpoint = db.get(LedgerCheckpoint, size)
        assert bytes(checkpoint.root_hash) == merkle.root_from_leaf_hashes(leaves[:size])


def test_consistency_endpoint_links_published_sizes(app, client, db):
    append_entries(app, db, 21, per_transaction=7)
    roots = {cp.tree_size: bytes(cp.root_hash) for cp in db.scalars(select(LedgerCheckpoint))}
    for old, new in [(7, 14), (7, 21), (14, 21), (21, 21)]:
        response = client.get(f"/api/v1/ledger/consistency?from={old}&to={new}")
        assert response.status_code == 200
        body = response.get_json()
        proof = [bytes.fromhex(h) for h in body["consistency_proof"]]
        assert merkle.verify_consistency(old, new, proof, roots[old], roots[new])
    assert client.get("/api/v1/ledger/consistency?from=8&to=21").status_code == 404
    bad_order = client.get("/api/v1/ledger/consistency?from=21&to=7")
    assert bad_order.status_code == 422
    assert bad_order.get_json()["error"]["code"] == "invalid_range"
    for query in ("from=0&to=7", "from=abc&to=7", "to=7", ""):
        response = client.get(f"/api/v1/ledger/consistency?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_request"


def test_checkpoint_by_size_and_empty_log(app, client, db):
    assert client.get("/api/v1/ledger/checkpoint").status_code == 404
    assert client.get("/api/v1/ledger/entries/0").status_code == 404
    append_entries(app, db, 4, per_transaction=2)
    old = client.get("/api/v1/ledger/checkpoints/2")
    assert old.status_code == 200
    assert old.get_data(as_text=True).splitlines()[1] == "2"
    assert client.get("/api/v1/ledger/checkpoints/3").status_code == 404
    assert client.get("/api/v1/ledger/entries/4").status_code == 404


def test_public_key_endpoint_matches_the_signing_key(app, client, db):
    body = client.get("/api/v1/ledger/public-key").get_json()
    assert body["origin"] == app.config["LEDGER_ORIGIN"]
    name, key_id, encoded = body["verifier_key"].split("+", 2)
    assert name == body["origin"]
    assert len(key_id) == 8
    pem_key = serialization.load_pem_public_key(body["public_key_pem"].encode())
    raw = pem_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64decode(encoded) == b"\x01" + raw


def test_signing_key_is_kept_across_restarts(database_url, tmp_path):
    from tests.conftest import make_test_app

    first = make_test_app(database_url, tmp_path)
    second = make_test_app(database_url, tmp_path)
    assert ledger.identity(first).verifier_key == ledger.identity(second).verifier_key


def test_configured_key_path_must_exist(database_url, tmp_path):
    from marketplace.ledger.keys import SigningKeyError
    from tests.conftest import make_test_app

    with pytest.raises(SigningKeyError):
        make_test_app(database_url, tmp_path, LEDGER_KEY_PATH=str(tmp_path / "absent.pem"))
