"""The money rule of a sale, in integer minor units (pure: no database, no Flask).

Each licensed item's artist share is its price times (10,000 - commission) / 10,000, rounded
down; the platform keeps the remainder of every item, the per-item handling fees on free items
and any raise to the card minimum. So for every order, exactly:

    sum(artist shares) + platform share == total charged
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BASIS_POINTS = 10_000


def artist_share(price_minor: int, commission_bps: int) -> int:
    """The artist's part of one licensed item: rounded down, never negative."""
    if price_minor < 0:
        raise ValueError("a price is never negative")
    if not 0 <= commission_bps <= BASIS_POINTS:
        raise ValueError("commission is 0..10,000 basis points")
    return price_minor * (BASIS_POINTS - commission_bps) // BASIS_POINTS


@dataclass(frozen=True)
class PricedItem:
    """One item as the sale prices it: licensed items have a price, free ones a handling fee."""

    price_minor: int  # what the buyer pays for the item itself (0 for public domain / CC0)
    licensed: bool


@dataclass(frozen=True)
class Totals:
    licensed_minor: int  # the licensed items' prices
    handling_minor: int  # handling fees on free items
    minimum_adjustment_minor: int  # raise to the card minimum (0 if none)
    artists_minor: int  # the artists' shares
    total_minor: int  # what the buyer is charged

    @property
    def platform_minor(self) -> int:
        return self.total_minor - self.artists_minor

    @property
    def free(self) -> bool:
        return self.total_minor == 0


def item_charge(item: PricedItem, handling_fee_minor: int) -> int:
    """What the buyer pays for one item (its price, or the handling fee when it is free)."""
    return item.price_minor if item.licensed else handling_fee_minor


def totals(
    items: Iterable[PricedItem],
    *,
    commission_bps: int,
    handling_fee_minor: int,
    minimum_charge_minor: int,
) -> Totals:
    """Sum a sale. A non-zero total below the card minimum is raised to it (a visible line);
    a zero total stays zero (free orders skip the card)."""
    licensed = handling = artists = 0
    for item in items:
        if item.licensed:
            licensed += item.price_minor
            artists += artist_share(item.price_minor, commission_bps)
        else:
            handling += handling_fee_minor
    subtotal = licensed + handling
    adjustment = minimum_charge_minor - subtotal if 0 < subtotal < minimum_charge_minor else 0
    return Totals(
        licensed_minor=licensed,
        handling_minor=handling,
        minimum_adjustment_minor=adjustment,
        artists_minor=artists,
        total_minor=subtotal + adjustment,
    )


def refund_parts(
    shares: dict[int, int],
    taken: dict[int, int],
    *,
    refund_minor: int,
    refunded_before: int,
    total_minor: int,
) -> tuple[dict[int, int], int]:
    """(per-artist amounts, platform amount) of one refund of an order.

    After refunds totalling C of an order of T, each artist has given back floor(share * C / T)
    of their share: never more than they got, exactly their share once the order is fully
    refunded, and each refund takes the difference. The platform's part is the rest of the
    refund; it may be negative by a few cents on the refund that completes a full refund (it
    recovers the rounding it absorbed earlier), and over a full refund it is exactly the
    platform's share.
    """
    if not 0 < refund_minor <= total_minor - refunded_before:
        raise ValueError("a refund is more than 0 and at most what has not been refunded")
    refunded = refunded_before + refund_minor
    parts: dict[int, int] = {}
    for artist, share in shares.items():
        part = share * refunded // total_minor - taken.get(artist, 0)
        if part > 0:
            parts[artist] = part
    return parts, refund_minor - sum(parts.values())
