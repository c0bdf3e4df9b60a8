"""Tate (London): per-artwork JSON from GitHub tategallery/collection, bundled as JSON Lines.

Tate's metadata is CC0 but its images are not openly licensed (they are licensed commercially;
a `null` thumbnailCopyright does not make one open), so every sound record is
Skipped("not open access"). Records are still checked far enough to report broken ones.

`describe` maps a record's metadata (what the catalog would hold if its image were open,
tags from the subject tree, classification and movements included) whatever its licence: for
a licence change, and for metadata-only uses such as the search-quality benchmark.

Traps: `dateText` uses en dashes ("1826\u20137, reprinted 1892") while `dateRange.text` uses
hyphens; `dateRange` is null for "date not known"; width/height/depth are strings, often "".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import Malformed, RawRecord, Skipped, StockFields
from .dates import choose_years
from .reading import read_json
from .text import as_list, clean, dig, first_text, unique

# Subject terms with a qualifier that says nothing ("dog - non-specific" is a dog).
NON_SPECIFIC = " - non-specific"


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

    def describe(self, record: RawRecord) -> StockFields | Malformed:
        """The record's metadata as catalog fields, whatever its licence (no image, no
        rights: Tate's images are not open)."""
        outcome = self.map(record)
        if isinstance(outcome, Malformed):
            return outcome
        data = record.data
        date_text = clean(data.get("dateText"))
        year_start, year_end = choose_years(
            dig(data, "dateRange", "startYear"), dig(data, "dateRange", "endYear"), date_text
        )
        return StockFields(
            source_id=outcome.source_id,
            title=first_text(data.get("title"), data.get("foreignTitle")),
            creator="; ".join(
                unique(clean(dig(c, "fc")) for c in as_list(data.get("contributors")))
                or unique([clean(data.get("all_artists"))])
            ),
            date_text=date_text,
            year_start=year_start,
            year_end=year_end,
            medium=clean(data.get("medium")),
            dimensions=clean(data.get("dimensions")),
            institution=self.institution,
            page_url=clean(data.get("url")),
            tags=unique(
                [
                    *subject_terms(data.get("subjects")),
                    *(clean(dig(m, "name")) for m in as_list(data.get("movements"))),
                    *classification_terms(data.get("classification")),
                ]
            ),
            raw=data,
        )


def subject_terms(tree: Any) -> list[str]:
    """The terms of Tate's subject tree below its broad top level ("nature", "people"): the
    groups ("landscape", "portraits") and their leaves ("river", "cat"), in tree order."""
    terms: list[str] = []

    def walk(node: Any, depth: int) -> None:
        for child in as_list(dig(node, "children")):
            name = clean(dig(child, "name")).removesuffix(NON_SPECIFIC)
            if depth >= 1 and name:
                terms.append(name)
            walk(child, depth + 1)

    walk(tree, 0)  # the root ("subject") and its children (broad areas) give no terms
    return terms


def classification_terms(value: object) -> list[str]:
    """ "on paper, print" -> ["print"]: the kind of work, without the support or "unique"."""
    return [
        part
        for part in (p.strip() for p in clean(value).split(","))
        if part and part not in ("on paper", "unique")
    ]
