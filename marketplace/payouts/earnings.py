"""What an artist earned and was paid, read for their dashboard and the API.

Read-only, and aggregated in SQL: an artist may be in thousands of orders, so every list here
is a page (keyset on an id, newest first) of rows the database summed, never a loop over
order items. The money figures come from the artist's payable account in the ledger
(`artist_payable:<artist>:<currency>`), the same postings `services.balances` and the monthly
statements add up, so the pages, the statements and the ledger agree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from flask import current_app
from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from marketplace.accounts.models import Organization
from marketplace.artists.models import Work
from marketplace.buyers.models import Order, OrderItem
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    LedgerTransaction,
)
from marketplace.payouts import services
from marketplace.payouts.models import (
    Payout,
    PayoutReversal,
    PayoutTransfer,
    ReversalStatus,
    TransferStatus,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paged list; `next_after` is the id the next page starts after."""

    items: list[T]
    next_after: int | None


def _page(rows: list[T], limit: int, key: Any) -> Page[T]:
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, int(key(items[-1])) if more and items else None)


# --- The artist's payable postings ----------------------------------------------------------


def signed_credit() -> ColumnElement[Any]:
    """A payable posting as it moves what we owe: credits raise it, debits lower it."""
    return case(
        (LedgerPosting.direction == "credit", LedgerPosting.amount_minor),
        else_=-LedgerPosting.amount_minor,
    )


def _sum_where(condition: ColumnElement[bool], value: Any = None) -> ColumnElement[Any]:
    return func.coalesce(
        func.sum(case((condition, LedgerPosting.amount_minor if value is None else value))), 0
    )


def _credit_of(kind: str) -> ColumnElement[bool]:
    return (LedgerTransaction.kind == kind) & (LedgerPosting.direction == "credit")


def _debit_of(kind: str) -> ColumnElement[bool]:
    return (LedgerTransaction.kind == kind) & (LedgerPosting.direction == "debit")


def payable_postings(*columns: Any) -> Any:
    """SELECT `columns` FROM the payable postings of every artist (filter on the account's
    artist_id), joined to their transaction header and ledger entry."""
    return (
        select(*columns)
        .select_from(LedgerPosting)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == LedgerPosting.transaction_key)
        .join(LedgerEntry, LedgerEntry.seq == LedgerTransaction.entry_seq)
    )


def month_of(session: Session, column: Any) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC timestamp column, in SQL (SQLite stores the UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.substr(column, 1, 7)


# --- Per order ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderEarning:
    order_id: int
    currency: str
    paid_at: datetime | None
    organization: str
    share_minor: int  # the artist's share when the order was paid
    refunded_minor: int  # what refunds took back of it
    payable_minor: int  # still with us: pending or available (negative: owed back)
    in_transit_minor: int
    paid_minor: int  # transferred, less reversals
    reversed_minor: int
    status: str

    @property
    def net_minor(self) -> int:
        return self.share_minor - self.refunded_minor


def _order_status(
    share: int, refunded: int, payable: int, transit: int, paid: int, frees_at: datetime | None
) -> str:
    if payable < 0:
        return "owed back"
    if transit > 0:
        return "in transit"
    if payable > 0:
        if frees_at is not None:
            return f"pending until {frees_at:%Y-%m-%d}"
        return "partly paid, rest available" if paid > 0 else "available"
    if share > 0 and refunded >= share:
        return "refunded"
    return "paid" if paid > 0 else "settled"


def by_order(
    session: Session,
    artist_id: int,
    *,
    after: int | None = None,
    limit: int = 25,
    now: datetime | None = None,
) -> Page[OrderEarning]:
    """The artist's orders, newest first, with their share and where its money is now."""
    stmt = (
        payable_postings(
            LedgerEntry.order_id,
            LedgerAccount.currency,
            _sum_where(_credit_of(EntryKind.PAYMENT_CAPTURED)),
            _sum_where(_debit_of(EntryKind.REFUND_ISSUED))
            - _sum_where(_credit_of(EntryKind.REFUND_ISSUED)),
            func.sum(signed_credit()),
        )
        .where(LedgerAccount.artist_id == artist_id, LedgerEntry.order_id.is_not(None))
        .group_by(LedgerEntry.order_id, LedgerAccount.currency)
        .order_by(LedgerEntry.order_id.desc(), LedgerAccount.currency)
        .limit(limit + 1)
    )
    if after is not None:
        stmt = stmt.where(LedgerEntry.order_id < after)
    rows = session.execute(stmt).all()
    order_ids = [int(row[0]) for row in rows[:limit]]
    orders = {
        int(order_id): (paid_at, str(name or ""))
        for order_id, paid_at, name in session.execute(
            select(Order.id, Order.paid_at, Organization.name)
            .outerjoin(Organization, Organization.id == Order.organization_id)
            .where(Order.id.in_(order_ids))
        )
    }
    moved = _transfers_by_order(session, artist_id, order_ids)
    cutoff = services.hold_cutoff(now)
    hold = timedelta(days=int(current_app.config["PAYOUT_HOLD_DAYS"]))
    items: list[OrderEarning] = []
    for order_id, currency, share, refunded, payable in rows:
        paid_at, organization = orders.get(int(order_id), (None, ""))
        transit, paid, reversed_ = moved.get(int(order_id), (0, 0, 0))
        frees_at = paid_at + hold if paid_at is not None and paid_at > cutoff else None
        share, refunded, payable = int(share or 0), int(refunded or 0), int(payable or 0)
        items.append(
            OrderEarning(
                order_id=int(order_id),
                currency=str(currency),
                paid_at=paid_at,
                organization=organization,
                share_minor=share,
                refunded_minor=refunded,
                payable_minor=payable,
                in_transit_minor=transit,
                paid_minor=paid - reversed_,
                reversed_minor=reversed_,
                status=_order_status(share, refunded, payable, transit, paid - reversed_, frees_at),
            )
        )
    return _page(items, limit, lambda item: item.order_id)


def _transfers_by_order(
    session: Session, artist_id: int, order_ids: list[int]
) -> dict[int, tuple[int, int, int]]:
    """order -> (in transit, sent, reversed) for the artist, for one page of orders."""
    if not order_ids:
        return {}
    found: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for order_id, status, total in session.execute(
        select(
            PayoutTransfer.order_id, PayoutTransfer.status, func.sum(PayoutTransfer.amount_minor)
        )
        .where(PayoutTransfer.artist_id == artist_id, PayoutTransfer.order_id.in_(order_ids))
        .group_by(PayoutTransfer.order_id, PayoutTransfer.status)
    ):
        if status == TransferStatus.PENDING:
            found[int(order_id)][0] += int(total or 0)
        elif status == TransferStatus.SENT:
            found[int(order_id)][1] += int(total or 0)
    for order_id, total in session.execute(
        select(PayoutTransfer.order_id, func.sum(PayoutReversal.amount_minor))
        .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
        .where(
            PayoutTransfer.artist_id == artist_id,
            PayoutTransfer.order_id.in_(order_ids),
            PayoutReversal.status == ReversalStatus.REVERSED,
        )
        .group_by(PayoutTransfer.order_id)
    ):
        found[int(order_id)][2] += int(total or 0)
    return {order: (v[0], v[1], v[2]) for order, v in found.items()}


# --- Per work -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkEarning:
    work_id: int
    title: str
    currency: str
    orders: int  # paid orders whose dataset held it
    share_minor: int  # its share of those orders
    refunded_minor: int  # refunds apportioned to it by its part of the artist's share

    @property
    def net_minor(self) -> int:
        return self.share_minor - self.refunded_minor


def by_work(
    session: Session, artist_id: int, *, after: int | None = None, limit: int = 25
) -> Page[WorkEarning]:
    """The artist's sold works, newest first. A refund is recorded per artist and order, not
    per work: each work carries the part of it that its share is of the artist's share in that
    order (rounded down, so the per-order figures are the exact ones)."""
    per_work = (
        select(
            OrderItem.order_id.label("order_id"),
            OrderItem.work_id.label("work_id"),
            Order.currency.label("currency"),
            func.sum(OrderItem.artist_share_minor).label("share"),
        )
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            OrderItem.artist_id == artist_id,
            OrderItem.work_id.is_not(None),
            Order.paid_at.is_not(None),
        )
        .group_by(OrderItem.order_id, OrderItem.work_id, Order.currency)
        .subquery()
    )
    per_order = (
        select(
            OrderItem.order_id.label("order_id"),
            func.sum(OrderItem.artist_share_minor).label("total"),
        )
        .where(OrderItem.artist_id == artist_id)
        .group_by(OrderItem.order_id)
        .subquery()
    )
    refunded = (
        payable_postings(
            LedgerEntry.order_id.label("order_id"),
            func.sum(LedgerPosting.amount_minor).label("refunded"),
        )
        .where(
            LedgerAccount.artist_id == artist_id,
            LedgerTransaction.kind == EntryKind.REFUND_ISSUED,
            LedgerPosting.direction == "debit",
        )
        .group_by(LedgerEntry.order_id)
        .subquery()
    )
    apportioned = cast(
        cast(per_work.c.share, BigInteger)
        * cast(func.coalesce(refunded.c.refunded, 0), BigInteger)
        / func.nullif(cast(per_order.c.total, BigInteger), 0),
        BigInteger,
    )
    stmt = (
        select(
            per_work.c.work_id,
            func.coalesce(func.max(Work.title), ""),
            per_work.c.currency,
            func.count(per_work.c.order_id),
            func.sum(per_work.c.share),
            func.coalesce(func.sum(apportioned), 0),
        )
        .join(per_order, per_order.c.order_id == per_work.c.order_id)
        .outerjoin(refunded, refunded.c.order_id == per_work.c.order_id)
        .outerjoin(Work, Work.id == per_work.c.work_id)
        .group_by(per_work.c.work_id, per_work.c.currency)
        .order_by(per_work.c.work_id.desc(), per_work.c.currency)
        .limit(limit + 1)
    )
    if after is not None:
        stmt = stmt.where(per_work.c.work_id < after)
    items = [
        WorkEarning(
            work_id=int(work_id),
            title=str(title),
            currency=str(currency),
            orders=int(orders),
            share_minor=int(share or 0),
            refunded_minor=int(refunds or 0),
        )
        for work_id, title, currency, orders, share, refunds in session.execute(stmt)
    ]
    return _page(items, limit, lambda item: item.work_id)


# --- Per month ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthEarning:
    month: str  # YYYY-MM, UTC
    currency: str
    earned_minor: int  # shares of orders paid that month
    refunded_minor: int
    paid_out_minor: int  # moved to payouts (less transfers Stripe refused)
    reversed_minor: int  # came back by transfer reversals
    change_minor: int  # how the payable balance moved: the statement's closing - opening


def by_month(session: Session, artist_id: int, *, limit: int = 120) -> list[MonthEarning]:
    """Every month with money on the artist's payable account, newest first (ten years)."""
    month = month_of(session, LedgerEntry.created_at).label("month")
    stmt = (
        payable_postings(
            month,
            LedgerAccount.currency,
            _sum_where(_credit_of(EntryKind.PAYMENT_CAPTURED)),
            _sum_where(_debit_of(EntryKind.REFUND_ISSUED))
            - _sum_where(_credit_of(EntryKind.REFUND_ISSUED)),
            _sum_where(_debit_of(EntryKind.PAYOUT_INITIATED))
            - _sum_where(_credit_of(EntryKind.PAYOUT_FAILED)),
            _sum_where(_credit_of(EntryKind.PAYOUT_REVERSED)),
            func.sum(signed_credit()),
        )
        .where(LedgerAccount.artist_id == artist_id)
        .group_by(month, LedgerAccount.currency)
        .order_by(month.desc(), LedgerAccount.currency)
        .limit(limit)
    )
    return [
        MonthEarning(
            month=str(m),
            currency=str(currency),
            earned_minor=int(earned or 0),
            refunded_minor=int(refunds or 0),
            paid_out_minor=int(paid_out or 0),
            reversed_minor=int(reversed_ or 0),
            change_minor=int(change or 0),
        )
        for m, currency, earned, refunds, paid_out, reversed_, change in session.execute(stmt)
    ]


# --- Buyers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuyerCount:
    organization: str
    orders: int
    items: int


@dataclass(frozen=True)
class Buyers:
    top: list[BuyerCount]
    total: int  # distinct organizations, beyond the ones listed


def buyers(session: Session, artist_id: int, *, limit: int = 50) -> Buyers:
    """The organizations that bought (paid for) datasets holding the artist's works, most
    orders first. Buyers accept this transparency in the licence they agree to."""
    base = (
        select(Organization.id)
        .select_from(OrderItem)
        .join(Order, Order.id == OrderItem.order_id)
        .join(Organization, Organization.id == Order.organization_id)
        .where(OrderItem.artist_id == artist_id, Order.paid_at.is_not(None))
    )
    total = int(session.scalar(select(func.count()).select_from(base.distinct().subquery())) or 0)
    orders = func.count(func.distinct(Order.id))
    rows = session.execute(
        base.with_only_columns(Organization.name, orders, func.count())
        .group_by(Organization.id, Organization.name)
        .order_by(orders.desc(), Organization.name)
        .limit(limit)
    )
    return Buyers(
        top=[
            BuyerCount(str(name), int(n_orders), int(n_items)) for name, n_orders, n_items in rows
        ],
        total=total,
    )


# --- Payout history -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLine:
    order_id: int
    amount_minor: int
    status: str
    stripe_transfer_id: str | None
    failure_message: str
    sent_at: datetime | None


@dataclass(frozen=True)
class ReversalLine:
    order_id: int
    stripe_transfer_id: str | None
    amount_minor: int
    status: str
    stripe_reversal_id: str | None
    failure_message: str
    at: datetime
    currency: str = ""
    # A failed reversal: still owed back (the order's net is negative), or settled by the
    # payouts that deducted it (their ids; empty when settled otherwise).
    owed: bool = False
    deducted_by: tuple[int, ...] = ()


@dataclass(frozen=True)
class PayoutLine:
    id: int
    created_at: datetime
    currency: str
    amount_minor: int
    status: str
    failure_code: str
    failure_message: str
    transfer_count: int
    transfers: list[TransferLine] = field(default_factory=list)  # the first few
    reversals: list[ReversalLine] = field(default_factory=list)


def payouts(
    session: Session,
    artist_id: int,
    *,
    before: int | None = None,
    limit: int = 10,
    transfers_each: int = 20,
) -> Page[PayoutLine]:
    """The artist's payouts, newest first, each with its first transfers (one per order) and
    every reversal of them, failed ones with Stripe's message."""
    stmt = (
        select(Payout)
        .where(Payout.artist_id == artist_id)
        .order_by(Payout.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        stmt = stmt.where(Payout.id < before)
    rows = list(session.scalars(stmt))
    ids = [p.id for p in rows[:limit]]
    counts: dict[int, int] = {}
    transfers: dict[int, list[TransferLine]] = defaultdict(list)
    reversals: dict[int, list[ReversalLine]] = defaultdict(list)
    if ids:
        counts = {
            int(payout_id): int(n)
            for payout_id, n in session.execute(
                select(PayoutTransfer.payout_id, func.count())
                .where(PayoutTransfer.payout_id.in_(ids))
                .group_by(PayoutTransfer.payout_id)
            )
        }
        position = (
            func.row_number()
            .over(partition_by=PayoutTransfer.payout_id, order_by=PayoutTransfer.id)
            .label("position")
        )
        ranked = select(PayoutTransfer.id, position).where(PayoutTransfer.payout_id.in_(ids))
        ranked_sq = ranked.subquery()
        for transfer in session.scalars(
            select(PayoutTransfer)
            .join(ranked_sq, ranked_sq.c.id == PayoutTransfer.id)
            .where(ranked_sq.c.position <= transfers_each)
            .order_by(PayoutTransfer.payout_id, PayoutTransfer.id)
        ):
            transfers[transfer.payout_id].append(
                TransferLine(
                    order_id=transfer.order_id,
                    amount_minor=transfer.amount_minor,
                    status=transfer.status.value,
                    stripe_transfer_id=transfer.stripe_transfer_id,
                    failure_message=transfer.failure_message,
                    sent_at=transfer.sent_at,
                )
            )
        currency_of = {p.id: p.currency for p in rows}
        for reversal, payout_id, order_id, stripe_transfer in session.execute(
            select(
                PayoutReversal,
                PayoutTransfer.payout_id,
                PayoutTransfer.order_id,
                PayoutTransfer.stripe_transfer_id,
            )
            .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
            .where(PayoutTransfer.payout_id.in_(ids))
            .order_by(PayoutReversal.id)
        ):
            reversals[int(payout_id)].append(
                _reversal_line(reversal, order_id, stripe_transfer, currency_of[int(payout_id)])
            )
    items = [
        PayoutLine(
            id=p.id,
            created_at=p.created_at,
            currency=p.currency,
            amount_minor=p.amount_minor,
            status=p.status.value,
            failure_code=p.failure_code,
            failure_message=p.failure_message,
            transfer_count=counts.get(p.id, 0),
            transfers=transfers.get(p.id, []),
            reversals=reversals.get(p.id, []),
        )
        for p in rows
    ]
    return _page(items, limit, lambda item: item.id)


def _reversal_line(
    reversal: PayoutReversal,
    order_id: int,
    stripe_transfer: str | None,
    currency: str,
    *,
    owed: bool = False,
    deducted_by: tuple[int, ...] = (),
) -> ReversalLine:
    return ReversalLine(
        order_id=int(order_id),
        stripe_transfer_id=stripe_transfer,
        amount_minor=reversal.amount_minor,
        status=reversal.status.value,
        stripe_reversal_id=reversal.stripe_reversal_id,
        failure_message=reversal.failure_message,
        at=reversal.finished_at or reversal.created_at,
        currency=currency,
        owed=owed,
        deducted_by=deducted_by,
    )


def failed_reversals(session: Session, artist_id: int, *, limit: int = 10) -> list[ReversalLine]:
    """Refunds Stripe could not take back from the artist's account, newest first. Each is
    owed back while its order's net for the artist is negative; once a payout netted it (or
    the order came back to zero otherwise) it is settled, naming the payouts that took it."""
    rows = session.execute(
        select(
            PayoutReversal,
            PayoutTransfer.order_id,
            PayoutTransfer.stripe_transfer_id,
            Payout.currency,
        )
        .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
        .join(Payout, Payout.id == PayoutTransfer.payout_id)
        .where(
            PayoutTransfer.artist_id == artist_id,
            PayoutReversal.status == ReversalStatus.FAILED,
        )
        .order_by(PayoutReversal.id.desc())
        .limit(limit)
    ).all()
    if not rows:
        return []
    nets = services.order_nets(session, artist_id=artist_id)
    deductions = _deductions(session, {int(order) for _r, order, _t, _c in rows})
    return [
        _reversal_line(
            reversal,
            order_id,
            stripe_transfer,
            str(currency),
            owed=nets.get((artist_id, str(currency), int(order_id)), 0) < 0,
            deducted_by=deductions.get(int(order_id), ()),
        )
        for reversal, order_id, stripe_transfer, currency in rows
    ]


def _deductions(session: Session, order_ids: set[int]) -> dict[int, tuple[int, ...]]:
    """Order owed back on -> the payouts that deducted it, from the netting transactions'
    keys (`payout:<payout>:net:<owed on>:<deducted from>:onto`, see services._record_netting)."""
    found: dict[int, set[int]] = defaultdict(set)
    for order_id in sorted(order_ids):
        for key in session.scalars(
            select(LedgerTransaction.idempotency_key).where(
                LedgerTransaction.idempotency_key.like(f"payout:%:net:{order_id}:%:onto")
            )
        ):
            parts = str(key).split(":")
            if len(parts) == 6 and parts[1].isdigit() and parts[3] == str(order_id):
                found[order_id].add(int(parts[1]))
    return {order: tuple(sorted(ids)) for order, ids in found.items()}
