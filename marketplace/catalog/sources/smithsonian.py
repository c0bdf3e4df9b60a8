"""Smithsonian Institution: Open Access (EDAN) metadata rows.

Reads rows as the search API returns them ({"response": {"rows": [...]}}, streamed), a single
row, a JSON array of rows, or JSON Lines of rows (the layout of the bulk dump in
github.com/Smithsonian/OpenAccess) or of search responses.

Open access means the row's `content.descriptiveNonRepeating.metadata_usage.access` is "CC0"
and at least one `online_media.media[]` item of type "Images" is CC0 (`usage.access`); only
those images are listed. A row with no image at all is Skipped("no image URL"), one whose
images are not CC0 Skipped("not open access").

The page is `record_link` when given, else the Collections Search Center page of the record
(https://collections.si.edu/search/detail/edanmdm:<record_ID>). The institution names the
unit that holds the object: "Smithsonian Institution (NMNHBIRDS)".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from .dates import parse_date_text
from .reading import read_json
from .text import as_list, clean, dig, first_text, unique

SEARCH_CENTER_URL = "https://collections.si.edu/search/detail/{edan_url}"
CREATOR_LABELS = frozenset({"creator", "artist", "author", "maker", "photographer"})
SUBJECT_LABELS = frozenset({"subject", "depicted", "sitter"})
DESCRIPTION_LABELS = frozenset({"summary", "description", "brief description"})
MEDIUM_LABELS = frozenset({"medium", "physical description"})
DIMENSIONS_LABELS = frozenset({"dimensions"})
# indexedStructured lists that say what the object is, shows and comes from: searchable tags
# (a bird specimen is found by "sparrow" through its common name, an archive print by
# "photographs").
DESCRIPTIVE_FIELDS = ("topic", "object_type", "culture", "common_name", "place")


class SmithsonianAdapter:
    name = "smithsonian"
    institution = "Smithsonian Institution"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("unitCode", "descriptiveNonRepeating")

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        return read_json(path, ("response", "rows"))

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
        about = dig(data, "content", "descriptiveNonRepeating")
        title = first_text(data.get("title"), dig(about, "title", "content"))
        if not title:
            return Malformed(record.line, "missing title")
        edan_url = clean(data.get("url"))
        source_id = first_text(dig(about, "record_ID"), edan_url.removeprefix("edanmdm:"))
        if not source_id:
            return Malformed(record.line, "missing id")
        if clean(dig(about, "metadata_usage", "access")) != "CC0":
            return Skipped("not open access", source_id)
        images = [
            media
            for media in as_list(dig(about, "online_media", "media"))
            if clean(dig(media, "type")) == "Images" and clean(dig(media, "content"))
        ]
        if not images:
            return Skipped("no image URL", source_id)
        open_images = [media for media in images if clean(dig(media, "usage", "access")) == "CC0"]
        if not open_images:
            return Skipped("not open access", source_id)
        freetext = dig(data, "content", "freetext")
        dates = _texts(freetext, "date")
        date_text = "; ".join(dates)
        year_start, year_end = parse_date_text(date_text)
        unit = first_text(data.get("unitCode"), dig(about, "unit_code"))
        indexed = dig(data, "content", "indexedStructured")
        return StockFields(
            source_id=source_id,
            title=title,
            creator="; ".join(_creators(freetext)),
            date_text=date_text,
            year_start=year_start,
            year_end=year_end,
            medium="; ".join(_texts(freetext, "physicalDescription", MEDIUM_LABELS)),
            dimensions="; ".join(_texts(freetext, "physicalDescription", DIMENSIONS_LABELS)),
            institution=f"{self.institution} ({unit})" if unit else self.institution,
            page_url=clean(dig(about, "record_link"))
            or SEARCH_CENTER_URL.format(edan_url=edan_url or f"edanmdm:{source_id}"),
            image_urls=unique((clean(m.get("content")) for m in open_images), fold_case=False),
            rights_statement="Released by the Smithsonian Institution under CC0 1.0 (Open Access).",
            rights_uri=CC0_URI,
            description=" ".join(_texts(freetext, "notes", DESCRIPTION_LABELS)),
            tags=unique(
                clean(tag) for field in DESCRIPTIVE_FIELDS for tag in as_list(dig(indexed, field))
            ),
            raw=data,
        )


def _texts(freetext: Any, field: str, labels: frozenset[str] | None = None) -> list[str]:
    """The contents of freetext[field] ({label, content} items), those with `labels` only."""
    return [
        clean(dig(item, "content"))
        for item in as_list(dig(freetext, field))
        if clean(dig(item, "content"))
        and (labels is None or clean(dig(item, "label")).lower() in labels)
    ]


def _creators(freetext: Any) -> tuple[str, ...]:
    """Names from freetext.name: creators as they are, others with their role ("(collector)").

    Names labelled as subjects (what a photograph shows) are not creators and are left out.
    """
    names = []
    for item in as_list(dig(freetext, "name")):
        name, label = clean(dig(item, "content")), clean(dig(item, "label")).lower()
        if not name or label in SUBJECT_LABELS:
            continue
        names.append(name if not label or label in CREATOR_LABELS else f"{name} ({label})")
    return unique(names)
