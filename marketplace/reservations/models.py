"""Reservation files on record: the bytes a site published (evidence) and the rules read."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum
from marketplace.reservations.parsers import ReservationKind


class ReservationSource(enum.StrEnum):
    UPLOAD = "upload"  # sent through the API by an artist
    CLI = "cli"  # loaded by an operator with `marketplace reservations load`
    ADMIN = "admin"  # loaded by an administrator on /admin/reservations
    FETCH = "fetch"  # fetched from the site (RESERVATIONS_LIVE_FETCH)


_CURRENT = text("replaced_at IS NULL")


class ReservationFile(Base):
    """One file as loaded. A later load for the same domain and kind replaces it (its
    `replaced_at` is set) but the row stays, so what was on record when is kept."""

    __tablename__ = "reservation_files"
    __table_args__ = (
        # One current file per domain and kind: two loads racing cannot both stand.
        Index(
            "uq_reservation_files_current",
            "domain",
            "kind",
            unique=True,
            sqlite_where=_CURRENT,
            postgresql_where=_CURRENT,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), index=True)  # normalised host[:port]
    kind: Mapped[ReservationKind] = mapped_column(value_enum(ReservationKind, length=10))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # exactly as published
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[ReservationSource] = mapped_column(value_enum(ReservationSource, length=10))
    source_url: Mapped[str | None] = mapped_column(String(2048))  # where it was fetched from
    loaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Last time a fetch found the same bytes there (fetched files only).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    rules: Mapped[list[ReservationRule]] = relationship(
        back_populates="file", order_by="ReservationRule.position"
    )


class ReservationRule(Base):
    """One rule as read from its file (per user agent for robots.txt and ai.txt groups)."""

    __tablename__ = "reservation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("reservation_files.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the file
    line: Mapped[int] = mapped_column(Integer)  # line (robots, ai.txt) or rule number (TDMRep)
    agent: Mapped[str | None] = mapped_column(String(255))  # product token as written, or *
    reserve: Mapped[bool]  # Disallow / tdm-reservation 1; else Allow / tdm-reservation 0
    pattern: Mapped[str] = mapped_column(String(2048))
    policy_url: Mapped[str | None] = mapped_column(String(2048))  # TDMRep tdm-policy

    file: Mapped[ReservationFile] = relationship(back_populates="rules")
