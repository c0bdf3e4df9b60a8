"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and tlog checkpoints.

Byte-compatible with Go's golang.org/x/mod/sumdb/note: its key strings, signature lines and
notes interoperate both ways. Standard library plus ``cryptography`` only, so the standalone
verifier can use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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
class Signer:
    """An Ed25519 note signing key with its name; keep it, and its key string, secret."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if self.key_id != ed25519_key_id(self.name, _raw_public(self.private_key.public_key())):
            raise NoteError(f"key ID {self.key_id.hex()} does not belong to this key and name")

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key named ``name``; raises NoteError for an invalid name."""
        return cls.from_private_key(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key(cls, name: str, key: Ed25519PrivateKey) -> Signer:
        """Use an existing key under ``name``; raises NoteError for an invalid name."""
        _check_key_name(name)
        return cls(name, ed25519_key_id(name, _raw_public(key.public_key())), key)

    @classmethod
    def from_signer_key_string(cls, skey: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``.

        Raises NoteError if malformed or if the key ID does not match the derived public key.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        _, _, name, key_id_hex, key_b64 = parts
        _check_key_name(name)
        if not _HEX_KEY_ID.fullmatch(key_id_hex):
            raise NoteError("a signer key's ID is 8 hex digits")
        key = _b64decode(key_b64, "signer key")
        if len(key) != 1 + _ED25519_KEY_SIZE or key[:1] != _ED25519:
            raise NoteError("only Ed25519 signer keys (type 0x01, 32-byte seed) are supported")
        private_key = Ed25519PrivateKey.from_private_bytes(key[1:])
        key_id = bytes.fromhex(key_id_hex)
        if key_id != ed25519_key_id(name, _raw_public(private_key.public_key())):
            raise NoteError(f"signer key ID {key_id_hex} does not match its name and key")
        return cls(name, key_id, private_key)

    def signer_key_string(self) -> str:
        """The secret key string, in the format ``from_signer_key_string`` and Go read."""
        seed = self.private_key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{_b64encode(_ED25519 + seed)}"

    def verifier(self) -> Verifier:
        """The public half, to hand to whoever checks this signer's notes."""
        return Verifier(self.name, self.key_id, self.private_key.public_key())

    def sign(self, text: str) -> str:
        """The signed note for ``text``, which must end in a newline; NoteError otherwise."""
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        _check_note_chars(text, "note text")
        signature = self.private_key.sign(text.encode("utf-8"))
        line = f"{_SIGNATURE_PREFIX}{self.name} {_b64encode(self.key_id + signature)}\n"
        return f"{text}\n{line}"


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


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint's note text: origin, decimal size, base64 root, extensions, each + newline."""
    lines = [cp.origin, str(cp.size), _b64encode(cp.root_hash), *cp.extensions]
    return "".join(f"{line}\n" for line in lines)


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
