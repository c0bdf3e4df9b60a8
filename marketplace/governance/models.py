"""Claims on catalog items, the takedowns they lead to, recall notices, and the admin audit log.

A claim is how anyone tells us an item should not be offered (not the uploader's work, not in
the public domain, a person in it who did not consent). An accepted claim takes the item down and
recalls it from every paid order that contained it; nothing here rewrites a past ledger entry.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class ClaimKind(enum.StrEnum):
    NOT_THEIRS = "not_theirs"  # "this is my work": the uploader is not its author
    NOT_PUBLIC_DOMAIN = "not_public_domain"  # a stock record still under copyright
    PERSON_WITHOUT_CONSENT = "person_without_consent"  # shows someone who did not agree
    OTHER = "other"


CLAIM_KIND_LABELS = {
    ClaimKind.NOT_THEIRS: "This is my work (the uploader is not its author)",
    ClaimKind.NOT_PUBLIC_DOMAIN: "This is not in the public domain",
    ClaimKind.PERSON_WITHOUT_CONSENT: "It shows a person who did not consent",
    ClaimKind.OTHER: "Other",
}


class ClaimStatus(enum.StrEnum):
    OPEN = "open"  # waiting for an administrator
    ACCEPTED = "accepted"  # the item was taken down
    REJECTED = "rejected"


class Claim(Base):
    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    kind: Mapped[ClaimKind] = mapped_column(value_enum(ClaimKind, 30))
    status: Mapped[ClaimStatus] = mapped_column(
        value_enum(ClaimStatus), default=ClaimStatus.OPEN, index=True
    )
    claimant_name: Mapped[str] = mapped_column(String(200))
    claimant_email: Mapped[str] = mapped_column(String(254))
    claimant_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    statement: Mapped[str] = mapped_column(Text)
    links: Mapped[str] = mapped_column(Text, default="")  # one URL a line
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    # The uploading artist's one answer (counter-notice), for claims on artists' works.
    counter_notice: Mapped[str] = mapped_column(Text, default="")
    counter_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)  # the takedown entry

    files: Mapped[list[ClaimFile]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="ClaimFile.id"
    )

    @property
    def link_list(self) -> list[str]:
        return [line.strip() for line in self.links.splitlines() if line.strip()]

    @property
    def kind_label(self) -> str:
        return CLAIM_KIND_LABELS[self.kind]


class ClaimFile(Base):
    """A file of evidence sent with a claim (kept in storage, shown to administrators only)."""

    __tablename__ = "claim_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(512))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    claim: Mapped[Claim] = relationship(back_populates="files")


class Recall(Base):
    """One taken-down item in one paid order: what the buyer must filter out of their data."""

    __tablename__ = "recalls"
    __table_args__ = (UniqueConstraint("order_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the item's place in the order
    key: Mapped[str] = mapped_column(String(20))  # its WebDataset key in the package
    package_file: Mapped[str] = mapped_column(String(255), default="")  # "" if not delivered
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the bytes delivered
    title: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdminAction(Base):
    """Who did what, when and why: every administrator's action, for the audit log."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
