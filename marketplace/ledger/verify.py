"""Check ledger proofs offline: `python -m marketplace.ledger.verify FILE [--key VERIFIER_KEY]`.

Standard library plus `cryptography` only (no Flask, no SQLAlchemy), so a buyer can check a
certificate without trusting or even reaching our servers. FILE is one of:

- a proof bundle (`"format": "marketplace-ledger-proof/1"`): origin, verifier key, a signed
  checkpoint and entries with inclusion proofs (what `marketplace ledger bundle` prints);
- a document that holds such a bundle under `"ledger"` (a provenance certificate);
- one entry as served by GET /api/v1/ledger/entries/<seq>, with `--checkpoint NOTE_FILE`.

For every entry it checks: the leaf hash is SHA-256(0x00 || entry bytes); the bytes are the
entry of that position in this log; the RFC 9162 inclusion proof leads to the checkpoint's root;
the checkpoint is a C2SP signed note by the pinned key. Exit status 0: all good, 1: a check
failed, 2: the input could not be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketplace.ledger import merkle
from marketplace.ledger.note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
    parse_checkpoint,
)

BUNDLE_FORMAT = "marketplace-ledger-proof/1"  # the one spelling; services.proof_bundle uses it


class Unreadable(ValueError):
    """The input is not something this verifier understands."""


@dataclass
class Result:
    checkpoint: Checkpoint | None = None
    key_pinned: bool = False
    entries_ok: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.checkpoint is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "origin": self.checkpoint.origin if self.checkpoint else None,
            "tree_size": self.checkpoint.size if self.checkpoint else None,
            "root_hash": self.checkpoint.root_hash.hex() if self.checkpoint else None,
            "key_pinned": self.key_pinned,
            "entries_verified": self.entries_ok,
            "failures": self.failures,
        }


def _unhex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Unreadable(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise Unreadable(f"{what} is not hex") from exc


def _unbase64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise Unreadable(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unreadable(f"{what} is not base64") from exc


def check_checkpoint(note: str, verifier: Verifier, origin: str | None) -> Checkpoint:
    """The checkpoint inside a note signed by `verifier`; NoteError if not."""
    opened = open_note(note, [verifier])
    checkpoint = parse_checkpoint(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint


def check_entry(item: dict[str, Any], checkpoint: Checkpoint) -> str | None:
    """None if the entry is proved included in `checkpoint`; else what is wrong."""
    seq = item.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return "an entry has no valid seq"
    try:
        data = _unbase64(item.get("entry"), f"entry {seq}")
        claimed_leaf = _unhex(item.get("leaf_hash"), f"leaf_hash of entry {seq}")
        proof = [_unhex(h, f"proof of entry {seq}") for h in item.get("inclusion_proof") or []]
    except Unreadable as exc:
        return str(exc)
    leaf = merkle.leaf_hash(data)
    if leaf != claimed_leaf:
        return f"entry {seq}: leaf hash does not match the entry bytes"
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return f"entry {seq}: entry bytes are not JSON"
    if not isinstance(parsed, dict):
        return f"entry {seq}: entry bytes are not a JSON object"
    if parsed.get("seq") != seq or parsed.get("log") != checkpoint.origin:
        return f"entry {seq}: the bytes belong to another position or another log"
    for name in ("kind", "timestamp"):  # the readable copies must say what the bytes say
        if name in item and parsed.get(name) != item[name]:
            return f"entry {seq}: {name} differs from the signed bytes"
    if item.get("tree_size", checkpoint.size) != checkpoint.size:
        return f"entry {seq}: proof is for tree size {item.get('tree_size')}, not {checkpoint.size}"
    if not merkle.verify_inclusion(leaf, seq, checkpoint.size, proof, checkpoint.root_hash):
        return f"entry {seq}: inclusion proof does not lead to the checkpoint root"
    return None


def verify_document(
    document: dict[str, Any], *, key: str | None = None, checkpoint_note: str | None = None
) -> Result:
    """Verify a bundle, a certificate holding one, or a single entry with `checkpoint_note`."""
    bundle = document.get("ledger", document)
    if not isinstance(bundle, dict):
        raise Unreadable("the 'ledger' member is not an object")
    result = Result(key_pinned=key is not None)
    if "entries" in bundle:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise Unreadable(f"unknown bundle format {bundle.get('format')!r}")
        entries = bundle["entries"]
        note = checkpoint_note or bundle.get("checkpoint")
    elif "entry" in bundle and "inclusion_proof" in bundle:
        entries = [bundle]
        note = checkpoint_note
    else:
        raise Unreadable("neither a proof bundle nor a ledger entry")
    if not isinstance(note, str):
        raise Unreadable("no checkpoint: give one with --checkpoint")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise Unreadable("entries must be a list of objects")
    verifier_key = key or bundle.get("verifier_key")
    if not isinstance(verifier_key, str):
        raise Unreadable("no verifier key: give one with --key")
    try:
        verifier = Verifier.from_string(verifier_key)
    except NoteError as exc:
        raise Unreadable(f"bad verifier key: {exc}") from exc
    origin = bundle.get("origin")
    try:
        result.checkpoint = check_checkpoint(note, verifier, origin if origin else None)
    except NoteError as exc:
        result.failures.append(f"checkpoint: {exc}")
        return result
    for item in entries:
        problem = check_entry(item, result.checkpoint)
        if problem:
            result.failures.append(problem)
        else:
            result.entries_ok.append(int(item["seq"]))
    return result


def _report(result: Result) -> str:
    lines = []
    if result.checkpoint is not None:
        cp = result.checkpoint
        lines.append(
            f"checkpoint: {cp.origin} size {cp.size} root {cp.root_hash.hex()} (signature OK)"
        )
    if not result.key_pinned:
        lines.append(
            "warning: the key came from the file itself; pin the log's key with --key "
            "(from GET /api/v1/ledger/public-key) to rule out a forged file"
        )
    lines.extend(f"entry {seq}: included" for seq in result.entries_ok)
    lines.extend(f"FAILED {failure}" for failure in result.failures)
    verdict = "VERIFIED" if result.ok else "NOT VERIFIED"
    lines.append(f"{verdict}: {len(result.entries_ok)} entries, {len(result.failures)} failures")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m marketplace.ledger.verify",
        description="Verify ledger entries and certificates offline.",
    )
    parser.add_argument("file", type=Path, help="bundle, certificate or entry JSON ('-': stdin)")
    parser.add_argument("--key", help="the log's note verifier key to trust (recommended)")
    parser.add_argument("--checkpoint", type=Path, help="signed checkpoint note (for an entry)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        raw = sys.stdin.read() if str(args.file) == "-" else args.file.read_text("utf-8")
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise Unreadable("the file is not a JSON object")
        note = args.checkpoint.read_text("utf-8") if args.checkpoint else None
        result = verify_document(document, key=args.key, checkpoint_note=note)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"cannot read input: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_json(), indent=2) if args.json else _report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
