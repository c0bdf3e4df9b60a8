"""Fulfilment benchmark: the job that writes one provenance entry per item of a paid order.

    python bench/fulfilment_bench.py [--items 100000 1000000] [--backend sqlite postgresql]

For each size: ingests that many open-access stock records (generated, Cleveland-shaped),
builds a bundle of all of them from a catalog query, checks out its (free) quote, and times
`fulfil_order` — the background job that appends one `dataset.item_sold` ledger entry per item
and writes each entry's seq back to the order item. Beside it, as a floor measured in the same
run on the same database, `ledger.append_many` appending the same number of entries in one go
(the ledger's own rate, with no order items to read or update), and their ratio.

Target (2 cores): a 100,000-item order fulfilled in under 30 s on SQLite.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import bench_buyer, database, print_table

from marketplace import create_app
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderStatus
from marketplace.catalog.ingest import ingest_file
from marketplace.catalog.sources import get_adapter
from marketplace.db import get_database, transaction
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.migrate import upgrade


def write_records(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            accession = f"1900.{i}"
            out.write(
                json.dumps(
                    {
                        "id": 50_000_000 + i,
                        "accession_number": accession,
                        "title": f"Study of light {i}",
                        "creation_date": "1880",
                        "creation_date_earliest": 1880,
                        "creation_date_latest": 1880,
                        "creators": [{"description": "Anonymous", "role": "artist"}],
                        "technique": "oil on canvas",
                        "type": "Painting",
                        "url": f"https://clevelandart.org/art/{accession}",
                        "share_license_status": "CC0",
                        "images": {
                            "web": {
                                "url": f"https://openaccess-cdn.clevelandart.org/{accession}/w.jpg",
                                "width": "1200",
                                "height": "800",
                            }
                        },
                    }
                )
                + "\n"
            )


def floor_append(session, count: int) -> float:
    """Seconds for ledger.append_many to append `count` comparable entries."""
    entries = (
        ledger.NewEntry(
            EntryKind.DATASET_ITEM_SOLD,
            {"order": 1, "organization": 1, "stock": i},
            {
                "item": i,
                "position": i,
                "licence": "public_domain",
                "terms": None,
                "price_minor": 0,
                "artist_share_minor": 0,
                "currency": "usd",
                "attribution_required": False,
            },
        )
        for i in range(count)
    )
    t0 = time.perf_counter()
    with transaction(session):
        ledger.append_many(session, entries)
    return time.perf_counter() - t0


def bench(backend: str, url: str, items: int, workdir: Path) -> dict[str, str]:
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            # Fulfilment alone is timed: the package build (which would fetch these made-up
            # museum images) is another bench's.
            "PACKAGE_AUTO_BUILD": False,
        },
        instance_path=str(workdir / f"instance-{backend}-{items}"),
    )
    upgrade(get_database(app).engine)
    records = workdir / f"records-{items}.jsonl"
    if not records.exists():
        write_records(records, items)
    with app.app_context():
        t0 = time.perf_counter()
        ingest_file(get_adapter("cleveland"), records, chunk_size=10_000)
        ingest_seconds = time.perf_counter() - t0
        session = get_database(app).sessions()
        with transaction(session):
            buyer = bench_buyer(session)
        # Inline jobs: the bundle is built (checked and quoted) within this call.
        t0 = time.perf_counter()
        with transaction(session):
            bundle = buyers.create_bundle(
                session,
                buyer,
                buyers.BundleRequest(
                    name="All stock",
                    intended_uses=["generative_training"],
                    query={"license": ["public_domain"]},
                ),
            )
            bundle_id = bundle.id
        session.expire_all()
        build_seconds = time.perf_counter() - t0
        bundle = session.get(Bundle, bundle_id)
        assert bundle is not None
        assert bundle.included_count == items, (bundle.included_count, bundle.error)
        quote = buyers.current_quote(session, bundle)
        assert quote is not None
        # Check out with the job queue held, so that the fulfilment job is timed on its own.
        held: list[tuple[object, ...]] = []
        enqueue = buyers.jobs.enqueue
        buyers.jobs.enqueue = lambda *args, **kwargs: held.append(args)  # type: ignore[assignment]
        try:
            t0 = time.perf_counter()
            with transaction(session):
                order = buyers.checkout(session, buyer, bundle, quote.public_id).order
                order_id = order.id
            checkout_seconds = time.perf_counter() - t0
        finally:
            buyers.jobs.enqueue = enqueue
        assert held, "checkout queued no fulfilment job"
        session.expire_all()
        t0 = time.perf_counter()
        buyers.fulfil_order(order_id)
        fulfil_seconds = time.perf_counter() - t0
        session.expire_all()
        order = session.get(Order, order_id)
        assert order is not None
        assert order.status is OrderStatus.FULFILLED, order.status
        assert order.fulfilled_count == items
        floor_seconds = floor_append(session, items)
        session.close()
    get_database(app).engine.dispose()
    return {
        "backend": backend,
        "items": f"{items:,}",
        "ingest": f"{ingest_seconds:.1f} s",
        "bundle build + quote": f"{build_seconds:.1f} s",
        "checkout": f"{checkout_seconds:.1f} s",
        "fulfilment job": f"{fulfil_seconds:.1f} s ({items / fulfil_seconds:,.0f} items/s)",
        "append_many floor": f"{floor_seconds:.1f} s ({fulfil_seconds / floor_seconds:.1f}x)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for items in args.items:
            for backend in args.backend:
                with database(backend, workdir) as url:
                    rows.append(bench(backend, url, items, workdir))
                print(rows[-1], flush=True)
    print_table("Fulfilment of one paid order (free stock, so no card):", rows)


if __name__ == "__main__":
    main()
