"""The catalog: public-domain stock records, one search row per offerable item, collections.

`catalog_items` is the search document for artists' works and stock alike. Its full-text
index lives beside it and is created by the migration: an FTS5 table kept in sync by triggers on
SQLite, a generated `tsvector` column with a GIN index on PostgreSQL. Neither is declared here
(see `marketplace.catalog.search`), so the models stay one schema for both backends.
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class MirrorStatus(enum.StrEnum):
    PENDING = "pending"  # not fetched yet
    MIRRORED = "mirrored"  # the image is in our storage with its hashes and derivatives
    FAILED = "failed"  # fetching failed after retries; see mirror_error


class StockRecord(Base):
    """A museum's open-access record, mapped to our fields; `raw` keeps the source record."""

    __tablename__ = "stock_records"
    __table_args__ = (UniqueConstraint("source", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(Text, default="")
    date_text: Mapped[str] = mapped_column(String(200), default="")
    year_start: Mapped[int | None] = mapped_column(Integer)
    year_end: Mapped[int | None] = mapped_column(Integer)
    medium: Mapped[str] = mapped_column(Text, default="")
    dimensions: Mapped[str] = mapped_column(Text, default="")
    institution: Mapped[str] = mapped_column(String(200), default="")
    page_url: Mapped[str] = mapped_column(Text, default="")
    image_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    rights_statement: Mapped[str] = mapped_column(Text, default="")
    rights_uri: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))  # of the mapped fields and raw
    # SHA-256 of the record's bytes as read from the source file (its JSON line), hex: a
    # re-ingest skips a record whose bytes did not change without parsing or mapping it.
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)  # the latest entry about it
    # Set when that entry registers a whole chunk (bulk ingest): the record's leaf in the
    # chunk's Merkle tree (`StockChunk`), so its proof is an audit path plus the entry's.
    ledger_leaf: Mapped[int | None] = mapped_column(Integer)
    mirror_status: Mapped[MirrorStatus] = mapped_column(
        value_enum(MirrorStatus), default=MirrorStatus.PENDING, index=True
    )
    mirror_error: Mapped[str] = mapped_column(Text, default="")
    mirror_attempts: Mapped[int] = mapped_column(Integer, default=0)
    image_key: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    phash: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    derivatives_version: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the source takes the record out of open access (or its image disappears): the
    # record then leaves search, collections' available items and bundles until reinstated.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str] = mapped_column(String(200), default="")

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class StockChunk(Base):
    """The leaf hashes of a chunk of stock records registered with one ledger entry.

    The entry's payload holds the Merkle root over these leaves (RFC 6962); a record's leaf is
    SHA-256(0x00 || canonical JSON of {raw_sha256, source, source_id}). Nothing here is
    trusted: a proof recomputes the root and checks it against the signed entry.
    """

    __tablename__ = "stock_chunks"

    ledger_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(40))
    leaf_hashes: Mapped[bytes] = mapped_column(LargeBinary)  # 32 bytes per leaf, in order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogLicense(enum.StrEnum):
    PUBLIC_DOMAIN = "public_domain"  # museum stock (CC0 or Public Domain Mark)
    CC0 = "cc0"  # an artist's donated work
    LICENSED = "licensed"  # an artist's work licensed for AI training at a price


class Orientation(enum.StrEnum):
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"
    SQUARE = "square"
    UNKNOWN = "unknown"


class CatalogItem(Base):
    """One row per work or stock record; `available` says whether it may be bought now."""

    __tablename__ = "catalog_items"
    __table_args__ = (
        Index("ix_catalog_items_available_id", "available", "id"),
        Index("ix_catalog_items_available_license_id", "available", "license", "id"),
        Index("ix_catalog_items_available_price", "available", "price_minor", "id"),
        Index("ix_catalog_items_available_source", "available", "source"),
        Index("ix_catalog_items_available_year", "available", "year_start"),
        Index("ix_catalog_items_available_orientation", "available", "orientation", "year_start"),
        Index("ix_catalog_items_available_image", "available", "has_image", "id"),
        Index("ix_catalog_items_available_width", "available", "width"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int | None] = mapped_column(ForeignKey("works.id"), unique=True)
    stock_id: Mapped[int | None] = mapped_column(ForeignKey("stock_records.id"), unique=True)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")
    creator: Mapped[str] = mapped_column(String(300), default="", index=True)
    institution: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(40))  # museum adapter name, or "artists"
    medium: Mapped[str] = mapped_column(String(300), default="", index=True)
    year_start: Mapped[int | None] = mapped_column(Integer)
    year_end: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    orientation: Mapped[Orientation] = mapped_column(value_enum(Orientation))
    license: Mapped[CatalogLicense] = mapped_column(value_enum(CatalogLicense))
    price_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # 0: free
    currency: Mapped[str] = mapped_column(String(3))  # DEFAULT_CURRENCY, set by the indexer
    has_image: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bit i set: PERMITTED_USES[i] (artists.terms) is allowed. Public domain and CC0: all bits.
    permitted_uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when an administrator accepts a claim against the item (governance): it is never
    # offered again, whatever its work or museum record says; `available` stays False.
    taken_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by every write that changes an item; indexed so max() is one seek (similar works
    # rebuild their pHash index when it moves).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Collection(Base):
    """Saved works. A buyer's collection belongs to their organization; others' to the user."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    share_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[CollectionItem]] = relationship(
        back_populates="collection", cascade="all, delete-orphan", passive_deletes=True
    )


class CollectionItem(Base):
    __tablename__ = "collection_items"

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="items")
    item: Mapped[CatalogItem] = relationship()


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class CollectionJob(Base):
    """Adding every result of a search to a collection, run as a job with a visible status."""

    __tablename__ = "collection_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[JobStatus] = mapped_column(value_enum(JobStatus), default=JobStatus.QUEUED)
    added: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    capped: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- What the opt-out registry matches items by ----------------------------------------------
# Rules are matched against these when a rule is registered (the rule side) and when an item is
# written (the item side); see `marketplace.catalog.optouts`.


class ItemAddress(Base):
    """One of a stock item's URLs (image or record page), as the registry normalises it."""

    __tablename__ = "catalog_item_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    host: Mapped[str] = mapped_column(String(300), index=True)  # with a non-default port
    key_hash: Mapped[int] = mapped_column(BigInteger, index=True)  # of `key`: keys can be long
    key: Mapped[str] = mapped_column(Text)  # host + path + ?query (optout.urls.normalize_url)


class ItemHost(Base):
    """Every host an item address names, once: a domain rule is matched against these few."""

    __tablename__ = "catalog_item_hosts"

    host: Mapped[str] = mapped_column(String(300), primary_key=True)


class ItemImage(Base):
    """An item's image hashes, with the pHash cut into four 16-bit bands as the registry's own
    rules are (`imaging.phash_bands`), so a pHash rule finds its items through four indexes."""

    __tablename__ = "catalog_item_images"

    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), primary_key=True)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    phash: Mapped[int | None] = mapped_column(BigInteger)  # signed, as Work.phash
    phash_b0: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b1: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b2: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b3: Mapped[int | None] = mapped_column(Integer, index=True)


class ItemOptOut(Base):
    """An active opt-out rule that matches an item: while one exists the item is unavailable,
    whatever else says it may be offered. Removing the rule removes its rows."""

    __tablename__ = "catalog_item_optouts"

    rule_id: Mapped[int] = mapped_column(ForeignKey("optout_rules.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id"), primary_key=True, index=True
    )
