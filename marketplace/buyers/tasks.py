"""Buyer jobs: ids in, safe to rerun."""

from __future__ import annotations

from marketplace.buyers import services


def build_bundle(bundle_id: int, rebuild: bool) -> None:
    services.build_bundle(bundle_id, rebuild)


def fulfil_order(order_id: int) -> None:
    services.fulfil_order(order_id)
