"""`marketplace ingest SOURCE FILE`: the real samples, idempotence, changes, bad rows."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select, update

from marketplace.catalog.ingest import ingest_records
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.sources.base import StockFields
from marketplace.db import transaction
from marketplace.ledger.models import LedgerCheckpoint, LedgerEntry
from tests.factories import make_api_token, make_buyer

SAMPLES = [
    ("tate", "tate_artworks.jsonl", 0, {"not open access": 3000}),
    ("cmoa", "cmoa_objects.jsonl", 0, {"not open access": 2987}),
    ("aic", "aic_artworks.jsonl", 10, {}),
    ("cleveland", "api_samples/clevelandmuseum/handle_response_data.json", 100, {}),
    ("met", "api_samples/metropolitan_museum_of_art/sample_response.json", 1, {}),
    ("smithsonian", "api_samples/smithsonian/sub_provider_example.json", 1, {}),
]


def ingest(app, source: str, path) -> str:
    result = app.test_cli_runner().invoke(args=["ingest", source, str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.parametrize(("source", "name", "added", "skipped"), SAMPLES)
def test_real_samples_load_and_report_what_was_skipped(
    app, db, shared_dir, source, name, added, skipped
):
    output = ingest(app, source, shared_dir / "data" / name)
    assert f"{added} added" in output
    for reason, n in skipped.items():
        assert f"skipped, {reason}: {n}" in output
    assert count(db, StockRecord, StockRecord.source == source) == added
    assert count(db, CatalogItem, CatalogItem.source == source) == added
    # Every record is registered in the ledger, in batched appends (one checkpoint per chunk).
    assert count(db, LedgerEntry, LedgerEntry.kind == "stock.registered") == added
    assert count(db, LedgerCheckpoint) == (1 if added else 0)


def test_cmoa_records_without_titles_are_reported_by_line(app, shared_dir):
    output = ingest(app, "cmoa", shared_dir / "data" / "cmoa_objects.jsonl")
    assert "malformed, missing title: 13" in output
    assert "line 615: missing title" in output


def test_running_the_same_file_again_changes_nothing(app, db, shared_dir):
    path = shared_dir / "data" / "aic_artworks.jsonl"
    ingest(app, "aic", path)
    entries = count(db, LedgerEntry)
    output = ingest(app, "aic", path)
    assert "0 added, 0 updated, 10 unchanged" in output
    assert count(db, LedgerEntry) == entries
    assert count(db, StockRecord) == 10


def test_a_changed_record_is_updated_and_the_change_recorded(app, db, client, tmp_path):
    record = {
        "id": 77,
        "title": "Lake at dawn",
        "share_license_status": "CC0",
        "creation_date": "1840",
        "creation_date_earliest": 1840,
        "creation_date_latest": 1840,
        "images": {
            "web": {"url": "https://cdn.example/77_web.jpg", "width": "900", "height": "600"}
        },
        "url": "https://clevelandart.org/art/77",
    }
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n")
    ingest(app, "cleveland", path)
    record["title"] = "Lake at dusk"
    path.write_text(json.dumps(record) + "\n")
    assert "0 added, 1 updated" in ingest(app, "cleveland", path)
    assert db.scalar(select(StockRecord.title)) == "Lake at dusk"
    kinds = list(db.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))
    assert kinds == ["stock.registered", "stock.updated"]
    found = client.get("/api/v1/works", query_string={"q": "dusk"}).get_json()["items"]
    assert [item["title"] for item in found] == ["Lake at dusk"]
    assert found[0]["orientation"] == "landscape"  # from the source's stated image size
    assert client.get("/api/v1/works", query_string={"q": "dawn"}).get_json()["items"] == []


def test_bad_rows_are_counted_with_line_numbers_and_the_rest_loads(app, db, tmp_path):
    good = {
        "id": 1,
        "title": "Fine",
        "share_license_status": "CC0",
        "images": {"web": {"url": "https://cdn.example/1.jpg"}},
    }
    lines = [
        json.dumps(good).encode(),
        b"{not json",
        json.dumps({**good, "id": 2, "title": ""}).encode(),
        json.dumps({**good, "id": 3, "creation_date_earliest": "soon"}).encode(),
        b"\xff\xfe broken bytes",
        json.dumps({**good, "id": 4, "title": "Also fine"}).encode(),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    output = ingest(app, "cleveland", path)
    assert "3 added" in output  # an unreadable year is not a bad row (the record has no years)
    assert "line 2: invalid JSON" in output
    assert "line 3: missing title" in output
    assert "line 5: broken encoding" in output
    assert count(db, StockRecord) == 3


def test_unknown_source_is_refused(app, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    result = app.test_cli_runner().invoke(args=["ingest", "louvre", str(path)])
    assert result.exit_code != 0
    assert "unknown source 'louvre'" in result.output


# --- Withdrawal and reinstatement -------------------------------------------------------------


def cleveland_record(**changes) -> dict:
    record = {
        "id": 501,
        "title": "Quiet river",
        "share_license_status": "CC0",
        "creation_date": "1851",
        "images": {"web": {"url": "https://cdn.example/501.jpg", "width": 900, "height": 600}},
        "url": "https://clevelandart.org/art/501",
        "updated_at": "2026-11-01 10:00:00.000",
    }
    record.update(changes)
    return record


def write_records(path, *records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def kinds(db) -> list[str]:
    db.rollback()  # a fresh snapshot: the CLI wrote since
    return list(db.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))


def withdrawn(db) -> list[tuple[str, str]]:
    db.rollback()
    return [
        (source_id, reason)
        for source_id, reason in db.execute(
            select(StockRecord.source_id, StockRecord.withdrawn_reason).where(
                StockRecord.withdrawn_at.is_not(None)
            )
        )
    ]


def searched_titles(client, q: str) -> list[str]:
    return [i["title"] for i in client.get("/api/v1/works", query_string={"q": q}).json["items"]]


@pytest.mark.parametrize(
    ("gone", "reason"),
    [
        ({"share_license_status": "Copyrighted"}, "not open access"),
        ({"images": {}}, "no image URL"),  # the image disappeared from the source
    ],
)
def test_a_record_the_source_stops_offering_leaves_the_catalog_at_once_and_can_come_back(
    app, db, client, tmp_path, gone, reason
):
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record())
    ingest(app, "cleveland", path)
    item_id = db.scalar(select(CatalogItem.id))
    token = make_api_token(db, make_buyer(db))
    headers = {"Authorization": f"Bearer {token}"}
    cid = client.post("/api/v1/collections", json={"name": "Rivers"}, headers=headers).json["id"]
    added = client.post(
        f"/api/v1/collections/{cid}/items", json={"item_id": item_id}, headers=headers
    )
    assert added.status_code == 201

    write_records(path, cleveland_record(**gone))
    output = ingest(app, "cleveland", path)
    assert "withdrawn from the catalog (no longer offered): 1" in output
    assert withdrawn(db) == [("501", reason)]
    assert searched_titles(client, "river") == []
    assert client.get(f"/catalog/items/{item_id}").status_code == 404
    assert client.get(f"/api/v1/works/{item_id}").status_code == 404
    (saved,) = client.get(f"/api/v1/collections/{cid}/items", headers=headers).json["items"]
    assert (saved["id"], saved["available"], saved["thumbnail_url"]) == (item_id, False, None)
    again = client.post(
        f"/api/v1/collections/{cid}/add-by-query", json={"query": {"q": "river"}}, headers=headers
    )
    assert again.status_code in (201, 202)
    assert kinds(db) == ["stock.registered", "stock.withdrawn"]
    withdrawal = db.scalar(select(LedgerEntry).where(LedgerEntry.kind == "stock.withdrawn"))
    assert json.loads(withdrawal.entry)["payload"]["reason"] == reason

    assert "0 withdrawn" in ingest(app, "cleveland", path)  # still gone: nothing more to log
    assert kinds(db) == ["stock.registered", "stock.withdrawn"]

    write_records(path, cleveland_record())
    assert "1 reinstated" in ingest(app, "cleveland", path)
    assert withdrawn(db) == []
    assert searched_titles(client, "river") == ["Quiet river"]
    assert kinds(db) == ["stock.registered", "stock.withdrawn", "stock.reinstated"]


def test_a_bulk_export_without_image_urls_withdraws_nothing(app, db, client, tmp_path):
    """MetObjects.csv has no image column: its rows say nothing about our images."""
    api_object = {
        "objectID": 45734,
        "title": "Quail and Millet",
        "isPublicDomain": True,
        "primaryImage": "https://images.metmuseum.org/CRDImages/as/original/DP.jpg",
        "objectDate": "1700",
    }
    path = tmp_path / "object.json"
    path.write_text(json.dumps(api_object), encoding="utf-8")
    ingest(app, "met", path)
    csv_path = tmp_path / "MetObjects.csv"
    csv_path.write_text(
        "Object ID,Is Public Domain,Title,Object Date\n45734,True,Quail and Millet,1700\n",
        encoding="utf-8",
    )
    output = ingest(app, "met", csv_path)
    assert "skipped, no image URL: 1" in output
    assert "0 withdrawn" in output
    assert withdrawn(db) == []
    assert searched_titles(client, "quail") == ["Quail and Millet"]


def test_changes_only_to_the_sources_bookkeeping_are_not_updates(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record())
    ingest(app, "cleveland", path)
    write_records(path, cleveland_record(updated_at="2026-12-01 10:00:00.000"))
    assert "0 updated, 1 unchanged" in ingest(app, "cleveland", path)
    assert kinds(db) == ["stock.registered"]
    write_records(path, cleveland_record(wall_description="A river at noon."))
    assert "1 updated" in ingest(app, "cleveland", path)  # what we show changed: an update
    assert kinds(db) == ["stock.registered", "stock.updated"]


def test_records_fingerprinted_with_their_bookkeeping_are_not_all_updated_once(app, db, tmp_path):
    """Rows stored before bookkeeping fields were left out of the fingerprint."""
    path = tmp_path / "dump.jsonl"
    write_records(path, cleveland_record())
    ingest(app, "cleveland", path)
    with app.app_context(), transaction(db) as session:
        session.execute(update(StockRecord).values(content_hash="f" * 64))
    write_records(path, cleveland_record(updated_at="2026-12-01 10:00:00.000"))
    assert "0 updated, 1 unchanged" in ingest(app, "cleveland", path)
    assert kinds(db) == ["stock.registered"]
    assert db.scalar(select(StockRecord.content_hash)) != "f" * 64  # refreshed, silently


def test_repeated_ids_in_one_file_are_reported_and_the_first_is_kept(app, db, tmp_path):
    path = tmp_path / "dump.jsonl"
    write_records(
        path,
        cleveland_record(),
        cleveland_record(id=502, title="Other"),
        cleveland_record(title="Quiet river, again"),
    )
    output = ingest(app, "cleveland", path)
    assert "2 added" in output
    assert "1 duplicate ids" in output
    assert "line 3: duplicate id '501'" in output
    assert db.scalar(select(StockRecord.title).where(StockRecord.source_id == "501")) == (
        "Quiet river"
    )


# --- Files that cannot be used ----------------------------------------------------------------


def failed_ingest(app, source: str, path) -> str:
    result = app.test_cli_runner().invoke(args=["ingest", source, str(path)])
    assert result.exit_code != 0, result.output
    return result.output


def test_a_file_of_another_source_is_named_and_refused_before_anything_is_written(
    app, db, shared_dir
):
    path = shared_dir / "data" / "aic_artworks.jsonl"
    output = failed_ingest(app, "tate", path)
    assert "looks like a file of Art Institute of Chicago (source 'aic')" in output
    assert "marketplace ingest aic aic_artworks.jsonl" in output
    assert count(db, StockRecord) == 0
    assert count(db, LedgerEntry) == 0


def test_a_file_of_no_known_source_is_refused(app, db, tmp_path):
    path = tmp_path / "other.jsonl"
    write_records(path, {"name": "a"}, {"name": "b"})
    output = failed_ingest(app, "cleveland", path)
    assert "does not look like a file of Cleveland Museum of Art" in output
    assert "share_license_status" in output


def test_a_file_where_every_record_is_malformed_exits_non_zero(app, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"{not json\n\xff\xfe\n")
    output = failed_ingest(app, "cleveland", path)
    assert "2 malformed" in output
    assert "none of its 2 records could be read as Cleveland Museum of Art records" in output


def test_an_empty_file_exits_non_zero(app, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert "no records found" in failed_ingest(app, "aic", path)


def test_a_csv_without_the_required_columns_names_them_and_exits_non_zero(app, tmp_path):
    path = tmp_path / "MetObjects.csv"
    path.write_text("Object ID,Title\n1,Coin\n", encoding="utf-8")
    output = failed_ingest(app, "met", path)
    assert "line 1: missing columns: Is Public Domain" in output


def test_records_loaded_without_a_file_are_written_once_per_id(app, db):
    record = StockFields(source_id="7", title="Dune", image_urls=("https://cdn.example/7.jpg",))
    with app.app_context():
        report = ingest_records("met", [record, dataclasses.replace(record, title="Dune again")])
    assert (report.added, report.duplicates) == (1, 1)
    assert kinds(db) == ["stock.registered"]
    assert db.scalar(select(StockRecord.title)) == "Dune"


def test_a_mapping_that_reads_more_fields_updates_each_record_once(
    app, db, client, shared_dir, monkeypatch
):
    """Adapters that start reading more descriptive fields change the content hash: the
    next ingest updates those records in place (no duplicates), the one after changes nothing."""
    from marketplace.catalog.sources import aic

    path = shared_dir / "data" / "aic_artworks.jsonl"
    with monkeypatch.context() as old_mapping:  # what the adapter read before
        old_mapping.setattr(
            aic, "DESCRIPTIVE_LISTS", ("classification_titles", "subject_titles", "style_titles")
        )
        old_mapping.setattr(aic, "DESCRIPTIVE_FIELDS", ())
        ingest(app, "aic", path)
    assert client.get("/api/v1/works", query_string={"q": "munich"}).get_json()["items"] == []
    assert "0 added, 10 updated, 0 unchanged" in ingest(app, "aic", path)
    assert count(db, StockRecord) == count(db, CatalogItem) == 10
    assert count(db, LedgerEntry, LedgerEntry.kind == "stock.updated") == 10
    found = client.get("/api/v1/works", query_string={"q": "munich"}).get_json()["items"]
    assert [item["title"] for item in found] == ["Interior of St. Mark's, Venice"]
    assert "0 added, 0 updated, 10 unchanged" in ingest(app, "aic", path)
    assert count(db, LedgerEntry, LedgerEntry.kind == "stock.updated") == 10
