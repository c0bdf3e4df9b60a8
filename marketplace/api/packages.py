"""The delivery API: an order's package manifest, with download links."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel

from marketplace.api.auth import token_required
from marketplace.api.blueprint import bp
from marketplace.api.bundles import _AUTH, _ERRORS, OrderPath, _buyer
from marketplace.db import get_session
from marketplace.delivery import services as delivery
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp


class PackageFileOut(BaseModel):
    path: str
    kind: str
    size: int
    sha256: str
    media_type: str
    items: int
    url: str
    expires_at: str


class PackageProgress(BaseModel):
    items_done: int
    items_total: int
    items_missing: int
    percent: int


class PackageOut(BaseModel):
    order_id: int
    status: str
    error: str
    progress: PackageProgress
    url_max_age_seconds: int
    files: list[PackageFileOut]


@bp.get("/orders/<id:order_id>/package", responses={200: PackageOut, **_ERRORS}, **_AUTH)
@token_required
def order_package(path: OrderPath) -> dict[str, Any]:
    """The order's package: build status and progress, and once ready every file with its
    size, SHA-256 and a download link (expiring after `url_max_age_seconds`). Status is
    "none" before the order is fulfilled; another organization's order is 404."""
    try:
        order, package = delivery.get_package(get_session(), _buyer(), path.order_id)
    except delivery.NotFound as exc:
        raise APIError(404, "not_found", str(exc)) from exc
    progress = {"items_done": 0, "items_total": order.item_count, "items_missing": 0, "percent": 0}
    if package is not None:
        progress = {
            "items_done": package.items_done,
            "items_total": package.items_total,
            "items_missing": package.items_missing,
            "percent": delivery.progress_percent(package),
        }
    return {
        "order_id": order.id,
        "status": package.status.value if package is not None else "none",
        "error": package.error if package is not None else "",
        "progress": progress,
        "url_max_age_seconds": int(current_app.config["PACKAGE_URL_MAX_AGE"]),
        "files": [
            {
                "path": f.path,
                "kind": f.kind,
                "size": f.size,
                "sha256": f.sha256,
                "media_type": f.media_type,
                "items": f.items,
                "url": f.url,
                "expires_at": format_timestamp(f.expires_at),
            }
            for f in (delivery.manifest_files(order, package) if package is not None else [])
        ],
    }
