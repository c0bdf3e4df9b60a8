"""What every museum adapter does: stream a source file, map each record or say why not.

An adapter is one small module in this package implementing `Adapter`. The ingest service
(`marketplace.catalog.ingest`) owns the database side: idempotency, batching, the ledger.
Adapters are pure: no Flask, no SQLAlchemy, no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

CC0_URI = "https://creativecommons.org/publicdomain/zero/1.0/"
PDM_URI = "https://creativecommons.org/publicdomain/mark/1.0/"


@dataclass(frozen=True)
class RawRecord:
    """One record as read from the file, with where it came from (for error reports)."""

    line: int  # 1-based line (JSONL/CSV) or position in a JSON array
    data: dict[str, Any]
    # The record's bytes as read (a JSON line without its line break), when the record is a
    # line of its own: the ingest hashes them instead of serialising `data` again.
    source_bytes: bytes | None = None


@dataclass(frozen=True)
class Malformed:
    """A record (or line) that cannot be read or is broken; reported with its line number."""

    line: int
    reason: str  # short, stable phrase: "missing title", "bad year", "broken encoding", ...


@dataclass(frozen=True)
class Skipped:
    """A sound record that does not qualify for the catalog, and why.

    `source_id` is given when the skip is the source's own statement about that record (it is
    not open access, or its image field is empty): a stock record with that id is then
    withdrawn. It stays "" when the file merely cannot tell (a bulk export without an image
    column), so such a file never withdraws anything.
    """

    reason: str  # stable phrase: "not open access", "no image URL", ...
    source_id: str = ""


@dataclass(frozen=True)
class StockFields:
    """A public-domain record mapped to our catalog fields."""

    source_id: str  # the institution's stable id for the record
    title: str
    creator: str = ""
    date_text: str = ""
    year_start: int | None = None
    year_end: int | None = None
    medium: str = ""
    dimensions: str = ""
    institution: str = ""
    page_url: str = ""
    image_urls: tuple[str, ...] = ()  # best first
    # The image's size as the source states it (aspect ratio and size filters work before the
    # image is mirrored; mirroring replaces them with the measured size).
    image_width: int | None = None
    image_height: int | None = None
    rights_statement: str = ""
    rights_uri: str = ""  # CC0_URI or PDM_URI
    description: str = ""
    tags: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # the source record, kept for provenance


class Adapter(Protocol):
    name: str  # the SOURCE argument of `marketplace ingest SOURCE FILE`
    institution: str
    # Top-level fields only this source's records have (any one will do; for the
    # Smithsonian, also one level down in `content`): a file whose records carry none of them
    # is not this source's, and is refused before anything is written.
    signature: tuple[str, ...]

    def read(self, path: Path) -> Iterator[RawRecord | Malformed]:
        """Stream the file's records in order, with flat memory whatever the file size."""
        ...

    def map(self, record: RawRecord) -> StockFields | Skipped | Malformed:
        """Map one record, or say why it is skipped or malformed."""
        ...


def carries_signature(adapter: Adapter, data: dict[str, Any]) -> bool:
    """Whether a record has any of the fields that mark `adapter`'s source."""
    content = data.get("content")
    keys = set(data) | (set(content) if isinstance(content, dict) else set())
    return any(name in keys for name in adapter.signature)
