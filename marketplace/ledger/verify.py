"""Check ledger proofs and provenance certificates offline: one file, no `marketplace` imports.

    python verify.py FILE [--key VKEY] [--certificate-key VKEY] [--package DIR]
    python -m marketplace.ledger.verify FILE ...            (the same, from the repository)

Standard library plus `cryptography` only (no Flask, no SQLAlchemy), so a buyer can check a
certificate without trusting or even reaching our servers; the site serves this very file at
/verify/verifier.py. It holds the checking half of the ledger's cryptography (RFC 6962/9162
hashing and proof verification, C2SP signed notes and checkpoints); `merkle.py` and `note.py`
import it from here, so there is one copy of each check. FILE is one of:

- a provenance certificate (`"format": "marketplace-certificate/1"`): checks its Ed25519
  signature, the checkpoint's signature, every inclusion proof against the checkpoint, that the
  items root recomputed from the item records is the one sealed in the log, that included
  item entries match their records, and with `--package DIR` every image in the tar shards;
- a proof bundle (`"format": "marketplace-ledger-proof/1"`): origin, verifier key, a signed
  checkpoint and entries with inclusion proofs (what `marketplace ledger bundle` prints);
- a document that holds such a bundle under `"ledger"`;
- a stock record's proof (`"format": "marketplace-record-proof/1"`): the record's leaf, its
  audit path to the Merkle root in its chunk's `stock.chunk_registered` entry, and that
  entry's bundle;
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
import hashlib
import itertools
import json
import re
import sys
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The keys this copy trusts when none are given on the command line. The site fills them in
# when it serves this file at /verify/verifier.py, so the verifier a buyer downloads trusts
# the platform's published keys and no key a forged file names; as a module both are unset.
PINNED_LOG_KEY: str | None = None
PINNED_CERTIFICATE_KEY: str | None = None

# --- RFC 6962 / RFC 9162 hashing and proof verification (merkle.py re-exports these) --------

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """Hash one log entry with the 0x00 domain prefix, so no leaf can pose as a node (2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child subtree roots with the 0x01 domain prefix (2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (2.1.1), built level by level in O(n) hashing.

    Pairing neighbours and carrying an odd last node up unchanged gives the RFC's left-balanced
    tree (its split is the largest power of two below n); merkle's recursive reference is
    tested against this. Used for a certificate's root over its item records.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha256, prefix = hashlib.sha256, _NODE_PREFIX
    while len(level) > 1:
        paired = [
            sha256(prefix + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_proof(proof: object) -> bool:
    return isinstance(proof, Sequence) and all(_is_hash(p) for p in proof)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``index`` with ``leaf_hash`` in the tree ``root`` (2.1.3.2).

    Only ``root`` binds ``size``: pass the signed root of a tree of exactly ``size`` leaves. Never
    raises: malformed input (wrong hash lengths, index outside the tree) is simply False.
    """
    if not (_is_count(index) and _is_count(size) and index < size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Whether ``proof`` shows tree ``new_root`` extends tree ``old_root`` (2.1.4.2).

    Equal sizes need an empty proof and equal roots. Size 0 is never accepted: every tree extends
    the empty tree, so a proof from it is meaningless (as transparency-dev/merkle rules); callers
    decide that case themselves. As with inclusion, only the roots bind the sizes: pass signed
    roots. Never raises: malformed input is simply False.
    """
    if not (_is_count(old_size) and _is_count(new_size)) or not 0 < old_size <= new_size:
        return False
    if not isinstance(proof, Sequence):
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if not (proof and _is_proof(proof) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a proof node
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# --- C2SP signed notes and tlog checkpoints, the reading half (note.py re-exports these) ----

_ED25519 = b"\x01"  # signature type byte of Ed25519 keys and key IDs
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's note package allows 100
_MAX_TREE_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline


class NoteError(ValueError):
    """A note, key string or checkpoint that is not well-formed; the message says what."""


class UnverifiedNote(NoteError):
    """No signature by a known key verified, or one by a known key failed: trust nothing in it."""


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name) or not _is_utf8(name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, no spaces, no '+'")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _check_note_chars(text: str, what: str) -> None:
    if not _is_utf8(text) or _CONTROL.search(text):
        raise NoteError(f"{what} must be UTF-8 without control characters other than newline")


def _b64decode(encoded: str, what: str) -> bytes:
    """Standard base64 in its one canonical spelling, so each value has exactly one encoding."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != encoded:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4]: the key ID C2SP recommends for Ed25519."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519 + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 key as a note verifier; ``key_id`` is always the one derived from it."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(hash=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if self.key_id != ed25519_key_id(self.name, _raw_public(self.public_key)):
            raise NoteError(f"key ID {self.key_id.hex()} does not belong to this key and name")

    @classmethod
    def from_public_key(cls, name: str, key: Ed25519PublicKey) -> Verifier:
        """The verifier for ``key`` under ``name``; raises NoteError for an invalid name."""
        _check_key_name(name)
        return cls(name, ed25519_key_id(name, _raw_public(key)), key)

    @classmethod
    def from_string(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``; NoteError if malformed."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX_KEY_ID.fullmatch(parts[1]):
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        name, key_id_hex, key_b64 = parts
        _check_key_name(name)
        key = _b64decode(key_b64, "verifier key")
        if len(key) != 1 + _ED25519_KEY_SIZE or key[:1] != _ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        key_id = bytes.fromhex(key_id_hex)
        if key_id != ed25519_key_id(name, key[1:]):
            raise NoteError(f"verifier key ID {key_id_hex} does not match its name and key")
        return cls(name, key_id, Ed25519PublicKey.from_public_bytes(key[1:]))

    def to_string(self) -> str:
        """The verifier key string to publish: what ``from_string`` reads back."""
        key = _b64encode(_ED25519 + _raw_public(self.public_key))
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verify(self, text: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (without the key ID) is this key's Ed25519 signature of ``text``."""
        if len(sig) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self.public_key.verify(bytes(sig), bytes(text))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signature:
    """One signature line: who claims to have signed, and the signature without its key ID."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A note's text and every signature line; ``verified`` is those checked by a trusted key."""

    text: str
    signatures: list[Signature]
    verified: list[Signature]


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError("signature lines start with an em dash and a space")
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    _check_key_name(name)
    raw = _b64decode(encoded, f"signature by {name!r}")
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteError(f"signature by {name!r} is too short")
    return Signature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signatures without checking any: never trust the result.

    Raises NoteError unless it is UTF-8 without control characters (other than newline), its text
    ends in a newline and a blank line, and one to 100 well-formed signature lines follow.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("a note must be UTF-8") from exc
    _check_note_chars(note, "a note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note needs a blank line between its text and its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a note ends with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {_MAX_SIGNATURES} signatures")
    return Note(text, [_parse_signature_line(line) for line in lines], [])


def _index_verifiers(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        key = (verifier.name, verifier.key_id)
        other = known.setdefault(key, verifier)
        if _raw_public(other.public_key) != _raw_public(verifier.public_key):
            raise NoteError(f"two trusted keys share name and ID {verifier.name}+{key[1].hex()}")
    return known


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a note and check it against trusted keys, as Go's note.Open does.

    Signatures by unknown keys (name and key ID not both known) are kept but ignored. Raises
    UnverifiedNote if a known key's signature fails or no known key signed; NoteError if malformed.
    """
    parsed = parse_note(note)
    known = _index_verifiers(verifiers)
    message = parsed.text.encode("utf-8")
    verified: list[Signature] = []
    for signature in parsed.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(message, signature.signature):
            raise UnverifiedNote(f"invalid signature by {signature.name}+{signature.key_id.hex()}")
        if all((s.name, s.key_id) != (signature.name, signature.key_id) for s in verified):
            verified.append(signature)
    if not verified:
        raise UnverifiedNote("no signature by a trusted key")
    return Note(parsed.text, parsed.signatures, verified)


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head as C2SP tlog-checkpoint text: origin, size, root and extension lines.

    Construction checks the fields (NoteError), so every Checkpoint formats to a valid text.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line:
                raise NoteError("checkpoint origin and extension lines are non-empty single lines")
            _check_note_chars(line, "a checkpoint line")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("checkpoint size must be an integer")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} is out of range")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError("checkpoint root hash must be 32 bytes")


def parse_checkpoint(text: str) -> Checkpoint:
    """Read checkpoint note text (not the signed note; see ``open_note``), strictly.

    Raises NoteError unless: at least three newline-terminated lines, a non-empty origin, a decimal
    size without leading zeros (below 2**64), a canonical base64 32-byte root, no empty extension.
    """
    if not text.endswith("\n"):
        raise NoteError("checkpoint text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise NoteError(f"checkpoint size {size!r} is not a decimal without leading zeros")
    root_hash = _b64decode(root, "checkpoint root hash")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


# --- Proof bundles ---------------------------------------------------------------------------


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
    leaf = leaf_hash(data)
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
    if not verify_inclusion(leaf, seq, checkpoint.size, proof, checkpoint.root_hash):
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
    if origin and origin != verifier.name:
        result.failures.append(
            f"checkpoint: the file names origin {origin!r}, the key {verifier.name!r}"
        )
        return result
    try:
        # The log signs under its origin's name: a checkpoint of another log never passes.
        result.checkpoint = check_checkpoint(note, verifier, verifier.name)
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


# --- Provenance certificates -------------------------------------------------------------------

CERTIFICATE_FORMAT = "marketplace-certificate/1"
# Signed message = this prefix + the canonical bytes of the certificate without "signature", so
# a certificate signature can never be mistaken for (or replayed as) any other signed message.
SIGNATURE_CONTEXT = b"marketplace-certificate/1\n"
SEAL_KIND = "dataset.certified"
RECALL_KIND = "order.item_recalled"  # an item taken down after the sale (governance)
PAID_KIND = "order.paid"
SOLD_KIND = "dataset.item_sold"
TERMS_KIND = "work.terms_set"
CHUNK_KIND = "stock.chunk_registered"
STOCK_KINDS = frozenset({"stock.registered", "stock.updated", "stock.reinstated", CHUNK_KIND})
# What a dataset.item_sold entry's payload must say about its item: record field -> payload key.
ITEM_ENTRY_FIELDS = (
    ("item", "item"),
    ("position", "position"),
    ("licence", "licence"),
    ("terms", "terms"),
    ("price_minor", "price_minor"),
    ("attribution_required", "attribution_required"),
)


class Invalid(Exception):
    """A certificate check failed; the message names the first failure."""


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes for values of str/int/bool/null/list/object with BMP keys (ours)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def signed_message(certificate: dict[str, Any]) -> bytes:
    """What the platform key signs: the context prefix and everything but the signature."""
    body = {k: v for k, v in certificate.items() if k != "signature"}
    return SIGNATURE_CONTEXT + canonical_bytes(body)


def item_key(position: int) -> str:
    """The WebDataset key of an order item: its position, 9 digits."""
    return f"{position:09d}"


@dataclass
class CertificateResult:
    """Valid, or the first failure; `summary` is the one line the command prints."""

    ok: bool
    summary: str
    failure: str | None = None
    order_id: int | None = None
    item_count: int = 0
    missing_count: int = 0
    tree_size_at_purchase: int | None = None
    checkpoint_size: int | None = None
    items_root: str | None = None
    key_id: str | None = None
    package_files: int | None = None
    recalled: int = 0


def _get(obj: Any, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise Invalid(f"{what}: missing {name!r}")
    value = obj[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise Invalid(f"{what}: {name!r} must be an integer")
    if not isinstance(value, kind):
        raise Invalid(f"{what}: {name!r} has the wrong type")
    return value


def _parse_entry(item: dict[str, Any]) -> dict[str, Any]:
    parsed = json.loads(base64.b64decode(item["entry"]))
    if not isinstance(parsed, dict) or not all(
        isinstance(parsed.get(name), dict) for name in ("subject", "payload")
    ):
        raise Invalid(f"ledger: entry {item.get('seq')} has no subject and payload objects")
    return parsed


def _check_records(certificate: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
    """Every record (delivered and missing) with its leaf hash, in position order.

    A record's digest is its RFC 6962 leaf hash, SHA-256(0x00 || canonical record bytes),
    recomputed here: the items root is built from these, never from the digests as written."""
    items = _get(certificate, "items", list, "certificate")
    missing = _get(certificate, "missing", list, "certificate")
    records: list[tuple[dict[str, Any], bytes]] = []
    for group, rows in (("items", items), ("missing", missing)):
        for index, entry in enumerate(rows):
            what = f"{group}[{index}]"
            record = _get(entry, "record", dict, what)
            digest = _get(entry, "digest", str, what)
            position = _get(record, "position", int, what)
            key = _get(record, "key", str, what)
            what = f"item {key}"
            if key != item_key(position):
                raise Invalid(f"{what}: key does not match its position {position}")
            leaf = leaf_hash(canonical_bytes(record))
            if leaf.hex() != digest:
                raise Invalid(f"{what}: record digest does not match the record")
            reason = record.get("missing_reason")
            if group == "items":
                if reason is not None:
                    raise Invalid(f"{what}: a delivered item has no missing_reason")
                for name in ("sha256", "media_type"):
                    _get(record, name, str, what)
                _get(record, "size_bytes", int, what)
            elif not isinstance(reason, str) or not reason:
                raise Invalid(f"{what}: a missing item needs a reason")
            records.append((record, leaf))
    records.sort(key=lambda r: int(r[0]["position"]))
    for (before, _), (after, _) in itertools.pairwise(records):
        if before["position"] == after["position"]:
            raise Invalid(f"item {before['key']} is listed twice")
    return records


def _check_signature(certificate: dict[str, Any], pinned: str | None) -> str:
    signature = _get(certificate, "signature", dict, "certificate")
    if signature.get("algorithm") != "Ed25519":
        raise Invalid("signature: only Ed25519 is supported")
    key_string = _get(signature, "key", str, "signature")
    try:
        verifier = Verifier.from_string(key_string)
        pinned_verifier = Verifier.from_string(pinned) if pinned else None
    except NoteError as exc:
        raise Invalid(f"signature: bad certificate key: {exc}") from exc
    if pinned_verifier is not None and pinned_verifier.to_string() != verifier.to_string():
        raise Invalid(
            f"signature: the certificate names key {verifier.name}+{verifier.key_id.hex()}, "
            f"not the pinned {pinned_verifier.name}+{pinned_verifier.key_id.hex()}"
        )
    try:
        value = _unbase64(signature.get("value"), "signature value")
    except Unreadable as exc:
        raise Invalid(f"signature: {exc}") from exc
    if not verifier.verify(signed_message(certificate), value):
        raise Invalid("signature: the certificate signature does not match its contents")
    return verifier.key_id.hex()


def _check_ledger(
    certificate: dict[str, Any], key: str | None
) -> tuple[Checkpoint, dict[int, dict[str, Any]]]:
    """The signed checkpoint and every included entry (seq -> parsed bytes), all proved."""
    bundle = _get(certificate, "ledger", dict, "certificate")
    try:
        result = verify_document({"ledger": bundle}, key=key)
    except Unreadable as exc:
        raise Invalid(f"ledger: {exc}") from exc
    if result.failures or result.checkpoint is None:
        raise Invalid(f"ledger: {result.failures[0] if result.failures else 'no checkpoint'}")
    entries = {int(item["seq"]): _parse_entry(item) for item in bundle["entries"]}
    return result.checkpoint, entries


def _entry(entries: dict[int, dict[str, Any]], seq: Any, kind: str, what: str) -> dict[str, Any]:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq not in entries:
        raise Invalid(f"{what}: its ledger entry {seq!r} is not included with a proof")
    entry = entries[seq]
    if entry.get("kind") != kind:
        raise Invalid(f"{what}: ledger entry {seq} is a {entry.get('kind')!r}, not {kind!r}")
    return entry


def _check_context(
    entries: dict[int, dict[str, Any]], record: dict[str, Any], tree_size: int, what: str
) -> None:
    """The terms entry an item was sold under is that work's, and with its stock record entry
    was in the log before the sale (so it is what the sale was checked against)."""
    terms_seq, stock_seq = record.get("terms_seq"), record.get("stock_seq")
    if terms_seq is not None:
        terms = _entry(entries, terms_seq, TERMS_KIND, what)
        if terms.get("subject", {}).get("work") != record.get("work"):
            raise Invalid(f"{what}: terms entry {terms_seq} is about another work")
        if terms_seq >= tree_size:
            raise Invalid(f"{what}: terms entry {terms_seq} was written after the sale")
    elif record.get("terms") is not None:
        raise Invalid(f"{what}: sold under terms {record['terms']} but names no terms entry")
    if stock_seq is not None:
        stock = entries.get(stock_seq) if isinstance(stock_seq, int) else None
        if stock is None or stock.get("kind") not in STOCK_KINDS:
            raise Invalid(f"{what}: stock entry {stock_seq!r} is not a stock record entry")
        if stock_seq >= tree_size:
            raise Invalid(f"{what}: stock entry {stock_seq} was written after the sale")


def _check_certificate(
    certificate: dict[str, Any], *, key: str | None, certificate_key: str | None
) -> CertificateResult:
    order = _get(certificate, "order", dict, "certificate")
    order_id = _get(order, "id", int, "order")
    checkpoint, entries = _check_ledger(certificate, key)

    paid_seq = _get(order, "paid_seq", int, "order")
    paid = _entry(entries, paid_seq, PAID_KIND, "order")
    if paid.get("subject", {}).get("order") != order_id:
        raise Invalid(f"order: ledger entry {paid_seq} is about another order")
    payload = paid.get("payload", {})
    for name in ("total_minor", "currency"):
        if payload.get(name) != order.get(name):
            raise Invalid(f"order: {name} differs from the order.paid entry")
    tree_size = _get(certificate, "tree_size_at_purchase", int, "certificate")
    if tree_size != paid_seq + 1:
        raise Invalid("tree_size_at_purchase is not the log size just after order.paid")

    seal_info = _get(certificate, "seal", dict, "certificate")
    seal = _entry(entries, _get(seal_info, "seq", int, "seal"), SEAL_KIND, "seal")
    sealed = seal.get("payload", {})
    if seal.get("subject", {}).get("order") != order_id or sealed.get("order") != order_id:
        raise Invalid("seal: the sealed entry is about another order")
    root = _get(seal_info, "items_root", str, "seal")
    if sealed.get("items_root") != root:
        raise Invalid("items root: the certificate's root is not the one sealed in the ledger")

    checked = _check_records(certificate)
    records = [record for record, _ in checked]
    if sealed.get("item_count") != len(records) or seal_info.get("item_count") != len(records):
        raise Invalid(f"items: {len(records)} records, but the seal counts a different number")
    recomputed = tree_root([leaf for _, leaf in checked]).hex()
    if recomputed != sealed.get("items_root"):
        raise Invalid("items root: the item records do not hash to the sealed items root")

    if _get(certificate, "item_entries_included", bool, "certificate"):
        for record in records:
            what = f"item {record['key']}"
            entry = _entry(entries, record.get("sold_seq"), SOLD_KIND, what)
            if entry.get("subject", {}).get("order") != order_id:
                raise Invalid(f"{what}: its ledger entry is about another order")
            sold = entry.get("payload", {})
            for field_name, payload_key in ITEM_ENTRY_FIELDS:
                if sold.get(payload_key) != record.get(field_name):
                    raise Invalid(f"{what}: {field_name} differs from its dataset.item_sold entry")
            _check_context(entries, record, tree_size, what)

    missing = len(certificate["missing"])
    if sealed.get("missing_count") != missing or seal_info.get("missing_count") != missing:
        raise Invalid("missing: the seal counts a different number of missing items")
    recalled = _check_recalls(certificate, entries, records, order_id)
    key_id = _check_signature(certificate, certificate_key)
    return CertificateResult(
        ok=True,
        summary="",
        order_id=order_id,
        item_count=len(records) - missing,
        missing_count=missing,
        tree_size_at_purchase=tree_size,
        checkpoint_size=checkpoint.size,
        items_root=root,
        key_id=key_id,
        recalled=recalled,
    )


def _check_recalls(
    certificate: dict[str, Any],
    entries: dict[int, dict[str, Any]],
    records: list[dict[str, Any]],
    order_id: int,
) -> int:
    """Each recalled item is one of the certificate's items, and its order.item_recalled
    entry (included with a proof) says so for this order and this item."""
    recalls = certificate.get("recalls", [])
    if not isinstance(recalls, list):
        raise Invalid("recalls: must be a list")
    by_key = {record["key"]: record for record in records}
    for recall in recalls:
        key = _get(recall, "key", str, "recall")
        what = f"recall of item {key}"
        record = by_key.get(key)
        if record is None or record.get("item") != recall.get("item"):
            raise Invalid(f"{what}: not an item of this certificate")
        entry = _entry(entries, recall.get("seq"), RECALL_KIND, what)
        subject, payload = entry.get("subject", {}), entry.get("payload", {})
        if subject.get("order") != order_id:
            raise Invalid(f"{what}: its ledger entry is about another order")
        if (payload.get("item"), payload.get("key")) != (recall.get("item"), key):
            raise Invalid(f"{what}: its ledger entry names another item")
    return len(recalls)


# A shard holds exactly KEY.<image suffix> and KEY.json per item, at its root.
_MEMBER = re.compile(r"([0-9]{9})\.(jpg|png|webp|json)")
_SUFFIX_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def _shard_members(directory: Path) -> Iterator[tuple[str, str, str, str, bytes]]:
    """(shard, member name, key, suffix, bytes) of every member of every `*.tar` in
    `directory`; Invalid for a member that is not a plain KEY.jpg|png|webp|json file."""
    for shard in sorted(directory.glob("*.tar")):
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    named = _MEMBER.fullmatch(member.name)
                    if named is None or not member.isfile():
                        raise Invalid(
                            f"package: {shard.name}: {member.name!r} is not an item's file"
                        )
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file
                    yield shard.name, member.name, named[1], named[2], handle.read()
        except (tarfile.TarError, OSError) as exc:
            raise Invalid(f"package: {shard.name} is not a readable tar: {exc}") from exc


def _check_item_json(shard: str, name: str, data: bytes, record: dict[str, Any]) -> None:
    """KEY.json, which loaders read beside the image, must say what the record says."""
    try:
        sidecar = json.loads(data)
    except (ValueError, RecursionError):
        raise Invalid(f"package: {shard}: {name} is not JSON") from None
    if not isinstance(sidecar, dict) or (
        sidecar.get("sha256"),
        sidecar.get("item_id"),
        sidecar.get("ledger_seq"),
    ) != (record["sha256"], record["item"], record["sold_seq"]):
        raise Invalid(f"package: {shard}: {name} does not match the record of its item")


def check_package(certificate: dict[str, Any], directory: Path) -> int:
    """Every image in the shards is a delivered item with its recorded SHA-256, size and
    type, its KEY.json agrees, and every delivered item is there exactly once. Returns the
    number of images; Invalid if not."""
    expected = {i["record"]["key"]: i["record"] for i in certificate["items"]}
    if expected and not any(directory.glob("*.tar")):
        raise Invalid(f"package: no *.tar shards in {directory}")
    seen: set[str] = set()
    sidecars: set[str] = set()
    for shard, name, key, suffix, data in _shard_members(directory):
        record = expected.get(key)
        if record is None:
            raise Invalid(f"package: {shard}: {name} is not an item of this certificate")
        if suffix == "json":
            if key in sidecars:
                raise Invalid(f"package: {shard}: {name} appears twice")
            sidecars.add(key)
            _check_item_json(shard, name, data, record)
            continue
        if key in seen:
            raise Invalid(f"package: {shard}: item {key} appears twice")
        seen.add(key)
        if _SUFFIX_TYPES[suffix] != record["media_type"]:
            raise Invalid(f"package: {shard}: {name} is not the recorded type of item {key}")
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise Invalid(f"package: {shard}: {name} does not match the SHA-256 of item {key}")
        if len(data) != record["size_bytes"]:
            raise Invalid(f"package: {shard}: {name} is not the recorded size of item {key}")
    absent = sorted(set(expected) - seen) or sorted(set(expected) - sidecars)
    if absent:
        raise Invalid(
            f"package: item {absent[0]} is missing from the shards ({len(absent)} in all)"
        )
    return len(seen)


def verify_certificate(
    certificate: dict[str, Any],
    *,
    key: str | None = None,
    certificate_key: str | None = None,
    package: Path | None = None,
) -> CertificateResult:
    """Check a certificate; never raises for bad content, the result names the first failure.

    `key` pins the log's note verifier key and `certificate_key` the platform's certificate
    key (both published by the site); unpinned, the keys named in the file are used.
    """
    if certificate.get("format") != CERTIFICATE_FORMAT:
        reason = f"unknown certificate format {certificate.get('format')!r}"
        return CertificateResult(False, f"INVALID: {reason}", reason)
    try:
        result = _check_certificate(certificate, key=key, certificate_key=certificate_key)
        if package is not None:
            result.package_files = check_package(certificate, package)
    except Invalid as exc:
        return CertificateResult(False, f"INVALID: {exc}", str(exc))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:  # malformed
        reason = f"malformed certificate ({type(exc).__name__}: {exc})"
        return CertificateResult(False, f"INVALID: {reason}", reason)
    pinned = [
        name for name, value in (("log key", key), ("certificate key", certificate_key)) if value
    ]
    result.summary = (
        f"VALID: certificate for order {result.order_id}: {result.item_count} items"
        f"{f' ({result.missing_count} missing)' if result.missing_count else ''}, "
        f"items root {result.items_root}, tree size at purchase {result.tree_size_at_purchase}, "
        f"checkpoint size {result.checkpoint_size}, signed by key {result.key_id}"
        + (f", {result.recalled} recalled since (remove them)" if result.recalled else "")
        + (f", package: {result.package_files} images match" if package is not None else "")
        + ("; pinned: " + " and ".join(pinned) if pinned else "; keys not pinned (see --key)")
    )
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


# --- Stock records registered a chunk at a time ---------------------------------------------

RECORD_PROOF_FORMAT = "marketplace-record-proof/1"


def record_leaf(source: str, source_id: str, raw_sha256: str) -> bytes:
    """A stock record's leaf in its chunk's tree: SHA-256(0x00 || canonical JSON of the
    record's source, id and the SHA-256 of its bytes as read from the source's file)."""
    return leaf_hash(
        canonical_bytes({"raw_sha256": raw_sha256, "source": source, "source_id": source_id})
    )


def verify_record_proof(document: dict[str, Any], *, key: str | None = None) -> Result:
    """Check a record proof (`"format": "marketplace-record-proof/1"`): the record's leaf,
    its audit path to the chunk root, that root in a `stock.chunk_registered` entry's signed
    payload, and that entry's inclusion proof against the signed checkpoint."""
    if document.get("format") != RECORD_PROOF_FORMAT:
        raise Unreadable(f"unknown record proof format {document.get('format')!r}")
    record = document.get("record")
    if not isinstance(record, dict) or not all(
        isinstance(record.get(name), str) for name in ("raw_sha256", "source", "source_id")
    ):
        raise Unreadable("the record needs raw_sha256, source and source_id strings")
    result = verify_document(document, key=key)
    if not result.ok:
        return result
    seq, index, count = (document.get(n) for n in ("entry_seq", "leaf_index", "leaf_count"))
    if not (_is_count(seq) and isinstance(index, int) and isinstance(count, int)):
        raise Unreadable("entry_seq, leaf_index and leaf_count must be counts")
    path = [_unhex(h, "audit path") for h in document.get("audit_path") or []]
    entries = {item.get("seq"): item for item in document["ledger"]["entries"]}
    if seq not in entries:
        result.failures.append(f"entry {seq}: not in the proof's ledger bundle")
        return result
    entry = json.loads(base64.b64decode(entries[seq]["entry"]))
    payload = entry.get("payload") if isinstance(entry, dict) else None
    if entry.get("kind") != CHUNK_KIND or not isinstance(payload, dict):
        result.failures.append(f"entry {seq}: not a {CHUNK_KIND} entry")
        return result
    if payload.get("source") != record["source"] or payload.get("records") != count:
        result.failures.append(f"entry {seq}: registers another source or another count")
        return result
    try:
        root = bytes.fromhex(str(payload.get("merkle_root")))
    except ValueError:
        root = b""
    leaf = record_leaf(record["source"], record["source_id"], record["raw_sha256"])
    if not verify_inclusion(leaf, index, count, path, root):
        result.failures.append(
            f"record {record['source']}/{record['source_id']}: its audit path does not lead "
            f"to the Merkle root of entry {seq}"
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m marketplace.ledger.verify",
        description="Verify ledger entries and provenance certificates offline.",
    )
    parser.add_argument("file", type=Path, help="certificate, bundle or entry JSON ('-': stdin)")
    parser.add_argument("--key", help="the log's note verifier key to trust (recommended)")
    parser.add_argument(
        "--certificate-key", help="the platform's certificate key to trust (recommended)"
    )
    parser.add_argument(
        "--package", type=Path, help="a certificate's package folder: check its *.tar shards"
    )
    parser.add_argument("--checkpoint", type=Path, help="signed checkpoint note (for an entry)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    key = args.key or PINNED_LOG_KEY
    certificate_key = args.certificate_key or PINNED_CERTIFICATE_KEY
    try:
        raw = sys.stdin.read() if str(args.file) == "-" else args.file.read_text("utf-8")
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise Unreadable("the file is not a JSON object")
        if args.package is not None and not args.package.is_dir():
            raise Unreadable(f"--package {args.package} is not a folder")
        if document.get("format") == CERTIFICATE_FORMAT:
            checked = verify_certificate(
                document, key=key, certificate_key=certificate_key, package=args.package
            )
            print(json.dumps(checked.__dict__) if args.json else checked.summary)
            return 0 if checked.ok else 1
        if document.get("format") == RECORD_PROOF_FORMAT:
            result = verify_record_proof(document, key=key)
            print(json.dumps(result.as_json(), indent=2) if args.json else _report(result))
            return 0 if result.ok else 1
        note = args.checkpoint.read_text("utf-8") if args.checkpoint else None
        result = verify_document(document, key=key, checkpoint_note=note)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        print(f"cannot read input: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        return 2
    except Exception as exc:  # any other malformed shape: unreadable input, never a traceback
        print(f"cannot read input: malformed ({type(exc).__name__}: {exc})"[:500], file=sys.stderr)
        return 2
    print(json.dumps(result.as_json(), indent=2) if args.json else _report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
