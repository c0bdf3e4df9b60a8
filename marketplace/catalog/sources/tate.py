"""Tate (London): per-artwork JSON from GitHub tategallery/collection, bundled as JSON Lines.

Tate's metadata is CC0 but its images are not openly licensed (they are licensed commercially;
a `null` thumbnailCopyright does not make one open), so every sound record is
Skipped("not open access"). Records are still checked far enough to report broken ones.

Traps: `dateText` uses en dashes ("1826\u20137, reprinted 1892") while `dateRange.text` uses
hyphens; `dateRange` is null for "date not known"; width/height/depth are strings, often "".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .base import Malformed, RawRecord, Skipped, StockFields
from .reading import read_json
from .text import first_text


class TateAdapter:
    name = "tate"
    institution = "Tate"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("acno", "all_artists", "thumbnailUrl")

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        """JSON Lines (or one per-artwork JSON file, or a JSON array of them)."""
        return read_json(path)

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
        if not first_text(data.get("title"), data.get("foreignTitle")):
            return Malformed(record.line, "missing title")
        if not first_text(data.get("acno"), data.get("id")):
            return Malformed(record.line, "missing id")
        # Years are not checked: an unreadable date never makes a record malformed.
        return Skipped("not open access", first_text(data.get("acno"), data.get("id")))
