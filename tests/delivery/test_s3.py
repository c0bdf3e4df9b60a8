"""The package in S3 (moto's server over real HTTP): files uploaded in parts, presigned links
that carry PACKAGE_URL_MAX_AGE and answer Range requests."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import webdataset as wds

from marketplace import storage
from marketplace.db import transaction
from tests.delivery.orders import checkout, mixed_items, order_rows, pay_without_card, sha256
from tests.factories import make_api_token, make_buyer


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"PACKAGE_URL_MAX_AGE": 7200}
    if "bucket" in request.fixturenames:
        config.update(request.getfixturevalue("bucket").app_config)
    return config


def fetch(url: str, **headers: str) -> Any:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback moto)
    return urllib.request.urlopen(request, timeout=30)  # noqa: S310


def test_put_file_streams_a_large_file_in_parts_to_s3(app, bucket, tmp_path):
    path = tmp_path / "big.tar"
    path.write_bytes(os.urandom(9 << 20))  # above boto3's 8 MiB multipart threshold
    with app.app_context(), transaction() as session:
        storage.put_file(session, "packages/1/big.tar", path, content_type="application/x-tar")
    assert bucket.read("packages/1/big.tar") == path.read_bytes()
    assert bucket.head("packages/1/big.tar")["ContentType"] == "application/x-tar"
    assert bucket.head("packages/1/big.tar")["ETag"].strip('"').endswith("-2")  # two parts


def test_put_file_writes_a_local_object_atomically(app, tmp_path):
    path = tmp_path / "small.json"
    path.write_bytes(b"{}")
    with app.app_context(), transaction() as session:
        storage.put_file(session, "packages/2/x.json", path, content_type="application/json")
    objects = tmp_path / "objects"
    assert (objects / "packages/2/x.json").read_bytes() == b"{}"
    assert not list(objects.rglob(".tmp-*"))


def test_a_package_in_s3_downloads_through_presigned_links_with_ranges(
    client, db, tmp_path, run_jobs, bucket
):
    mixed = mixed_items(db, tmp_path, [])
    buyer = make_buyer(db)
    order_id = checkout(db, buyer, [mixed.licensed, mixed.donated], run_jobs)
    pay_without_card(db, order_id, run_jobs)

    token = make_api_token(db, buyer)
    body = client.get(
        f"/api/v1/orders/{order_id}/package", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert body["status"] == "ready", body["error"]
    shard = body["files"][0]
    assert shard["path"] == f"order-{order_id}-00000.tar"
    assert shard["url"].startswith(f"{bucket.endpoint_url}/{bucket.name}/packages/{order_id}/")
    assert parse_qs(urlsplit(shard["url"]).query)["X-Amz-Expires"] == ["7200"]
    assert f"packages/{order_id}/certificate.json" in bucket.object_keys()

    with fetch(shard["url"]) as response:
        whole = response.read()
    assert sha256(whole) == shard["sha256"]
    with fetch(shard["url"], Range="bytes=512-1535") as response:
        assert response.status == 206
        assert response.read() == whole[512:1536]
        assert response.headers["Content-Range"] == f"bytes 512-1535/{len(whole)}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(shard["url"], Range=f"bytes={len(whole) + 10}-")
    assert refused.value.code == 416

    local = tmp_path / shard["path"]
    local.write_bytes(whole)
    samples = {s["__key__"]: s for s in wds.WebDataset(str(local), shardshuffle=False)}
    for row in order_rows(db, order_id):
        image = samples[f"{row.position:09d}"]["png"]
        assert sha256(image) == row.delivered_sha256
