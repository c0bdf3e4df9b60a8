"""Published RFC 6962 and C2SP vectors, read in place from the shared folder beside the repo."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="session")
def ledger_vectors() -> dict[str, Any]:
    """The vectors file as parsed JSON (skipped without ../shared, failed in CI)."""
    path = shared_path("testvectors/rfc6962_vectors.json")
    vectors: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vectors
