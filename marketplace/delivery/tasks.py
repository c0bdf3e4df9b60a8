"""Delivery jobs: ids in, safe to rerun."""

from __future__ import annotations

from marketplace.delivery import services


def build_package(order_id: int) -> None:
    services.build_package(order_id)
