"""Every API module, imported for its routes; the app factory registers `bp` from here."""

from __future__ import annotations

from marketplace.api import (
    artist_payouts,
    artist_works,
    bundles,
    catalog,
    certificates,
    compliance,
    ledger,
    me,
    optout,
    packages,
    recalls,
    reservations,
    similar,
)
from marketplace.api.blueprint import bp

__all__ = [
    "artist_payouts",
    "artist_works",
    "bp",
    "bundles",
    "catalog",
    "certificates",
    "compliance",
    "ledger",
    "me",
    "optout",
    "packages",
    "recalls",
    "reservations",
    "similar",
]
