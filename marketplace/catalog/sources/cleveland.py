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

Trap: BC dates keep positive structured years ("400-375 BC" has creation_date_earliest 400
and latest 375); when the text says BC we make them negative, our BCE convention.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from .dates import parse_date_text, record_basics
from .reading import read_json
from .text import as_list, clean, clean_html, dig, first_text, positive_int, unique

IMAGE_SIZES = ("print", "web")  # best first; "full" (TIFF) deliberately left out


class ClevelandAdapter:
    name = "cleveland"
    institution = "Cleveland Museum of Art"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("share_license_status",)

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        return read_json(path, ("data",))

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
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
            return Skipped("no image URL", source_id)
        largest = next((dig(images, size) for size in IMAGE_SIZES if dig(images, size)), None)
        return StockFields(
            source_id=source_id,
            title=title,
            creator="; ".join(
                unique(
                    clean(dig(creator, "description")) for creator in as_list(data.get("creators"))
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
            tags=unique([clean(data.get("type")), *map(clean, as_list(data.get("culture")))]),
            raw=data,
        )


def _as_bce(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """Negate positive years of a BC date, keeping start <= end."""
    first = -start if start is not None and start > 0 else start
    last = -end if end is not None and end > 0 else end
    if first is not None and last is not None and first > last:
        first, last = last, first
    return first, last
