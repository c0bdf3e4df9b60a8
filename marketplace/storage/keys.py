"""Every object key the app writes, named in one place.

Keys are plain strings under a prefix per kind of object, so a bucket listing reads like the
data model: the original upload, its versioned derivatives, a stock record's mirrored image.
"""

from __future__ import annotations

DERIVATIVE_NAMES = ("thumb", "preview")


def work_original(work_id: int) -> str:
    """The artist's file, byte for byte as uploaded."""
    return f"originals/{work_id}"


def work_derivative(work_id: int, version: int, name: str) -> str:
    """A work's thumbnail or preview (WebP); `version` changes whenever they are redrawn."""
    return f"derivatives/{work_id}/v{version}/{name}.webp"


def stock_original(record_id: int) -> str:
    """A museum record's image as downloaded from the institution."""
    return f"stock/{record_id}/original"


def stock_derivative(record_id: int, version: int, name: str) -> str:
    return f"stock/{record_id}/v{version}/{name}.webp"


def package_file(order_id: int, path: str) -> str:
    """A file of an order's delivery package, at its path inside the package."""
    return f"packages/{order_id}/{path}"


def compliance_manifest(check_id: int) -> str:
    """A compliance check's uploaded manifest, byte for byte."""
    return f"compliance/{check_id}/manifest"


def compliance_rows(check_id: int) -> str:
    """A compliance check's per-row results (CSV)."""
    return f"compliance/{check_id}/rows.csv"


def claim_evidence(claim_id: int, number: int) -> str:
    """A file of evidence sent with a claim (private: administrators only)."""
    return f"claims/{claim_id}/{number}"
