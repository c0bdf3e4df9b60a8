"""Provenance certificates: issued once per order, verified offline, refused on any tampering."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from marketplace.artists.models import WorkTerms
from marketplace.buyers.models import Order, OrderItem
from marketplace.certificates import services as certificates
from marketplace.certificates.models import Certificate
from marketplace.db import transaction
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.canonical import canonical_json
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerEntry
from marketplace.ledger.note import Signer
from marketplace.ledger.verify import SIGNATURE_CONTEXT, canonical_bytes, verify_certificate
from tests.certificates.support import deliver, issue, paid_mixed_order, write_package
from tests.factories import make_admin, make_api_token, make_buyer


@pytest.fixture
def certified(db, run_jobs, tmp_path):
    order_id, buyer = paid_mixed_order(db, run_jobs, tmp_path)
    delivered = deliver(db, order_id, missing_positions=(4,))
    delivered.buyer = buyer
    return delivered, issue(db, order_id)


@pytest.fixture
def keys(app):
    with app.app_context():
        return {"key": ledger.identity().verifier_key, "certificate_key": certificates.public_key()}


def check(document: dict[str, Any], keys: dict[str, str], package: Path | None = None):
    return verify_certificate(document, package=package, **keys)


def test_a_delivered_order_gets_a_certificate_that_verifies(certified, keys, tmp_path, db):
    delivered, cert = certified
    package = write_package(tmp_path / "package", delivered.images, cert)
    result = check(cert, keys, package)
    assert result.ok, result.failure
    assert result.summary.startswith(f"VALID: certificate for order {delivered.order_id}: 4 items")
    assert "(1 missing)" in result.summary
    assert result.package_files == 4
    assert cert["counts"] == {"cc0": 1, "licensed": 2, "public_domain": 1}
    assert cert["obligations"] == {"attribution_required": 1}
    assert [m["record"]["key"] for m in cert["missing"]] == ["000000004"]
    assert cert["missing"][0]["record"]["missing_reason"].startswith("The museum's server")
    licensed = [i["record"] for i in cert["items"] if i["record"]["licence"] == "licensed"]
    assert all(r["terms"] is not None and r["terms_seq"] is not None for r in licensed)
    stock = [i["record"] for i in cert["items"] if i["record"]["licence"] == "public_domain"]
    assert stock
    assert stock[0]["terms_seq"] is None
    assert stock[0]["stock_seq"] is not None
    assert cert["tree_size_at_purchase"] == cert["order"]["paid_seq"] + 1
    assert cert["item_entries_included"] is True
    # Every sold entry, the order.paid entry and the seal carry an inclusion proof.
    kinds = Counter(
        json.loads(base64.b64decode(e["entry"]))["kind"] for e in cert["ledger"]["entries"]
    )
    assert kinds == {
        "dataset.item_sold": 5,
        "order.paid": 1,
        "dataset.certified": 1,
        "work.terms_set": 3,
        "stock.registered": 2,
    }
    stored = db.get(Certificate, delivered.order_id)
    assert stored is not None
    assert stored.items_root == cert["seal"]["items_root"]


def test_certificate_bytes_are_canonical_and_the_verifier_can_reproduce_them(certified, app, db):
    delivered, cert = certified
    with app.app_context():
        data = certificates.certificate_bytes(db, delivered.order_id)
    assert data == canonical_json(cert)  # RFC 8785, as the ledger writes entries
    assert data == canonical_bytes(cert)  # json.dumps(sort_keys, compact, no ASCII escaping)


def test_record_json_writes_the_canonical_bytes():
    for record in (
        {
            "artist": 3,
            "attribution_required": True,
            "item": 17,
            "key": "000000002",
            "licence": "licensed",
            "media_type": "image/webp",
            "missing_reason": None,
            "position": 2,
            "price_minor": 0,
            "sha256": "ab" * 32,
            "size_bytes": 12345,
            "sold_seq": 99,
            "stock": None,
            "stock_seq": None,
            "terms": 4,
            "terms_seq": 8,
            "work": 5,
        },
        {
            "artist": None,
            "attribution_required": False,
            "item": 2**40,
            "key": "000000000",
            "licence": "public_domain",
            "media_type": None,
            "missing_reason": 'Quelle "introuvable" \u2014 \u5915\u713c\u3051\n\\ \u2028',
            "position": 0,
            "price_minor": 0,
            "sha256": None,
            "size_bytes": None,
            "sold_seq": 0,
            "stock": 7,
            "stock_seq": 1,
            "terms": None,
            "terms_seq": None,
            "work": None,
        },
    ):
        assert certificates.record_json(record).encode() == canonical_json(record)


@pytest.mark.parametrize("size", [*range(1, 34), 100, 1000, 1025])
def test_level_by_level_root_is_the_rfc_6962_root(size):
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
    assert merkle.tree_root(leaves) == merkle.root_from_leaf_hashes(leaves)


def test_issuing_twice_returns_the_same_certificate_and_seals_once(certified, db):
    delivered, cert = certified
    assert issue(db, delivered.order_id) == cert
    seals = db.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.kind == EntryKind.DATASET_CERTIFIED.value)
    )
    assert seals == 1


def test_an_undelivered_order_gets_no_certificate(db, run_jobs, tmp_path, app):
    order_id, _ = paid_mixed_order(db, run_jobs, tmp_path)
    size = ledger.tree_size(db)
    with (
        pytest.raises(certificates.CertificateNotReady),
        app.app_context(),
        transaction(db) as session,
    ):
        certificates.issue_certificate(session, order_id)
    assert ledger.tree_size(db) == size
    assert db.get(Certificate, order_id) is None


# --- Tampering ---------------------------------------------------------------------------


def _record(cert: dict[str, Any], n: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = cert["items"][n]["record"]
    return record


def _redigest(cert: dict[str, Any], n: int = 0) -> None:
    cert["items"][n]["digest"] = merkle.leaf_hash(canonical_bytes(_record(cert, n))).hex()


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def _tamper_entry_proof(cert):
    proof = cert["ledger"]["entries"][0]["inclusion_proof"]
    proof[0] = _flip_hex(proof[0])


def _tamper_checkpoint(cert):
    lines = cert["ledger"]["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    cert["ledger"]["checkpoint"] = "\n".join(lines)


def _tamper_signature(cert):
    raw = bytearray(base64.b64decode(cert["signature"]["value"]))
    raw[10] ^= 1
    cert["signature"]["value"] = base64.b64encode(bytes(raw)).decode()


def _tamper_record_and_digest(cert):
    _record(cert)["price_minor"] += 1
    _redigest(cert)


TAMPERING = {
    "item record field": (
        lambda c: _record(c).update(sha256="0" * 64),
        "item 000000000: record digest does not match the record",
    ),
    "item record and its digest": (
        _tamper_record_and_digest,
        "items root: the item records do not hash to the sealed items root",
    ),
    "dropped item": (
        lambda c: c["items"].pop(),
        "records, but the seal counts a different number",
    ),
    "proof hash": (_tamper_entry_proof, "inclusion proof does not lead to the checkpoint root"),
    "items root": (
        lambda c: c["seal"].update(items_root=_flip_hex(c["seal"]["items_root"])),
        "items root: the certificate's root is not the one sealed in the ledger",
    ),
    "checkpoint": (_tamper_checkpoint, "ledger: checkpoint: invalid signature"),
    "signature": (_tamper_signature, "signature: the certificate signature does not match"),
    "organization name": (
        lambda c: c["order"]["organization"].update(name="Someone else"),
        "signature: the certificate signature does not match",
    ),
    "tree size at purchase": (
        lambda c: c.update(tree_size_at_purchase=c["tree_size_at_purchase"] + 1),
        "tree_size_at_purchase is not the log size just after order.paid",
    ),
}


@pytest.mark.parametrize("name", TAMPERING)
def test_a_changed_byte_fails_with_the_reason(certified, keys, name):
    _, cert = certified
    tampered = copy.deepcopy(cert)
    change, reason = TAMPERING[name]
    change(tampered)
    result = check(tampered, keys)
    assert not result.ok
    assert reason in result.failure


def test_a_changed_package_image_fails(certified, keys, tmp_path):
    delivered, cert = certified
    images = dict(delivered.images)
    key = sorted(images)[1]
    images[key] = images[key][:-1] + bytes([images[key][-1] ^ 1])
    result = check(cert, keys, write_package(tmp_path / "changed", images, cert))
    assert not result.ok
    assert f"does not match the SHA-256 of item {key}" in result.failure


def test_a_package_missing_an_image_or_holding_an_extra_one_fails(certified, keys, tmp_path):
    delivered, cert = certified
    images = dict(delivered.images)
    first = sorted(images)[0]
    del images[first]
    result = check(cert, keys, write_package(tmp_path / "short", images, cert))
    assert f"item {first} is missing from the shards" in result.failure
    images = {**delivered.images, "000000004": b"not delivered"}
    result = check(cert, keys, write_package(tmp_path / "extra", images, cert))
    assert "000000004.png is not an item of this certificate" in result.failure


def _resign(cert: dict[str, Any], signer: Signer) -> dict[str, Any]:
    forged = copy.deepcopy(cert)
    forged["signature"]["key"] = signer.verifier().to_string()
    value = signer.private_key.sign(
        SIGNATURE_CONTEXT + canonical_bytes({k: v for k, v in forged.items() if k != "signature"})
    )
    forged["signature"]["value"] = base64.b64encode(value).decode()
    return forged


def test_a_certificate_signed_by_another_key_fails(certified, keys, app):
    _, cert = certified
    with app.app_context():
        name = certificates.key_name()
    forged = _resign(cert, Signer.generate(name))
    assert verify_certificate(forged).ok  # it is self-consistent, so only a pinned key tells
    result = check(forged, keys)
    assert not result.ok
    assert "not the pinned" in result.failure


def test_an_item_whose_record_differs_from_its_sold_entry_fails(db, run_jobs, tmp_path, keys):
    order_id, _ = paid_mixed_order(db, run_jobs, tmp_path)
    deliver(db, order_id)
    db.execute(
        update(OrderItem)
        .where(OrderItem.order_id == order_id, OrderItem.position == 0)
        .values(price_minor=1)
    )
    db.commit()
    result = check(issue(db, order_id), keys)
    assert not result.ok
    assert "item 000000000: price_minor differs from its dataset.item_sold entry" in result.failure


# --- The standalone verifier, as a buyer runs it -----------------------------------------


# Runs the file as a script, with `marketplace` made unimportable: our package is installed in
# this virtualenv, so only this proves the downloaded file needs nothing of ours.
_STANDALONE = (
    "import runpy, sys; sys.modules['marketplace'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-c", _STANDALONE, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_downloaded_verifier_checks_the_certificate_and_package(
    certified, keys, client, tmp_path
):
    delivered, cert = certified
    response = client.get("/verify/verifier.py")
    assert response.status_code == 200
    assert response.mimetype == "text/x-python"
    assert "attachment" in response.headers["Content-Disposition"]
    assert b"from marketplace" not in response.data
    assert b"import marketplace" not in response.data
    work = tmp_path / "buyer"
    package = write_package(work / "package", delivered.images, cert)
    script = work / "verifier.py"
    script.write_bytes(response.data)
    path = package / "certificate.json"
    path.write_text(json.dumps(cert, indent=1))
    pinned = ["--key", keys["key"], "--certificate-key", keys["certificate_key"]]
    result = _run(script, "package/certificate.json", *pinned, "--package", "package", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("VALID: certificate for order")
    assert "package: 4 images match" in lines[0]

    tampered = copy.deepcopy(cert)
    _record(tampered)["licence"] = "cc0"
    path.write_text(json.dumps(tampered))
    result = _run(script, "package/certificate.json", *pinned, cwd=work)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "INVALID: item 000000000: record digest does not match the record"
    )

    path.write_text("{not json")
    assert _run(script, "package/certificate.json", cwd=work).returncode == 2

    other = ["--certificate-key", Signer.generate("x").verifier().to_string()]
    path.write_text(json.dumps(cert))
    result = _run(script, "package/certificate.json", *other, cwd=work)
    assert result.returncode == 1
    assert "not the pinned" in result.stdout

    # The file from the site has our keys built in: with no flags it pins them, so the
    # package card's plain command is safe and a forged, self-consistent certificate fails.
    result = _run(script, "package/certificate.json", "--package", "package", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pinned: log key and certificate key" in result.stdout
    forged = _resign(cert, Signer.generate(cert["signature"]["key"].split("+")[0]))
    path.write_text(json.dumps(forged))
    result = _run(script, "package/certificate.json", cwd=work)
    assert result.returncode == 1
    assert "not the pinned" in result.stdout

    # Malformed shapes are unreadable input (2) or invalid (1), never a traceback.
    for bad in ("[" * 100_000, json.dumps({**cert, "ledger": {"entries": 5}}), "[]"):
        path.write_text(bad)
        result = _run(script, "package/certificate.json", cwd=work)
        assert result.returncode in (1, 2), result.stderr
        assert "Traceback" not in result.stderr


def test_a_package_member_that_is_not_an_items_file_fails(certified, keys, tmp_path):
    delivered, cert = certified
    package = write_package(tmp_path / "package", delivered.images, cert)
    with tarfile.open(package / "order-00001.tar", "w") as tar:
        info = tarfile.TarInfo("../../000000000.png")
        data = delivered.images[sorted(delivered.images)[0]]
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = check(cert, keys, package)
    assert not result.ok
    assert "'../../000000000.png' is not an item's file" in result.failure


def test_a_sidecar_that_contradicts_its_record_fails(certified, keys, tmp_path):
    delivered, cert = certified
    package = write_package(tmp_path / "package", delivered.images, cert)
    shard = package / "order-00000.tar"
    members = []
    with tarfile.open(shard) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            if member.name == "000000000.json":
                data = json.dumps({**json.loads(data), "sha256": "0" * 64}).encode()
            members.append((member.name, data))
    with tarfile.open(shard, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = check(cert, keys, package)
    assert not result.ok
    assert "000000000.json does not match the record of its item" in result.failure


# --- Routes --------------------------------------------------------------------------------


def test_buyers_download_json_and_pdf_and_others_get_404(certified, client, login, db):
    delivered, cert = certified
    login(delivered.buyer)
    page = client.get(f"/orders/{delivered.order_id}")
    assert f"/orders/{delivered.order_id}/certificate.json".encode() in page.data
    assert f"/orders/{delivered.order_id}/certificate.pdf".encode() in page.data
    response = client.get(f"/orders/{delivered.order_id}/certificate.json")
    assert response.status_code == 200
    assert json.loads(response.data) == cert
    pdf = client.get(f"/orders/{delivered.order_id}/certificate.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    client.post("/accounts/logout")

    login(make_buyer(db, email="other@example.com"))
    for suffix in ("json", "pdf"):
        assert client.get(f"/orders/{delivered.order_id}/certificate.{suffix}").status_code == 404
    client.post("/accounts/logout")

    login(make_admin(db))
    assert client.get(f"/orders/{delivered.order_id}/certificate.json").status_code == 200


def test_the_api_serves_the_certificate_to_its_organization_only(certified, client, db):
    delivered, cert = certified
    own = {"Authorization": f"Bearer {make_api_token(db, delivered.buyer)}"}
    response = client.get(f"/api/v1/orders/{delivered.order_id}/certificate", headers=own)
    assert response.status_code == 200
    assert json.loads(response.data) == cert
    pdf = client.get(f"/api/v1/orders/{delivered.order_id}/certificate.pdf", headers=own)
    assert pdf.status_code == 200
    assert pdf.data.startswith(b"%PDF")
    stranger = make_buyer(db, email="stranger@example.com", organization_name="Other Co")
    other = {"Authorization": f"Bearer {make_api_token(db, stranger)}"}
    response = client.get(f"/api/v1/orders/{delivered.order_id}/certificate", headers=other)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    key = client.get("/api/v1/certificates/public-key").get_json()
    assert key["certificate_key"] == cert["signature"]["key"]


def _upload(client, data: bytes):
    return client.post(
        "/verify",
        data={"certificate": (io.BytesIO(data), "certificate.json")},
        content_type="multipart/form-data",
    )


def test_the_verify_page_checks_an_upload_against_our_keys(certified, client, app):
    delivered, cert = certified
    page = client.get("/verify")
    assert page.status_code == 200
    with app.app_context():
        assert certificates.public_key().encode() in page.data
    assert b"python verifier.py certificate.json" in page.data
    response = _upload(client, json.dumps(cert).encode())
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Valid." in text
    assert f"order {delivered.order_id}" in text
    tampered = copy.deepcopy(cert)
    _tamper_signature(tampered)
    text = _upload(client, json.dumps(tampered).encode()).get_data(as_text=True)
    assert "Not valid." in text
    assert "certificate signature does not match" in text
    forged = _resign(cert, Signer.generate("impostor"))
    text = _upload(client, json.dumps(forged).encode()).get_data(as_text=True)
    assert "Not valid." in text
    assert "not the pinned" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\xff garbage", "The file is not JSON"),
        (b"{not json", "The file is not JSON"),
        (b"[" * 3000, "The file is not JSON"),  # nested past the parser's recursion limit
        (b"[1, 2]", "not a certificate"),
        (b'{"format": "marketplace-certificate/1"}', "Not valid."),
        (b'{"format": "marketplace-certificate/1", "order": {"id": "x"}}', "Not valid."),
        (b" " * 5000, "larger than 4,096 bytes"),
    ],
)
def test_the_verify_page_explains_bad_uploads(client, app, data, message):
    app.config["VERIFY_UPLOAD_MAX_BYTES"] = 4096
    response = _upload(client, data)
    assert response.status_code in (200, 400)
    assert message in response.get_data(as_text=True)


def test_the_verify_page_asks_for_a_file(client):
    response = client.post("/verify", data={})
    assert response.status_code == 400
    assert "Choose a file." in response.get_data(as_text=True)


def test_an_item_pointing_at_an_entry_that_is_not_its_terms_fails(db, run_jobs, tmp_path, keys):
    order_id, _ = paid_mixed_order(db, run_jobs, tmp_path)
    deliver(db, order_id)
    order = db.get(Order, order_id)
    item = db.get(OrderItem, (order_id, 0))
    db.execute(
        update(WorkTerms).where(WorkTerms.id == item.terms_id).values(ledger_seq=order.paid_seq)
    )
    db.commit()
    result = check(issue(db, order_id), keys)
    assert not result.ok
    assert result.failure == (
        f"item 000000000: ledger entry {order.paid_seq} is a 'order.paid', not 'work.terms_set'"
    )
