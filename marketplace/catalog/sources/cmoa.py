"""Carnegie Museum of Art (Pittsburgh): per-object JSON from GitHub cmoa/collection, as JSON Lines.

The metadata is CC0 but the images are not (image rights go through the museum's Rights and
Reproduction department and are not exported), so every sound record is
Skipped("not open access"). Records are still checked far enough to report broken ones: 13
records of the sample have a null title (Heinz Architectural Center drawings) and come out as
Malformed(line, "missing title").

`describe` maps a record's metadata (what the catalog would hold if its image were open; tags
from its classification, department and its makers' nationalities) whatever its licence: for
a licence change, and for metadata-only uses such as the search-quality benchmark.

Traps: `creation_date_earliest`/`latest` are ISO dates, BCE ones with a minus ("-0206-01-05");
`item_width` etc. are inches with 0.0 meaning unknown; some names hold Windows-1252 bytes read
as Latin-1 ("Franti\\x9aek"), which `text.clean` repairs for display.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .base import Malformed, RawRecord, Skipped, StockFields
from .dates import choose_years
from .reading import read_json
from .text import as_list, clean, dig, first_text, unique


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

    def describe(self, record: RawRecord) -> StockFields | Malformed:
        """The record's metadata as catalog fields, whatever its licence (no image, no
        rights: CMOA's images are not open)."""
        outcome = self.map(record)
        if isinstance(outcome, Malformed):
            return outcome
        data = record.data
        date_text = clean(data.get("creation_date"))
        year_start, year_end = choose_years(
            data.get("creation_date_earliest"), data.get("creation_date_latest"), date_text
        )
        makers = as_list(data.get("creator"))
        return StockFields(
            source_id=outcome.source_id,
            title=first_text(data.get("title")),
            creator="; ".join(unique(clean(dig(maker, "full_name")) for maker in makers)),
            date_text=date_text,
            year_start=year_start,
            year_end=year_end,
            medium=clean(data.get("medium")),
            institution=self.institution,
            page_url=clean(data.get("web_url")),
            tags=unique(
                [
                    clean(data.get("classification")),
                    clean(data.get("department")),
                    *(clean(dig(maker, "nationality")) for maker in makers),
                ]
            ),
            raw=data,
        )
