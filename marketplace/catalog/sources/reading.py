"""Stream records out of JSON Lines, JSON documents and CSV files, with flat memory.

Nothing here loads a whole file: JSON Lines and CSV are read line by line, as bytes decoded one
line at a time (so one line of broken UTF-8 is one `Malformed` and the rest still loads), and a
JSON document is streamed with ijson, one array item at a time. Bad input never raises: it
becomes `Malformed(line, reason)` with these reasons:

* "broken encoding": a line (or a JSON document) that is not UTF-8;
* "invalid JSON": a line, or the rest of a document, that does not parse (NaN and Infinity
  included, so that every record we keep is plain JSON);
* "not an object": a JSON value where a record (an object) should be;
* "missing columns: A, B": a CSV header without the columns the source needs (named), and "duplicate
  columns": a header naming a column twice (either reported once, on line 1; nothing else is
  read);
* "wrong column set": a CSV row whose field count differs from the header's;
* "bad CSV": a row the csv module cannot parse (for example a field over its size limit).

Lines are 1-based physical lines (a CSV record spanning lines reports its first line); items of
a JSON document are numbered by their 1-based position in its array instead.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import ijson
import orjson

from .base import Malformed, RawRecord

Envelope = tuple[str, ...]  # keys leading to a response's list of records: ("data",)

JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson", ".jsonlines"})
SNIFF_BYTES = 1 << 20  # a first line longer than this is taken to start one large document
BOM = b"\xef\xbb\xbf"


def read_json(path: Path, envelope: Envelope = ()) -> Iterator[RawRecord | Malformed]:
    """Records from JSON Lines, a JSON array, a single JSON object, or an API response.

    `envelope` names where a response keeps its records (("data",) for {"data": [...]},
    ("response", "rows") for the Smithsonian's). A response may stand alone as a document or
    be one line of a JSON Lines file; its list is streamed item by item, and an object at that
    place instead of a list is taken as one record. Anything else is a record itself.
    """
    kind = _sniff(path)
    if kind == "lines":
        yield from _read_json_lines(path, envelope)
    elif kind == "array":
        yield from _stream_items(path, "item")
    elif kind == "document":
        yield from _read_document(path, envelope)


def read_csv(path: Path, required: Sequence[str]) -> Iterator[RawRecord | Malformed]:
    """Rows of a UTF-8 CSV file (BOM optional) as {header: value} records.

    Quoted fields may span lines. A header that lacks any of `required` gives one
    Malformed(1, "missing columns: <their names>") and nothing more.
    """
    with path.open("rb") as file:
        broken: set[int] = set()
        reader = csv.reader(_decoded_lines(file, broken), strict=False)
        try:
            header = next(reader, None)
        except csv.Error:
            yield Malformed(1, "bad CSV")
            return
        if header is None:
            return
        if 1 in broken:
            yield Malformed(1, "broken encoding")
            return
        columns = [name.strip() for name in header]
        missing = [name for name in required if name not in columns]
        if missing:
            yield Malformed(1, f"missing columns: {', '.join(missing)}")
            return
        if len(set(columns)) != len(columns):
            yield Malformed(1, "duplicate columns")  # a dict per row would drop one of each
            return
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader, None)
            except csv.Error:
                yield Malformed(start, "bad CSV")
                broken.difference_update([line for line in broken if line <= reader.line_num])
                start = reader.line_num + 1
                continue
            if row is None:
                return
            end = reader.line_num
            spanned = [line for line in broken if start <= line <= end] if broken else None
            if spanned:
                broken.difference_update(spanned)
                yield Malformed(start, "broken encoding")
            elif not row:
                pass  # a blank line
            elif len(row) != len(columns):
                yield Malformed(start, "wrong column set")
            else:
                yield RawRecord(start, dict(zip(columns, row, strict=True)))
            start = end + 1


def looks_like_csv(path: Path) -> bool:
    """True for .csv files, and for files of other names that do not start like JSON."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return True
    if suffix == ".json" or suffix in JSON_LINES_SUFFIXES:
        return False
    with path.open("rb") as file:
        head = file.read(4096).removeprefix(BOM).lstrip()
    return not head.startswith((b"{", b"["))


# --- JSON --------------------------------------------------------------------------------------


def _sniff(path: Path) -> Literal["lines", "array", "document", "empty"]:
    """How to read a JSON file: JSON Lines when its first line is a whole object by itself."""
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return "lines"
    with path.open("rb") as file:
        while True:
            line = file.readline(SNIFF_BYTES)
            if not line:
                return "empty"
            stripped = line.removeprefix(BOM).strip()
            if stripped:
                break
        if stripped.startswith(b"["):
            return "array"
        if line.endswith(b"\n") or not file.read(1):
            try:
                value = _loads(stripped.decode("utf-8"))
            except ValueError:
                return "document"
            return "lines" if isinstance(value, dict) else "document"
        return "document"


def _read_json_lines(path: Path, envelope: Envelope) -> Iterator[RawRecord | Malformed]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, 1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Malformed(number, "broken encoding")
                continue
            if not text.strip():
                continue
            try:
                value = _loads(text)
            except ValueError:
                yield Malformed(number, "invalid JSON")
                continue
            if isinstance(value, dict) and not (envelope and envelope[0] in value):
                yield RawRecord(number, value, raw.rstrip(b"\r\n"))  # the common case
                continue
            yield from _records_in(number, value, envelope)


def _records_in(number: int, value: Any, envelope: Envelope) -> Iterator[RawRecord | Malformed]:
    """The records of one parsed line: an envelope's items, or the value itself."""
    if envelope and isinstance(value, dict) and envelope[0] in value:
        inner: Any = value
        for key in envelope:
            inner = inner.get(key) if isinstance(inner, dict) else None
        items = inner if isinstance(inner, list) else [inner]
    else:
        items = [value]
    for item in items:
        if isinstance(item, dict):
            yield RawRecord(number, item)
        else:
            yield Malformed(number, "not an object")


def _read_document(path: Path, envelope: Envelope) -> Iterator[RawRecord | Malformed]:
    """A JSON document starting with "{": an envelope to stream, or a single record."""
    prefix = ".".join(envelope)
    found: str | None = None
    if envelope:
        with path.open("rb") as file:
            try:
                found = _find_envelope(_skip_bom(file), prefix)
            except ijson.JSONError as error:
                yield Malformed(1, _json_error_reason(error))
                return
    if found == "start_array":
        yield from _stream_items(path, f"{prefix}.item")
    elif found == "start_map":
        yield from _stream_items(path, prefix)
    else:
        yield from _stream_items(path, "")


def _find_envelope(file: IO[bytes], prefix: str) -> str | None:
    """The event opening the value at `prefix` ("start_array"/"start_map"), if there is one.

    Reads parse events only (nothing is built), and stops at that value or at the end of the
    top-level object, so finding the list of a large response costs a few bytes.
    """
    for event_prefix, event, _ in ijson.parse(file):
        if event_prefix == prefix and event in ("start_array", "start_map"):
            return str(event)
        if event_prefix == "" and event == "end_map":
            return None
    return None


def _stream_items(path: Path, prefix: str) -> Iterator[RawRecord | Malformed]:
    """Objects at `prefix` ("item", "data.item", "" for the whole document), one at a time."""
    position = 0
    with path.open("rb") as file:
        try:
            for item in ijson.items(_skip_bom(file), prefix, use_float=True):
                position += 1
                if isinstance(item, dict):
                    yield RawRecord(position, item)
                else:
                    yield Malformed(position, "not an object")
        except ijson.JSONError as error:
            # A document cannot be resynchronised after an error: report it where it stopped.
            yield Malformed(position + 1, _json_error_reason(error))


def _skip_bom(file: IO[bytes]) -> IO[bytes]:
    if file.read(len(BOM)) != BOM:
        file.seek(0)
    return file


def _json_error_reason(error: Exception) -> str:
    return "broken encoding" if "UTF8" in str(error) else "invalid JSON"


def _loads(text: str) -> Any:
    """Parse JSON, refusing NaN and Infinity (not JSON, and not storable as JSON).

    orjson first (several times faster); what it refuses goes to the standard library, which
    also reads integers past 64 bits and gives the same ValueError for broken text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- CSV ---------------------------------------------------------------------------------------


def _decoded_lines(file: IO[bytes], broken: set[int]) -> Iterator[str]:
    """Each line of `file` as text; a line that is not UTF-8 is noted in `broken` and replaced.

    The replacement keeps quotes and commas where they were, so the csv module keeps its
    place; the record holding that line is then reported instead of being read.
    """
    for number, raw in enumerate(file, 1):
        if number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            broken.add(number)
            yield raw.decode("utf-8", errors="replace")
