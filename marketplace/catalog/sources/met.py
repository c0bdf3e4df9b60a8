"""The Metropolitan Museum of Art: Collection API objects, and the MetObjects.csv bulk export.

JSON: single-object API responses (GET /public/collection/v1/objects/{objectID}), one per
file, a JSON array of them, or JSON Lines. The API writes absent values as "" (not null),
except `constituents` and `tags`. Open access means `isPublicDomain` and a `primaryImage`;
the Met releases images of its public-domain works, and all its data, under CC0. Images:
`primaryImage` (the original), then `additionalImages` (other views, originals too).

CSV: MetObjects.csv (github.com/metmuseum/openaccess): UTF-8 with a BOM, comma-separated,
quoted fields that may span lines, multi-valued fields joined by "|". It has no image URL
column (the images come from the API), so its public-domain rows are Skipped("no image URL")
unless a primary-image column was added (one of PRIMARY_IMAGE_COLUMNS). A header without
REQUIRED_COLUMNS is one Malformed(1, "missing columns: ...") naming them.

Which format a file is: .csv means CSV, .json/.jsonl JSON, otherwise its first bytes decide.
Some saved objects point `objectURL` at the Met's staging host (wwwstg.metmuseum.org);
we link the public site instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from .dates import record_basics
from .reading import looks_like_csv, read_csv, read_json
from .text import as_list, clean, dig, unique

REQUIRED_COLUMNS = ("Object ID", "Is Public Domain", "Title")
PRIMARY_IMAGE_COLUMNS = ("primaryImage", "Primary Image", "Primary Image URL")
ADDITIONAL_IMAGES_COLUMNS = ("additionalImages", "Additional Images")
# What the object is, where and when it was made: searchable as tags beside the Met's own
# subject tags (so "Chinese ceramics" finds a Qing porcelain cover: culture "China",
# classification "Ceramics"). The API's names, then the same columns of MetObjects.csv.
DESCRIPTIVE_FIELDS = (
    "objectName",
    "classification",
    "culture",
    "period",
    "dynasty",
    "reign",
    "country",
    "region",
    "department",
)
DESCRIPTIVE_COLUMNS = (
    "Object Name",
    "Classification",
    "Culture",
    "Period",
    "Dynasty",
    "Reign",
    "Country",
    "Region",
    "Department",
)
STAGING_HOST = "://wwwstg.metmuseum.org/"
PUBLIC_HOST = "://www.metmuseum.org/"
RIGHTS_STATEMENT = (
    "Public domain. Image and data released by The Metropolitan Museum of Art under CC0 1.0 "
    "(Open Access)."
)


class MetAdapter:
    name = "met"
    institution = "The Metropolitan Museum of Art"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("objectID", "isPublicDomain", "Object ID", "Is Public Domain")

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        if looks_like_csv(path):
            return read_csv(path, REQUIRED_COLUMNS)
        return read_json(path)

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        if "objectID" not in record.data and "Object ID" in record.data:
            return self._map_csv_row(record)
        return self._map_api_object(record)

    def _map_api_object(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
        basics = record_basics(
            record.line,
            title=clean(data.get("title")),
            source_id=clean(data.get("objectID")),
            date_text=clean(data.get("objectDate")),
            start=data.get("objectBeginDate"),
            end=data.get("objectEndDate"),
        )
        if isinstance(basics, Malformed):
            return basics
        title, source_id, date_text = basics.title, basics.source_id, basics.date_text
        year_start, year_end = basics.year_start, basics.year_end
        if data.get("isPublicDomain") is not True:
            return Skipped("not open access", source_id)
        image_urls = unique(
            [clean(data.get("primaryImage")), *map(clean, as_list(data.get("additionalImages")))],
            fold_case=False,
        )
        if not clean(data.get("primaryImage")):
            return Skipped("no image URL", source_id)
        return self._fields(
            data,
            source_id=source_id,
            title=title,
            # Every constituent, not only the display name (the first artist of several).
            creator="; ".join(
                unique(
                    [
                        clean(data.get("artistDisplayName")),
                        *map(_constituent, as_list(data.get("constituents"))),
                    ]
                )
            ),
            date_text=date_text,
            years=(year_start, year_end),
            medium=clean(data.get("medium")),
            dimensions=clean(data.get("dimensions")),
            page_url=clean(data.get("objectURL")),
            image_urls=image_urls,
            tags=unique(
                [
                    *(clean(dig(tag, "term")) for tag in as_list(data.get("tags"))),
                    *(clean(data.get(name)) for name in DESCRIPTIVE_FIELDS),
                ]
            ),
        )

    def _map_csv_row(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        row = record.data
        basics = record_basics(
            record.line,
            title=clean(row.get("Title")),
            source_id=clean(row.get("Object ID")),
            date_text=clean(row.get("Object Date")),
            start=row.get("Object Begin Date"),
            end=row.get("Object End Date"),
        )
        if isinstance(basics, Malformed):
            return basics
        title, source_id, date_text = basics.title, basics.source_id, basics.date_text
        year_start, year_end = basics.year_start, basics.year_end
        if clean(row.get("Is Public Domain")).lower() != "true":
            return Skipped("not open access", source_id)
        primary = next((clean(row.get(c)) for c in PRIMARY_IMAGE_COLUMNS if clean(row.get(c))), "")
        if not primary:
            # Only a file with an image column says the image is gone; MetObjects.csv as the
            # Met publishes it has none, and must not withdraw what the API gave us.
            has_column = any(c in row for c in PRIMARY_IMAGE_COLUMNS)
            return Skipped("no image URL", source_id if has_column else "")
        additional = next((str(row[c]) for c in ADDITIONAL_IMAGES_COLUMNS if row.get(c)), "")
        return self._fields(
            row,
            source_id=source_id,
            title=title,
            creator="; ".join(_split_pipes(row.get("Artist Display Name"))),
            date_text=date_text,
            years=(year_start, year_end),
            medium=clean(row.get("Medium")),
            dimensions=clean(row.get("Dimensions")),
            page_url=clean(row.get("Link Resource")),
            image_urls=unique([primary, *_split_pipes(additional)], fold_case=False),
            tags=unique(
                [
                    *_split_pipes(row.get("Tags")),
                    *(part for name in DESCRIPTIVE_COLUMNS for part in _split_pipes(row.get(name))),
                ]
            ),
        )

    def _fields(
        self,
        raw: dict[str, Any],
        *,
        source_id: str,
        title: str,
        creator: str,
        date_text: str,
        years: tuple[int | None, int | None],
        medium: str,
        dimensions: str,
        page_url: str,
        image_urls: tuple[str, ...],
        tags: tuple[str, ...],
    ) -> StockFields:
        return StockFields(
            source_id=source_id,
            title=title,
            creator=creator,
            date_text=date_text,
            year_start=years[0],
            year_end=years[1],
            medium=medium,
            dimensions=dimensions,
            institution=self.institution,
            page_url=page_url.replace(STAGING_HOST, PUBLIC_HOST, 1),
            image_urls=image_urls,
            rights_statement=RIGHTS_STATEMENT,
            rights_uri=CC0_URI,
            tags=tags,
            raw=raw,
        )


def _split_pipes(value: object) -> list[str]:
    """The parts of a "|"-joined CSV field ("Artist A|Artist B"), cleaned, empties dropped."""
    return [part for part in map(clean, str(value or "").split("|")) if part]


def _constituent(constituent: Any) -> str:
    """A constituent's name, with its role when it is not the artist ("Name (Publisher)")."""
    name, role = clean(dig(constituent, "name")), clean(dig(constituent, "role"))
    if not name or not role or role.casefold() == "artist":
        return name
    return f"{name} ({role})"
