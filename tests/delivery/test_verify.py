"""A buyer downloads the whole package and checks it offline with the standalone verifier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.orders import checkout, mixed_items, museum_server, pay_without_card
from tests.factories import make_api_token, make_buyer


@pytest.fixture
def app_config():
    return {"MIRROR_BACKOFF_SECONDS": 0.01, "MIRROR_RETRIES": 2, "PACKAGE_SHARD_MAX_ITEMS": 2}


def verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketplace.ledger.verify", "certificate.json", "--package", "."],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_downloaded_package_passes_the_verifier_and_a_changed_byte_fails_it(
    client, db, tmp_path, run_jobs
):
    with museum_server() as (_museum, base):
        mixed = mixed_items(db, tmp_path, [f"{base}/ok/1.png", f"{base}/gone/2.png"])
        buyer = make_buyer(db)
        order_id = checkout(db, buyer, [mixed.licensed, mixed.donated, *mixed.stock], run_jobs)
        pay_without_card(db, order_id, run_jobs)
    token = make_api_token(db, buyer)
    body = client.get(
        f"/api/v1/orders/{order_id}/package", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert body["status"] == "ready", body["error"]
    folder = tmp_path / "package"
    for file in body["files"]:
        target = folder / file["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get(file["url"]).data)

    result = verify(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID" in result.stdout
    assert "(1 missing)" in result.stdout
    assert "package: 3 images match" in result.stdout

    shard = folder / f"order-{order_id}-00000.tar"
    data = bytearray(shard.read_bytes())
    data[1024] ^= 0x01  # inside the first image
    shard.write_bytes(bytes(data))
    result = verify(folder)
    assert result.returncode != 0
    assert "INVALID" in result.stdout + result.stderr
