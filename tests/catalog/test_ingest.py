"""`marketplace ingest SOURCE FILE`: the real samples, idempotence, changes, bad rows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.ledger.models import LedgerCheckpoint, LedgerEntry

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
    assert "2 added" in output
    assert "line 2: invalid JSON" in output
    assert "line 3: missing title" in output
    assert "line 4: bad year" in output
    assert "line 5: broken encoding" in output
    assert count(db, StockRecord) == 2


def test_unknown_source_is_refused(app, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    result = app.test_cli_runner().invoke(args=["ingest", "louvre", str(path)])
    assert result.exit_code != 0
    assert "unknown source 'louvre'" in result.output
