"""Published RFC 6962 and C2SP vectors, read in place from the shared folder beside the repo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

VECTORS_FILE = Path("testvectors") / "rfc6962_vectors.json"


def _shared_dir() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared"
    return Path(os.environ.get("MARKETPLACE_SHARED_DIR", default))


@pytest.fixture(scope="session")
def ledger_vectors() -> dict[str, Any]:
    """The vectors file as parsed JSON; skips (never fails) where ../shared is not checked out."""
    path = _shared_dir() / VECTORS_FILE
    if not path.is_file():
        pytest.skip("../shared/testvectors not found")
    vectors: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vectors
