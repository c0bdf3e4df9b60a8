"""Catalog content for buyer tests, made through the real services (uploads, ingest)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import imaging
from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind, Work
from marketplace.artists.terms import TermsSpec
from marketplace.buyers import services as buyers
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.catalog.sources import get_adapter
from marketplace.catalog.tasks import store_stock_image
from marketplace.db import transaction
from tests import images

_seeds = itertools.count(1000)
_records = itertools.count(1)


def licence(price_minor: int = 300, **uses: bool) -> TermsSpec:
    flags = {"generative_training": True, **uses}
    return TermsSpec(TermsKind.LICENSE, price_minor=price_minor, **flags)


DONATE = TermsSpec(TermsKind.DONATE)
NOT_AVAILABLE = TermsSpec(TermsKind.NOT_AVAILABLE)


def work_item(db: Session, artist_user: Any, terms: TermsSpec, title: str = "Work") -> int:
    """Upload a work with `terms`; returns its catalog item id."""
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(artist_user)
        work = artists.register_work(
            session, owner.artist, owner, images.png(next(_seeds)), title=title, terms=terms
        )
        work_id = work.id
    return int(db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work_id)))


def stock_items(
    db: Session, tmp_path: Path, count: int = 1, *, mirrored: bool = True, **overrides: Any
) -> list[int]:
    """Ingest `count` open-access Cleveland records; returns their catalog item ids.

    `mirrored` stores a generated image for each, as a finished mirror job would, so that a
    package build never reaches for the museum's real (and, here, unreachable) servers."""
    path = tmp_path / f"cleveland-{next(_records)}.jsonl"
    ids = []
    with path.open("w") as out:
        for _ in range(count):
            n = next(_records)
            accession = f"1950.{n}"
            record = {
                "id": 9_000_000 + n,
                "accession_number": accession,
                "title": f"Public domain study {n}",
                "creation_date": "1850",
                "creation_date_earliest": 1850,
                "creation_date_latest": 1850,
                "creators": [{"description": "Anonymous (French)", "role": "artist"}],
                "technique": "oil on canvas",
                "type": "Painting",
                "url": f"https://clevelandart.org/art/{accession}",
                "share_license_status": "CC0",
                "images": {
                    "web": {
                        "url": f"https://openaccess-cdn.clevelandart.org/{accession}/web.jpg",
                        "width": "1200",
                        "height": "800",
                    }
                },
                **overrides,
            }
            out.write(json.dumps(record) + "\n")
            ids.append(str(record["id"]))
    with db.info["app"].app_context():
        ingest_file(get_adapter("cleveland"), path)
    db.rollback()
    if mirrored:
        _mirror(db, ids)
    rows = db.execute(
        select(CatalogItem.id)
        .join(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(StockRecord.source_id.in_(ids))
        .order_by(CatalogItem.id)
    ).scalars()
    return list(rows)


def _mirror(db: Session, source_ids: list[str]) -> None:
    app = db.info["app"]
    with app.app_context(), transaction(db) as session:
        records = session.scalars(select(StockRecord).where(StockRecord.source_id.in_(source_ids)))
        for record in records:
            data = images.jpeg(seed=record.id)
            inspected = imaging.inspect_image(data, max_bytes=10**8, max_pixels=10**8)
            store_stock_image(session, record, data, inspected)


def work_of(db: Session, item_id: int) -> Work:
    item = db.get(CatalogItem, item_id)
    assert item is not None
    assert item.work_id is not None
    work = db.get(Work, item.work_id)
    assert work is not None
    return work


def bundle(db: Session, buyer: Any, item_ids: list[int], *uses: str, name: str = "Set") -> int:
    """Create (and, inline, build) a bundle from catalog ids; returns its id."""
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        created = buyers.create_bundle(
            session,
            user,
            buyers.BundleRequest(
                name=name,
                intended_uses=list(uses or ("generative_training",)),
                work_ids=item_ids,
            ),
        )
        bundle_id = created.id
    db.expire_all()
    return bundle_id
