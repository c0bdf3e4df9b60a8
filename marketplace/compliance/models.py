"""A compliance check: one uploaded manifest, its job's progress and its results."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class CheckStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ComplianceCheck(Base):
    """The manifest lives in storage (`manifest_key`) and the per-row results too
    (`rows_key`, a CSV); the row keeps the summary the pages and the API show."""

    __tablename__ = "compliance_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(20))  # manifest.FORMAT_LABELS keys
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded file
    columns: Mapped[dict[str, str]] = mapped_column(JSON)  # field -> the file's column
    intended_uses: Mapped[list[str]] = mapped_column(JSON)
    manifest_key: Mapped[str] = mapped_column(String(255))
    rows_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[CheckStatus] = mapped_column(value_enum(CheckStatus), default=CheckStatus.QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # share of the file read
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
