"""Artists, their works and the versioned licence terms each work is offered under."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum

if TYPE_CHECKING:
    from marketplace.accounts.models import User


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    bio: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[str] = mapped_column(Text, default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    # The terms new uploads get unless the upload names others (a TermsSpec as JSON).
    default_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when an administrator has checked who the artist is (the profile shows a badge).
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="artist")
    works: Mapped[list[Work]] = relationship(back_populates="artist")

    @property
    def link_list(self) -> list[str]:
        return [line.strip() for line in self.links.splitlines() if line.strip()]


class WorkStatus(enum.StrEnum):
    ACTIVE = "active"  # offered as its current terms say
    REVIEW = "review"  # suspected duplicate of another account's work: not for sale
    WITHDRAWN = "withdrawn"  # consent withdrawn: out of every future sale


class TermsKind(enum.StrEnum):
    DONATE = "donate"  # CC0 1.0: free in bundles
    LICENSE = "license"  # licensed for AI training at a price per image
    NOT_AVAILABLE = "not_available"  # kept out of training (listed in the opt-out registry)


class Work(Base):
    __tablename__ = "works"

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")  # comma-separated, lower-case
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(8))
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Unsigned 64-bit pHash stored signed; its four 16-bit bands are indexed for near matches.
    phash: Mapped[int] = mapped_column(BigInteger)
    phash_b0: Mapped[int] = mapped_column(Integer, index=True)
    phash_b1: Mapped[int] = mapped_column(Integer, index=True)
    phash_b2: Mapped[int] = mapped_column(Integer, index=True)
    phash_b3: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[WorkStatus] = mapped_column(value_enum(WorkStatus), index=True)
    review_reason: Mapped[str] = mapped_column(Text, default="")
    # Consent signals found in the uploaded file (XMP plus:DataMining, C2PA training-mining).
    embedded_consent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    file_prohibits_training: Mapped[bool] = mapped_column(Boolean, default=False)
    derivatives_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    derivatives_version: Mapped[int] = mapped_column(Integer, default=0)
    current_terms_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_terms.id", use_alter=True, name="fk_works_current_terms_id_work_terms")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    artist: Mapped[Artist] = relationship(back_populates="works")
    current_terms: Mapped[WorkTerms | None] = relationship(foreign_keys=[current_terms_id])
    terms_history: Mapped[list[WorkTerms]] = relationship(
        foreign_keys="WorkTerms.work_id", order_by="WorkTerms.version", back_populates="work"
    )

    @property
    def tag_list(self) -> list[str]:
        return [t for t in (part.strip() for part in self.tags.split(",")) if t]

    @property
    def is_available(self) -> bool:
        """Offered for training now: active, and its terms donate or license it."""
        return (
            self.status is WorkStatus.ACTIVE
            and self.current_terms is not None
            and self.current_terms.kind is not TermsKind.NOT_AVAILABLE
        )


class WorkTerms(Base):
    """One immutable version of a work's terms; an edit makes a new version, sales cite one."""

    __tablename__ = "work_terms"
    __table_args__ = (
        UniqueConstraint("work_id", "version"),
        CheckConstraint(
            "(kind = 'license' AND price_minor IS NOT NULL AND price_minor > 0) "
            "OR (kind <> 'license' AND price_minor IS NULL)",
            name="price_matches_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[TermsKind] = mapped_column(value_enum(TermsKind))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))  # DEFAULT_CURRENCY, set by services
    generative_training: Mapped[bool] = mapped_column(Boolean, default=False)
    non_generative_training: Mapped[bool] = mapped_column(Boolean, default=False)
    commercial_use: Mapped[bool] = mapped_column(Boolean, default=False)
    fine_tuning: Mapped[bool] = mapped_column(Boolean, default=False)
    style_imitation: Mapped[bool] = mapped_column(Boolean, default=False)
    attribution_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The file said "no training" and the artist confirmed licensing it anyway.
    overrides_file_signal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)

    work: Mapped[Work] = relationship(foreign_keys=[work_id], back_populates="terms_history")
