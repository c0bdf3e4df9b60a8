"""Reservation jobs: fetching a domain's files from the site (only with RESERVATIONS_LIVE_FETCH).
Strings in; safe to rerun (the same bytes again change nothing)."""

from __future__ import annotations

import logging

from flask import current_app

from marketplace.db import transaction
from marketplace.reservations import services

log = logging.getLogger(__name__)


def live_fetch_enabled() -> bool:
    return bool(current_app.config["RESERVATIONS_LIVE_FETCH"])


def fetch_domain(domain: str) -> dict[str, str]:
    """Fetch /.well-known/tdmrep.json, /ai.txt and /robots.txt from `domain` and record them.
    Does nothing (and says so) while RESERVATIONS_LIVE_FETCH is off."""
    if not live_fetch_enabled():
        log.info("reservations: live fetch is off, %s not fetched", domain)
        return {}
    config = current_app.config
    max_bytes = int(config["RESERVATIONS_MAX_FILE_BYTES"])
    fetched = services.fetch_files(
        domain,
        scheme=str(config["RESERVATIONS_FETCH_SCHEME"]),
        timeout=float(config["RESERVATIONS_FETCH_TIMEOUT_SECONDS"]),
        max_bytes=max_bytes,
    )
    with transaction() as session:
        return services.record_fetched(session, domain, fetched, max_bytes=max_bytes)
