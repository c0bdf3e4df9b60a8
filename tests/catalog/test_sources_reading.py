"""The shared readers: every layout, every broken input, and flat memory on large files."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketplace.catalog.sources import get_adapter, reading
from marketplace.catalog.sources.base import Malformed, RawRecord
from marketplace.catalog.sources.reading import looks_like_csv, read_csv, read_json

REQUIRED = ("Object ID", "Is Public Domain", "Title")


def items(records: Iterator[RawRecord | Malformed]) -> list[tuple[int, object]]:
    """(line, data or reason) for each item read."""
    return [
        (item.line, item.data if isinstance(item, RawRecord) else item.reason) for item in records
    ]


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


# --- JSON --------------------------------------------------------------------------------------


def test_json_lines_with_a_bom_crlf_and_blank_lines(tmp_path):
    path = write(tmp_path / "a.jsonl", b'\xef\xbb\xbf{"id": 1}\r\n\r\n  \n{"id": 2}\r\n{"id": 3}')
    assert items(read_json(path)) == [(1, {"id": 1}), (4, {"id": 2}), (5, {"id": 3})]


def test_json_lines_report_each_bad_line_and_carry_on(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        b'{"id": 1}\n{"id": \n{"id": "caf\xe9"}\n[1, 2]\n{"n": Infinity}\n"text"\n{"id": 7}\n',
    )
    assert items(read_json(path)) == [
        (1, {"id": 1}),
        (2, "invalid JSON"),
        (3, "broken encoding"),
        (4, "not an object"),
        (5, "invalid JSON"),  # Infinity is not JSON
        (6, "not an object"),
        (7, {"id": 7}),
    ]


def test_a_json_file_of_one_compact_line_is_read_as_json_lines(tmp_path):
    path = write(tmp_path / "a.json", b'{"id": 1, "title": "One"}')
    assert items(read_json(path)) == [(1, {"id": 1, "title": "One"})]


def test_a_long_first_line_is_streamed_as_a_document(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "SNIFF_BYTES", 16)
    records = [{"id": n, "title": f"Work {n}"} for n in range(1, 4)]
    path = write(tmp_path / "a.json", json.dumps({"data": records}).encode())
    assert items(read_json(path, ("data",))) == [(1, records[0]), (2, records[1]), (3, records[2])]


def test_a_pretty_document_with_a_bom(tmp_path):
    path = write(tmp_path / "a.json", b'\xef\xbb\xbf{\n  "data": [\n    {"id": 1}\n  ]\n}\n')
    assert items(read_json(path, ("data",))) == [(1, {"id": 1})]


def test_a_nested_envelope_and_its_absence(tmp_path):
    envelope = {"response": {"message": "ok", "rows": [{"id": 1}, {"id": 2}]}, "status": 200}
    path = write(tmp_path / "a.json", json.dumps(envelope, indent=2).encode())
    assert items(read_json(path, ("response", "rows"))) == [(1, {"id": 1}), (2, {"id": 2})]
    single = write(tmp_path / "b.json", json.dumps({"id": 3, "rows": []}, indent=2).encode())
    assert items(read_json(single, ("response", "rows"))) == [(1, {"id": 3, "rows": []})]


def test_an_envelope_holding_one_object(tmp_path):
    path = write(tmp_path / "a.json", json.dumps({"data": {"id": 1}}, indent=2).encode())
    assert items(read_json(path, ("data",))) == [(1, {"id": 1})]


def test_arrays_report_items_that_are_not_objects(tmp_path):
    path = write(tmp_path / "a.json", b'[{"id": 1}, 2, {"id": 3}]')
    assert items(read_json(path)) == [(1, {"id": 1}), (2, "not an object"), (3, {"id": 3})]


def test_a_broken_document_stops_where_it_breaks(tmp_path):
    path = write(tmp_path / "a.json", b'[\n{"id": 1},\n{"id": "caf\xe9"},\n{"id": 3}\n]')
    assert items(read_json(path)) == [(1, {"id": 1}), (2, "broken encoding")]
    cut = write(tmp_path / "b.json", b'{\n"data": [\n{"id": 1},\n{"id": ')
    assert items(read_json(cut, ("data",))) == [(1, {"id": 1}), (2, "invalid JSON")]
    junk = write(tmp_path / "c.json", b"{\nnot json at all\n")
    assert items(read_json(junk, ("data",))) == [(1, "invalid JSON")]


def test_empty_and_scalar_documents(tmp_path):
    assert items(read_json(write(tmp_path / "a.json", b"\n \n"))) == []
    assert items(read_json(write(tmp_path / "b.json", b"42\n"))) == [(1, "not an object")]


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_with_a_bom_quotes_and_a_field_across_lines(tmp_path):
    path = write(
        tmp_path / "a.csv",
        b'\xef\xbb\xbfObject ID,Is Public Domain,Title\r\n1,True,"Coin, gold"\r\n'
        b'2,False,"A ""quoted""\r\ntitle"\r\n\r\n3,True,Last\r\n',
    )
    assert items(read_csv(path, REQUIRED)) == [
        (2, {"Object ID": "1", "Is Public Domain": "True", "Title": "Coin, gold"}),
        (3, {"Object ID": "2", "Is Public Domain": "False", "Title": 'A "quoted"\r\ntitle'}),
        (6, {"Object ID": "3", "Is Public Domain": "True", "Title": "Last"}),
    ]


def test_csv_rows_of_the_wrong_width_or_encoding_are_reported_and_skipped(tmp_path):
    path = write(
        tmp_path / "a.csv",
        b'Object ID,Is Public Domain,Title\n1,True\n2,True,"caf\xe9\nau lait"\n'
        b"3,True,Three,extra\n4,True,Four\n",
    )
    assert items(read_csv(path, REQUIRED)) == [
        (2, "wrong column set"),
        (3, "broken encoding"),
        (5, "wrong column set"),
        (6, {"Object ID": "4", "Is Public Domain": "True", "Title": "Four"}),
    ]


def test_a_csv_header_without_the_required_columns_stops_the_file(tmp_path):
    path = write(tmp_path / "a.csv", b"Object ID,Title\n1,Coin\n2,Coin\n")
    assert items(read_csv(path, REQUIRED)) == [(1, "missing columns: Is Public Domain")]
    twice = write(tmp_path / "b.csv", b"Object ID,Is Public Domain,Title,Title\n1,True,A,B\n")
    assert items(read_csv(twice, REQUIRED)) == [(1, "duplicate columns")]
    broken = write(tmp_path / "c.csv", b"Object ID,Is Public Domain,T\xeftle\n1,True,A\n")
    assert items(read_csv(broken, REQUIRED)) == [(1, "broken encoding")]


def test_empty_csv_files(tmp_path):
    assert items(read_csv(write(tmp_path / "a.csv", b""), REQUIRED)) == []
    header_only = write(tmp_path / "b.csv", b"Object ID,Is Public Domain,Title\n")
    assert items(read_csv(header_only, REQUIRED)) == []


def test_an_oversized_field_is_one_problem_not_a_crash(tmp_path):
    huge = b"x" * (200 * 1024)  # over the csv module's default field limit
    path = write(
        tmp_path / "a.csv",
        b'Object ID,Is Public Domain,Title\n1,True,"' + huge + b'"\n2,True,Two\n',
    )
    got = items(read_csv(path, REQUIRED))
    assert got[0] == (2, "bad CSV")
    assert got[-1] == (3, {"Object ID": "2", "Is Public Domain": "True", "Title": "Two"})


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", b"{}", True),
        ("a.json", b"a,b", False),
        ("a.jsonl", b"a,b", False),
        ("a.txt", b"\xef\xbb\xbfObject ID,Title\n", True),
        ("a.txt", b'  \n{"id": 1}', False),
        ("a", b"[]", False),
    ],
)
def test_csv_or_json_by_name_then_by_content(tmp_path, name, content, expected):
    assert looks_like_csv(write(tmp_path / name, content)) is expected


# --- Flat memory -------------------------------------------------------------------------------

LINES = 200_000
PAD = "x" * 100  # makes the file large without making the test slow
MAX_PEAK_BYTES = 3_000_000


def peak_bytes_reading(source: str, path: Path) -> tuple[int, int]:
    """(records read, peak bytes allocated while reading `path`); a warm-up read comes first."""
    adapter = get_adapter(source)
    for _ in adapter.read(path):
        break  # imports and caches, so they are not counted
    tracemalloc.start()
    try:
        count = sum(1 for _ in adapter.read(path))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_a_large_json_lines_file_is_read_with_flat_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(LINES):
            out.write(f'{{"id": {n}, "title": "Work {n}", "note": "{PAD}"}}\n')
    assert path.stat().st_size > 20_000_000
    count, peak = peak_bytes_reading("tate", path)
    assert count == LINES
    assert peak < MAX_PEAK_BYTES


@pytest.mark.slow
def test_a_large_csv_file_is_read_with_flat_memory(tmp_path):
    path = tmp_path / "MetObjects.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write("Object ID,Is Public Domain,Title\r\n")
        for n in range(LINES):
            out.write(f'{n},True,"Coin {n}, {PAD}"\r\n')
    assert path.stat().st_size > 20_000_000
    count, peak = peak_bytes_reading("met", path)
    assert count == LINES
    assert peak < MAX_PEAK_BYTES


def test_a_large_response_document_is_streamed(tmp_path):
    path = tmp_path / "response.json"
    with path.open("w", encoding="utf-8") as out:
        out.write('{"info": {"total": 100000},\n"data": [\n')
        out.write(
            ",\n".join(
                f'{{"id": {n}, "title": "Work {n}", "note": "{PAD}"}}' for n in range(100_000)
            )
        )
        out.write("\n]}\n")
    assert path.stat().st_size > 10_000_000
    count, peak = peak_bytes_reading("cleveland", path)
    assert count == 100_000
    assert peak < MAX_PEAK_BYTES
