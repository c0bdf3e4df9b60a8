"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and tlog checkpoints.

Byte-compatible with Go's golang.org/x/mod/sumdb/note: its key strings, signature lines and
notes interoperate both ways. The reading and checking half (keys, notes, checkpoints) lives in
the standalone verifier, `verify.py`, so that a buyer's one-file copy and the platform run the
same checks; this module adds the signing half and re-exports the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketplace.ledger.verify import (
    _ED25519,
    _ED25519_KEY_SIZE,
    _HEX_KEY_ID,
    _SIGNATURE_PREFIX,
    Checkpoint,
    Note,
    NoteError,
    Signature,
    UnverifiedNote,
    Verifier,
    _b64decode,
    _b64encode,
    _check_key_name,
    _check_note_chars,
    _raw_public,
    ed25519_key_id,
    open_note,
    parse_checkpoint,
    parse_note,
)

__all__ = [
    "Checkpoint",
    "Note",
    "NoteError",
    "Signature",
    "Signer",
    "UnverifiedNote",
    "Verifier",
    "ed25519_key_id",
    "format_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_note",
]


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


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint's note text: origin, decimal size, base64 root, extensions, each + newline."""
    lines = [cp.origin, str(cp.size), _b64encode(cp.root_hash), *cp.extensions]
    return "".join(f"{line}\n" for line in lines)
