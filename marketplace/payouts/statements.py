"""An artist's monthly statement: their payable account's ledger lines in one UTC month.

The statement is the ledger, not a report beside it: its lines are the postings on
`artist_payable:<artist>:<currency>` whose entries fall in the month, its opening balance is
the sum of every posting before the month and its closing balance the sum up to the month's
end, computed the way `money.balance` computes a balance (credits raise what we owe). So
opening + the lines = closing, exactly, in integer minor units; for the current month the
closing balance is `money.balance` of the account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.amounts import minor_digits
from marketplace.db import utcnow
from marketplace.ledger.kinds import kind_label
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting, LedgerTransaction
from marketplace.payouts.earnings import payable_postings, signed_credit
from marketplace.payouts.models import (
    Payout,
    PayoutReversal,
    PayoutTransfer,
    TransferStatus,
)

FIRST_YEAR, LAST_YEAR = 2000, 2100
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


class InvalidMonth(ValueError):
    """Not a month we give statements for (malformed, out of range, or still to come)."""


def parse_month(text: str, *, now: datetime | None = None) -> date:
    """The first day of the month `text` names, strictly YYYY-MM, 2000-01 up to this month."""
    if not _MONTH.fullmatch(text):  # ASCII digits only: str.isdigit and strptime take any
        raise InvalidMonth("A month is written YYYY-MM.")
    try:
        month = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC).date()
    except ValueError as exc:
        raise InvalidMonth("A month is written YYYY-MM.") from exc
    if not FIRST_YEAR <= month.year <= LAST_YEAR:
        raise InvalidMonth(f"Statements cover {FIRST_YEAR} to {LAST_YEAR}.")
    today = (now or utcnow()).date()
    if month > today.replace(day=1):
        raise InvalidMonth("That month has not started yet.")
    return month


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = (
        datetime(month.year + 1, 1, 1, tzinfo=UTC)
        if month.month == 12
        else datetime(month.year, month.month + 1, 1, tzinfo=UTC)
    )
    return start, end


def major_units(amount_minor: int, currency: str, *, grouped: bool = False) -> str:
    """Integer minor units as a decimal string in major units ('-12.50'), with no float on
    the way; `grouped` adds thousands separators ('1,234.50')."""
    digits = minor_digits(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, part = divmod(abs(int(amount_minor)), 10**digits)
    head = f"{whole:,}" if grouped else str(whole)
    return f"{sign}{head}.{part:0{digits}d}" if digits else f"{sign}{head}"


@dataclass(frozen=True)
class StatementLine:
    seq: int
    created_at: datetime
    kind: str
    kind_label: str
    order_id: int | None
    payout_id: int | None
    memo: str
    amount_minor: int  # signed: + raises what we owe the artist, - lowers it
    balance_minor: int  # the running balance after this line


@dataclass(frozen=True)
class TransferSent:
    sent_at: datetime
    payout_id: int
    order_id: int
    amount_minor: int
    stripe_transfer_id: str


@dataclass(frozen=True)
class ReversalDone:
    at: datetime
    payout_id: int
    order_id: int
    stripe_transfer_id: str | None
    stripe_reversal_id: str | None
    amount_minor: int
    status: str  # reversed or failed (pending ones are not final yet)
    failure_message: str


@dataclass(frozen=True)
class Statement:
    artist_id: int
    artist_name: str
    month: date
    currency: str
    account_code: str
    opening_minor: int
    closing_minor: int
    lines: list[StatementLine]
    transfers: list[TransferSent]
    reversals: list[ReversalDone]
    generated_at: datetime

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def credits_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines if line.amount_minor > 0)

    @property
    def debits_minor(self) -> int:
        return -sum(line.amount_minor for line in self.lines if line.amount_minor < 0)


def currencies(session: Session, artist_id: int) -> list[str]:
    """The currencies the artist has a payable account in (the marketplace's one if none)."""
    found = sorted(
        str(c)
        for c in session.scalars(
            select(LedgerAccount.currency).where(LedgerAccount.artist_id == artist_id).distinct()
        )
    )
    return found or [str(current_app.config["DEFAULT_CURRENCY"]).lower()]


def payable_balance(session: Session, artist_id: int, currency: str, *, before: datetime) -> int:
    """What the artist's payable account held just before `before` (money.balance's sum,
    limited to entries recorded earlier)."""
    return int(
        session.scalar(
            payable_postings(func.coalesce(func.sum(signed_credit()), 0)).where(
                LedgerAccount.artist_id == artist_id,
                LedgerAccount.currency == currency,
                LedgerEntry.created_at < before,
            )
        )
        or 0
    )


def _payout_of(entry: bytes) -> int | None:
    """The payout an entry names in its subject (payout transactions name it there)."""
    try:
        subject = json.loads(entry).get("subject", {})
    except (ValueError, AttributeError):
        return None
    value = subject.get("payout") if isinstance(subject, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def statement(
    session: Session,
    artist_id: int,
    artist_name: str,
    month: date,
    currency: str,
    *,
    now: datetime | None = None,
    _attempts: int = 3,
) -> Statement:
    """The artist's statement of `month` in `currency` (a month without activity has no
    lines and opening = closing)."""
    start, end = month_bounds(month)
    opening = payable_balance(session, artist_id, currency, before=start)
    rows = session.execute(
        payable_postings(
            LedgerEntry.seq,
            LedgerEntry.created_at,
            LedgerTransaction.kind,
            LedgerEntry.order_id,
            LedgerTransaction.memo,
            signed_credit(),
            LedgerEntry.entry,
        )
        .where(
            LedgerAccount.artist_id == artist_id,
            LedgerAccount.currency == currency,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
        )
        .order_by(LedgerEntry.seq, LedgerPosting.id)
    )
    lines: list[StatementLine] = []
    running = opening
    for seq, created_at, kind, order_id, memo, amount, entry in rows:
        running += int(amount)
        lines.append(
            StatementLine(
                seq=int(seq),
                created_at=created_at,
                kind=str(kind),
                kind_label=kind_label(str(kind)),
                order_id=int(order_id) if order_id is not None else None,
                payout_id=_payout_of(bytes(entry)),
                memo=str(memo or ""),
                amount_minor=int(amount),
                balance_minor=running,
            )
        )
    closing = payable_balance(session, artist_id, currency, before=end)
    if closing != running:  # a posting landed between the reads (this month's): read again
        if _attempts <= 1:
            raise RuntimeError(f"statement of {month:%Y-%m} does not add up to the ledger")
        return statement(
            session, artist_id, artist_name, month, currency, now=now, _attempts=_attempts - 1
        )
    return Statement(
        artist_id=artist_id,
        artist_name=artist_name,
        month=month,
        currency=currency,
        account_code=f"artist_payable:{artist_id}:{currency}",
        opening_minor=opening,
        closing_minor=closing,
        lines=lines,
        transfers=_transfers(session, artist_id, currency, start, end),
        reversals=_reversals(session, artist_id, currency, start, end),
        generated_at=now or utcnow(),
    )


def _transfers(
    session: Session, artist_id: int, currency: str, start: datetime, end: datetime
) -> list[TransferSent]:
    return [
        TransferSent(
            sent_at=t.sent_at or t.created_at,
            payout_id=t.payout_id,
            order_id=t.order_id,
            amount_minor=t.amount_minor,
            stripe_transfer_id=t.stripe_transfer_id or "",
        )
        for t in session.scalars(
            select(PayoutTransfer)
            .join(Payout, Payout.id == PayoutTransfer.payout_id)
            .where(
                PayoutTransfer.artist_id == artist_id,
                Payout.currency == currency,
                PayoutTransfer.status == TransferStatus.SENT,
                PayoutTransfer.sent_at >= start,
                PayoutTransfer.sent_at < end,
            )
            .order_by(PayoutTransfer.sent_at, PayoutTransfer.id)
        )
    ]


def _reversals(
    session: Session, artist_id: int, currency: str, start: datetime, end: datetime
) -> list[ReversalDone]:
    rows: Any = session.execute(
        select(PayoutReversal, PayoutTransfer)
        .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
        .join(Payout, Payout.id == PayoutTransfer.payout_id)
        .where(
            PayoutTransfer.artist_id == artist_id,
            Payout.currency == currency,
            PayoutReversal.finished_at >= start,
            PayoutReversal.finished_at < end,
        )
        .order_by(PayoutReversal.finished_at, PayoutReversal.id)
    )
    return [
        ReversalDone(
            at=reversal.finished_at,
            payout_id=transfer.payout_id,
            order_id=transfer.order_id,
            stripe_transfer_id=transfer.stripe_transfer_id,
            stripe_reversal_id=reversal.stripe_reversal_id,
            amount_minor=reversal.amount_minor,
            status=reversal.status.value,
            failure_message=reversal.failure_message,
        )
        for reversal, transfer in rows
    ]
