"""Payout jobs: ids in, safe to rerun."""

from __future__ import annotations

import logging

from marketplace.payouts import services

log = logging.getLogger(__name__)


def scheduled_run() -> None:
    """The scheduler's run; a run already in progress makes this one a no-op."""
    try:
        services.run_payouts(trigger="schedule")
    except services.RunInProgress:
        log.info("scheduled payout run skipped: another run is in progress")


def admin_run() -> None:
    try:
        services.run_payouts(trigger="admin")
    except services.RunInProgress:
        log.info("payout run skipped: another run is in progress")


def reverse_overpaid(order_id: int, artist_id: int, refund_id: int | None = None) -> None:
    services.reverse_overpaid(order_id, artist_id, refund_id)
