"""Paid mixed orders for delivery tests, and a local server standing in for a museum's CDN."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderItem
from marketplace.db import transaction
from tests import images
from tests.buyers.support import DONATE, bundle, licence, stock_items, work_item
from tests.factories import make_artist
from tests.httpserver import serving

MUSEUM_PICTURE = images.png(77, (640, 480))


class Museum:
    """Serves /ok/<n>.png; anything else is 404. `up` False answers 503 (a source that is
    down and stays down through the retries)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.up = True

    def handler(self) -> type[BaseHTTPRequestHandler]:
        museum = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                museum.hits[self.path] = museum.hits.get(self.path, 0) + 1
                if not museum.up:
                    return self.send(503, b"down", "text/plain")
                if self.path.startswith("/ok/"):
                    return self.send(200, MUSEUM_PICTURE, "image/png")
                return self.send(404, b"not found", "text/plain")

            def send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@contextmanager
def museum_server() -> Iterator[tuple[Museum, str]]:
    state = Museum()
    with serving(state.handler()) as base:
        yield state, base


def museum_stock(db: Session, tmp_path: Path, url: str) -> int:
    """One open-access record whose image is at `url` (not mirrored yet)."""
    image = {"web": {"url": url, "width": "640", "height": "480"}}
    return stock_items(db, tmp_path, 1, mirrored=False, images=image)[0]


@dataclass
class MixedOrder:
    order_id: int
    licensed: int
    donated: int
    stock: list[int]


def mixed_items(db: Session, tmp_path: Path, stock_urls: list[str]) -> MixedOrder:
    artist = make_artist(db)
    licensed = work_item(db, artist, licence(400, attribution_required=True), title="Harbour")
    donated = work_item(db, artist, DONATE, title="Gift")
    stock = [museum_stock(db, tmp_path, url) for url in stock_urls]
    return MixedOrder(0, licensed, donated, stock)


def checkout(db: Session, buyer: Any, item_ids: list[int], run_jobs: Any) -> int:
    bundle_id = bundle(db, buyer, item_ids)
    run_jobs()
    with db.info["app"].app_context(), transaction(db) as session:
        b = session.get(Bundle, bundle_id)
        order = buyers.checkout(
            session, session.merge(buyer), b, buyers.current_quote(session, b).public_id
        ).order
        order_id = order.id
    db.expire_all()
    return order_id


def pay_without_card(db: Session, order_id: int, run_jobs: Any) -> None:
    """The processor says it is paid (as its webhook would); fulfilment and the package run."""
    with db.info["app"].app_context(), transaction(db) as session:
        order = session.get(Order, order_id)
        assert buyers.record_payment(
            session,
            order,
            payment_intent_id=f"pi_test_{order_id}",
            amount_minor=order.total_minor,
            currency=order.currency,
        )
    run_jobs()
    run_jobs()  # fulfilment queues the package build
    db.rollback()
    db.expire_all()


def order_rows(db: Session, order_id: int) -> list[OrderItem]:
    return list(
        db.scalars(
            select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.position)
        )
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
