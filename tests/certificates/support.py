"""A paid, fulfilled, delivered mixed order and its certificate, for the certificate tests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderItem, OrderStatus
from marketplace.certificates import services as certificates
from marketplace.db import transaction
from tests.buyers.support import DONATE, bundle, licence, stock_items, work_item
from tests.factories import make_artist, make_buyer


@dataclass
class Delivered:
    order_id: int
    buyer: Any
    images: dict[str, bytes]  # key -> the bytes "shipped"
    missing: dict[str, str]  # key -> reason


def paid_mixed_order(db: Any, run_jobs: Any, tmp_path: Path) -> tuple[int, Any]:
    """Licensed, donated and public-domain items, paid and fulfilled; returns (order id, buyer)."""
    ada, ben = make_artist(db), make_artist(db)
    buyer = make_buyer(db)
    items = [
        work_item(db, ada, licence(333), title="Harbour"),
        work_item(db, ben, licence(501, attribution_required=True), title="Dunes"),
        work_item(db, ben, DONATE, title="Gift"),
        *stock_items(db, tmp_path, 2),
    ]
    bundle_id = bundle(db, buyer, items)
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        b = session.get(Bundle, bundle_id)
        quote = buyers.current_quote(session, b)
        order = buyers.checkout(session, user, b, quote.public_id).order
        if order.status is OrderStatus.AWAITING_PAYMENT:
            assert buyers.record_payment(
                session,
                order,
                payment_intent_id="pi_cert",
                amount_minor=order.total_minor,
                currency=order.currency,
            )
        order_id = order.id
    run_jobs()
    db.expire_all()
    order = db.get(Order, order_id)
    assert order is not None
    assert order.status is OrderStatus.FULFILLED
    return order_id, buyer


def deliver(db: Any, order_id: int, *, missing_positions: tuple[int, ...] = ()) -> Delivered:
    """Set delivered_* as the package build would (made-up image bytes), some items missing."""
    images: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    positions = db.scalars(select(OrderItem.position).where(OrderItem.order_id == order_id)).all()
    for position in positions:
        key = f"{position:09d}"
        values: dict[str, Any]
        if position in missing_positions:
            missing[key] = "The museum's server answered 404 for the image."
            values = {"missing_reason": missing[key]}
        else:
            data = b"\x89PNG\r\n\x1a\n" + f"image {order_id}/{position}".encode() * 20
            images[key] = data
            values = {
                "delivered_sha256": hashlib.sha256(data).hexdigest(),
                "delivered_media_type": "image/png",
                "delivered_bytes": len(data),
            }
        db.execute(
            update(OrderItem)
            .where(OrderItem.order_id == order_id, OrderItem.position == position)
            .values(**values)
        )
    db.commit()
    return Delivered(order_id, None, images, missing)


def issue(db: Any, order_id: int) -> dict[str, Any]:
    with db.info["app"].app_context(), transaction(db) as session:
        return certificates.issue_certificate(session, order_id)


def write_package(
    directory: Path, images: dict[str, bytes], certificate: dict[str, Any], name: str = "order"
) -> Path:
    """A WebDataset shard as delivery writes it: KEY.png and KEY.json per item (the sidecar
    naming the item, its digest and its sold entry, as the certificate's record does)."""
    records = {item["record"]["key"]: item["record"] for item in certificate["items"]}
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(directory / f"{name}-00000.tar", "w") as tar:
        for key, data in sorted(images.items()):
            record = records.get(key, {})
            sidecar = {
                "key": key,
                "item_id": record.get("item"),
                "sha256": record.get("sha256"),
                "ledger_seq": record.get("sold_seq"),
            }
            for member, content in (
                (f"{key}.png", data),
                (f"{key}.json", json.dumps(sidecar).encode()),
            ):
                info = tarfile.TarInfo(member)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return directory
