"""One certificate per order: where its JSON is stored and what it seals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UTCDateTime, utcnow


class Certificate(Base):
    __tablename__ = "certificates"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    storage_key: Mapped[str] = mapped_column(String(255))  # the canonical JSON, in storage
    sha256: Mapped[str] = mapped_column(String(64))  # of that JSON
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int] = mapped_column(Integer)  # records: delivered and missing
    missing_count: Mapped[int] = mapped_column(Integer)
    items_root: Mapped[str] = mapped_column(String(64))  # hex MTH over the item records
    seal_seq: Mapped[int] = mapped_column(BigInteger)  # its dataset.certified entry
    tree_size_at_purchase: Mapped[int] = mapped_column(BigInteger)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)  # the checkpoint it carries
    key_id: Mapped[str] = mapped_column(String(8))  # the certificate key's note key ID
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # 1 when first issued; each re-issue (after a recall) stores a new JSON and counts up.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reissued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
