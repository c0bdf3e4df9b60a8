"""The compliance feature's job (queued by name from services: ids in, safe to rerun)."""

from __future__ import annotations

from marketplace.compliance import services


def run_check(check_id: int) -> None:
    """Classify every row of a check's manifest; a done check is left alone."""
    services.run_check(check_id)
