"""The standalone verifier: no Flask, no SQLAlchemy, and it rejects any flipped bit."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys

import pytest

from marketplace.db import transaction
from marketplace.ledger import services as ledger
from marketplace.ledger import verify as verify_module
from marketplace.ledger.note import Signer
from marketplace.ledger.verify import verify_document
from tests.conftest import ROOT
from tests.ledger.test_log import append_entries


@pytest.fixture
def bundle(app, db):
    append_entries(app, db, 11, per_transaction=4)
    with app.app_context(), transaction(db) as session:
        return ledger.proof_bundle(session, [0, 5, 10])


def run_verifier(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketplace.ledger.verify", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verifier_imports_neither_flask_nor_sqlalchemy():
    code = (
        "import sys, runpy; sys.argv = ['verify', '--help']\n"
        "try:\n    runpy.run_module('marketplace.ledger.verify', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'werkzeug')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_bundle_verifies_from_the_command_line_with_a_pinned_key(bundle, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = run_verifier(str(path), "--key", bundle["verifier_key"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED: 3 entries, 0 failures" in result.stdout
    assert "warning" not in result.stdout


def test_unpinned_key_verifies_but_warns(bundle, tmp_path):
    result = run_verifier("-", stdin=json.dumps(bundle))
    assert result.returncode == 0
    assert "warning: the key came from the file itself" in result.stdout


def test_a_certificate_holding_the_bundle_verifies(bundle):
    assert verify_document({"certificate": "...", "ledger": bundle}).ok


def test_another_key_is_refused(bundle, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    other = Signer.generate(bundle["origin"]).verifier().to_string()
    result = run_verifier(str(path), "--key", other, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["failures"][0].startswith("checkpoint:")


def test_single_entry_with_its_checkpoint(app, client, db, tmp_path):
    append_entries(app, db, 6, per_transaction=6)
    (tmp_path / "entry.json").write_text(
        client.get("/api/v1/ledger/entries/4").get_data(as_text=True)
    )
    (tmp_path / "checkpoint").write_text(
        client.get("/api/v1/ledger/checkpoint").get_data(as_text=True)
    )
    key = client.get("/api/v1/ledger/public-key").get_json()["verifier_key"]
    result = run_verifier(
        str(tmp_path / "entry.json"), "--checkpoint", str(tmp_path / "checkpoint"), "--key", key
    )
    assert result.returncode == 0, result.stdout
    assert "entry 4: included" in result.stdout


def test_unreadable_input_exits_2(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    assert run_verifier(str(tmp_path / "x.json")).returncode == 2
    assert run_verifier(str(tmp_path / "missing.json")).returncode == 2


def _flip(value: str, bit: int, encoding: str) -> str:
    raw = bytearray(base64.b64decode(value) if encoding == "b64" else bytes.fromhex(value))
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    return base64.b64encode(bytes(raw)).decode() if encoding == "b64" else raw.hex()


@pytest.mark.parametrize("bit", [0, 7, 100, 255, 311])
def test_any_flipped_bit_fails(bundle, bit):
    assert verify_document(bundle).ok
    targets = [
        ("entry", "b64"),
        ("leaf_hash", "hex"),
    ]
    for field, encoding in targets:
        forged = copy.deepcopy(bundle)
        forged["entries"][1][field] = _flip(forged["entries"][1][field], bit, encoding)
        assert not verify_document(forged).ok, field
    for index in range(len(bundle["entries"][1]["inclusion_proof"])):
        forged = copy.deepcopy(bundle)
        proof = forged["entries"][1]["inclusion_proof"]
        proof[index] = _flip(proof[index], bit, "hex")
        assert not verify_document(forged).ok
    # The root and the signature live in the note's last lines.
    text, _, signature_line = bundle["checkpoint"].rstrip("\n").rpartition("\n")
    lines = text.split("\n")
    forged = copy.deepcopy(bundle)
    lines_root = lines.copy()
    lines_root[2] = _flip(lines[2], bit, "b64")
    forged["checkpoint"] = "\n".join(lines_root) + "\n" + signature_line + "\n"
    assert not verify_document(forged).ok
    prefix, _, sig = signature_line.rpartition(" ")
    forged = copy.deepcopy(bundle)
    forged["checkpoint"] = text + "\n" + prefix + " " + _flip(sig, bit + 32, "b64") + "\n"
    assert not verify_document(forged).ok


def test_entry_moved_to_another_position_fails(bundle):
    forged = copy.deepcopy(bundle)
    forged["entries"][1]["seq"] = 6
    assert not verify_document(forged).ok


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "work.taken_down"), ("timestamp", "2001-01-01T00:00:00.000000Z")]
)
def test_readable_copy_that_differs_from_the_signed_bytes_fails(bundle, field, value):
    forged = copy.deepcopy(bundle)
    forged["entries"][1][field] = value
    result = verify_document(forged)
    assert not result.ok
    assert result.failures == [f"entry 5: {field} differs from the signed bytes"]


def test_bundle_format_is_spelled_in_one_place():
    """The verifier reads what the ledger writes: one constant, never two copies that drift."""
    spelled = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "marketplace").rglob("*.py")
        if '"marketplace-ledger-proof/' in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["marketplace/ledger/verify.py"]
    assert ledger.BUNDLE_FORMAT is verify_module.BUNDLE_FORMAT
