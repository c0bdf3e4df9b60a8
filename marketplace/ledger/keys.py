"""The platform's Ed25519 checkpoint key: loaded from a PEM file, made on first run if allowed."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketplace.ledger.note import Signer


class SigningKeyError(RuntimeError):
    """The configured signing key is missing or unreadable."""


def load_signer(origin: str, path: Path, *, create: bool) -> Signer:
    """The signer named `origin` (C2SP checkpoints sign under the log's origin).

    With `create`, a missing key file is generated (mode 0600); otherwise it must exist.
    """
    if not path.exists():
        if not create:
            raise SigningKeyError(f"ledger signing key {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningKeyError(f"ledger signing key {path} is not an Ed25519 key")
    return Signer.from_private_key(origin, loaded)


def public_key_pem(signer: Signer) -> str:
    return (
        signer.private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
