"""Certificate benchmark: issuing the provenance certificate of one large delivered order.

    python bench/certificate_bench.py [--items 1000000] [--backend sqlite postgresql] [--repeat 3]

For each size: ingests a small pool of open-access stock records (1,000, generated), then
writes, in bulk as the fulfilment job would have, an order of that many items (cycling through
the pool), one `order.paid` and one `dataset.item_sold` ledger entry per item, and the
delivered_* columns the package build fills (by SQL). It times `issue_certificate` with its
commit: reading the items, one record per item, the RFC 6962 root over them, the seal entry and
its checkpoint, inclusion proofs (the item entries' only up to CERTIFICATE_ITEM_PROOFS_MAX),
the signature and the stored JSON. The PDF appendix is not drawn (it is made on request).

Beside it, as a floor measured in the same run on the same records: json.dumps of every record
(sorted keys, compact) with a SHA-256 of each, plus json.dumps of the whole list: the least work
any certificate of that content needs. Medians of --repeat runs (one order per run).

Target (2 cores): a 1,000,000-item certificate in under 10 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import bench_buyer, database, print_table
from fulfilment_bench import write_records
from sqlalchemy import Table, select

from marketplace import create_app
from marketplace.buyers.models import (
    Bundle,
    BundleStatus,
    ItemLicence,
    Order,
    OrderItem,
    OrderStatus,
    Quote,
)
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.models import CatalogItem
from marketplace.catalog.sources import get_adapter
from marketplace.certificates import services as certificates
from marketplace.db import bulk_insert, get_database, transaction
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.migrate import upgrade

POOL = 1000
ORDER_ITEMS = Table("order_items", OrderItem.metadata)


def make_order(session: Any, buyer: Any, pool: list[tuple[int, int]], items: int, n: int) -> int:
    """A paid, fulfilled, delivered order of `items` items, written in bulk; returns its id."""
    now = datetime.now(UTC)
    with transaction(session):
        bundle = Bundle(
            organization_id=buyer.organization_id,
            created_by_id=buyer.id,
            name=f"Bench {n}",
            intended_uses=["generative_training"],
            source={"query": {}},
            currency="usd",
            status=BundleStatus.READY,
            included_count=items,
        )
        session.add(bundle)
        session.flush()
        quote = Quote(
            public_id=f"q_bench_{n}_{items}",
            bundle_id=bundle.id,
            organization_id=buyer.organization_id,
            currency="usd",
            item_count=items,
            licensed_minor=0,
            handling_minor=0,
            minimum_adjustment_minor=0,
            total_minor=0,
            artists_minor=0,
            platform_minor=0,
            commission_bps=2000,
            counts={"public_domain": items},
            obligations={},
            expires_at=now,
        )
        session.add(quote)
        session.flush()
        order = Order(
            organization_id=buyer.organization_id,
            bundle_id=bundle.id,
            quote_id=quote.id,
            created_by_id=buyer.id,
            status=OrderStatus.FULFILLED,
            currency="usd",
            item_count=items,
            total_minor=0,
            artists_minor=0,
            platform_minor=0,
            fulfilled_count=items,
            paid_at=now,
            fulfilled_at=now,
        )
        session.add(order)
        session.flush()
        order.paid_seq = ledger.append(
            session,
            EntryKind.ORDER_PAID,
            subject={"order": order.id, "organization": buyer.organization_id},
            payload={"items": items, "total_minor": 0, "currency": "usd", "payment": "free"},
        )
        order_id = order.id

        def sold(i: int) -> ledger.NewEntry:
            item_id, stock_id = pool[i % len(pool)]
            return ledger.NewEntry(
                EntryKind.DATASET_ITEM_SOLD,
                {"order": order_id, "organization": buyer.organization_id, "stock": stock_id},
                {
                    "item": item_id,
                    "position": i,
                    "licence": "public_domain",
                    "terms": None,
                    "price_minor": 0,
                    "artist_share_minor": 0,
                    "currency": "usd",
                    "attribution_required": False,
                },
            )

        appended = ledger.append_many(session, (sold(i) for i in range(items)))
        connection = session.connection()
        for start in range(0, items, 20_000):
            rows = []
            for i in range(start, min(start + 20_000, items)):
                item_id, stock_id = pool[i % len(pool)]
                rows.append(
                    {
                        "order_id": order_id,
                        "position": i,
                        "item_id": item_id,
                        "licence": ItemLicence.PUBLIC_DOMAIN.value,
                        "work_id": None,
                        "stock_id": stock_id,
                        "terms_id": None,
                        "artist_id": None,
                        "price_minor": 0,
                        "artist_share_minor": 0,
                        "attribution_required": False,
                        "sha256": hashlib.sha256(b"original %d" % i).hexdigest(),
                        "ledger_seq": appended.first_seq + i,
                        "delivered_sha256": None,
                        "delivered_media_type": None,
                        "delivered_bytes": None,
                        "missing_reason": "",
                    }
                )
            bulk_insert(connection, ORDER_ITEMS, rows)
    # What the package build records, set by SQL as the brief of this bench says.
    with transaction(session):
        session.execute(
            ORDER_ITEMS.update()
            .where(ORDER_ITEMS.c.order_id == order_id)
            .values(
                delivered_sha256=ORDER_ITEMS.c.sha256,
                delivered_media_type="image/jpeg",
                delivered_bytes=250_000 + ORDER_ITEMS.c.position % 100_000,
            )
        )
    return order_id


def floor_seconds(records: list[dict[str, Any]]) -> float:
    """json.dumps and SHA-256 of every record, and json.dumps of the whole list."""
    dumps, sha256 = json.dumps, hashlib.sha256
    t0 = time.perf_counter()
    for record in records:
        sha256(
            dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).digest()
    dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return time.perf_counter() - t0


def bench(backend: str, url: str, items: int, repeat: int, workdir: Path) -> dict[str, str]:
    instance = workdir / f"instance-{backend}-{items}"
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "STORAGE_DIR": str(instance / "objects"),
        },
        instance_path=str(instance),
    )
    upgrade(get_database(app).engine)
    records_file = workdir / "pool.jsonl"
    if not records_file.exists():
        write_records(records_file, POOL)
    issue_times, floor_times, sizes = [], [], []
    with app.app_context():
        ingest_file(get_adapter("cleveland"), records_file, chunk_size=10_000)
        session = get_database(app).sessions()
        with transaction(session):
            buyer = bench_buyer(session)
        pool = [
            (int(i), int(s))
            for i, s in session.execute(
                select(CatalogItem.id, CatalogItem.stock_id).where(
                    CatalogItem.stock_id.is_not(None)
                )
            )
        ]
        setup = 0.0
        for n in range(repeat):
            t0 = time.perf_counter()
            order_id = make_order(session, buyer, pool, items, n)
            setup += time.perf_counter() - t0
            session.expire_all()
            t0 = time.perf_counter()
            with transaction(session):
                data = certificates.issue_certificate_bytes(session, order_id)
            issue_times.append(time.perf_counter() - t0)
            sizes.append(len(data))
            document = json.loads(data)
            del data
            records = [i["record"] for i in document["items"]]
            assert len(records) == items, len(records)
            del document
            floor_times.append(floor_seconds(records))
            del records
        session.close()
    get_database(app).engine.dispose()
    issue, floor = statistics.median(issue_times), statistics.median(floor_times)
    return {
        "backend": backend,
        "items": f"{items:,}",
        "runs": str(repeat),
        "setup (bulk order + ledger), per run": f"{setup / repeat:.1f} s",
        "certificate JSON": f"{statistics.median(sizes) / 1e6:,.0f} MB",
        "issue_certificate": f"{issue:.2f} s ({items / issue:,.0f} items/s)",
        "floor (json.dumps + sha256)": f"{floor:.2f} s",
        "ratio": f"{issue / floor:.1f}x",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[5_000])
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for items in args.items:
            for backend in args.backend:
                with database(backend, workdir) as url:
                    rows.append(bench(backend, url, items, args.repeat, workdir))
                print(rows[-1], flush=True)
    print_table("Certificate of one delivered order (stock items, proofs, signature):", rows)


if __name__ == "__main__":
    main()
