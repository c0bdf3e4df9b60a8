"""Carnegie Museum of Art (Pittsburgh): per-object JSON from GitHub cmoa/collection, as JSON Lines.

The metadata is CC0 but the images are not (image rights go through the museum's Rights and
Reproduction department and are not exported), so every sound record is
Skipped("not open access"). Records are still checked far enough to report broken ones: 13
records of the sample have a null title (Heinz Architectural Center drawings) and come out as
Malformed(line, "missing title").

Traps: `creation_date_earliest`/`latest` are ISO dates, BCE ones with a minus ("-0206-01-05");
`item_width` etc. are inches with 0.0 meaning unknown; some names hold Windows-1252 bytes read
as Latin-1 ("Franti\\x9aek"), which `text.clean` repairs for display.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .base import Malformed, RawRecord, Skipped, StockFields
from .reading import read_json
from .text import first_text


class CmoaAdapter:
    name = "cmoa"
    institution = "Carnegie Museum of Art"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = (
        "web_url",
        "physical_location",
        "date_acquired",
        "provenance_text",
    )

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        """JSON Lines (or one per-object JSON file, or a JSON array of them)."""
        return read_json(path)

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
        if not first_text(data.get("title")):
            return Malformed(record.line, "missing title")
        if not first_text(data.get("id"), data.get("accession_number")):
            return Malformed(record.line, "missing id")
        # Years are not checked: an unreadable date never makes a record malformed.
        return Skipped("not open access", first_text(data.get("id"), data.get("accession_number")))
