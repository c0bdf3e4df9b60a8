"""Cleveland Museum of Art: Open Access API artwork records.

Reads saved API responses ({"data": [...], "info": ...}), a single record, a JSON array of
records, or JSON Lines of records or of responses; a response's list is streamed, so a dump of
the whole collection loads with flat memory.

Open access means `share_license_status` is "CC0"; the museum waives its rights in the data
and the images under CC0, wall labels included, so `wall_description` is our description.

Images, best first: `images.print` (JPEG, about 3,400 px) then `images.web` (JPEG, about
1,000-1,300 px). `images.full` is left out: it is an uncompressed TIFF of tens of MB (72 MB for
1335.1917), too heavy to fetch as a catalog image; it stays in `raw`. A CC0 record with
neither JPEG is Skipped("no image URL").

The bulk export (github.com/ClevelandMuseumArt/openaccess) also comes as CSV (data.csv,
UTF-8, quoted fields that may span lines): the same fields as columns, images flattened into
URL columns (`image_web`, `image_print`, `image_full`), and list or object fields (`creators`,
`culture`) written as JSON (or Python-literal) text. A row is read into the API's shape before
mapping, and kept as read in `raw`. A header without REQUIRED_COLUMNS is one
Malformed(1, "missing columns: ...").

Trap: BC dates keep positive structured years ("400-375 BC" has creation_date_earliest 400
and latest 375); when the text says BC we make them negative, our BCE convention.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from .dates import parse_date_text, record_basics
from .reading import looks_like_csv, read_csv, read_json
from .text import as_list, clean, clean_html, dig, first_text, positive_int, unique

IMAGE_SIZES = ("print", "web")  # best first; "full" (TIFF) deliberately left out
REQUIRED_COLUMNS = ("id", "title", "share_license_status")
CSV_IMAGE_COLUMN = "image_{size}"  # the CSV's flattened images.<size>.url
CSV_STRUCTURED_COLUMNS = ("creators", "culture")  # JSON (or Python-literal) text in the CSV


class ClevelandAdapter:
    name = "cleveland"
    institution = "Cleveland Museum of Art"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("share_license_status",)

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        if not looks_like_csv(path):
            yield from read_json(path, ("data",))
            return
        for item in read_csv(path, REQUIRED_COLUMNS):
            yield CsvRow(item.line, item.data) if isinstance(item, RawRecord) else item

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = _from_csv_row(record.data) if isinstance(record, CsvRow) else record.data
        basics = record_basics(
            record.line,
            title=first_text(data.get("title")),
            source_id=clean(data.get("id")),
            date_text=clean(data.get("creation_date")),
            start=data.get("creation_date_earliest"),
            end=data.get("creation_date_latest"),
        )
        if isinstance(basics, Malformed):
            return basics
        title, source_id, date_text = basics.title, basics.source_id, basics.date_text
        year_start, year_end = basics.year_start, basics.year_end
        if any(year is not None and year < 0 for year in parse_date_text(date_text)):
            year_start, year_end = _as_bce(year_start, year_end)
        if data.get("share_license_status") != "CC0":
            return Skipped("not open access", source_id)
        images = data.get("images")
        image_urls = unique(
            (clean(dig(images, size, "url")) for size in IMAGE_SIZES), fold_case=False
        )
        if not image_urls:
            # A CSV without image columns says nothing about the images: withdraw nothing.
            says_so = not isinstance(record, CsvRow) or _has_image_columns(record.data)
            return Skipped("no image URL", source_id if says_so else "")
        largest = next((dig(images, size) for size in IMAGE_SIZES if dig(images, size)), None)
        return StockFields(
            source_id=source_id,
            title=title,
            creator="; ".join(
                unique(
                    clean(dig(creator, "description") if isinstance(creator, dict) else creator)
                    for creator in as_list(data.get("creators"))
                )
            ),
            date_text=date_text,
            year_start=year_start,
            year_end=year_end,
            medium=clean(data.get("technique")),
            dimensions=clean(data.get("measurements")),
            institution=self.institution,
            page_url=clean(data.get("url")),
            image_urls=image_urls,
            image_width=positive_int(dig(largest, "width")),
            image_height=positive_int(dig(largest, "height")),
            rights_statement=(
                "Public domain. Image and data released by the Cleveland Museum of Art "
                "under CC0 1.0 (Open Access)."
            ),
            rights_uri=CC0_URI,
            description=clean_html(data.get("wall_description"))
            or clean_html(data.get("digital_description")),
            # What it is, where and when it was made, which department holds it: searchable.
            tags=unique(
                [
                    clean(data.get("type")),
                    *map(clean, as_list(data.get("culture"))),
                    clean(data.get("department")),
                ]
            ),
            raw=record.data,
        )


def _as_bce(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """Negate positive years of a BC date, keeping start <= end."""
    first = -start if start is not None and start > 0 else start
    last = -end if end is not None and end > 0 else end
    if first is not None and last is not None and first > last:
        first, last = last, first
    return first, last


@dataclass(frozen=True)
class CsvRow(RawRecord):
    """A row of data.csv (flat columns), as opposed to an API record."""


def _has_image_columns(row: dict[str, Any]) -> bool:
    return any(CSV_IMAGE_COLUMN.format(size=size) in row for size in IMAGE_SIZES)


def _from_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A data.csv row in the API's shape: images as {size: {"url": ...}}, lists parsed."""
    data = dict(row)
    data["images"] = {
        size: {"url": row[column]}
        for size in (*IMAGE_SIZES, "full")
        if (column := CSV_IMAGE_COLUMN.format(size=size)) in row and clean(row[column])
    }
    for column in CSV_STRUCTURED_COLUMNS:
        if column in row:
            data[column] = _structured(row[column])
    return data


def _structured(text: object) -> Any:
    """A cell holding a list or object as JSON or as a Python literal; other text as a
    one-item list ("America, 18th century"), an empty cell as []."""
    if not isinstance(text, str) or not text.strip():
        return []
    stripped = text.strip()
    if stripped[0] in "[{":
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(stripped)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            return value if isinstance(value, list) else [value]
    return [stripped]
