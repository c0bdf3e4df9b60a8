"""Bundles (what a buyer wants), quotes (the frozen price of a bundle) and orders (a paid quote).

A bundle lists catalog items with the verdict of the last check: included, or excluded with a
reason. A quote copies the included items with the exact terms version, price and artist share
of each, valid for a while; an order is one quote, checked again and paid. Order items are the
sale's per-item record, and each points at the ledger entry that proves it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class BundleStatus(enum.StrEnum):
    BUILDING = "building"  # the job is gathering and checking items
    READY = "ready"
    FAILED = "failed"  # the build job failed; `error` says why, a rebuild may be asked for


class ItemLicence(enum.StrEnum):
    """What an item is licensed as in a sale (the catalog's three kinds)."""

    PUBLIC_DOMAIN = "public_domain"
    CC0 = "cc0"
    LICENSED = "licensed"


class Bundle(Base):
    __tablename__ = "bundles"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(120))
    # The buyer's intended uses, from buyers.eligibility.INTENDED_USES.
    intended_uses: Mapped[list[str]] = mapped_column(JSON)
    # What it was built from: {"work_ids": [...]} / {"collection_id": n} / {"query": {...}}.
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[BundleStatus] = mapped_column(value_enum(BundleStatus))
    error: Mapped[str] = mapped_column(Text, default="")
    included_count: Mapped[int] = mapped_column(Integer, default=0)
    excluded_count: Mapped[int] = mapped_column(Integer, default=0)
    # Highest opt-out rule id seen by the last check: later rules are checked at checkout.
    registry_mark: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BundleItem(Base):
    __tablename__ = "bundle_items"
    __table_args__ = (Index("ix_bundle_items_bundle_reason", "bundle_id", "reason"),)

    bundle_id: Mapped[int] = mapped_column(
        ForeignKey("bundles.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), primary_key=True)
    # "" when included; otherwise a code from buyers.eligibility.REASONS.
    reason: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class QuoteStatus(enum.StrEnum):
    OPEN = "open"
    ORDERED = "ordered"  # checkout made an order from it
    SUPERSEDED = "superseded"  # a newer quote replaced it


class Quote(Base):
    """The bundle's price at one moment: every included item's terms version and price frozen."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[QuoteStatus] = mapped_column(value_enum(QuoteStatus), default=QuoteStatus.OPEN)
    currency: Mapped[str] = mapped_column(String(3))
    item_count: Mapped[int] = mapped_column(Integer)
    licensed_minor: Mapped[int] = mapped_column(BigInteger)  # sum of licensed prices
    handling_minor: Mapped[int] = mapped_column(BigInteger)  # per-item fees on free items
    minimum_adjustment_minor: Mapped[int] = mapped_column(BigInteger)  # up to the card minimum
    total_minor: Mapped[int] = mapped_column(BigInteger)
    artists_minor: Mapped[int] = mapped_column(BigInteger)  # sum of artist shares
    platform_minor: Mapped[int] = mapped_column(BigInteger)  # total - artists
    commission_bps: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict[str, int]] = mapped_column(JSON)  # items per ItemLicence
    obligations: Mapped[dict[str, int]] = mapped_column(JSON)  # e.g. attribution: n items
    registry_mark: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    bundle: Mapped[Bundle] = relationship()


class QuoteItem(Base):
    __tablename__ = "quote_items"

    quote_id: Mapped[int] = mapped_column(
        ForeignKey("quotes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"))
    licence: Mapped[ItemLicence] = mapped_column(value_enum(ItemLicence))
    work_id: Mapped[int | None] = mapped_column(BigInteger)
    stock_id: Mapped[int | None] = mapped_column(BigInteger)
    terms_id: Mapped[int | None] = mapped_column(ForeignKey("work_terms.id"))
    artist_id: Mapped[int | None] = mapped_column(BigInteger)
    price_minor: Mapped[int] = mapped_column(BigInteger)  # what the buyer pays for it
    artist_share_minor: Mapped[int] = mapped_column(BigInteger)
    attribution_required: Mapped[bool] = mapped_column(Boolean, default=False)


class OrderStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"  # paid; fulfilment writes the provenance
    FULFILLED = "fulfilled"  # every item's provenance is in the ledger
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    CANCELLED = (
        "cancelled"  # unpaid, given up: its items lost consent, or a newer order replaced it
    )


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"), index=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[OrderStatus] = mapped_column(value_enum(OrderStatus, length=24), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    item_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    artists_minor: Mapped[int] = mapped_column(BigInteger)
    platform_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Items the checkout dropped because consent changed since the quote (code -> count).
    dropped: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    fulfilled_count: Mapped[int] = mapped_column(Integer, default=0)
    paid_seq: Mapped[int | None] = mapped_column(BigInteger)  # the order.paid ledger entry
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    quote: Mapped[Quote] = relationship()
    bundle: Mapped[Bundle] = relationship()


class OrderItem(Base):
    __tablename__ = "order_items"

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    licence: Mapped[ItemLicence] = mapped_column(value_enum(ItemLicence))
    work_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    stock_id: Mapped[int | None] = mapped_column(BigInteger)
    terms_id: Mapped[int | None] = mapped_column(ForeignKey("work_terms.id"))
    artist_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    artist_share_minor: Mapped[int] = mapped_column(BigInteger)
    attribution_required: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)  # its dataset.item_sold entry
    # Set by the package build (delivery): what the buyer received for this item. The bytes
    # shipped carry our consent XMP, so their digest differs from the stored original's.
    delivered_sha256: Mapped[str | None] = mapped_column(String(64))
    delivered_media_type: Mapped[str | None] = mapped_column(String(32))
    delivered_bytes: Mapped[int | None] = mapped_column(BigInteger)
    missing_reason: Mapped[str] = mapped_column(Text, default="")  # could not be delivered


class OrderRefund(Base):
    """One refund of an order, as the payment processor reported it (once per refund id)."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    refund_id: Mapped[str] = mapped_column(String(255), unique=True)  # processor's id
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    artists: Mapped[dict[str, int]] = mapped_column(JSON)  # artist id -> amount taken back
    platform_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    ledger_seq: Mapped[int] = mapped_column(BigInteger)  # its order.refunded entry
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
