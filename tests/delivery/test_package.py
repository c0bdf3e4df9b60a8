"""The package of a paid order: built by its job, read back as a buyer's pipeline reads it,
served with Range requests, rebuilt byte for byte, and kept from other organizations."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import time_machine
import webdataset as wds
from sqlalchemy import select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Order, OrderStatus
from marketplace.catalog.models import CatalogItem, MirrorStatus, StockRecord
from marketplace.db import transaction
from marketplace.delivery.models import Package, PackageFile, PackageStatus
from tests.delivery.orders import (
    MUSEUM_PICTURE,
    checkout,
    mixed_items,
    museum_server,
    order_rows,
    pay_without_card,
    sha256,
)
from tests.factories import make_admin, make_api_token, make_buyer


@pytest.fixture
def app_config():
    return {"MIRROR_BACKOFF_SECONDS": 0.01, "MIRROR_RETRIES": 2, "PACKAGE_SHARD_MAX_ITEMS": 2}


@pytest.fixture
def museum():
    with museum_server() as server:
        yield server


@pytest.fixture
def paid(db, tmp_path, run_jobs, museum):
    """A paid order of a licensed work, a donated work and two museum records (not mirrored)."""
    _server, base = museum
    mixed = mixed_items(db, tmp_path, [f"{base}/ok/1.png", f"{base}/ok/2.png"])
    buyer = make_buyer(db)
    order_id = checkout(db, buyer, [mixed.licensed, mixed.donated, *mixed.stock], run_jobs)
    pay_without_card(db, order_id, run_jobs)
    mixed.order_id = order_id
    return mixed, buyer


def package_of(db, order_id) -> Package:
    db.rollback()
    db.expire_all()
    package = db.scalar(select(Package).where(Package.order_id == order_id))
    assert package is not None
    return package


def manifest(client, login, user, order_id):
    login(user)
    response = client.get(f"/api/v1/orders/{order_id}/package")
    return response


def api_manifest(client, db, user, order_id):
    token = make_api_token(db, user)
    return client.get(
        f"/api/v1/orders/{order_id}/package", headers={"Authorization": f"Bearer {token}"}
    )


def download(client, url, **headers):
    return client.get(url, headers=headers)


def read_shards(client, files, tmp_path: Path) -> dict[str, dict]:
    """Every sample of every shard, downloaded through its link and read with webdataset."""
    samples = {}
    for file in files:
        if file["kind"] != "shard":
            continue
        response = download(client, file["url"])
        assert response.status_code == 200
        assert sha256(response.data) == file["sha256"]
        local = tmp_path / file["path"]
        local.write_bytes(response.data)
        for sample in wds.WebDataset(str(local), shardshuffle=False):
            samples[sample["__key__"]] = sample
    return samples


def test_a_paid_mixed_order_is_delivered_as_webdataset_shards_with_consent_xmp(
    client, db, tmp_path, paid
):
    mixed, buyer = paid
    package = package_of(db, mixed.order_id)
    assert package.status is PackageStatus.READY, package.error
    assert (package.items_done, package.items_total, package.items_missing) == (4, 4, 0)
    # The museum's records were fetched during the build.
    for item_id in mixed.stock:
        record = db.get(StockRecord, db.get(CatalogItem, item_id).stock_id)
        assert record.mirror_status is MirrorStatus.MIRRORED

    body = api_manifest(client, db, buyer, mixed.order_id).get_json()
    assert body["status"] == "ready"
    assert body["progress"] == {
        "items_done": 4,
        "items_total": 4,
        "items_missing": 0,
        "percent": 100,
    }
    paths = [f["path"] for f in body["files"]]
    assert paths[:2] == [f"order-{mixed.order_id}-00000.tar", f"order-{mixed.order_id}-00001.tar"]
    rows = order_rows(db, mixed.order_id)
    licensed = next(r for r in rows if r.terms_id is not None and r.price_minor)
    for expected in (
        "metadata.parquet",
        "croissant.json",
        "README.md",
        "ATTRIBUTION.md",
        "certificate.json",
        "ai-act-summary.md",
        "ai-act-summary.json",
    ):
        assert expected in paths
    licences = [p for p in paths if p.startswith("LICENSES/")]
    assert len(licences) == 2  # the licensed and the donated work's terms versions
    assert any(p.startswith(f"LICENSES/terms-{licensed.terms_id}-version-") for p in licences)
    assert "missing.json" not in paths

    samples = read_shards(client, body["files"], tmp_path)
    assert sorted(samples) == [f"{r.position:09d}" for r in rows]
    for row in rows:
        sample = samples[f"{row.position:09d}"]
        image = sample[row.delivered_media_type.split("/")[1].replace("jpeg", "jpg")]
        assert sha256(image) == row.delivered_sha256
        assert len(image) == row.delivered_bytes
        assert b"plus:DataMining" in image or b"DataMining" in image
        record = json.loads(sample["json"])
        assert record["sha256"] == row.delivered_sha256
        assert record["ledger_seq"] == row.ledger_seq
        assert row.missing_reason == ""
    museum_record = json.loads(samples[f"{rows[-1].position:09d}"]["json"])
    assert museum_record["source_kind"] == "institution"
    assert museum_record["licence"] == "public_domain"

    table_file = next(f for f in body["files"] if f["path"] == "metadata.parquet")
    table_path = tmp_path / "metadata.parquet"
    table_path.write_bytes(download(client, table_file["url"]).data)
    table = pq.read_table(table_path).to_pylist()
    assert [t["sha256"] for t in table] == [r.delivered_sha256 for r in rows]
    attribution = next(f for f in body["files"] if f["path"] == "ATTRIBUTION.md")
    assert "Harbour" in download(client, attribution["url"]).get_data(as_text=True)

    licence_file = next(f for f in body["files"] if f["path"].startswith("LICENSES/"))
    text = download(client, licence_file["url"]).get_data(as_text=True)
    assert "Harbour" in text
    assert "terms version" in text


def test_the_delivered_package_is_read_by_datasets_and_validated_by_mlcroissant(
    client, db, tmp_path, paid, monkeypatch
):
    """What the build job stored (not a package made in the test) loads as buyers load it."""
    mixed, buyer = paid
    body = api_manifest(client, db, buyer, mixed.order_id).get_json()
    folder = tmp_path / "package"
    folder.mkdir()
    for file in body["files"]:
        if file["path"] in ("metadata.parquet", "croissant.json"):
            (folder / file["path"]).write_bytes(download(client, file["url"]).data)
    rows = order_rows(db, mixed.order_id)

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    table = load_dataset(
        "parquet", data_files=str(folder / "metadata.parquet"), cache_dir=str(tmp_path / "hf")
    )["train"]
    assert table["sha256"] == [r.delivered_sha256 for r in rows]
    assert table["ledger_seq"] == [r.ledger_seq for r in rows]

    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))  # ValidationError if invalid
    assert not dataset.metadata.ctx.issues.errors
    keys = [row["items/key"].decode() for row in dataset.records("items")]
    assert keys == [f"{r.position:09d}" for r in rows]


def test_range_requests_resume_a_download_and_out_of_range_is_416(client, db, paid):
    mixed, buyer = paid
    shard = api_manifest(client, db, buyer, mixed.order_id).get_json()["files"][0]
    whole = download(client, shard["url"]).data

    part = download(client, shard["url"], Range="bytes=100-1123")
    assert part.status_code == 206
    assert part.data == whole[100:1124]
    assert part.headers["Content-Range"] == f"bytes 100-1123/{len(whole)}"
    assert part.headers["X-Content-Type-Options"] == "nosniff"
    assert part.headers["Cache-Control"] == "private, no-store"
    assert part.headers["Content-Disposition"].startswith("attachment;")

    tail = download(client, shard["url"], Range=f"bytes={len(whole) - 10}-")
    assert (tail.status_code, tail.data) == (206, whole[-10:])

    beyond = download(client, shard["url"], Range=f"bytes={len(whole) + 5}-")
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"

    etag = download(client, shard["url"]).headers["ETag"]
    same = download(client, shard["url"], Range="bytes=0-9", **{"If-Range": etag})
    assert (same.status_code, same.data) == (206, whole[:10])
    changed = download(client, shard["url"], Range="bytes=0-9", **{"If-Range": '"other"'})
    assert (changed.status_code, changed.data) == (200, whole)


def test_a_rebuild_writes_the_same_files_byte_for_byte(client, db, login, paid, run_jobs, app):
    mixed, _buyer = paid
    package = package_of(db, mixed.order_id)
    before = {f.path: (f.storage_key, f.sha256, f.size_bytes) for f in package.files}
    objects = Path(app.config["STORAGE_DIR"])
    shard_bytes = {p: (objects / key).read_bytes() for p, (key, _s, _n) in before.items()}

    login(make_admin(db))
    response = client.post(f"/orders/{mixed.order_id}/package/rebuild")
    assert response.status_code == 302
    run_jobs()
    package = package_of(db, mixed.order_id)
    assert package.status is PackageStatus.READY
    assert package.attempts == 2
    after = {f.path: (f.storage_key, f.sha256, f.size_bytes) for f in package.files}
    assert after == before
    for path, (key, _s, _n) in after.items():
        assert (objects / key).read_bytes() == shard_bytes[path], path


def test_the_package_page_lists_files_and_the_order_links_to_it(client, db, login, paid):
    mixed, buyer = paid
    login(buyer)
    order_page = client.get(f"/orders/{mixed.order_id}").get_data(as_text=True)
    assert f"/orders/{mixed.order_id}/package" in order_page
    page = client.get(f"/orders/{mixed.order_id}/package")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    package = package_of(db, mixed.order_id)
    for file in package.files:
        assert file.path in text
        assert file.sha256 in text
    assert "Rebuild" not in text  # administrators only
    status = client.get(f"/orders/{mixed.order_id}/package/status.json").get_json()
    assert (status["status"], status["percent"]) == ("ready", 100)
    assert client.post(f"/orders/{mixed.order_id}/package/rebuild").status_code == 403


def test_another_organization_sees_no_package(client, db, login, paid):
    mixed, _buyer = paid
    other = make_buyer(db)
    assert api_manifest(client, db, other, mixed.order_id).status_code == 404
    login(other)
    assert client.get(f"/orders/{mixed.order_id}/package").status_code == 404
    assert client.get(f"/orders/{mixed.order_id}/package/status.json").status_code == 404
    assert client.get(f"/orders/{mixed.order_id}/ai-act-summary").status_code == 404
    assert client.get(f"/orders/{mixed.order_id}/ai-act-summary.json").status_code == 404


def test_the_order_page_offers_the_ai_act_summary_draft_of_its_package(client, db, login, paid):
    mixed, buyer = paid
    login(buyer)
    order_page = client.get(f"/orders/{mixed.order_id}").get_data(as_text=True)
    assert f"/orders/{mixed.order_id}/ai-act-summary" in order_page
    page = client.get(f"/orders/{mixed.order_id}/ai-act-summary")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "[TO BE COMPLETED BY THE PROVIDER]" in text
    assert "List of data sources" in text
    package = package_of(db, mixed.order_id)
    stored = {f.path: f.sha256 for f in package.files}
    for fmt in ("md", "json"):
        response = client.get(f"/orders/{mixed.order_id}/ai-act-summary.{fmt}")
        assert response.status_code == 200
        assert "attachment" in response.headers["Content-Disposition"]
        digest = hashlib.sha256(response.get_data()).hexdigest()
        assert digest == stored[f"ai-act-summary.{fmt}"]  # the package's own file
    assert client.get(f"/orders/{mixed.order_id}/ai-act-summary.txt").status_code == 404


def test_a_download_link_expires_after_package_url_max_age(client, db, app, paid):
    mixed, buyer = paid
    shard = api_manifest(client, db, buyer, mixed.order_id).get_json()["files"][0]
    max_age = app.config["PACKAGE_URL_MAX_AGE"]
    assert max_age > app.config["DOWNLOAD_URL_MAX_AGE"]  # outlives ordinary links
    with time_machine.travel(timedelta(seconds=max_age - 60)):
        assert download(client, shard["url"]).status_code == 200
    with time_machine.travel(timedelta(seconds=max_age + 60)):
        assert download(client, shard["url"]).status_code == 404


def test_an_unreachable_source_is_listed_as_missing_and_not_charged(
    client, db, login, tmp_path, run_jobs, museum
):
    _server, base = museum
    mixed = mixed_items(db, tmp_path, [f"{base}/ok/3.png", f"{base}/gone/4.png"])
    buyer = make_buyer(db)
    order_id = checkout(db, buyer, [mixed.licensed, mixed.donated, *mixed.stock], run_jobs)
    pay_without_card(db, order_id, run_jobs)

    package = package_of(db, order_id)
    assert package.status is PackageStatus.READY, package.error
    assert (package.items_done, package.items_missing) == (4, 1)
    rows = order_rows(db, order_id)
    gone = rows[-1]
    assert gone.missing_reason.startswith("The source could not provide the image")
    assert "404" in gone.missing_reason
    assert gone.delivered_sha256 is None
    assert all(r.delivered_sha256 for r in rows[:-1])
    assert package.missing_refunded_minor == 0  # it cost nothing: nothing to refund

    body = api_manifest(client, db, buyer, order_id).get_json()
    missing_file = next(f for f in body["files"] if f["path"] == "missing.json")
    missing = json.loads(download(client, missing_file["url"]).data)
    assert str(gone.item_id) in json.dumps(missing)
    samples = read_shards(client, body["files"], tmp_path)
    assert f"{gone.position:09d}" not in samples
    assert len(samples) == 3

    login(buyer)
    order_page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Not delivered" in order_page
    assert "Not delivered" in client.get(f"/orders/{order_id}/package").get_data(as_text=True)


def test_a_rebuild_delivers_what_the_certificate_vouches_for_even_when_a_source_returns(
    client, db, login, tmp_path, run_jobs, museum, app
):
    server, base = museum
    mixed = mixed_items(db, tmp_path, [f"{base}/ok/3.png", f"{base}/ok/4.png"])
    buyer = make_buyer(db)
    server.up = False  # the museum is down while the package is first built
    order_id = checkout(db, buyer, [mixed.licensed, mixed.donated, *mixed.stock], run_jobs)
    pay_without_card(db, order_id, run_jobs)
    first = package_of(db, order_id)
    assert first.status is PackageStatus.READY, first.error
    assert first.items_missing == 2
    before = {f.path: f.sha256 for f in first.files}

    server.up = True  # it is back; a rebuild must not ship items the certificate calls missing
    login(make_admin(db))
    assert client.post(f"/orders/{order_id}/package/rebuild").status_code == 302
    run_jobs()
    db.expire_all()
    again = package_of(db, order_id)
    assert again.status is PackageStatus.READY, again.error
    assert {f.path: f.sha256 for f in again.files} == before


def test_a_failed_build_lists_nothing_and_says_why(client, db, login, paid, app, run_jobs):
    mixed, buyer = paid
    package = package_of(db, mixed.order_id)
    rows = order_rows(db, mixed.order_id)
    work_row = next(r for r in rows if r.work_id is not None)
    original = Path(app.config["STORAGE_DIR"]) / "originals" / str(work_row.work_id)
    kept = original.read_bytes()
    original.unlink()

    login(make_admin(db))
    client.post(f"/orders/{mixed.order_id}/package/rebuild")
    run_jobs()
    package = package_of(db, mixed.order_id)
    assert package.status is PackageStatus.FAILED
    assert "not in storage" in package.error
    assert db.scalar(select(PackageFile).where(PackageFile.package_id == package.id)) is None
    page = client.get(f"/orders/{mixed.order_id}/package").get_data(as_text=True)
    assert "not in storage" in page
    assert api_manifest(client, db, buyer, mixed.order_id).get_json()["files"] == []

    original.write_bytes(kept)
    client.post(f"/orders/{mixed.order_id}/package/rebuild")
    run_jobs()
    assert package_of(db, mixed.order_id).status is PackageStatus.READY


def test_no_package_before_fulfilment(client, db, login, tmp_path, run_jobs, museum):
    _server, base = museum
    mixed = mixed_items(db, tmp_path, [f"{base}/ok/5.png"])
    buyer = make_buyer(db)
    order_id = checkout(db, buyer, [mixed.licensed], run_jobs)
    assert db.get(Order, order_id).status is OrderStatus.AWAITING_PAYMENT
    body = api_manifest(client, db, buyer, order_id).get_json()
    assert (body["status"], body["files"]) == ("none", [])
    login(buyer)
    assert "No package yet" in client.get(f"/orders/{order_id}/package").get_data(as_text=True)


def test_museum_picture_is_shipped_with_its_pixels(client, db, tmp_path, paid):
    """The shipped image is the museum's picture with XMP added, not a re-encoded copy."""
    from io import BytesIO

    from PIL import Image

    mixed, buyer = paid
    body = api_manifest(client, db, buyer, mixed.order_id).get_json()
    samples = read_shards(client, body["files"], tmp_path)
    rows = order_rows(db, mixed.order_id)
    shipped = samples[f"{rows[-1].position:09d}"]["png"]
    with Image.open(BytesIO(shipped)) as got, Image.open(BytesIO(MUSEUM_PICTURE)) as want:
        assert got.size == want.size
        assert got.convert("RGB").tobytes() == want.convert("RGB").tobytes()


def test_while_the_package_builds_the_page_shows_progress_and_polls(client, db, login, paid):
    mixed, buyer = paid
    package = package_of(db, mixed.order_id)
    package.status, package.items_done = PackageStatus.BUILDING, 1
    db.commit()
    login(buyer)
    text = client.get(f"/orders/{mixed.order_id}/package").get_data(as_text=True)
    assert 'Building: <span data-field="items_done">1</span> of 4 items' in text
    assert "/static/js/package.js" in text
    assert "download" not in text.lower().split("<h1>")[1]  # no links while it builds
    status = client.get(f"/orders/{mixed.order_id}/package/status.json").get_json()
    assert (status["status"], status["items_done"], status["percent"]) == ("building", 1, 25)
    body = api_manifest(client, db, buyer, mixed.order_id).get_json()
    assert (body["status"], body["progress"]["percent"], body["files"]) == ("building", 25, [])


def test_a_build_whose_worker_died_can_be_rebuilt(client, db, login, paid, run_jobs):
    mixed, _buyer = paid
    package = package_of(db, mixed.order_id)
    package.status = PackageStatus.BUILDING  # as a worker leaves it when killed mid-build
    db.commit()
    login(make_admin(db))
    client.post(f"/orders/{mixed.order_id}/package/rebuild")
    run_jobs()
    assert package_of(db, mixed.order_id).status is PackageStatus.READY


def test_a_fully_refunded_order_offers_no_files(client, db, login, paid):
    mixed, buyer = paid
    handed_out = [
        f["url"] for f in api_manifest(client, db, buyer, mixed.order_id).get_json()["files"]
    ]
    assert handed_out
    assert client.get(handed_out[0]).status_code == 200
    login(buyer)
    assert client.get(f"/orders/{mixed.order_id}/certificate.json").status_code == 200
    with db.info["app"].app_context(), transaction(db) as session:
        order = session.get(Order, mixed.order_id)
        buyers.record_refund(session, order, refund_id="re_all", amount_minor=order.total_minor)
    assert api_manifest(client, db, buyer, mixed.order_id).get_json()["files"] == []
    text = client.get(f"/orders/{mixed.order_id}/package").get_data(as_text=True)
    assert "licence is revoked" in text
    assert ".tar" not in text
    # Links handed out before the refund find nothing: the objects are gone.
    assert all(client.get(url).status_code == 404 for url in handed_out)
    # The certificate no longer vouches for a licence: withdrawn, on the site and the API.
    withdrawn = client.get(f"/orders/{mixed.order_id}/certificate.json")
    assert withdrawn.status_code == 410
    assert client.get(f"/orders/{mixed.order_id}/certificate.pdf").status_code == 410
    token = make_api_token(db, buyer)
    api = client.get(
        f"/api/v1/orders/{mixed.order_id}/certificate",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (api.status_code, api.get_json()["error"]["code"]) == (410, "licence_revoked")


def test_without_auto_build_an_administrator_builds_the_package(
    client, db, login, tmp_path, run_jobs, museum, app
):
    app.config["PACKAGE_AUTO_BUILD"] = False
    _server, base = museum
    mixed = mixed_items(db, tmp_path, [f"{base}/ok/6.png"])
    buyer = make_buyer(db)
    order_id = checkout(db, buyer, [mixed.licensed, *mixed.stock], run_jobs)
    pay_without_card(db, order_id, run_jobs)
    assert db.scalar(select(Package).where(Package.order_id == order_id)) is None
    login(make_admin(db))
    assert ">Build</button>" in client.get(f"/orders/{order_id}/package").get_data(as_text=True)
    client.post(f"/orders/{order_id}/package/rebuild")
    run_jobs()
    assert package_of(db, order_id).status is PackageStatus.READY
