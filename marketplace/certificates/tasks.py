"""Certificate jobs: re-issue an order's certificate after a recall."""

from __future__ import annotations

from marketplace.certificates import services
from marketplace.db import transaction


def reissue_certificate(order_id: int) -> None:
    """Safe to rerun: each run issues the next revision listing every recall so far."""
    with transaction() as session:
        services.reissue_certificate(session, order_id)
