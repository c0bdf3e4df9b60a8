"""An order's package (one per order) and the files stored for it.

A `PackageFile` row exists only once its object is in storage, so the listing never names a
file that cannot be downloaded; a rebuild replaces the rows with the same keys and bytes.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class PackageStatus(enum.StrEnum):
    QUEUED = "queued"  # the build job is waiting for a worker
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"  # `error` says why; an administrator may rebuild


class FileKind(enum.StrEnum):
    SHARD = "shard"  # WebDataset tar
    METADATA = "metadata"  # Parquet table
    CROISSANT = "croissant"
    CARD = "card"  # README.md
    ATTRIBUTION = "attribution"
    LICENCE = "licence"  # LICENSES/<slug>.md
    MISSING = "missing"
    CERTIFICATE = "certificate"
    AI_ACT = "ai_act"  # the Art. 53(1)(d) summary draft


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    status: Mapped[PackageStatus] = mapped_column(value_enum(PackageStatus))
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_missing: Mapped[int] = mapped_column(Integer, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    # What was refunded for items that could not be delivered (once per order).
    missing_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    files: Mapped[list[PackageFile]] = relationship(
        back_populates="package", order_by="PackageFile.path", passive_deletes=True
    )


class PackageFile(Base):
    __tablename__ = "package_files"
    __table_args__ = (UniqueConstraint("package_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(
        ForeignKey("packages.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(255))  # inside the package, e.g. LICENSES/x.md
    storage_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[FileKind] = mapped_column(value_enum(FileKind))
    item_count: Mapped[int] = mapped_column(Integer, default=0)  # shards: items inside
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    package: Mapped[Package] = relationship(back_populates="files")
