"""Compliance checks as buyers meet them: upload a manifest (page or API), the job classifies
every row against the real registry and catalog, the summary and the rows CSV come back; bad
files are refused leaving nothing; other organizations see nothing; the CLI gives the same rows.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from marketplace import imaging
from marketplace.compliance.models import ComplianceCheck
from marketplace.db import transaction
from marketplace.optout import services as optout
from marketplace.optout.models import RuleKind
from tests import images
from tests.buyers.support import DONATE, licence, stock_items, work_item, work_of
from tests.compliance.support import webdataset
from tests.factories import make_api_token, make_artist, make_buyer


def _opt_out(db: Any, artist: Any) -> None:
    """A domain rule, an exact URL rule, and an image (by file and by look)."""
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(artist)
        optout.register_address(session, owner, RuleKind.DOMAIN, "artist.example")
        optout.register_address(session, owner, RuleKind.URL, "https://cdn.example/kept-out.jpg")
        optout.register_image(session, owner, images.png(77), max_bytes=10**8, max_pixels=10**8)


def _catalog(db: Any, artist: Any, tmp_path: Path) -> dict[str, Any]:
    licensed = work_of(db, work_item(db, artist, licence(420), title="Licensed"))
    donated = work_of(db, work_item(db, artist, DONATE, title="Donated"))
    [stock] = stock_items(db, tmp_path, 1)
    from marketplace.catalog.models import CatalogItem, StockRecord

    record = db.scalar(
        select(StockRecord)
        .join(CatalogItem, CatalogItem.stock_id == StockRecord.id)
        .where(CatalogItem.id == stock)
    )
    return {
        "licensed": licensed.sha256,
        "donated": donated.sha256,
        "stock_url": record.image_urls[0],
    }


def _manifest(found: dict[str, Any]) -> bytes:
    rows = [
        ("https://www.artist.example/a.jpg", "opted out by domain", ""),
        ("https://cdn.example/kept-out.jpg", "opted out by URL", ""),
        ("https://photos.example/1.jpg", "licensable", found["licensed"]),
        ("https://photos.example/2.jpg", "donated", found["donated"]),
        (found["stock_url"], "museum", ""),
        ("https://photos.example/3.jpg", "nothing known", ""),
        ("https://photos.example/3.jpg", "a duplicate", ""),
        ("htp:/broken url", "malformed", ""),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["URL", "TEXT", "sha256"])
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode() + b"https://x.example/9,caf\xe9,\r\n"


def _rows_csv(client: Any, location: str) -> list[dict[str, str]]:
    response = client.get(location)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _api(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client: Any, token: str, data: bytes, name: str = "m.csv", **fields: str) -> Any:
    return client.post(
        "/api/v1/compliance/checks",
        data={"manifest": (io.BytesIO(data), name), **fields},
        headers=_api(token),
        content_type="multipart/form-data",
    )


def test_a_buyer_uploads_a_manifest_and_sees_each_class_with_evidence(
    client, db, login, run_jobs, tmp_path
):
    artist = make_artist(db)
    _opt_out(db, artist)
    found = _catalog(db, artist, tmp_path)
    buyer = make_buyer(db)
    login(buyer)

    page = client.get("/compliance")
    assert page.status_code == 200
    assert b"Check the manifest" in page.data
    response = client.post(
        "/compliance",
        data={
            "manifest": (io.BytesIO(_manifest(found)), "laion-part.csv"),
            "intended_uses": ["generative_training"],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    run_jobs()
    check = db.scalars(select(ComplianceCheck)).one()
    page = client.get(response.headers["Location"])
    text = page.get_data(as_text=True)
    assert "Opted out" in text
    assert "Licensable here" in text
    assert "Row 9: is not UTF-8 text" in text
    assert "Row 7: duplicate of row 6" in text

    summary = check.summary
    assert summary["counts"] == {
        "opted_out": 2,
        "reserved": 0,
        "licensable": 1,
        "public_domain": 2,
        "unknown": 3,
    }
    assert (summary["rows"], summary["skipped"], summary["duplicates"]) == (8, 1, 1)

    download = client.get(f"/compliance/checks/{check.id}/rows.csv")
    assert download.status_code == 302
    rows = _rows_csv(client, download.headers["Location"])
    assert [r["class"] for r in rows] == [
        "opted_out",
        "opted_out",
        "licensable",
        "public_domain",
        "public_domain",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert json.loads(rows[0]["evidence"])[0]["kind"] == "domain"
    assert json.loads(rows[1]["evidence"])[0]["kind"] == "url"
    licensed = json.loads(rows[2]["evidence"])[0]
    assert (licensed["licence"], licensed["price_minor"], licensed["match"]) == (
        "licensed",
        420,
        "sha256",
    )
    assert json.loads(rows[3]["evidence"])[0]["licence"] == "cc0"
    assert json.loads(rows[4]["evidence"])[0]["licence"] == "public_domain"
    assert rows[6]["problem"] == "duplicate of row 6"
    assert rows[7]["problem"].startswith("malformed URL")


def test_a_reencoded_resized_copy_in_a_webdataset_shard_is_opted_out(
    client, db, run_jobs, tmp_path
):
    artist = make_artist(db)
    _opt_out(db, artist)
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    shard = webdataset(
        tmp_path / "shard.tar",
        [
            ("a/000001", {"jpg": images.jpeg(77, size=(640, 512)), "txt": b"copy"}),
            ("a/000002", {"png": images.png(77)}),
            ("a/000003", {"jpg": images.jpeg(5)}),
        ],
    )
    response = _upload(client, token, shard.read_bytes(), "shard-000000.tar")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["format"] == "webdataset"
    run_jobs()
    body = client.get(f"/api/v1/compliance/checks/{response.get_json()['id']}", headers=_api(token))
    summary = body.get_json()["summary"]
    assert summary["counts"]["opted_out"] == 2
    assert summary["counts"]["unknown"] == 1
    near = summary["examples"]["opted_out"][0]["evidence"]
    assert [e["kind"] for e in near] == ["phash"]  # another file: by its look alone
    assert 0 <= near[0]["distance"] <= 6
    exact = summary["examples"]["opted_out"][1]["evidence"]
    assert [e["kind"] for e in exact] == ["sha256", "phash"]


def test_the_api_checks_tokens_and_hides_other_organizations_checks(client, db, run_jobs):
    buyer, other, artist = make_buyer(db), make_buyer(db), make_artist(db)
    token, other_token = make_api_token(db, buyer), make_api_token(db, other)
    manifest = b"url\nhttps://a.example/1.jpg\n"

    assert client.post("/api/v1/compliance/checks").status_code == 401
    assert _upload(client, make_api_token(db, artist), manifest).status_code == 403
    created = _upload(client, token, manifest)
    assert created.status_code == 202
    check_id = created.get_json()["id"]
    run_jobs()

    mine = client.get(f"/api/v1/compliance/checks/{check_id}", headers=_api(token))
    assert mine.status_code == 200
    assert mine.get_json()["status"] == "done"
    assert mine.get_json()["rows_url"] == f"/api/v1/compliance/checks/{check_id}/rows.csv"
    rows = client.get(f"/api/v1/compliance/checks/{check_id}/rows.csv", headers=_api(token))
    assert rows.status_code == 302
    assert _rows_csv(client, rows.headers["Location"])[0]["class"] == "unknown"

    for path in (
        f"/api/v1/compliance/checks/{check_id}",
        f"/api/v1/compliance/checks/{check_id}/rows.csv",
    ):
        theirs = client.get(path, headers=_api(other_token))
        assert theirs.status_code == 404
        assert theirs.get_json()["error"]["code"] == "not_found"
        assert client.get(path).status_code == 401


def test_another_organizations_check_page_is_a_404(client, db, login, run_jobs):
    owner = make_buyer(db)
    created = _upload(client, make_api_token(db, owner), b"url\nhttps://a.example/1\n")
    run_jobs()
    login(make_buyer(db))
    check_id = created.get_json()["id"]
    assert client.get(f"/compliance/checks/{check_id}").status_code == 404
    assert client.get(f"/compliance/checks/{check_id}/rows.csv").status_code == 404


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (images.png(3), "photo.csv", "This is a PNG image, not a manifest."),
        (b"name,width\nx,1\n", "m.csv", "No URL column found among 'name', 'width'."),
        (b"url,caption\n", "m.csv", "The manifest has no rows: nothing to check."),
        (b"", "m.csv", "The file is empty"),
        (b'{"caption": "no url"}\n', "m.jsonl", "No URL column found among 'caption'."),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(client, db, tmp_path, data, name, message):
    token = make_api_token(db, make_buyer(db))
    response = _upload(client, token, data, name)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_manifest"
    assert message in response.get_json()["error"]["message"]
    assert db.scalar(select(func.count()).select_from(ComplianceCheck)) == 0
    assert not any((tmp_path / "objects").rglob("*"))


def test_a_bad_request_names_the_problem(client, db):
    token = make_api_token(db, make_buyer(db))
    manifest = b"url\nhttps://a.example/1\n"
    unknown_use = _upload(client, token, manifest, intended_uses="world_domination")
    assert unknown_use.status_code == 422
    assert "Unknown intended use 'world_domination'" in unknown_use.get_json()["error"]["message"]
    extra = _upload(client, token, manifest, colour="blue")
    assert extra.status_code == 400
    wrong_column = _upload(client, token, manifest, url_column="link")
    assert wrong_column.status_code == 422
    assert "no column 'link'" in wrong_column.get_json()["error"]["message"]
    nul_name = _upload(client, token, manifest, "m\x00.csv")
    assert nul_name.status_code == 422
    assert "U+0000" in nul_name.get_json()["error"]["message"]
    not_multipart = client.post("/api/v1/compliance/checks", json={"url": "x"}, headers=_api(token))
    assert not_multipart.status_code == 400


def test_the_cli_writes_the_same_rows_as_the_job(app, client, db, run_jobs, tmp_path):
    artist = make_artist(db)
    _opt_out(db, artist)
    found = _catalog(db, artist, tmp_path)
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(_manifest(found))
    token = make_api_token(db, make_buyer(db))
    created = _upload(client, token, manifest.read_bytes())
    run_jobs()
    rows = client.get(
        f"/api/v1/compliance/checks/{created.get_json()['id']}/rows.csv", headers=_api(token)
    )
    from_job = _rows_csv(client, rows.headers["Location"])

    out = tmp_path / "rows.parquet"
    result = app.test_cli_runner().invoke(
        args=["compliance", "check", str(manifest), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Opted out: 2" in result.output
    from_cli = [
        {k: "" if v is None else str(v) for k, v in row.items()}
        for row in pq.read_table(out).to_pylist()
    ]
    assert from_cli == from_job


def test_the_cli_refuses_a_file_that_is_no_manifest(app, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(images.png(1))
    result = app.test_cli_runner().invoke(
        args=["compliance", "check", str(path), "--out", str(tmp_path / "rows.parquet")]
    )
    assert result.exit_code == 1
    assert "This is a PNG image, not a manifest." in result.output
    assert not (tmp_path / "rows.parquet").exists()


def test_imaging_hashes_agree_with_the_registry() -> None:
    """The shard test relies on the resized JPEG staying within the distance."""
    original = imaging.inspect_image(images.png(77), max_bytes=10**8, max_pixels=10**8)
    copy = imaging.inspect_image(
        images.jpeg(77, size=(640, 512)), max_bytes=10**8, max_pixels=10**8
    )
    assert original.sha256 != copy.sha256
    assert imaging.hamming(original.phash, copy.phash) <= 6


def test_control_characters_inside_a_manifest_are_row_problems(client, db, run_jobs):
    token = make_api_token(db, make_buyer(db))
    manifest = b"url,caption\nhttps://a.example/\x00.jpg,nul\nhttps://a.example/ok.jpg,\x01\n"
    created = _upload(client, token, manifest)
    assert created.status_code == 202
    run_jobs()
    body = client.get(
        f"/api/v1/compliance/checks/{created.get_json()['id']}", headers=_api(token)
    ).get_json()
    assert body["status"] == "done"
    [problem] = body["summary"]["problems"]
    assert problem["row"] == 1
    assert "U+0000" in problem["message"]
    assert body["summary"]["examples"]["unknown"][0]["url"] == "https://a.example/\ufffd.jpg"


def test_a_url_under_a_tdmrep_reservation_on_record_is_reserved_with_its_policy(
    client, db, run_jobs
):
    from marketplace.reservations import services as reservations
    from marketplace.reservations.models import ReservationKind, ReservationSource

    tdmrep = [
        {
            "location": "/photos/*",
            "tdm-reservation": 1,
            "tdm-policy": "https://news.example/policy.json",
        }
    ]
    with db.info["app"].app_context(), transaction(db) as session:
        reservations.load_file(
            session,
            "news.example",
            ReservationKind.TDMREP,
            json.dumps(tdmrep).encode(),
            source=ReservationSource.CLI,
            max_bytes=10**6,
        )
    token = make_api_token(db, make_buyer(db))
    manifest = b"url\nhttps://news.example/photos/1.jpg\nhttps://news.example/about\n"
    created = _upload(client, token, manifest)
    run_jobs()
    body = client.get(
        f"/api/v1/compliance/checks/{created.get_json()['id']}", headers=_api(token)
    ).get_json()
    summary = body["summary"]
    assert summary["counts"]["reserved"] == 1
    assert summary["counts"]["unknown"] == 1
    assert summary["reservations_consulted"] is True
    [example] = summary["examples"]["reserved"]
    assert example["evidence"] == [
        {
            "source": "reservation",
            "kind": "tdmrep",
            "domain": "news.example",
            "rule": example["evidence"][0]["rule"],
            "policy_url": "https://news.example/policy.json",
        }
    ]
