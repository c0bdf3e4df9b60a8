"""Reading manifests: four formats, column names mapped, bad input reported by row while the
rest is read, and file-level problems refused with a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketplace import imaging
from marketplace.compliance.manifest import ManifestError, ManifestReader, has_rows
from tests import images
from tests.compliance.support import jsonl, webdataset


def _read(path: Path, **kwargs: object) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    reader = ManifestReader(path, **kwargs)  # type: ignore[arg-type]
    rows: list[dict[str, object]] = []
    problems: list[tuple[int, str]] = []
    for batch, found in reader.batches():
        rows.extend(batch.to_pylist())
        problems.extend((p.row, p.message) for p in found)
    return rows, problems


def test_laion_style_csv_with_bom_and_crlf_maps_url_and_text(tmp_path: Path) -> None:
    path = tmp_path / "laion.csv"
    path.write_bytes(
        '\ufeffURL,TEXT,WIDTH\r\nhttps://a.example/1.jpg,"A cat, sleeping",640\r\n'
        'https://a.example/2.jpg,"two\r\nlines",480\r\n'.encode()
    )
    reader = ManifestReader(path)
    assert reader.format == "csv"
    assert reader.mapping == {"url": "URL", "caption": "TEXT"}
    rows, problems = _read(path)
    assert problems == []
    assert [(r["row"], r["url"], r["caption"]) for r in rows] == [
        (1, "https://a.example/1.jpg", "A cat, sleeping"),
        (2, "https://a.example/2.jpg", "two\r\nlines"),
    ]


def test_old_mac_line_ends_and_tabs_are_read(tmp_path: Path) -> None:
    path = tmp_path / "old.tsv"
    path.write_bytes(
        b"image_url\tcaption\rhttps://a.example/1.jpg\tone\rhttps://b.example/2\ttwo\r"
    )
    rows, problems = _read(path)
    assert problems == []
    assert [r["url"] for r in rows] == ["https://a.example/1.jpg", "https://b.example/2"]


def test_broken_encoding_is_reported_with_its_row_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"url,caption\nhttps://a.example/1,ok\nhttps://a.example/2,caf\xe9\nhttps://a.example/3,"
        b"fine\n"
    )
    rows, problems = _read(path)
    assert [r["row"] for r in rows] == [1, 3]
    assert problems == [(2, "is not UTF-8 text (skipped); save the file as UTF-8")]


def test_malformed_hashes_are_row_problems_and_the_row_stays(tmp_path: Path) -> None:
    digest = "ab" * 32
    path = tmp_path / "hashes.csv"
    path.write_text(
        "url,sha256,phash\n"
        f"https://a.example/1,{digest.upper()},0x00000000000000ff\n"
        "https://a.example/2,not-a-hash,xyz\n"
    )
    rows, problems = _read(path)
    assert rows[0]["sha256"] == digest
    assert rows[0]["phash"] == 255
    assert rows[1]["sha256"] is None
    assert rows[1]["phash"] is None
    assert [row for row, _ in problems] == [2, 2]
    assert "sha256 is not 64 hexadecimal digits" in problems[0][1]


def test_json_lines_report_bad_lines_by_number(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(
        b'{"url": "https://a.example/1", "caption": "one"}\n'
        b"not json\n"
        b"\n"
        b"[1, 2]\n"
        b'{"url": "https://a.example/5", "phash": -1}\n'
    )
    rows, problems = _read(path)
    assert [(r["row"], r["url"]) for r in rows] == [
        (1, "https://a.example/1"),
        (5, "https://a.example/5"),
    ]
    assert rows[1]["phash"] == 2**64 - 1  # a signed BIGINT, as databases store it
    assert [row for row, _ in problems] == [2, 4]


def test_parquet_is_read_batch_by_batch_with_an_explicit_mapping(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    n = 2500
    table = pa.table(
        {"link": [f"https://a.example/{i}" for i in range(n)], "alt": [f"c{i}" for i in range(n)]}
    )
    pq.write_table(table, path, row_group_size=1000)
    reader = ManifestReader(path, mapping={"url": "link"}, batch_rows=1000)
    assert reader.format == "parquet"
    assert reader.total_rows == n
    sizes = [batch.num_rows for batch, _ in reader.batches()]
    assert sum(sizes) == n
    assert max(sizes) <= 1000
    assert reader.mapping == {"url": "link", "caption": "alt"}


def test_webdataset_shard_hashes_each_sample_image(tmp_path: Path) -> None:
    picture = images.jpeg(seed=7)
    expected = imaging.inspect_image(picture, max_bytes=10**8, max_pixels=10**8)
    path = webdataset(
        tmp_path / "shard-000000.tar",
        [
            (
                "000000",
                {
                    "jpg": picture,
                    "txt": b"a caption",
                    "json": json.dumps({"url": "https://a.example/1.jpg"}).encode(),
                },
            ),
            ("000001", {"png": b"not an image", "txt": b"broken"}),
            ("000002", {"txt": b"no image at all"}),
        ],
    )
    rows, problems = _read(path)
    assert rows[0] == {
        "row": 1,
        "url": "https://a.example/1.jpg",
        "caption": "a caption",
        "sha256": expected.sha256,
        "phash": expected.phash,
    }
    assert rows[1]["sha256"] is None
    assert rows[2]["sha256"] is None
    assert [row for row, _ in problems] == [2, 3]
    assert problems[1][1] == "the sample has no image file"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        (images.png(1), "This is a PNG image, not a manifest"),
        (b"PK\x03\x04rest-of-zip", "This is a ZIP archive"),
        (b"\x1f\x8b\x08\x00gzip", "gzip-compressed (decompress it first)"),
        (b'[{"url": "https://a.example"}]', "This is a JSON array"),
        (b"name,width\nx,1\n", "No URL column found among 'name', 'width'"),
        (b"\xff\xfeu\x00r\x00l\x00", "This text is UTF-16; save the manifest as UTF-8."),
        (b"url,\xe9\n", "The CSV header is not UTF-8 text"),
    ],
)
def test_files_that_are_no_manifest_are_refused_with_a_sentence(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ManifestReader(path)


def test_a_chosen_column_the_file_lacks_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("url,caption\nhttps://a.example/1,x\n")
    with pytest.raises(ManifestError, match="no column 'link' \\(for url\\)"):
        ManifestReader(path, mapping={"url": "link"})


def test_a_header_alone_has_no_rows(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("url,caption\n\n")
    assert not has_rows(ManifestReader(empty))
    one = jsonl(tmp_path / "one.jsonl", [{"url": "https://a.example/1"}])
    assert has_rows(ManifestReader(one))
