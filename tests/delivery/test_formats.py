"""Package files read back the way buyers read them: webdataset, datasets, pandas, mlcroissant."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from marketplace.delivery import formats
from tests import images
from tests.conftest import shared_path
from tests.delivery import support


@pytest.fixture
def package(tmp_path: Path) -> support.Package:
    return support.build(tmp_path / "pkg")


def test_webdataset_reads_every_sample_with_image_json_and_matching_sha256(
    package: support.Package,
) -> None:
    import webdataset as wds

    urls = [str(package.directory / shard.name) for shard in package.shards]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [r.key for r in package.records]
    for sample, record in zip(samples, package.records, strict=True):
        extension = formats.EXTENSION_FOR_MEDIA_TYPE[record.media_type]
        assert set(sample) - {"__key__", "__url__", "__local_path__"} == {extension, "json"}
        meta = json.loads(sample["json"])
        assert meta == asdict(record)
        assert hashlib.sha256(sample[extension]).hexdigest() == meta["sha256"]
        with Image.open(io.BytesIO(sample[extension])) as picture:
            assert b"plus:DataMining" in picture.info["xmp"]


def test_tar_members_have_fixed_headers_in_image_then_json_order(
    package: support.Package,
) -> None:
    path = package.directory / package.shards[0].name
    raw = path.read_bytes()
    assert raw[257:265] == b"ustar\x0000"  # POSIX USTAR, no PAX or GNU extensions
    assert len(raw) % tarfile.RECORDSIZE == 0
    with tarfile.open(path) as archive:
        members = archive.getmembers()
    assert [m.name for m in members[:2]] == ["000000000.jpg", "000000000.json"]
    assert [m.name.rsplit(".", 1)[1] for m in members[1::2]] == ["json"] * 7
    for member in members:
        assert member.mtime == int(support.CREATED.timestamp())
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mode == 0o644
        assert member.isfile()
    shard = package.shards[0]
    assert (shard.size_bytes, shard.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert (shard.item_count, shard.first_key, shard.last_key) == (7, "000000000", "000000006")


def test_gnu_tar_lists_and_extracts_the_shard_unchanged(
    package: support.Package, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    if shutil.which("tar") is None:
        pytest.skip("no tar command")
    shard = package.directory / package.shards[0].name
    listing = subprocess.run(["tar", "-tf", str(shard)], capture_output=True, text=True, check=True)
    assert listing.stdout.split() == [
        f"{r.key}.{ext}" for r in package.records
        for ext in (formats.EXTENSION_FOR_MEDIA_TYPE[r.media_type], "json")
    ]  # fmt: skip
    out = tmp_path / "extracted"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(shard), "-C", str(out)], check=True)
    for record in package.records:
        meta = json.loads((out / f"{record.key}.json").read_text(encoding="utf-8"))
        image = out / f"{record.key}.{formats.EXTENSION_FOR_MEDIA_TYPE[record.media_type]}"
        assert hashlib.sha256(image.read_bytes()).hexdigest() == meta["sha256"]


def test_json_record_is_sorted_compact_utf8_with_newline(package: support.Package) -> None:
    record = package.records[2]
    text = formats.record_json(record).decode("utf-8")
    assert text.endswith("}\n")
    assert text.count("\n") == 1
    assert text == json.dumps(asdict(record), sort_keys=True, separators=(",", ":")) + "\n"


def test_parquet_reads_with_hugging_face_datasets_offline_and_pandas(
    package: support.Package, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    parquet = str(package.directory / formats.PARQUET_NAME)
    table = load_dataset("parquet", data_files=parquet, cache_dir=str(tmp_path / "hf"))["train"]
    assert table.num_rows == 7
    assert table.column_names == [c.name for c in formats.COLUMNS]
    assert [dict(row) for row in table] == [asdict(r) for r in package.records]

    frame = pd.read_parquet(parquet, dtype_backend="numpy_nullable")
    assert frame["key"].tolist() == [r.key for r in package.records]
    assert str(frame["item_id"].dtype) == "Int64"
    assert frame["terms_version"].isna().tolist() == [False, False] + [True] * 5
    assert frame["attribution_required"].sum() == 1


def test_croissant_validates_and_yields_the_parquet_records(package: support.Package) -> None:
    import mlcroissant as mlc

    path = package.directory / "croissant.json"
    dataset = mlc.Dataset(jsonld=str(path))  # raises ValidationError on any error
    assert not dataset.metadata.ctx.issues.errors
    rows = list(dataset.records("items"))
    assert [row["items/key"].decode() for row in rows] == [r.key for r in package.records]
    assert rows[0]["items/attribution_required"] is True
    assert rows[1]["items/terms_version"] == 2

    document = support.read_json(path)
    assert isinstance(document, dict)
    assert document["conformsTo"][0] == "http://mlcommons.org/croissant/1.0"
    assert document["@context"]["rai"] == "http://mlcommons.org/croissant/RAI/"
    assert document["rai:hasSyntheticData"] is False
    for term in ("dataCollection", "dataCollectionType", "personalSensitiveInformation",
                 "dataUseCases", "dataLimitations", "dataBiases"):  # fmt: skip
        assert document[f"rai:{term}"]
    assert len(document["license"]) == 4  # two artists' terms, CC0, public-domain mark
    by_id = {node["@id"]: node for node in document["distribution"]}
    assert by_id["metadata.parquet"]["sha256"] == package.parquet.sha256
    assert by_id["order-12-00000.tar"]["encodingFormat"] == "application/x-tar"
    assert by_id["images-webp"]["containedIn"] == [{"@id": "order-12-00000.tar"}]
    fields = document["recordSet"][0]["field"]
    assert {f["name"]: f["dataType"] for f in fields}["source_url"] == "sc:URL"
    assert {f["name"]: f["dataType"] for f in fields}["ledger_seq"] == "sc:Integer"


@pytest.mark.slow
def test_croissant_passes_the_mlcroissant_command_line(package: support.Package) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mlcroissant.scripts.validate", "--jsonld",
         str(package.directory / "croissant.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    first = support.build(tmp_path / "a", max_items=4)
    second = support.build(tmp_path / "b", max_items=4)
    names = sorted(p.name for p in first.directory.iterdir())
    assert names == sorted(p.name for p in second.directory.iterdir())
    assert len(names) == 4  # two shards, the parquet table, croissant.json
    for name in names:
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes()
    assert first.shards == second.shards


def test_shards_roll_over_by_item_count(tmp_path: Path) -> None:
    package = support.build(tmp_path, max_items=3)
    assert [s.name for s in package.shards] == [
        "order-12-00000.tar", "order-12-00001.tar", "order-12-00002.tar"
    ]  # fmt: skip
    assert [s.item_count for s in package.shards] == [3, 3, 1]
    assert [(s.first_key, s.last_key) for s in package.shards] == [
        ("000000000", "000000002"), ("000000003", "000000005"), ("000000006", "000000006")
    ]  # fmt: skip
    for shard in package.shards:
        data = (tmp_path / shard.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard.sha256
    assert sum(s.image_bytes for s in package.shards) == package.summary.image_bytes
    assert not list(tmp_path.glob("*.part"))


def test_shards_roll_over_by_byte_cap_and_stay_under_it(tmp_path: Path) -> None:
    cap = 100 * 1024
    package = support.build(tmp_path, max_bytes=cap)
    assert len(package.shards) > 1
    assert sum(s.item_count for s in package.shards) == 7
    for shard in package.shards:
        assert shard.size_bytes == (tmp_path / shard.name).stat().st_size
        assert shard.size_bytes <= cap or shard.item_count == 1
    keys = [k for s in package.shards for k in (s.first_key, s.last_key)]
    assert keys == sorted(keys)


def test_item_larger_than_the_cap_gets_a_shard_of_its_own(tmp_path: Path) -> None:
    items = support.sources()[:3]
    big = images.encode(images.noise(9, (900, 900)), "PNG")
    items[1] = replace(items[1], original=big)
    package = support.build(tmp_path, items, max_bytes=64 * 1024)
    assert [s.item_count for s in package.shards] == [1, 1, 1]
    assert package.shards[1].size_bytes > 64 * 1024


def test_keys_must_increase_and_match_the_image(tmp_path: Path) -> None:
    package = support.build(tmp_path / "ok")
    record = package.records[3]
    image = b"not the image"
    with formats.ShardWriter(tmp_path / "bad", "order-12", support.CREATED) as writer:
        with pytest.raises(ValueError, match="sha256"):
            writer.add(record, image)
        extension = formats.EXTENSION_FOR_MEDIA_TYPE[record.media_type]
        with tarfile.open(package.directory / package.shards[0].name) as archive:
            member = archive.extractfile(f"{record.key}.{extension}")
            assert member is not None
            original = member.read()
        with pytest.raises(ValueError, match="media type"):
            writer.add(record, formats.PreparedImage(original, "image/png", record.sha256))
        writer.add(record, formats.PreparedImage(original, "image/jpeg", record.sha256))
        with pytest.raises(ValueError, match="does not sort after"):
            writer.add(package.records[1], original)
        with pytest.raises(ValueError, match="letters, digits"):
            writer.add(replace(record, key="000000009.x"), original)
        assert len(writer.close()) == 1


def test_a_failed_build_leaves_no_partial_shard(tmp_path: Path) -> None:
    record = support.build(tmp_path / "ok").records[0]
    with (
        pytest.raises(RuntimeError),
        formats.ShardWriter(tmp_path / "out", "order-12", support.CREATED) as writer,
    ):
        writer.add(replace(record, sha256=hashlib.sha256(b"x").hexdigest()), b"x")
        raise RuntimeError("storage went away")
    assert list((tmp_path / "out").iterdir()) == []


def test_museum_images_from_shared_data_package_unchanged(tmp_path: Path) -> None:
    folder = shared_path("data/images")
    items = [
        support.Source(path.stem, "", "Shared samples", "institution", "public_domain",
                       path.read_bytes())
        for path in (folder / "rocket.jpg", folder / "horse.png", folder / "camera.png")
    ]  # fmt: skip
    package = support.build(tmp_path, items)
    with tarfile.open(tmp_path / package.shards[0].name) as archive:
        for record, src in zip(package.records, items, strict=True):
            extension = formats.EXTENSION_FOR_MEDIA_TYPE[record.media_type]
            member = archive.extractfile(f"{record.key}.{extension}")
            assert member is not None
            with Image.open(member) as shipped, Image.open(io.BytesIO(src.original)) as orig:
                assert shipped.tobytes() == orig.tobytes()


# --- Documents ----------------------------------------------------------------------------


def test_dataset_card_counts_uses_obligations_and_verification(
    package: support.Package,
) -> None:
    missing = [formats.MissingItem("000000099", 99, "https://museum.example/99", "HTTP 404")]
    card = formats.dataset_card(
        support.INFO, package.summary, formats.default_obligations(package.summary), missing
    )
    assert "| Licensed by the artist | 2 |" in card
    assert "| Donated by the artist (CC0) | 1 |" in card
    assert "| Public domain (museum open access) | 4 |" in card
    assert "| **Total** | **7** |" in card
    assert "- Training generative models" in card
    assert "- Commercial use of the trained model" in card
    assert "Attribution required for 1 item: see ATTRIBUTION.md." in card
    assert "1 ordered item could not be fetched" in card
    assert "python verifier.py certificate.json --package ." in card
    assert 'wds.WebDataset("order-12-{00000..00000}.tar")' in card
    assert 'load_dataset("parquet", data_files="metadata.parquet")' in card


def test_attribution_lists_only_items_that_require_it_escaped(tmp_path: Path) -> None:
    package = support.build(tmp_path)
    records = [*package.records, replace(package.records[2], key="000000010",
               attribution_required=True, attribution="")]  # fmt: skip
    text = formats.attribution_markdown(reversed(records))
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 2
    assert lines[0].startswith("- `000000000`: Harbour at dusk by Mira Okafor")
    assert r"Gift \| \[draft\] \*1\* by Ana Ruiz" in lines[1]  # markup in titles is inert
    assert "No item" in formats.attribution_markdown(package.records[1:])


def test_licence_files_once_per_terms_version_with_safe_unique_names() -> None:
    files = formats.licence_files(
        {
            "Mira Okafor terms v2": "You may train.\n",
            "Mira Okafor / terms v2": "Same slug, other text.",
            "../../etc/passwd": "x",
            "Études · v1": "y",
        }
    )
    assert sorted(files) == [
        "LICENSES/etc-passwd.md",
        "LICENSES/etudes-v1.md",
        "LICENSES/mira-okafor-terms-v2-2.md",
        "LICENSES/mira-okafor-terms-v2.md",
    ]
    assert files["LICENSES/mira-okafor-terms-v2-2.md"].endswith("You may train.\n")


def test_missing_json_lists_key_item_url_and_reason_in_key_order() -> None:
    data = formats.missing_json(
        [
            formats.MissingItem("000000005", 5, "https://m.example/5", "timeout"),
            formats.MissingItem("000000002", 2, "https://m.example/2", "HTTP 410 Gone"),
        ]
    )
    document = json.loads(data)
    assert document["count"] == 2
    assert [i["key"] for i in document["items"]] == ["000000002", "000000005"]
    assert document["items"][0] == {
        "key": "000000002", "item_id": 2, "source_url": "https://m.example/2",
        "reason": "HTTP 410 Gone",
    }  # fmt: skip
    assert data.endswith(b"\n")


# --- EU AI Act summary --------------------------------------------------------------------

TEMPLATE_ORDER = [
    "1. General information",
    "1.1 Provider identification",
    "1.2 Model identification",
    "1.3 Modalities, overall training data size and other characteristics",
    "2. List of data sources",
    "2.1 Publicly available datasets",
    "2.2 Private non-publicly available datasets obtained from third parties",
    "2.2.1 Datasets commercially licensed by rightsholders or their representatives",
    "2.2.2 Private datasets obtained from other third parties",
    "2.3 Data crawled and scraped from online sources",
    "2.4 User data",
    "2.5 Synthetic data",
    "2.6 Other sources of data",
    "3. Data processing aspects",
    "3.1 Respect of reservation of rights from the text and data mining exception or limitation",
    "3.2 Removal of illegal content",
    "3.3 Other information",
]


def _headings(node: dict, out: list[str]) -> list[str]:
    for key, value in node.items():
        if isinstance(value, dict):
            out.append(key)
            _headings(value, out)
    return out


def test_ai_act_summary_follows_the_template_and_marks_what_the_provider_fills(
    package: support.Package,
) -> None:
    markdown, document = formats.ai_act_summary(support.INFO, package.summary, [])
    assert _headings(document, []) == TEMPLATE_ORDER
    positions = [markdown.index(f" {heading}\n") for heading in TEMPLATE_ORDER]
    assert positions == sorted(positions)
    assert "DRAFT" in markdown.splitlines()[0]

    general = document["1. General information"]
    assert general["1.1 Provider identification"]["Provider name and contact details"] == (
        formats.TO_BE_COMPLETED
    )
    assert general["1.2 Model identification"]["Versioned model name(s)"] == (
        formats.TO_BE_COMPLETED
    )
    marked = json.dumps(document, ensure_ascii=False).count(formats.TO_BE_COMPLETED)
    assert marked >= 15
    assert markdown.count(formats.TO_BE_COMPLETED) == marked  # unescaped, even mid-sentence
    assert "\\[TO BE" not in markdown
    sources = document["2. List of data sources"]
    assert sources["2.1 Publicly available datasets"]["Sources (institution: items)"] == [
        "Cleveland Museum of Art: 2 items",
        "Art Institute of Chicago: 1 item",
        "Statens Museum for Kunst: 1 item",
    ]
    licensed = sources["2.2 Private non-publicly available datasets obtained from third parties"][
        "2.2.1 Datasets commercially licensed by rightsholders or their representatives"
    ]
    assert licensed["Description"].startswith("2 works licensed by their artists")
    tdm = document["3. Data processing aspects"][TEMPLATE_ORDER[14]]
    assert any("URL, SHA-256 and perceptual hash" in line for line in tdm["This order"])
    assert tdm["Ledger checkpoint (C2SP signed note)"].startswith("market.example/ledger\n12345")
    assert "```\nmarket.example/ledger\n12345\n" in markdown  # the signed note verbatim
    assert "7 images" in general[TEMPLATE_ORDER[3]]["Training data size"]

    again = formats.ai_act_summary(support.INFO, package.summary, [])
    assert again == (markdown, document)
    assert json.dumps(document) == json.dumps(again[1])  # key order too


def test_summary_counts_licences_sources_and_bytes(package: support.Package) -> None:
    summary = package.summary
    assert summary.items == 7
    assert summary.by_licence == {"licensed": 2, "donated": 1, "public_domain": 4}
    assert summary.media_types == ["image/jpeg", "image/png", "image/webp"]
    assert summary.attribution_required == 1
    assert summary.sources[0].licence == "licensed"
    with pytest.raises(ValueError, match="unknown licence"):
        formats.summarize([replace(package.records[0], licence="stolen")], [])


@settings(max_examples=200, deadline=None)
@given(
    name=st.from_regex(r"[A-Za-z0-9_-]{1,94}\.(jpg|png|webp|json)", fullmatch=True),
    size=st.integers(0, 8**11 - 1),
    mtime=st.integers(0, 8**11 - 1),
)
def test_ustar_header_is_byte_for_byte_what_tarfile_writes(
    name: str, size: int, mtime: int
) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    assert formats.ustar_header(name, size, mtime) == info.tobuf(
        tarfile.USTAR_FORMAT, "utf-8", "strict"
    )


def test_ustar_header_refuses_what_ustar_cannot_hold() -> None:
    with pytest.raises(ValueError, match="USTAR"):
        formats.ustar_header("a" * 101, 1, 0)
    with pytest.raises(ValueError, match="USTAR"):
        formats.ustar_header("a.jpg", 8**11, 0)
