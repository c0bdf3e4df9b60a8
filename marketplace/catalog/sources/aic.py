"""Art Institute of Chicago: artwork records (the API's `data` objects), as JSON Lines.

Open access means `is_public_domain` is true and the record has an `image_id`; the museum
releases those images, and all of this data but one field, under CC0.

The `description` field is CC BY 4.0, not CC0 (see `license_text` in aic_info.json). We
would owe an attribution wherever it appears, so we drop it: it is not our description and
it is removed from `raw` too. Every other field is kept as read.

Images come from the museum's IIIF server. Its base URL is `iiif_url` in the API's config
(aic_config.json beside the data file, when there is one), else the documented default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import CC0_URI, Malformed, RawRecord, Skipped, StockFields
from .dates import record_basics
from .reading import read_json
from .text import as_list, clean, dig, first_text, positive_int, unique

log = logging.getLogger(__name__)

DEFAULT_IIIF_URL = "https://www.artic.edu/iiif/2"
CONFIG_NAME = "aic_config.json"
PAGE_URL = "https://www.artic.edu/artworks/{id}"
# 843 px wide is the size the museum recommends (and caches); 1686 is offered when the
# original is at least that wide, since IIIF servers refuse to upscale.
IMAGE_URL = "{base}/{image_id}/full/{width},/0/default.jpg"
LARGE_WIDTH = 1686
STANDARD_WIDTH = 843
CC_BY_FIELDS = ("description",)
# What the work is, shows and comes from, searchable as tags: the museum's classification,
# subject, style, theme and term (AAT) lists, then its type, department and place of origin.
DESCRIPTIVE_LISTS = (
    "classification_titles",
    "subject_titles",
    "style_titles",
    "theme_titles",
    "term_titles",
)
DESCRIPTIVE_FIELDS = ("artwork_type_title", "department_title", "place_of_origin")


@dataclass(frozen=True)
class AicRecord(RawRecord):
    """A record with the IIIF base URL of the file it came from."""

    iiif_url: str = DEFAULT_IIIF_URL


class AicAdapter:
    name = "aic"
    institution = "Art Institute of Chicago"
    # Fields only this source's records have: how a file of another source is told apart.
    signature: tuple[str, ...] = ("is_public_domain", "artist_display", "image_id", "api_link")

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        """JSON Lines of artworks (or a JSON array, or API responses {"data": ...})."""
        iiif_url = iiif_url_beside(path)
        for item in read_json(path, ("data",)):
            yield (
                AicRecord(item.line, item.data, item.source_bytes, iiif_url)
                if isinstance(item, RawRecord)
                else item
            )

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        data = record.data
        basics = record_basics(
            record.line,
            title=first_text(data.get("title")),
            source_id=clean(data.get("id")),
            date_text=clean(data.get("date_display")),
            start=data.get("date_start"),
            end=data.get("date_end"),
        )
        if isinstance(basics, Malformed):
            return basics
        title, source_id, date_text = basics.title, basics.source_id, basics.date_text
        year_start, year_end = basics.year_start, basics.year_end
        if data.get("is_public_domain") is not True:
            return Skipped("not open access", source_id)
        image_id = clean(data.get("image_id"))
        if not image_id:
            return Skipped("no image URL", source_id)
        base = record.iiif_url if isinstance(record, AicRecord) else DEFAULT_IIIF_URL
        artist_lines = str(data.get("artist_display") or "").splitlines()
        return StockFields(
            source_id=source_id,
            title=title,
            # Every credited artist (artist_titles), the primary one first; the first line of
            # artist_display when the record names none.
            creator="; ".join(
                unique(
                    [
                        clean(data.get("artist_title")),
                        *map(clean, as_list(data.get("artist_titles"))),
                    ]
                )
                or unique([first_text(*artist_lines[:1])])
            ),
            date_text=date_text,
            year_start=year_start,
            year_end=year_end,
            medium=clean(data.get("medium_display")),
            dimensions=clean(data.get("dimensions")),
            institution=self.institution,
            page_url=PAGE_URL.format(id=source_id),
            image_urls=_image_urls(base, image_id, data),
            image_width=positive_int(dig(data, "thumbnail", "width")),
            image_height=positive_int(dig(data, "thumbnail", "height")),
            rights_statement=(
                "Public domain. Image and data released by the Art Institute of Chicago "
                "under CC0 1.0."
            ),
            rights_uri=CC0_URI,
            description="",  # `description` is CC BY 4.0: dropped, see the module docstring
            tags=unique(
                [
                    *(clean(tag) for name in DESCRIPTIVE_LISTS for tag in as_list(data.get(name))),
                    *(clean(data.get(name)) for name in DESCRIPTIVE_FIELDS),
                ]
            ),
            raw={key: value for key, value in data.items() if key not in CC_BY_FIELDS},
        )


def iiif_url_beside(path: Path) -> str:
    """`iiif_url` from the aic_config.json next to `path`, or the default when there is none.

    A config that cannot be read, or has no usable URL, is logged and the default used.
    """
    config_path = path.with_name(CONFIG_NAME)
    if not config_path.is_file():
        return DEFAULT_IIIF_URL
    try:
        config: Any = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        log.warning("unreadable %s; using the default IIIF URL", config_path)
        return DEFAULT_IIIF_URL
    url = config.get("iiif_url") if isinstance(config, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        log.warning("no iiif_url in %s; using the default IIIF URL", config_path)
        return DEFAULT_IIIF_URL
    return url.rstrip("/")


def _image_urls(base: str, image_id: str, data: dict[str, Any]) -> tuple[str, ...]:
    width = dig(data, "thumbnail", "width")  # the original image's width
    urls = []
    if isinstance(width, int | float) and not isinstance(width, bool) and width >= LARGE_WIDTH:
        urls.append(IMAGE_URL.format(base=base, image_id=image_id, width=LARGE_WIDTH))
    urls.append(IMAGE_URL.format(base=base, image_id=image_id, width=STANDARD_WIDTH))
    for alt_id in as_list(data.get("alt_image_ids")):
        if clean(alt_id):
            urls.append(IMAGE_URL.format(base=base, image_id=clean(alt_id), width=STANDARD_WIDTH))
    return unique(urls, fold_case=False)
