"""Artists' connected accounts, payout runs, payouts, their transfers and transfer reversals.

The ledger holds the money; these rows hold what we asked Stripe to do and what it answered,
so that a run can be resumed after a crash without paying anyone twice. A `PayoutTransfer` row
is committed (status `pending`, its amount moved to payouts in transit) *before* Stripe is
called, and its id is the idempotency key of that call.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class PayoutAccount(Base):
    """An artist's Stripe Connect Express account, as Stripe last told us about it."""

    __tablename__ = "payout_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(64), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    requirements_due: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def can_receive(self) -> bool:
        """Stripe will accept transfers to it (onboarding done, payouts not restricted)."""
        return self.payouts_enabled

    @property
    def restricted(self) -> bool:
        """Onboarded once but Stripe has since disabled payouts (a failure to show)."""
        return self.details_submitted and not self.payouts_enabled


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"  # the run itself stopped (an error outside any one payout)


class PayoutRun(Base):
    __tablename__ = "payout_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(20))  # cli, schedule, admin
    status: Mapped[RunStatus] = mapped_column(value_enum(RunStatus))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    resumed_count: Mapped[int] = mapped_column(Integer, default=0)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    note: Mapped[str] = mapped_column(Text, default="")


class PayoutStatus(enum.StrEnum):
    IN_TRANSIT = "in_transit"  # recorded; transfers not all answered by Stripe yet
    PAID = "paid"  # every transfer accepted
    PARTIAL = "partial"  # some accepted, some refused (the refused amounts are payable again)
    FAILED = "failed"  # nothing sent; the balance is intact and the next run retries


class Payout(Base):
    """One artist's payout in one run: one Stripe transfer per order it pays for."""

    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("payout_runs.id"), index=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    destination: Mapped[str] = mapped_column(String(64), default="")  # acct_...
    status: Mapped[PayoutStatus] = mapped_column(value_enum(PayoutStatus))
    failure_code: Mapped[str] = mapped_column(String(64), default="")
    failure_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transfers: Mapped[list[PayoutTransfer]] = relationship(
        back_populates="payout", order_by="PayoutTransfer.id"
    )


class TransferStatus(enum.StrEnum):
    PENDING = "pending"  # in transit: Stripe not asked yet, or its answer not recorded yet
    SENT = "sent"
    FAILED = "failed"


class PayoutTransfer(Base):
    """The part of a payout that pays an artist's share of one order (`transfer_group`)."""

    __tablename__ = "payout_transfers"
    __table_args__ = (UniqueConstraint("payout_id", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"), index=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[TransferStatus] = mapped_column(value_enum(TransferStatus), index=True)
    source_transaction: Mapped[str | None] = mapped_column(String(64))  # the order's charge
    stripe_transfer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str] = mapped_column(String(64), default="")
    failure_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payout: Mapped[Payout] = relationship(back_populates="transfers")


class ReversalStatus(enum.StrEnum):
    PENDING = "pending"  # recorded; Stripe's answer not recorded yet
    REVERSED = "reversed"
    FAILED = "failed"  # the share stays owed back: a negative balance for the next payout


class PayoutReversal(Base):
    """Money taken back from an artist's connected account after a refund of a paid order."""

    __tablename__ = "payout_reversals"

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("payout_transfers.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("order_refunds.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[ReversalStatus] = mapped_column(value_enum(ReversalStatus))
    stripe_reversal_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str] = mapped_column(String(64), default="")
    failure_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transfer: Mapped[PayoutTransfer] = relationship()
