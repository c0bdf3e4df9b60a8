"""A small mixed order (licensed, donated, public domain) packaged with the real code path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from marketplace.delivery import formats
from marketplace.xmp import DataMining, xmp_packet
from tests import images

CREATED = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"
PDM = "https://creativecommons.org/publicdomain/mark/1.0/"
CHECKPOINT = (
    "market.example/ledger\n12345\nq6Vj1mF1nB6Jtq0hH3JmX0dQJ0wQv0aR2f0u8k7S2c4=\n\n"
    "\u2014 market.example/ledger Az3grlj0K3CElT8XcKtCmDZQ3Kg0aW5sTW9kTm9kZXJub2Rl\n"
)

INFO = formats.DatasetInfo(
    name="order-12",
    order_id=12,
    order_reference="ORD-7Q2K-91XD",
    organization="Lumen Labs",
    created=CREATED,
    intended_uses=["generative_training", "commercial_use"],
    description="Paintings and drawings licensed for training an image model.",
    base_url="http://127.0.0.1:5000/buyers/orders/12/package",
    publisher="Consent Market",
    ledger_origin="market.example/ledger",
    tree_size_at_purchase=12345,
    checkpoint=CHECKPOINT,
)


@dataclass(frozen=True)
class Source:
    title: str
    creator: str
    source: str
    source_kind: str
    licence: str
    original: bytes
    attribution_required: bool = False


def rgba_picture(seed: int) -> Image.Image:
    picture = images.noise(seed, (120, 90)).convert("RGBA")
    picture.putalpha(images.noise(seed + 50, (120, 90)).convert("L"))
    return picture


def sources() -> list[Source]:
    """Seven items: two artists' licensed works (one needing attribution), one donated CC0
    work, four public-domain museum images, in JPEG, PNG and WebP (one with alpha)."""
    return [
        Source(
            "Harbour at dusk",
            "Mira Okafor",
            "Mira Okafor",
            "artist",
            "licensed",
            images.jpeg(1, (300, 200)),
            attribution_required=True,
        ),
        Source(
            "Study in blue",
            "Jonas Berg",
            "Jonas Berg",
            "artist",
            "licensed",
            images.encode(images.noise(2, (200, 300)), "WEBP", quality=80),
        ),
        Source(
            "Gift | [draft] *1*",
            "Ana Ruiz",
            "Ana Ruiz",
            "artist",
            "donated",
            images.encode(rgba_picture(3), "PNG"),
        ),
        Source(
            "Water lilies",
            "Claude Monet",
            "Cleveland Museum of Art",
            "institution",
            "public_domain",
            images.jpeg(4, (320, 240)),
        ),
        Source(
            "Haystacks",
            "Claude Monet",
            "Cleveland Museum of Art",
            "institution",
            "public_domain",
            images.encode(rgba_picture(5), "WEBP", lossless=True),
        ),
        Source(
            "Bridge",
            "",
            "Statens Museum for Kunst",
            "institution",
            "public_domain",
            images.png(6, (256, 256)),
        ),
        Source(
            "Vase",
            "Unknown",
            "Art Institute of Chicago",
            "institution",
            "public_domain",
            images.jpeg(7, (180, 240)),
        ),
    ]


def record_for(position: int, src: Source, prepared: formats.PreparedImage) -> formats.ItemRecord:
    licensed = src.licence == "licensed"
    terms_url = f"http://127.0.0.1:5000/terms/{position}/v2" if licensed else ""
    return formats.ItemRecord(
        key=f"{position:09d}",
        item_id=1000 + position,
        title=src.title,
        creator=src.creator,
        source=src.source,
        source_kind=src.source_kind,
        licence=src.licence,
        licence_uri=terms_url if licensed else (CC0 if src.licence == "donated" else PDM),
        terms_version=2 if licensed else None,
        terms_url=terms_url,
        terms_seq=40 + position if licensed else None,
        sha256=prepared.sha256,
        media_type=prepared.media_type,
        source_url=f"https://museum.example/objects/{position}",
        ledger_seq=500 + position,
        attribution_required=src.attribution_required,
        attribution=f"{src.title} by {src.creator}, licensed via Consent Market"
        if src.attribution_required
        else "",
    )


@dataclass
class Package:
    directory: Path
    records: list[formats.ItemRecord]
    shards: list[formats.ShardInfo]
    parquet: formats.FileInfo
    summary: formats.PackageSummary


def build(
    directory: Path,
    items: Sequence[Source] | None = None,
    *,
    max_items: int = formats.DEFAULT_MAX_SHARD_ITEMS,
    max_bytes: int = formats.DEFAULT_MAX_SHARD_BYTES,
) -> Package:
    """Build the package files into `directory` as the delivery job does."""
    records = []
    with formats.ShardWriter(
        directory, INFO.name, INFO.created, max_items=max_items, max_bytes=max_bytes
    ) as writer:
        for position, src in enumerate(items or sources()):
            mining = (
                DataMining.ALLOWED
                if src.licence != "licensed"
                else (DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR)
            )
            prepared = formats.prepare_image(src.original, xmp_packet(mining, "https://t/1"))
            record = record_for(position, src, prepared)
            writer.add(record, prepared)
            records.append(record)
        shards = writer.close()
    parquet = formats.write_parquet(records, directory / formats.PARQUET_NAME)
    summary = formats.summarize(records, shards)
    document = formats.croissant(INFO, summary, [parquet, *shards])
    (directory / "croissant.json").write_bytes(formats.croissant_bytes(document))
    return Package(directory, records, shards, parquet, summary)


def read_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))
