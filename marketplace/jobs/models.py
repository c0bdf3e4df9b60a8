"""The job outbox: a job is recorded in the transaction that needs it, dispatched after commit.

A row exists from the commit that asked for the job until RQ has accepted it. If Redis is down
when the request commits, the row waits; `jobs.dispatch_pending()` (run by `marketplace jobs
sweep` and by every worker as it starts) hands it to RQ once Redis is back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UTCDateTime, utcnow


class OutboxJob(Base):
    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    func: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(JSON)
    job_id: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
