"""Recall lists: the items of an order taken down since, for training pipelines to filter out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from marketplace.api.auth import token_required
from marketplace.api.blueprint import bp
from marketplace.api.bundles import _AUTH, _ERRORS, OrderPath, _order
from marketplace.db import get_session
from marketplace.governance import services as governance
from marketplace.ledger.canonical import format_timestamp


class RecallOut(BaseModel):
    item_id: int
    key: str = Field(description="The item's WebDataset key (__key__) in the package")
    package_file: str = Field(description="The shard that holds it; empty if not delivered")
    sha256: str | None = Field(description="SHA-256 of the image bytes delivered")
    title: str
    reason: str
    claim_id: int
    recalled_at: str
    ledger_seq: int | None = Field(description="The order.item_recalled ledger entry")


class RecallList(BaseModel):
    order_id: int
    items: list[RecallOut]


@bp.get("/orders/<id:order_id>/recalls", responses={200: RecallList, **_ERRORS}, **_AUTH)
@token_required
def order_recalls(path: OrderPath) -> dict[str, Any]:
    """Items of the order taken down after a claim: filter them out of your data (another
    organization's order is 404)."""
    order = _order(path.order_id)
    return {
        "order_id": order.id,
        "items": [
            {
                "item_id": r.item_id,
                "key": r.key,
                "package_file": r.package_file,
                "sha256": r.sha256,
                "title": r.title,
                "reason": r.reason,
                "claim_id": r.claim_id,
                "recalled_at": format_timestamp(r.created_at),
                "ledger_seq": r.ledger_seq,
            }
            for r in governance.recalls_for_order(get_session(), order.id)
        ],
    }
