"""The files of a dataset package, as pure functions of what the delivery job gathered.

WebDataset shards, the Parquet metadata table, Croissant JSON-LD, the dataset card, the
attribution list, the licence texts, missing.json and the EU AI Act training-content summary.
No database and no Flask: the job (`services.py`) reads the order and storage, fills in
`ItemRecord`s and a `DatasetInfo`, and calls these. Everything here is deterministic: the same
inputs give byte-identical files, so a rebuilt package has the same SHA-256s as the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from marketplace.xmp import embed_xmp

TO_BE_COMPLETED = "[TO BE COMPLETED BY THE PROVIDER]"
LICENCE_KINDS = ("licensed", "donated", "public_domain")
LICENCE_LABELS = {
    "licensed": "Licensed by the artist",
    "donated": "Donated by the artist (CC0)",
    "public_domain": "Public domain (museum open access)",
}
USE_LABELS = {  # the vocabulary of marketplace.artists.terms.PERMITTED_USES
    "generative_training": "Training generative models",
    "non_generative_training": "Training non-generative / analytic models",
    "commercial_use": "Commercial use of the trained model",
    "fine_tuning": "Fine-tuning",
    "style_imitation": "Prompting with the artist's name or imitating their style",
}
EXTENSION_FOR_MEDIA_TYPE = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MEDIA_TYPE_FOR_EXTENSION = {ext: mime for mime, ext in EXTENSION_FOR_MEDIA_TYPE.items()}
PARQUET_NAME = "metadata.parquet"
DEFAULT_MAX_SHARD_BYTES = 1 << 30
DEFAULT_MAX_SHARD_ITEMS = 10_000

_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BLOCK = tarfile.BLOCKSIZE  # 512
_RECORD = tarfile.RECORDSIZE  # 10240: tar files are padded to whole records


@dataclass(frozen=True)
class ItemRecord:
    """One item: one KEY.json in a shard and one Parquet row; field names are the column names."""

    key: str  # WebDataset key: zero-padded position, e.g. "000000042" (no dots)
    item_id: int  # catalog item id
    title: str
    creator: str  # artist or maker as the source gives it ("" if unknown)
    source: str  # museum/institution name or the artist's display name
    source_kind: str  # "artist" | "institution"
    licence: str  # "licensed" | "donated" | "public_domain"
    licence_uri: str  # e.g. the CC0 deed, or the terms URL
    terms_version: int | None
    terms_url: str  # URL of the exact terms version ("" for stock)
    terms_seq: int | None  # ledger seq of the terms entry it was sold under
    sha256: str  # of the image bytes as shipped (after XMP)
    media_type: str  # image/jpeg | image/png | image/webp
    source_url: str  # the source record's page URL (museum page or our work page)
    ledger_seq: int  # its dataset.item_sold ledger entry
    attribution_required: bool
    attribution: str  # the attribution line to print ("" when not required)


@dataclass(frozen=True)
class DatasetInfo:
    """What the package says about the order as a whole."""

    name: str  # e.g. "order-12": names the shards
    order_id: int
    order_reference: str  # public order reference shown to buyers
    organization: str  # buyer organization name
    created: datetime  # aware UTC; also the mtime of every tar member
    intended_uses: list[str]  # vocabulary of marketplace.artists.terms.PERMITTED_USES
    description: str
    base_url: str  # absolute URL of the order's package page
    publisher: str  # platform name
    ledger_origin: str
    tree_size_at_purchase: int
    checkpoint: str  # the C2SP signed note the certificate refers to


@dataclass(frozen=True)
class MissingItem:
    """An item that could not be fetched from its source (listed in missing.json, not charged)."""

    key: str
    item_id: int
    source_url: str
    reason: str


@dataclass(frozen=True)
class FileInfo:
    """A file of the package as Croissant and the manifest list it."""

    name: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ShardInfo(FileInfo):
    item_count: int
    first_key: str
    last_key: str
    image_bytes: int  # of the images in it, as shipped


@dataclass(frozen=True)
class PreparedImage:
    """An image as it goes into a shard: the consent XMP spliced in, and its digest."""

    data: bytes
    media_type: str
    sha256: str


def prepare_image(original: bytes, packet: bytes) -> PreparedImage:
    """`original` with `packet` embedded (see `marketplace.xmp.embed_xmp`). ValueError when
    the bytes are not an image."""
    data, extension = embed_xmp(original, packet)
    digest = hashlib.sha256(data).hexdigest()
    return PreparedImage(data, MEDIA_TYPE_FOR_EXTENSION[extension], digest)


_RECORD_FIELDS = tuple(f.name for f in fields(ItemRecord))


def record_json(record: ItemRecord) -> bytes:
    """KEY.json: the record's fields, UTF-8, sorted keys, compact, one trailing newline."""
    values = {name: getattr(record, name) for name in _RECORD_FIELDS}  # flat: no asdict copy
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


# --- WebDataset shards ---------------------------------------------------------------------


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def ustar_header(name: str, size: int, mtime: int) -> bytes:
    """The 512-byte POSIX USTAR header of a regular file: mode 0644, uid/gid 0, no user or
    group names. Byte for byte what `tarfile.TarInfo.tobuf(USTAR_FORMAT)` writes, built
    directly because it is on the hot path (one per member)."""
    encoded = name.encode("ascii")
    if len(encoded) > 100 or size >= 8**11 or not 0 <= mtime < 8**11:
        raise ValueError(f"{name!r}: too long a name or too large a file for USTAR")
    head = (
        encoded.ljust(100, b"\0")
        + b"0000644\0"  # mode
        + b"0000000\0" * 2  # uid, gid
        + b"%011o\0" % size
        + b"%011o\0" % mtime
    )
    tail = (
        b"0"  # typeflag: regular file
        + b"\0" * 100  # linkname
        + b"ustar\x0000"  # magic, version
    ).ljust(512 - 148 - 8, b"\0")  # uname, gname, devmajor/minor (none), prefix, padding
    checksum = sum(head) + sum(tail) + 8 * ord(" ")
    return head + b"%06o\0 " % checksum + tail


class _HashingFile:
    """A file written once, front to back, hashing as it goes (nothing held in memory).

    (A background thread for the write and the hash was tried: on two busy cores it was
    slower, the GIL hand-offs costing more than the overlap saved.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = path.open("wb")
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def finish(self) -> str:
        """Flush and fsync the file; its SHA-256."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()
        return self._digest.hexdigest()

    def abandon(self) -> None:
        """Close and delete the unfinished file."""
        self.file.close()
        self.path.unlink(missing_ok=True)


class ShardWriter:
    """Writes WebDataset shards `{name}-00000.tar`, `{name}-00001.tar`, ... into `directory`.

    Each item is two members, `KEY.<ext>` (the image bytes given) then `KEY.json`. A shard is
    closed before an item that would take it past `max_bytes` (its final size, end-of-archive
    and record padding included) or `max_items`; an item larger than `max_bytes` on its own
    gets a shard of its own. Headers are fixed (USTAR, mtime = `created`, uid/gid 0, no user
    or group names, mode 0644), so the same items give byte-identical shards. A shard is
    written as `*.tar.part` and renamed when complete, so a crash leaves no file that looks
    finished. Keys must arrive in strictly increasing order (WebDataset groups a sample's
    members by adjacent keys, and readers expect sorted shards).
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        created: datetime,
        *,
        max_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        max_items: int = DEFAULT_MAX_SHARD_ITEMS,
    ) -> None:
        if created.tzinfo is None:
            raise ValueError("created must be an aware datetime")
        if not _KEY.fullmatch(name):
            raise ValueError(f"shard name {name!r} must be letters, digits, '-' or '_'")
        if max_items < 1 or max_bytes < 4 * _RECORD:
            raise ValueError("max_items must be >= 1 and max_bytes >= 40 KiB")
        self.directory = Path(directory)
        self.name = name
        self.mtime = int(created.timestamp())
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.shards: list[ShardInfo] = []
        self._file: _HashingFile | None = None
        self._items = 0
        self._image_bytes = 0
        self._first_key = ""
        self._last_key = ""

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Finish the last shard; after an exception, delete the unfinished one instead."""
        if exc_info[0] is None:
            self.close()
        elif self._file is not None:
            self._file.abandon()
            self._file = None

    def add(self, record: ItemRecord, image: bytes | PreparedImage) -> None:
        """Append one item. ValueError if the key is malformed or out of order, or if the
        image does not match the record's sha256 or media type (a `PreparedImage` carries
        the digest `prepare_image` computed, so it is not hashed twice)."""
        if not _KEY.fullmatch(record.key):
            raise ValueError(f"key {record.key!r} must be 1-64 letters, digits, '-' or '_'")
        if self._last_key and record.key <= self._last_key:
            raise ValueError(f"key {record.key!r} does not sort after {self._last_key!r}")
        extension = EXTENSION_FOR_MEDIA_TYPE.get(record.media_type)
        if extension is None:
            raise ValueError(f"media type {record.media_type!r} is not JPEG, PNG or WebP")
        if isinstance(image, PreparedImage):
            data, digest, media_type = image.data, image.sha256, image.media_type
        else:
            data, digest, media_type = image, hashlib.sha256(image).hexdigest(), None
        if digest != record.sha256 or media_type not in (None, record.media_type):
            raise ValueError(
                f"item {record.key}: image does not match the record's sha256 or media type"
            )
        meta = record_json(record)
        item_bytes = 2 * _BLOCK + _padded(len(data)) + _padded(len(meta))
        if self._file is not None and (
            self._items >= self.max_items
            or self._final_size(self._file.size + item_bytes) > self.max_bytes
        ):
            self._finish()
        if self._file is None:
            self._start()
        assert self._file is not None
        self._member(f"{record.key}.{extension}", data)
        self._member(f"{record.key}.json", meta)
        self._items += 1
        self._image_bytes += len(data)
        self._first_key = self._first_key or record.key
        self._last_key = record.key

    def close(self) -> list[ShardInfo]:
        """Finish the last shard; the shards written, in order (none if no item was added)."""
        if self._file is not None:
            self._finish()
        return list(self.shards)

    @staticmethod
    def _final_size(content: int) -> int:
        return -(-(content + 2 * _BLOCK) // _RECORD) * _RECORD

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.name}-{len(self.shards):05d}.tar.part"
        self._file = _HashingFile(path)
        self._items = self._image_bytes = 0
        self._first_key = ""

    def _member(self, member_name: str, data: bytes) -> None:
        assert self._file is not None
        self._file.write(ustar_header(member_name, len(data), self.mtime))
        self._file.write(data)
        if len(data) % _BLOCK:
            self._file.write(b"\0" * (_BLOCK - len(data) % _BLOCK))

    def _finish(self) -> None:
        assert self._file is not None
        out = self._file
        out.write(b"\0" * (self._final_size(out.size) - out.size))
        digest = out.finish()
        final = out.path.with_suffix("")  # drop ".part"
        out.path.replace(final)
        self.shards.append(
            ShardInfo(
                name=final.name,
                size_bytes=out.size,
                sha256=digest,
                item_count=self._items,
                first_key=self._first_key,
                last_key=self._last_key,
                image_bytes=self._image_bytes,
            )
        )
        self._file = None


# --- Parquet -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One ItemRecord field as Parquet stores it and Croissant describes it."""

    name: str
    arrow_type: pa.DataType
    nullable: bool
    croissant_type: str
    description: str


COLUMNS = (
    Column(
        "key",
        pa.string(),
        False,
        "sc:Text",
        "WebDataset key: the item's position in the order, zero-padded; its files in the "
        "shards are KEY.<ext> and KEY.json.",
    ),
    Column("item_id", pa.int64(), False, "sc:Integer", "Catalog item id."),
    Column("title", pa.string(), False, "sc:Text", "Title of the work."),
    Column(
        "creator",
        pa.string(),
        False,
        "sc:Text",
        "Artist or maker as the source gives it (empty if unknown).",
    ),
    Column("source", pa.string(), False, "sc:Text", "Institution, or the artist's display name."),
    Column("source_kind", pa.string(), False, "sc:Text", "'artist' or 'institution'."),
    Column("licence", pa.string(), False, "sc:Text", "'licensed', 'donated' or 'public_domain'."),
    Column(
        "licence_uri",
        pa.string(),
        False,
        "sc:URL",
        "Licence: the CC0 deed, a public-domain mark or the artist's terms.",
    ),
    Column(
        "terms_version",
        pa.int64(),
        True,
        "sc:Integer",
        "Version of the artist's terms the item was sold under (null for stock).",
    ),
    Column(
        "terms_url",
        pa.string(),
        False,
        "sc:URL",
        "URL of that exact terms version (empty for stock).",
    ),
    Column(
        "terms_seq",
        pa.int64(),
        True,
        "sc:Integer",
        "Ledger sequence number of the terms entry (null for stock).",
    ),
    Column("sha256", pa.string(), False, "sc:Text", "SHA-256 of the image file as shipped, hex."),
    Column("media_type", pa.string(), False, "sc:Text", "image/jpeg, image/png or image/webp."),
    Column("source_url", pa.string(), False, "sc:URL", "The source record's page."),
    Column(
        "ledger_seq",
        pa.int64(),
        False,
        "sc:Integer",
        "Ledger sequence number of the item's dataset.item_sold entry.",
    ),
    Column(
        "attribution_required",
        pa.bool_(),
        False,
        "sc:Boolean",
        "Whether the item's terms require attribution.",
    ),
    Column(
        "attribution",
        pa.string(),
        False,
        "sc:Text",
        "The attribution line to print (empty when not required).",
    ),
)
PARQUET_SCHEMA = pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in COLUMNS])
_PARQUET_BATCH = 65_536


def write_parquet(records: Iterable[ItemRecord], path: Path) -> FileInfo:
    """metadata.parquet: one row per item, in the order given, read by pandas, pyarrow and
    Hugging Face `datasets`. Row groups of 65,536 rows, zstd, fixed writer options: the same
    records give the same bytes (with the same pyarrow version, which names itself in the
    footer's created_by)."""
    path = Path(path)
    names = [c.name for c in COLUMNS]
    if names != [f.name for f in fields(ItemRecord)]:
        raise RuntimeError("COLUMNS is out of step with ItemRecord")  # pragma: no cover
    with pq.ParquetWriter(
        path,
        PARQUET_SCHEMA,
        compression="zstd",
        compression_level=3,
        version="2.6",
        data_page_version="1.0",
        use_dictionary=True,
        write_statistics=True,
    ) as writer:
        batch: list[ItemRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) == _PARQUET_BATCH:
                writer.write_table(_table(batch))
                batch = []
        if batch:
            writer.write_table(_table(batch))
    return file_info(path)


def _table(records: Sequence[ItemRecord]) -> pa.Table:
    columns = {c.name: [getattr(r, c.name) for r in records] for c in COLUMNS}
    return pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA)


def file_info(path: Path) -> FileInfo:
    """Name, size and SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return FileInfo(Path(path).name, Path(path).stat().st_size, digest.hexdigest())


# --- Counts the documents share ------------------------------------------------------------


@dataclass(frozen=True)
class SourceCount:
    source: str
    source_kind: str
    licence: str
    items: int


@dataclass(frozen=True)
class PackageSummary:
    """What the card, Croissant and the AI Act summary say about the items, counted once."""

    items: int
    image_bytes: int
    by_licence: dict[str, int]  # every LICENCE_KINDS key, in that order
    sources: list[SourceCount]  # by licence kind, then most items first, then name
    licence_uris: list[str]  # distinct, sorted
    media_types: list[str]  # distinct, sorted
    attribution_required: int
    shards: list[ShardInfo] = field(default_factory=list)


def summarize(records: Iterable[ItemRecord], shards: Sequence[ShardInfo]) -> PackageSummary:
    """Count the records in one pass (they may be a generator over a large order)."""
    by_licence: Counter[str] = Counter()
    by_source: Counter[tuple[str, str, str]] = Counter()
    uris: set[str] = set()
    media: set[str] = set()
    attribution = 0
    for record in records:
        by_licence[record.licence] += 1
        by_source[(record.licence, record.source_kind, record.source)] += 1
        uris.add(record.licence_uri)
        media.add(record.media_type)
        attribution += record.attribution_required
    unknown = set(by_licence) - set(LICENCE_KINDS)
    if unknown:
        raise ValueError(f"unknown licence kinds {sorted(unknown)}")
    order = {kind: i for i, kind in enumerate(LICENCE_KINDS)}
    sources = sorted(
        (SourceCount(source, kind, licence, n) for (licence, kind, source), n in by_source.items()),
        key=lambda s: (order[s.licence], -s.items, s.source, s.source_kind),
    )
    return PackageSummary(
        items=sum(by_licence.values()),
        image_bytes=sum(shard.image_bytes for shard in shards),
        by_licence={kind: by_licence[kind] for kind in LICENCE_KINDS},
        sources=sources,
        licence_uris=sorted(uris),
        media_types=sorted(media),
        attribution_required=attribution,
        shards=list(shards),
    )


def default_obligations(summary: PackageSummary) -> list[str]:
    """The buyer's obligations that follow from the items alone (the job may add more)."""
    obligations = []
    if summary.attribution_required:
        obligations.append(
            f"Attribution required for {summary.attribution_required:,} "
            f"item{'s' if summary.attribution_required != 1 else ''}: see ATTRIBUTION.md."
        )
    if summary.by_licence["licensed"]:
        obligations.append(
            f"{summary.by_licence['licensed']:,} licensed items may be used only as their "
            "artists' terms allow (LICENSES/, and each item's terms_url), and only for the "
            "intended uses declared at purchase."
        )
    obligations.append(
        "Keep the consent metadata (XMP) embedded in the images when you copy or redistribute them."
    )
    return obligations


# --- Croissant -----------------------------------------------------------------------------

CROISSANT_CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"
# The @context of Croissant 1.0 (as mlcroissant checks it), plus the W3C PROV namespace.
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "prov": "http://www.w3.org/ns/prov#",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def croissant(info: DatasetInfo, summary: PackageSummary, files: Sequence[FileInfo]) -> dict:
    """croissant.json: Croissant 1.0 with the RAI 1.0 vocabulary, describing `files` (the
    Parquet table and the shards, by name relative to croissant.json) and one record set,
    `items`, whose fields are the Parquet columns. Passes `mlcroissant validate`."""
    shard_files = [f for f in files if f.name.endswith(".tar")]
    distribution: list[dict[str, Any]] = []
    for file in files:
        if file.name.endswith(".parquet"):
            encoding = "application/x-parquet"
            description = "One row per item: provenance, licence and checksum (the fields below)."
        elif file.name.endswith(".tar"):
            encoding = "application/x-tar"
            description = "WebDataset shard: for each item KEY.<jpg|png|webp> then KEY.json."
        else:
            raise ValueError(f"{file.name}: only .parquet and .tar files are described")
        distribution.append(
            {
                "@type": "cr:FileObject",
                "@id": file.name,
                "name": file.name,
                "description": description,
                "contentUrl": file.name,
                "encodingFormat": encoding,
                "contentSize": f"{file.size_bytes} B",
                "sha256": file.sha256,
            }
        )
    for media_type in summary.media_types:
        extension = EXTENSION_FOR_MEDIA_TYPE[media_type]
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": f"images-{extension}",
                "name": f"images-{extension}",
                "description": f"The {media_type} images inside the shards, consent XMP embedded.",
                "containedIn": [{"@id": shard.name} for shard in shard_files],
                "encodingFormat": media_type,
                "includes": f"*.{extension}",
            }
        )
    record_set = {
        "@type": "cr:RecordSet",
        "@id": "items",
        "name": "items",
        "description": f"The {summary.items:,} items of {info.name}, one per image.",
        "key": {"@id": "items/key"},
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"items/{column.name}",
                "name": column.name,
                "description": column.description,
                "dataType": column.croissant_type,
                "source": {
                    "fileObject": {"@id": PARQUET_NAME},
                    "extract": {"column": column.name},
                },
            }
            for column in COLUMNS
        ],
    }
    created = info.created.isoformat()
    sources = [
        {
            "@type": "sc:Organization" if s.source_kind == "institution" else "sc:Person",
            "name": s.source,
        }
        for s in summary.sources
    ]
    counts = _licence_counts_sentence(summary)
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CROISSANT_CONFORMS_TO, RAI_CONFORMS_TO],
        "name": info.name,
        "description": info.description,
        "url": info.base_url,
        "version": "1.0.0",
        "dateCreated": created,
        "datePublished": created,
        "inLanguage": "en",
        "keywords": ["images", "consent", "provenance", "licensed", "public domain"],
        "license": summary.licence_uris,
        "creator": {"@type": "sc:Organization", "name": info.publisher},
        "publisher": {"@type": "sc:Organization", "name": info.publisher},
        "citeAs": (
            f"@misc{{{_bib_key(info.name)}, title={{{info.name}}}, "
            f"author={{{info.publisher}}}, year={{{info.created.year}}}, "
            f"howpublished={{{info.base_url}}}}}"
        ),
        "rai:dataCollection": (
            f"Assembled by {info.publisher} for order {info.order_reference} from works in its "
            f"catalog: {counts}. Artists uploaded their own works and chose licence terms, "
            "recorded as versioned terms entries in a public, append-only Merkle ledger; "
            "public-domain images come from museums' open-access programmes. Every item was "
            "checked against the opt-out registry (by URL, SHA-256 and perceptual hash) when "
            "the bundle was built and again at checkout."
        ),
        "rai:dataCollectionType": ["Manual Human Curator", "Secondary Data Analysis"],
        "rai:dataCollectionRawData": (
            "Original image files as the artist uploaded them or the institution published "
            "them; only an XMP metadata packet was added (no pixel was re-encoded, except for "
            "formats other than JPEG, PNG and WebP, which were converted losslessly to PNG)."
        ),
        "rai:dataCollectionTimeframe": [created],
        "rai:dataPreprocessingProtocol": [
            "Consent XMP embedded: plus:DataMining and xmpRights:WebStatement naming the terms.",
            "SHA-256 of each file as shipped recorded in its KEY.json and in metadata.parquet.",
        ],
        "rai:dataUseCases": [USE_LABELS.get(use, use) for use in info.intended_uses],
        "rai:dataLimitations": (
            "A curated selection of artworks, not a sample of the visual world; licensed items "
            "may be used only within their artists' terms and the intended uses declared at "
            "purchase. Items that could not be fetched are listed in missing.json."
        ),
        "rai:dataBiases": (
            "Museum open-access collections over-represent Western art and pre-20th-century "
            "works; artists' works reflect who chose to sell on the platform. No balancing was "
            "applied."
        ),
        "rai:personalSensitiveInformation": (
            "No personal data was collected for the dataset. Artworks may depict people; "
            "creators are named only as credited by the artist or institution. EXIF metadata "
            "was not added; GPS and camera data are removed from artists' uploads."
        ),
        "rai:dataSocialImpact": (
            "Every item is used with its rightsholder's recorded consent or is in the public "
            "domain; artists are paid a share of each sale."
        ),
        "rai:hasSyntheticData": False,
        "rai:dataReleaseMaintenancePlan": (
            "A package is immutable; a rebuild gives byte-identical files. The provenance "
            "certificate binds it to ledger checkpoint tree size "
            f"{info.tree_size_at_purchase} of {info.ledger_origin}."
        ),
        "prov:wasDerivedFrom": sources,
        "prov:wasGeneratedBy": {
            "@type": "prov:Activity",
            "name": f"Package build for order {info.order_reference}",
            "description": (
                f"Order {info.order_reference} by {info.organization}, checked against the "
                f"ledger {info.ledger_origin} at tree size {info.tree_size_at_purchase}."
            ),
            "prov:endedAtTime": created,
        },
        "distribution": distribution,
        "recordSet": [record_set],
    }


def croissant_bytes(document: Mapping[str, Any]) -> bytes:
    """croissant.json as written: two-space indent, keys in the order built, trailing newline."""
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _bib_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name) or "dataset"


_LICENCE_PHRASES = {
    "licensed": "licensed by the artist",
    "donated": "donated by the artist (CC0)",
    "public_domain": "public domain (museum open access)",
}


def _licence_counts_sentence(summary: PackageSummary) -> str:
    parts = [f"{n:,} {_LICENCE_PHRASES[kind]}" for kind, n in summary.by_licence.items() if n]
    return ", ".join(parts) or "no items"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


# --- Markdown documents --------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|])")


def _md(text: str) -> str:
    """Text as literal Markdown on one line (metadata from museums is not trusted markup)."""
    flat = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def dataset_card(
    info: DatasetInfo,
    summary: PackageSummary,
    obligations: Sequence[str],
    missing: Sequence[MissingItem],
) -> str:
    """README.md of the package: contents, counts by licence kind, intended uses, obligations,
    how to load it and how to verify its certificate."""
    shards = summary.shards
    pattern = (
        f"{info.name}-{{00000..{len(shards) - 1:05d}}}.tar" if shards else f"{info.name}-*.tar"
    )
    lines = [
        f"# {_md(info.name)}",
        "",
        _md(info.description),
        "",
        f"Order {_md(info.order_reference)} for {_md(info.organization)}, built "
        f"{info.created.strftime('%Y-%m-%d %H:%M UTC')} by {_md(info.publisher)}. "
        f"Package page: <{info.base_url}>",
        "",
        "## What is in it",
        "",
        f"- {summary.items:,} images ({_human_bytes(summary.image_bytes)}) in "
        f"{len(shards)} WebDataset shard{'s' if len(shards) != 1 else ''}: for each item "
        "`KEY.jpg|png|webp` (the original file with consent XMP embedded) and `KEY.json`.",
        f"- `{PARQUET_NAME}`: the same records, one row per item.",
        "- `croissant.json`: Croissant 1.0 metadata with the Responsible-AI vocabulary.",
        "- `ATTRIBUTION.md`, `LICENSES/`: attribution lines and the text of every terms version.",
        "- `ai-act-summary.md` / `.json`: a draft of the EU AI Act training-content summary.",
        "- `certificate.json`: the provenance certificate.",
        "",
        "| Licence | Items |",
        "|---|---:|",
    ]
    lines += [f"| {LICENCE_LABELS[k]} | {n:,} |" for k, n in summary.by_licence.items()]
    lines += [f"| **Total** | **{summary.items:,}** |", ""]
    if missing:
        lines += [
            f"{len(missing):,} ordered item{'s' if len(missing) != 1 else ''} could not be "
            "fetched from the source and are listed in `missing.json` with the reason; they "
            "were not charged.",
            "",
        ]
    lines += ["## Intended uses declared at purchase", ""]
    lines += [f"- {_md(USE_LABELS.get(use, use))}" for use in info.intended_uses] or ["- (none)"]
    lines += ["", "## Obligations", ""]
    lines += [f"- {_md(text)}" for text in obligations] or ["- None beyond the law."]
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import webdataset as wds",
        f'samples = wds.WebDataset("{pattern}").decode("pil")',
        "for sample in samples:",
        '    image, record = sample.get("jpg") or sample.get("png") or sample.get("webp"), '
        'sample["json"]',
        "",
        "from datasets import load_dataset",
        f'table = load_dataset("parquet", data_files="{PARQUET_NAME}")["train"]',
        "",
        "import pandas as pd",
        f'frame = pd.read_parquet("{PARQUET_NAME}")',
        "```",
        "",
        "## Verifying",
        "",
        "The certificate proves each item's provenance entry in the platform's public ledger "
        f"({_md(info.ledger_origin)}), the terms it was sold under, and that the sale was checked "
        f"against the opt-out registry at tree size {info.tree_size_at_purchase:,}. Check it "
        "offline, and every file of this package against it:",
        "",
        "```sh",
        "python verifier.py certificate.json --package .",
        "```",
        "",
        "`verifier.py` is one file needing only `cryptography`; download it from the site's "
        "/verify page.",
        "",
    ]
    return "\n".join(lines)


def attribution_markdown(records: Iterable[ItemRecord]) -> str:
    """ATTRIBUTION.md: every item whose terms require attribution, in key order."""
    required = sorted((r for r in records if r.attribution_required), key=lambda r: r.key)
    lines = ["# Attribution", ""]
    if not required:
        lines += ["No item in this package requires attribution.", ""]
        return "\n".join(lines)
    lines += [
        f"The terms of these {len(required):,} items require attribution. Credit each as "
        "written wherever the terms ask for it.",
        "",
    ]
    for r in required:
        credit = r.attribution or f"{r.title} by {r.creator or r.source}"
        lines.append(f"- `{r.key}`: {_md(credit)} (<{r.source_url}>; terms: <{r.terms_url}>)")
    lines.append("")
    return "\n".join(lines)


def licence_slug(name: str) -> str:
    """A file-name-safe slug: ASCII letters, digits and '-', at most 80 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    return slug or "terms"


def licence_files(texts: Mapping[str, str]) -> dict[str, str]:
    """LICENSES/<slug>.md for each distinct terms version: `texts` maps a title (e.g.
    "Ada Lovelace terms v3", "CC0 1.0") to its text. Sorted by title; slugs that collide get
    -2, -3, ... so no text is lost."""
    out: dict[str, str] = {}
    for title in sorted(texts):
        slug = base = licence_slug(title)
        n = 1
        while f"LICENSES/{slug}.md" in out:
            n += 1
            slug = f"{base}-{n}"
        body = texts[title].rstrip("\n")
        out[f"LICENSES/{slug}.md"] = f"# {_md(title)}\n\n{body}\n"
    return out


def missing_json(missing: Sequence[MissingItem]) -> bytes:
    """missing.json: the items that could not be fetched, by key, with the reason."""
    items = [asdict(m) for m in sorted(missing, key=lambda m: m.key)]
    document = {
        "note": "These items could not be fetched from their source; they are not in the "
        "package and were not charged.",
        "count": len(items),
        "items": items,
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- EU AI Act, Art. 53(1)(d) --------------------------------------------------------------

AI_ACT_TEMPLATE = (
    "European Commission, AI Office: Explanatory Notice and Template for the Public Summary "
    "of Training Content for general-purpose AI models, Art. 53(1)(d) of Regulation (EU) "
    "2024/1689 (published 24 July 2025)"
)


def ai_act_summary(
    info: DatasetInfo, summary: PackageSummary, missing: Sequence[MissingItem]
) -> tuple[str, dict[str, Any]]:
    """A pre-filled DRAFT of the public summary of training content, in Markdown and JSON.

    Follows the section order of the AI Office's template (source: `AI_ACT_TEMPLATE`):
    1 General information (1.1 provider, 1.2 model, 1.3 modalities, size and other
    characteristics); 2 List of data sources (2.1 publicly available datasets; 2.2 private
    non-publicly available datasets obtained from third parties, 2.2.1 commercially licensed
    by rightsholders or their representatives and 2.2.2 other; 2.3 crawled and scraped data;
    2.4 user data; 2.5 synthetic data; 2.6 other sources); 3 Data processing aspects (3.1
    respect of reservations of rights from the TDM exception or limitation, 3.2 removal of
    illegal content, 3.3 other information). Sections 1 and 2 and the headings of 3.1-3.2
    were confirmed against published descriptions of the template; the exact wording of the
    sub-headings, 3.3 and the template's size bands could not be checked against the
    Commission's own text from here, so the size band is left to the provider.

    What the order proves is filled in: public-domain museum stock under 2.1, artists'
    licensed works under 2.2.1 (the platform acting for the rightsholders), donated CC0 works
    under 2.2.2, and the opt-out checks under 3.1. What only the provider knows is marked
    `TO_BE_COMPLETED`. The same sections, keys in template order, make the JSON.
    """
    by = summary.by_licence
    institutions = [s for s in summary.sources if s.licence == "public_domain"]
    artists = [s for s in summary.sources if s.licence == "licensed"]
    donors = [s for s in summary.sources if s.licence == "donated"]
    purchase = (
        f"obtained from {info.publisher} in order {info.order_reference} "
        f"({info.created.strftime('%Y-%m-%d')})"
    )

    def listing(counts: list[SourceCount], what: str) -> list[str]:
        return [f"{s.source}: {_plural(s.items, what)}" for s in counts]

    document: dict[str, Any] = {
        "status": (
            "DRAFT pre-filled from one dataset order; the provider completes and publishes "
            "it. Covers only the content of this order."
        ),
        "template": AI_ACT_TEMPLATE,
        "1. General information": {
            "1.1 Provider identification": {
                "Provider name and contact details": TO_BE_COMPLETED,
                "Authorised representative (if any)": TO_BE_COMPLETED,
            },
            "1.2 Model identification": {
                "Versioned model name(s)": TO_BE_COMPLETED,
                "Model dependencies (if the model modifies or fine-tunes another)": (
                    TO_BE_COMPLETED
                ),
                "Date of placement of the model on the Union market": TO_BE_COMPLETED,
            },
            "1.3 Modalities, overall training data size and other characteristics": {
                "Modalities": "Image (this order). Other modalities: " + TO_BE_COMPLETED,
                "Training data size": (
                    f"This order: {summary.items:,} images, {summary.image_bytes:,} bytes. "
                    "Size band for the whole training data: " + TO_BE_COMPLETED
                ),
                "Types of content": (
                    "Visual artworks and photographs of cultural-heritage objects "
                    f"({_licence_counts_sentence(summary)})."
                ),
                "Latest date of data collection": (
                    f"This order: {info.created.strftime('%Y-%m-%d')}. Other data: "
                    + TO_BE_COMPLETED
                ),
                "Other characteristics": TO_BE_COMPLETED,
            },
        },
        "2. List of data sources": {
            "2.1 Publicly available datasets": {
                "Description": (
                    f"{_plural(by['public_domain'], 'public-domain image')} from museums' "
                    f"open-access collections, {purchase}."
                    if by["public_domain"]
                    else "None from this order."
                ),
                "Sources (institution: items)": listing(institutions, "item"),
                "Other publicly available datasets used": TO_BE_COMPLETED,
            },
            "2.2 Private non-publicly available datasets obtained from third parties": {
                "2.2.1 Datasets commercially licensed by rightsholders or their representatives": {
                    "Description": (
                        f"{_plural(by['licensed'], 'work')} licensed by their artists (the "
                        f"rightsholders) through {info.publisher}, which acts for them, "
                        f"{purchase}; each under the artist's versioned terms, recorded in "
                        "the platform's ledger."
                        if by["licensed"]
                        else "None from this order."
                    ),
                    "Rightsholders (artist: works)": listing(artists, "work"),
                    "Other commercially licensed datasets": TO_BE_COMPLETED,
                },
                "2.2.2 Private datasets obtained from other third parties": {
                    "Description": (
                        f"{_plural(by['donated'], 'work')} dedicated to the public domain "
                        f"(CC0) by their artists on {info.publisher}, {purchase}."
                        if by["donated"]
                        else "None from this order."
                    ),
                    "Sources (artist: works)": listing(donors, "work"),
                    "Other private datasets": TO_BE_COMPLETED,
                },
            },
            "2.3 Data crawled and scraped from online sources": {
                "This order": "None: no item of this order was crawled or scraped.",
                "Other crawled or scraped data": TO_BE_COMPLETED,
            },
            "2.4 User data": {
                "This order": "None.",
                "Other user data": TO_BE_COMPLETED,
            },
            "2.5 Synthetic data": {
                "This order": "None: every item is an original work.",
                "Other synthetic data": TO_BE_COMPLETED,
            },
            "2.6 Other sources of data": {
                "This order": "None beyond 2.1 and 2.2.",
                "Other sources": TO_BE_COMPLETED,
            },
        },
        "3. Data processing aspects": {
            "3.1 Respect of reservation of rights from the text and data mining exception "
            "or limitation": {
                "This order": [
                    "Artists' works are used under their explicit consent, not under the TDM "
                    "exception: each sale names the ledger entry of the terms version it was "
                    "sold under.",
                    "Every item was checked against the platform's opt-out registry by URL, "
                    "SHA-256 and perceptual hash when the bundle was built and again at "
                    "checkout; opted-out items were excluded.",
                    f"The sale was recorded at ledger tree size {info.tree_size_at_purchase:,} "
                    f"of {info.ledger_origin}; the registry's state at that size is what it was "
                    "checked against, provable with the order's certificate and the checkpoint "
                    "below.",
                    "Each image carries an embedded XMP packet with its PLUS DataMining value "
                    "and a link to its terms.",
                ],
                "Ledger checkpoint (C2SP signed note)": info.checkpoint.strip() + "\n",
                "Other data": TO_BE_COMPLETED,
            },
            "3.2 Removal of illegal content": {
                "This order": (
                    "Artists' uploads are moderated before sale; museum open-access images "
                    "come from institutions' published collections."
                ),
                "Measures for other data": TO_BE_COMPLETED,
            },
            "3.3 Other information": {
                "Items ordered but not delivered": (
                    f"{len(missing):,} (listed in missing.json; not used, not charged)."
                ),
                "Other information": TO_BE_COMPLETED,
            },
        },
    }
    return _summary_markdown(info, document), document


def _summary_markdown(info: DatasetInfo, document: Mapping[str, Any]) -> str:
    lines = [
        f"# Public summary of training content: DRAFT from order {_md(info.order_reference)}",
        "",
        f"*{_md(document['status'])}*",
        "",
        f"Template: {_md(document['template'])}.",
        "",
    ]

    def walk(node: Mapping[str, Any], depth: int) -> None:
        for heading, value in node.items():
            if isinstance(value, Mapping):
                lines.extend([f"{'#' * depth} {_md(heading)}", ""])
                walk(value, depth + 1)
            elif isinstance(value, list):
                lines.extend([f"**{_md(heading)}:**", ""])
                lines.extend([f"- {_md(item)}" for item in value] or ["- None."])
                lines.append("")
            elif "\n" in value:  # verbatim text (the signed checkpoint)
                lines.extend([f"**{_md(heading)}:**", "", "```", value.rstrip("\n"), "```", ""])
            else:
                shown = _md(value).replace(_md(TO_BE_COMPLETED), TO_BE_COMPLETED)
                lines.extend([f"**{_md(heading)}:** {shown}", ""])

    walk({k: v for k, v in document.items() if k not in ("status", "template")}, 2)
    return "\n".join(lines)
