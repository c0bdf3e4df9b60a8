"""Reading a manifest as Arrow record batches of one shape, streamed from a local file.

Four formats, told apart by their bytes (never by the file name): CSV (the `csv` module over a
UTF-8 text stream: BOM, CR, LF and CRLF line ends; comma, tab, semicolon or pipe), JSON lines,
Parquet (pyarrow, record batch by record batch) and WebDataset tar shards (files grouped by
sample key; each image's SHA-256 and pHash computed from its bytes). Columns are mapped to our
fields by name (`url`, `URL`, `image_url`, `caption`, `TEXT`, `sha256`, `phash`...) or as the
uploader says. Every batch has `BATCH_SCHEMA`; memory stays flat: one batch at a time.

Row-level problems (undecodable text, a line that is not JSON, a malformed hash, an unreadable
image) are reported with the row's number and the rest is read; rows are numbered from 1 in
file order, a CSV header not counted. File-level problems raise `ManifestError`. Pure: no
Flask, no database.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from marketplace import imaging

FIELDS = ("url", "caption", "sha256", "phash")
# Column names we recognise, compared lower-cased with spaces and hyphens as underscores.
ALIASES: dict[str, tuple[str, ...]] = {
    "url": (
        "url",
        "image_url",
        "imageurl",
        "img_url",
        "image_link",
        "photo_url",
        "original_url",
        "source_url",
        "link",
        "uri",
        "src",
        "image",
    ),
    "caption": ("caption", "text", "alt", "alt_text", "description", "title", "prompt"),
    "sha256": ("sha256", "sha_256", "sha256_hash", "image_sha256", "file_sha256", "hash_sha256"),
    "phash": ("phash", "p_hash", "perceptual_hash", "image_phash", "phash64"),
}
BATCH_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
        ("phash", pa.uint64()),
    ]
)
FORMAT_LABELS = {
    "csv": "CSV",
    "jsonl": "JSON lines",
    "parquet": "Parquet",
    "webdataset": "WebDataset tar shard",
}
DEFAULT_BATCH_ROWS = 20_000
MAX_FIELD_CHARS = 1 << 20  # a CSV field longer than this is a row problem, not a crash
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "tif", "tiff"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SNIFF_BYTES = 1 << 16
_WANTED = "Upload a CSV, JSON lines, Parquet or WebDataset tar (.tar) file."
_OTHER_FILES = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed (decompress it first)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (decompress it first)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WebP, WAV or AVI)"),
    (b"SQLite format 3", "an SQLite database"),
)


class ManifestError(ValueError):
    """The file cannot be read as a manifest; the message is safe to show."""


@dataclass(frozen=True)
class RowProblem:
    row: int
    message: str


def normalized_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff")).lower()


def map_columns(columns: list[str], given: Mapping[str, str] | None = None) -> dict[str, str]:
    """field -> source column: the uploader's choices first, then recognised names.

    ManifestError for a chosen column the file lacks, or when no URL column is found."""
    mapping: dict[str, str] = {}
    for field_name, column in (given or {}).items():
        if field_name not in FIELDS:
            raise ManifestError(f"Unknown field {field_name!r}: map url, caption, sha256, phash.")
        if not column:
            continue
        if column not in columns:
            raise ManifestError(
                f"The file has no column {column!r} (for {field_name}); its columns are "
                f"{_listed(columns)}."
            )
        mapping[field_name] = column
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(normalized_name(column), column)
    taken = set(mapping.values())
    for field_name in FIELDS:
        if field_name in mapping:
            continue
        for alias in ALIASES[field_name]:
            named = by_name.get(alias)
            if named is not None and named not in taken:
                mapping[field_name] = named
                taken.add(named)
                break
    if "url" not in mapping:
        raise ManifestError(
            f"No URL column found among {_listed(columns)}. Name it url (or URL, image_url, "
            "link), or choose which column holds the image URLs."
        )
    return mapping


def _listed(columns: list[str]) -> str:
    shown = ", ".join(repr(c[:60]) for c in columns[:20])
    more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
    return (shown + more) if columns else "none"


def sniff(path: Path) -> str:
    """'csv', 'jsonl', 'parquet' or 'webdataset' from the file's first bytes; ManifestError
    for an empty file or anything else."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        raise ManifestError("The file is empty: it has no header and no rows.")
    if head.startswith(b"PAR1"):
        return "parquet"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "webdataset"
    for magic, what in _OTHER_FILES:
        if head.startswith(magic):
            raise ManifestError(f"This is {what}, not a manifest. {_WANTED}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ManifestError("This text is UTF-16; save the manifest as UTF-8.")
    nuls = head.count(b"\x00")
    if nuls > 16 and nuls * 100 > len(head):  # a stray NUL is a row problem; many, a binary
        raise ManifestError(f"This is a binary file, not a manifest. {_WANTED}")
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        raise ManifestError("This is a JSON array; give JSON lines (one object per line).")
    if text.startswith("{"):
        return "jsonl"
    return "csv"


def _sha256(value: object) -> str | None:
    """Lower-case hex, or ValueError."""
    if isinstance(value, bytes) and len(value) == 32:
        return value.hex()
    text = str(value).strip().lower()
    if not _HEX64.fullmatch(text):
        raise ValueError("sha256 is not 64 hexadecimal digits")
    return text


def _phash(value: object) -> int:
    """An unsigned 64-bit pHash from 16 hex digits (0x allowed) or an integer; ValueError."""
    if isinstance(value, bool):
        raise ValueError("phash is not 16 hexadecimal digits")
    if isinstance(value, int):
        if -(1 << 63) <= value < 0:
            return imaging.from_signed64(value)
        if 0 <= value < 1 << 64:
            return value
        raise ValueError("phash is not a 64-bit value")
    text = str(value).strip().lower().removeprefix("0x")
    return imaging.parse_phash(text)


class _Batcher:
    """Collects rows field by field and cuts them into BATCH_SCHEMA record batches."""

    def __init__(self, batch_rows: int) -> None:
        self.batch_rows = batch_rows
        self.problems: list[RowProblem] = []
        self._clear()

    def _clear(self) -> None:
        self.rows: list[int] = []
        self.urls: list[str | None] = []
        self.captions: list[str | None] = []
        self.sha256s: list[str | None] = []
        self.phashes: list[int | None] = []

    def add(self, row: int, url: object, caption: object, sha256: object, phash: object) -> None:
        digest: str | None = None
        if sha256 is not None and sha256 != "":
            try:
                digest = _sha256(sha256)
            except ValueError as exc:
                self.problems.append(RowProblem(row, str(exc)))
        look: int | None = None
        if phash is not None and phash != "":
            try:
                look = _phash(phash)
            except ValueError as exc:
                self.problems.append(RowProblem(row, str(exc).replace("a pHash", "phash")))
        self.rows.append(row)
        self.urls.append(None if url is None or url == "" else str(url))
        self.captions.append(None if caption is None or caption == "" else str(caption))
        self.sha256s.append(digest)
        self.phashes.append(look)

    @property
    def full(self) -> bool:
        return len(self.rows) >= self.batch_rows

    def take(self) -> tuple[pa.RecordBatch, list[RowProblem]]:
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(self.rows, pa.int64()),
                pa.array(self.urls, pa.string()),
                pa.array(self.captions, pa.string()),
                pa.array(self.sha256s, pa.string()),
                pa.array(self.phashes, pa.uint64()),
            ],
            schema=BATCH_SCHEMA,
        )
        problems, self.problems = self.problems, []
        self._clear()
        return batch, problems


class ManifestReader:
    """One manifest file: its format, columns and mapping, and its rows as batches.

    `batches()` yields (record batch, row problems) pairs; a pair may carry problems and no
    rows. `progress` is the share of the file read so far (0..1)."""

    def __init__(
        self,
        path: Path,
        *,
        mapping: Mapping[str, str] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_image_pixels: int = 100_000_000,
    ) -> None:
        self.path = path
        self.format = sniff(path)
        self.batch_rows = batch_rows
        self.max_image_pixels = max_image_pixels
        self.size_bytes = path.stat().st_size
        self._done_bytes = 0
        self.total_rows: int | None = None
        self.columns = self._columns()
        if self.format == "webdataset":
            self.mapping = {f: f for f in FIELDS}
        else:
            self.mapping = map_columns(self.columns, mapping)

    @property
    def progress(self) -> float:
        return min(1.0, self._done_bytes / self.size_bytes) if self.size_bytes else 1.0

    # --- Columns ---------------------------------------------------------------------------

    def _columns(self) -> list[str]:
        if self.format == "parquet":
            try:
                parquet = pq.ParquetFile(self.path)
            except (pa.ArrowException, OSError) as exc:
                raise ManifestError(f"This Parquet file cannot be read: {exc}") from exc
            self.total_rows = parquet.metadata.num_rows
            return list(parquet.schema_arrow.names)
        if self.format == "jsonl":
            return self._jsonl_columns()
        if self.format == "csv":
            with self.path.open("rb") as raw, self._text(raw) as text:
                reader = csv.reader(text, self._dialect())
                try:
                    header = next(reader, None)
                except csv.Error as exc:
                    raise ManifestError(f"The CSV header cannot be read: {exc}.") from exc
            if not header or not any(h.strip() for h in header):
                raise ManifestError("The CSV file has no header row naming its columns.")
            if any(_undecodable(h) for h in header):
                raise ManifestError("The CSV header is not UTF-8 text; save the file as UTF-8.")
            return [h.strip().lstrip("\ufeff") for h in header]
        return ["url", "caption", "sha256", "phash"]

    def _jsonl_columns(self) -> list[str]:
        """The keys of the objects among the first 1,000 lines, in order of appearance."""
        seen: dict[str, None] = {}
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if number > 1000:
                    break
                try:
                    value = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(value, dict):
                    seen.update(dict.fromkeys(str(k) for k in value))
        if not seen:
            raise ManifestError("No line of this JSON lines file is a JSON object.")
        return list(seen)

    @staticmethod
    def _text(raw: BinaryIO) -> io.TextIOWrapper:
        # utf-8-sig drops a BOM; surrogateescape keeps undecodable bytes visible per row;
        # newline="" lets the csv module read CR, LF and CRLF line ends (and quoted ones).
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def _dialect(self) -> type[csv.Dialect]:
        with self.path.open("rb") as handle:
            first = handle.readline(_SNIFF_BYTES).decode("utf-8", "replace")
        first = first.split("\r", 1)[0]
        delimiter = max(",\t;|", key=first.count)
        if first.count(delimiter) == 0:
            delimiter = ","

        class Dialect(csv.excel):
            pass

        Dialect.delimiter = delimiter
        return Dialect

    # --- Rows ------------------------------------------------------------------------------

    def batches(self) -> Iterator[tuple[pa.RecordBatch, list[RowProblem]]]:
        batcher = _Batcher(self.batch_rows)
        rows = {
            "csv": self._csv_rows,
            "jsonl": self._jsonl_rows,
            "parquet": self._parquet_rows,
            "webdataset": self._tar_rows,
        }[self.format]
        for row, values in rows(batcher):
            if values is not None:
                batcher.add(row, *values)
            if batcher.full:
                yield batcher.take()
        if batcher.rows or batcher.problems:
            yield batcher.take()
        self._done_bytes = self.size_bytes

    def _positions(self) -> list[int | None]:
        return [self.columns.index(self.mapping[f]) if f in self.mapping else None for f in FIELDS]

    def _csv_rows(self, batcher: _Batcher) -> Iterator[tuple[int, tuple[Any, ...] | None]]:
        positions = self._positions()
        width = len(self.columns)
        csv.field_size_limit(MAX_FIELD_CHARS)
        with self.path.open("rb") as raw, self._text(raw) as text:
            reader = csv.reader(text, self._dialect())
            try:
                next(reader)  # the header
            except csv.Error:
                return
            row = 0
            while True:
                row += 1
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    batcher.problems.append(RowProblem(row, f"cannot be read as CSV: {exc}"))
                    yield row, None
                    continue
                if row % 4096 == 0:
                    self._done_bytes = raw.tell()
                if not record or (len(record) == 1 and not record[0].strip()):
                    row -= 1  # a blank line is no row
                    continue
                if not all(map(str.isascii, record)) and any(map(_undecodable, record)):
                    batcher.problems.append(
                        RowProblem(row, "is not UTF-8 text (skipped); save the file as UTF-8")
                    )
                    yield row, None
                    continue
                if len(record) < width:
                    record = record + [""] * (width - len(record))
                yield row, tuple(None if p is None else record[p] for p in positions)

    def _jsonl_rows(self, batcher: _Batcher) -> Iterator[tuple[int, tuple[Any, ...] | None]]:
        names = [self.mapping.get(f) for f in FIELDS]
        with self.path.open("rb") as handle:
            for row, line in enumerate(handle, start=1):
                if row % 4096 == 0:
                    self._done_bytes = handle.tell()
                if row == 1:
                    line = line.removeprefix(codecs.BOM_UTF8)
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except UnicodeDecodeError:
                    batcher.problems.append(RowProblem(row, "is not UTF-8 text (skipped)"))
                    yield row, None
                    continue
                except ValueError as exc:
                    message = f"is not valid JSON (skipped): {str(exc)[:100]}"
                    batcher.problems.append(RowProblem(row, message))
                    yield row, None
                    continue
                if not isinstance(value, dict):
                    batcher.problems.append(RowProblem(row, "is not a JSON object (skipped)"))
                    yield row, None
                    continue
                yield row, tuple(None if n is None else value.get(n) for n in names)

    def _parquet_rows(self, batcher: _Batcher) -> Iterator[tuple[int, tuple[Any, ...] | None]]:
        wanted = [self.mapping[f] for f in FIELDS if f in self.mapping]
        parquet = pq.ParquetFile(self.path)
        row = 0
        total = max(1, self.total_rows or 1)
        try:
            for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=wanted):
                columns = {
                    f: batch.column(self.mapping[f]).to_pylist() if f in self.mapping else None
                    for f in FIELDS
                }
                for i in range(batch.num_rows):
                    row += 1
                    values = tuple(
                        None if column is None else _text_value(column[i])
                        for column in columns.values()
                    )
                    yield row, values
                self._done_bytes = int(self.size_bytes * row / total)
        except (pa.ArrowException, OSError) as exc:
            raise ManifestError(f"The Parquet file is damaged after row {row}: {exc}") from exc

    def _tar_rows(self, batcher: _Batcher) -> Iterator[tuple[int, tuple[Any, ...] | None]]:
        """WebDataset: files of one sample share the name up to the first dot and lie next to
        each other; one row per sample with an image, hashed from its bytes."""
        row = 0
        key: str | None = None
        files: dict[str, bytes] = {}
        try:
            with self.path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name = member.name
                    base = name.rsplit("/", 1)[-1]
                    if base.startswith("."):
                        continue
                    stem, _, extension = base.partition(".")
                    sample = name[: len(name) - len(base)] + stem
                    if sample != key and key is not None:
                        row += 1
                        yield row, self._sample(row, files, batcher)
                        self._done_bytes = raw.tell()
                        files = {}
                    key = sample
                    handle = tar.extractfile(member)
                    files[extension.lower()] = handle.read() if handle is not None else b""
                if key is not None:
                    row += 1
                    yield row, self._sample(row, files, batcher)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ManifestError(f"The tar file is damaged after sample {row}: {exc}") from exc

    def _sample(
        self, row: int, files: dict[str, bytes], batcher: _Batcher
    ) -> tuple[Any, ...] | None:
        meta: dict[str, Any] = {}
        if "json" in files:
            try:
                loaded = json.loads(files["json"])
                meta = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                batcher.problems.append(RowProblem(row, "its .json file is not valid JSON"))
        caption = meta.get("caption")
        if caption is None and "txt" in files:
            caption = files["txt"].decode("utf-8", "replace")
        image = next((files[e] for e in files if e in IMAGE_EXTENSIONS), None)
        sha256 = phash = None
        if image is None:
            batcher.problems.append(RowProblem(row, "the sample has no image file"))
        else:
            try:
                inspected = imaging.inspect_image(
                    image, max_bytes=len(image) + 1, max_pixels=self.max_image_pixels
                )
            except imaging.ImageRejected as exc:
                batcher.problems.append(RowProblem(row, f"its image {exc}"))
            else:
                sha256, phash = inspected.sha256, inspected.phash
        url = meta.get("url") or meta.get("URL")
        return (url, caption, sha256, phash)


def _text_value(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _undecodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_batches(
    path: Path, *, mapping: Mapping[str, str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[tuple[pa.RecordBatch, list[RowProblem]]]:
    """The batches of the manifest at `path` (ManifestError for a file that is no manifest)."""
    return ManifestReader(path, mapping=mapping, batch_rows=batch_rows).batches()


def has_rows(reader: ManifestReader) -> bool:
    """Whether the manifest holds at least one row, read or not (a header alone has none)."""
    if reader.total_rows is not None:
        return reader.total_rows > 0
    probe = ManifestReader(reader.path, mapping=reader.mapping, batch_rows=1)
    return any(batch.num_rows or problems for batch, problems in probe.batches())
