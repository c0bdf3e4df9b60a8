"""`marketplace ingest --bulk`: the same catalog as the record-by-record path, unchanged records
skipped by their raw hash, one ledger entry per chunk with provable records, indexes rebuilt."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketplace.catalog import bulk
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.models import CatalogItem, StockChunk, StockRecord
from marketplace.catalog.sources import get_adapter
from marketplace.db import get_database, transaction, utcnow
from marketplace.ledger import verify
from marketplace.ledger.models import LedgerEntry
from tests.catalog.test_ingest import SAMPLES, cleveland_record, kinds, write_records
from tests.conftest import MAIN_DATABASE_URL, PostgresDatabases, make_test_app


def ingest(app, source: str, path, *flags: str) -> str:
    result = app.test_cli_runner().invoke(args=["ingest", *flags, source, str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def count(db, model, *where) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model).where(*where))


def summary(output: str, source: str) -> list[str]:
    """The report the command prints after its progress bar."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{source}: "))
    return lines[start:]


def titles(client, q: str) -> list[str]:
    return [i["title"] for i in client.get("/api/v1/works", query_string={"q": q}).json["items"]]


def found(client, q: str) -> tuple[int, list[str]]:
    """How many works match, and every match's title (ties may rank in another order in two
    indexes of the same works: a refreshed and a rebuilt one differ in layout)."""
    page = client.get("/api/v1/works", query_string={"q": q, "limit": 100}).json
    return page["total"], sorted(i["title"] for i in page["items"])


@pytest.fixture
def other_app(migrated_template, tmp_path):
    """A second app on its own copy of the migrated database."""
    kind, _, where = migrated_template.partition(":")
    folder = tmp_path / "other"
    folder.mkdir()
    if kind == "sqlite":
        shutil.copyfile(where, folder / "test.sqlite")
        app = make_test_app(f"sqlite:///{folder / 'test.sqlite'}", folder)
        yield app
        get_database(app).engine.dispose()
        return
    databases = PostgresDatabases(MAIN_DATABASE_URL)
    name = databases.create(template=where)
    app = make_test_app(databases.url_for(name), folder)
    try:
        yield app
    finally:
        get_database(app).engine.dispose()
        databases.drop(name)
        databases.engine.dispose()


VOLATILE = {"id", "stock_id", "created_at", "updated_at", "ledger_seq", "ledger_leaf"}


def catalog_rows(app) -> list[tuple]:
    """Every stock record with its search row, without ids, times and ledger positions."""
    session = get_database(app).sessions()
    try:
        rows = []
        for record, item in session.execute(
            select(StockRecord, CatalogItem)
            .join(CatalogItem, CatalogItem.stock_id == StockRecord.id)
            .order_by(StockRecord.source_id)
        ):
            rows.append(
                (
                    {
                        c.key: getattr(record, c.key)
                        for c in StockRecord.__table__.columns
                        if c.key not in VOLATILE
                    },
                    {
                        c.key: getattr(item, c.key)
                        for c in CatalogItem.__table__.columns
                        if c.key not in VOLATILE
                    },
                )
            )
        return rows
    finally:
        session.close()


@pytest.mark.parametrize(("source", "name", "added", "skipped"), SAMPLES)
def test_bulk_path_makes_the_same_catalog_as_the_record_by_record_path(
    app, other_app, shared_dir, source, name, added, skipped
):
    path = shared_dir / "data" / name
    normal = ingest(app, source, path, "--no-bulk")
    bulked = ingest(other_app, source, path, "--bulk")
    assert summary(normal, source) == summary(bulked, source)  # counts, reasons, lines
    assert f"{added} added" in bulked
    assert catalog_rows(app) == catalog_rows(other_app)
    for q in ("portrait", "landscape", "river", "woman", "chinese", "oil"):
        assert found(app.test_client(), q) == found(other_app.test_client(), q)


def generated(path: Path, count: int, **changes_by_id: dict) -> list[dict]:
    records = [cleveland_record(id=1000 + i, title=f"Harbour study {i}") for i in range(count)]
    for record in records:
        record.update(changes_by_id.get(str(record["id"]), {}))
    write_records(path, *records)
    return records


def test_reingest_of_an_unchanged_file_writes_nothing(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    generated(path, 12)
    first = ingest(app, "cleveland", path, "--bulk")
    assert "12 added" in first
    entries, records = count(db, LedgerEntry), count(db, StockRecord)
    assert kinds(db) == ["stock.chunk_registered"]  # 12 records, one entry
    again = ingest(app, "cleveland", path, "--bulk")
    assert "0 added, 0 updated, 12 unchanged" in again
    assert (count(db, LedgerEntry), count(db, StockRecord)) == (entries, records)
    assert count(db, CatalogItem) == 12
    # The record-by-record path agrees that nothing changed, and logs nothing either.
    assert "0 added, 0 updated, 12 unchanged" in ingest(app, "cleveland", path, "--no-bulk")
    assert count(db, LedgerEntry) == entries


def test_a_changed_record_is_updated_in_place_and_its_new_version_is_provable(
    app, db, client, tmp_path
):
    path = tmp_path / "dump.jsonl"
    generated(path, 5)
    ingest(app, "cleveland", path, "--bulk")
    generated(path, 5, **{"1003": {"title": "Harbour at night"}})
    assert "0 added, 1 updated, 4 unchanged" in ingest(app, "cleveland", path, "--bulk")
    assert count(db, StockRecord) == 5
    assert kinds(db) == ["stock.chunk_registered", "stock.chunk_registered"]
    assert titles(client, "night") == ["Harbour at night"]
    record = db.scalar(select(StockRecord).where(StockRecord.source_id == "1003"))
    with app.app_context():
        proof = bulk.record_proof(db, record.id)
    assert (proof["entry_seq"], proof["leaf_count"]) == (1, 1)
    assert verify.verify_record_proof(proof).ok


def test_changes_only_to_bookkeeping_fields_are_not_updates(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record())
    ingest(app, "cleveland", path, "--bulk")
    write_records(path, cleveland_record(updated_at="2026-12-01 10:00:00.000"))
    assert "0 updated, 1 unchanged" in ingest(app, "cleveland", path, "--bulk")
    assert kinds(db) == ["stock.chunk_registered"]
    # The new bytes are remembered: the next run skips the record without mapping it.
    db.rollback()
    assert db.scalar(select(StockRecord.raw_sha256)) == bulk.raw_sha256(
        next(iter(get_adapter("cleveland").read(path)))
    )


def test_a_withdrawn_record_stops_being_for_sale_and_can_come_back(app, db, client, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record(), cleveland_record(id=502, title="Calm lake"))
    ingest(app, "cleveland", path, "--bulk")
    item_id = db.scalar(select(CatalogItem.id).where(CatalogItem.title == "Quiet river"))
    assert client.get(f"/api/v1/works/{item_id}").status_code == 200

    gone = cleveland_record(share_license_status="Copyrighted")
    write_records(path, gone, cleveland_record(id=502, title="Calm lake"))
    output = ingest(app, "cleveland", path, "--bulk")
    assert "withdrawn from the catalog (no longer offered): 1" in output
    assert client.get(f"/api/v1/works/{item_id}").status_code == 404
    assert titles(client, "river") == []
    assert titles(client, "lake") == ["Calm lake"]
    assert kinds(db) == ["stock.chunk_registered", "stock.withdrawn"]
    db.rollback()
    assert db.scalar(select(CatalogItem.available).where(CatalogItem.id == item_id)) is False

    assert "0 withdrawn" in ingest(app, "cleveland", path, "--bulk")  # still gone: no entry
    assert kinds(db) == ["stock.chunk_registered", "stock.withdrawn"]

    write_records(path, cleveland_record(), cleveland_record(id=502, title="Calm lake"))
    assert "1 reinstated" in ingest(app, "cleveland", path, "--bulk")
    assert titles(client, "river") == ["Quiet river"]
    assert kinds(db) == ["stock.chunk_registered", "stock.withdrawn", "stock.reinstated"]


def test_every_record_of_a_chunk_has_a_proof_and_a_tampered_record_fails(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    generated(path, 7)
    with app.app_context():
        ingest_file(get_adapter("cleveland"), path, bulk=True, chunk_size=3)
        assert count(db, StockChunk) == 3  # 3 + 3 + 1
        ids = db.scalars(select(StockRecord.id).order_by(StockRecord.id)).all()
        proofs = [bulk.record_proof(db, record_id) for record_id in ids]
    assert [p["leaf_index"] for p in proofs] == [0, 1, 2, 0, 1, 2, 0]
    assert all(verify.verify_record_proof(p).ok for p in proofs)
    # The record's hash is the SHA-256 of its line as read from the file.
    first_line = path.read_bytes().split(b"\n", 1)[0]
    assert proofs[0]["record"]["raw_sha256"] == hashlib.sha256(first_line).hexdigest()

    tampered = json.loads(json.dumps(proofs[4]))
    tampered["record"]["raw_sha256"] = "0" * 64
    result = verify.verify_record_proof(tampered)
    assert not result.ok
    assert "audit path does not lead to the Merkle root" in result.failures[0]
    moved = json.loads(json.dumps(proofs[4]))
    moved["record"]["source_id"] = "1000"  # another record's id with this record's bytes
    assert not verify.verify_record_proof(moved).ok
    forged = json.loads(json.dumps(proofs[4]))
    forged["audit_path"][0] = "11" * 32
    assert not verify.verify_record_proof(forged).ok

    # The standalone verifier reads the same file.
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proofs[4]))
    assert verify.main([str(proof_file)]) == 0
    proof_file.write_text(json.dumps(tampered))
    assert verify.main([str(proof_file)]) == 1


def test_a_bad_line_in_the_middle_is_reported_by_number_and_the_rest_loads(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    records = [cleveland_record(id=1000 + i, title=f"Harbour {i}") for i in range(6)]
    lines = [json.dumps(r).encode() for r in records]
    lines[2] = b'{"id": 1002, "title": "broken'
    lines[4] = b"\xff\xfe not text"
    path.write_bytes(b"\n".join(lines) + b"\n")
    output = ingest(app, "cleveland", path, "--bulk")
    assert "4 added" in output
    assert "line 3: invalid JSON" in output
    assert "line 5: broken encoding" in output
    assert count(db, StockRecord) == 4


def test_a_load_that_fails_midway_leaves_committed_chunks_and_the_indexes(
    app, db, tmp_path, monkeypatch
):
    path = tmp_path / "dump.jsonl"
    generated(path, 10)
    real_insert = bulk._insert_new
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(bulk, "_insert_new", failing)
    with app.app_context():
        with pytest.raises(RuntimeError, match="disk full"):
            ingest_file(
                get_adapter("cleveland"), path, bulk=True, chunk_size=3, rebuild_indexes=True
            )
        connection = get_database(app).engine.connect()
        missing = [i.name for i in bulk.secondary_indexes() if not bulk._has_index(connection, i)]
        connection.close()
    assert missing == []
    assert count(db, StockRecord) == count(db, CatalogItem) == 6  # two whole chunks
    assert count(db, LedgerEntry) == 2
    monkeypatch.setattr(bulk, "_insert_new", real_insert)
    output = ingest(app, "cleveland", path, "--bulk")
    assert "4 added, 0 updated, 6 unchanged" in output
    assert count(db, StockRecord) == count(db, CatalogItem) == 10
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output


def test_indexes_a_killed_run_left_dropped_are_built_by_the_next_ingest(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    generated(path, 2)
    with app.app_context():
        dropped = bulk.drop_indexes()  # as a run killed between drop and rebuild leaves them
        assert dropped
    ingest(app, "cleveland", path)
    with app.app_context():
        connection = get_database(app).engine.connect()
        assert all(bulk._has_index(connection, index) for index in bulk.secondary_indexes())
        connection.close()


def test_the_chunk_entry_page_says_what_the_entry_registers(app, db, client, tmp_path):
    path = tmp_path / "dump.jsonl"
    generated(path, 4)
    ingest(app, "cleveland", path, "--bulk")
    page = client.get("/ledger/entries/0")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "4 public-domain cleveland records joined or changed in the catalog" in text
    assert db.scalar(select(StockChunk.source)) == "cleveland"


def test_repeated_ids_are_decided_in_file_order_across_mapping_processes(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(
        path,
        cleveland_record(),
        cleveland_record(id=502, title="Other"),
        cleveland_record(title="Quiet river, again"),
        cleveland_record(id=503, title="Third"),
    )
    with app.app_context():  # one line a block: consecutive lines go to different processes
        report = ingest_file(get_adapter("cleveland"), path, bulk=True, chunk_size=1)
    assert (report.added, report.duplicates) == (3, 1)
    assert report.problems == [(3, "duplicate id '501' (an earlier record has it; kept that one)")]
    assert db.scalar(select(StockRecord.title).where(StockRecord.source_id == "501")) == (
        "Quiet river"
    )


def test_a_taken_down_item_stays_off_sale_when_its_record_changes(app, db, client, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record())
    ingest(app, "cleveland", path, "--bulk")
    item = db.scalar(select(CatalogItem))
    # As an accepted claim leaves it (governance sets these two).
    item.taken_down_at, item.available = utcnow(), False
    db.commit()
    write_records(path, cleveland_record(title="Quiet river at noon"))
    assert "1 updated" in ingest(app, "cleveland", path, "--bulk")
    db.rollback()
    assert db.scalar(select(CatalogItem.available).where(CatalogItem.id == item.id)) is False
    assert client.get(f"/api/v1/works/{item.id}").status_code == 404
    assert titles(client, "river") == []


def test_records_an_opt_out_rule_matches_come_in_unavailable_and_stay_findable(app, db, tmp_path):
    """A domain rule registered before the load hides the bulk-loaded works it matches; a
    rule registered after finds them too (their addresses were recorded on the way in)."""
    from marketplace.optout import services as optout
    from marketplace.optout.models import RuleKind
    from tests.factories import make_artist

    owner = make_artist(db)
    with app.app_context(), transaction(db) as session:
        optout.register_address(session, session.merge(owner), RuleKind.DOMAIN, "cdn.example")
    path = tmp_path / "dump.jsonl"
    generated(path, 6)
    ingest(app, "cleveland", path, "--bulk")
    assert count(db, CatalogItem) == 6
    assert count(db, CatalogItem, CatalogItem.available.is_(True)) == 0

    other = tmp_path / "other.jsonl"
    write_records(
        other,
        *[
            cleveland_record(
                id=5000 + i,
                images={"web": {"url": f"https://img.museum.example/{i}.jpg", "width": 900}},
            )
            for i in range(4)
        ],
    )
    ingest(app, "cleveland", other, "--bulk")
    assert count(db, CatalogItem, CatalogItem.available.is_(True)) == 4
    with app.app_context(), transaction(db) as session:
        optout.register_address(
            session, session.merge(owner), RuleKind.PREFIX, "https://img.museum.example/"
        )
    assert count(db, CatalogItem, CatalogItem.available.is_(True)) == 0
