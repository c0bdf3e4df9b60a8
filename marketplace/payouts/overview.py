"""What the admin payouts page shows: read-only queries over the payout rows.

Kept apart from `services.py` (the rules that move money): nothing here writes or calls Stripe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from marketplace.artists.models import Artist
from marketplace.payouts import services
from marketplace.payouts.models import (
    Payout,
    PayoutReversal,
    PayoutRun,
    PayoutStatus,
    PayoutTransfer,
    ReversalStatus,
    TransferStatus,
)

RECENT_RUNS = 20
RECENT_FAILURES = 50
LIST_ROWS = 50  # each list on the page (to pay, waiting, in transit): the largest amounts


@dataclass(frozen=True)
class Totals:
    """Per currency: what the next run would pay, and what waits."""

    currency: str
    artists: int = 0
    amount_minor: int = 0
    transfers: int = 0
    waiting_artists: int = 0
    waiting_minor: int = 0


@dataclass(frozen=True)
class Failure:
    """A failed payout or transfer reversal, for the admin to see (each run retries payouts)."""

    what: str  # "payout" or "reversal"
    id: int
    artist_id: int
    artist_name: str
    amount_minor: int
    currency: str
    code: str
    message: str
    at: datetime


@dataclass(frozen=True)
class InTransit:
    payout_id: int
    run_id: int | None
    artist_id: int
    artist_name: str
    amount_minor: int  # of the transfers Stripe has not answered yet
    currency: str
    pending_transfers: int
    since: datetime


@dataclass(frozen=True)
class TransitTotals:
    """Per currency: every payout in transit and what its unanswered transfers carry."""

    currency: str
    payouts: int
    amount_minor: int


@dataclass(frozen=True)
class RunTotal:
    """What a run paid in one currency (a run may pay several)."""

    run_id: int
    currency: str
    amount_minor: int


@dataclass(frozen=True)
class Overview:
    """The page's lists hold at most LIST_ROWS rows each, largest amounts first; the `*_more`
    counts say how many were left out, and the totals cover every row."""

    to_pay: list[services.PlannedPayout]
    waiting: list[services.PlannedPayout]
    totals: list[Totals]
    runs: list[PayoutRun]
    failures: list[Failure]
    in_transit: list[InTransit] = field(default_factory=list)
    to_pay_more: int = 0
    waiting_more: int = 0
    in_transit_more: int = 0
    in_transit_totals: list[TransitTotals] = field(default_factory=list)
    run_totals: dict[int, list[RunTotal]] = field(default_factory=dict)


def _totals(plans: list[services.PlannedPayout]) -> list[Totals]:
    by_currency: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for plan in plans:
        row = by_currency[plan.currency]
        if plan.blocked:
            row["waiting_artists"] += 1
            row["waiting_minor"] += plan.available_minor
        else:
            row["artists"] += 1
            row["amount_minor"] += plan.amount_minor
            row["transfers"] += len(plan.parts)
    return [Totals(currency=c, **dict(v)) for c, v in sorted(by_currency.items())]


def _names(session: Session, artist_ids: set[int]) -> dict[int, str]:
    if not artist_ids:
        return {}
    return {
        int(a): str(n)
        for a, n in session.execute(
            select(Artist.id, Artist.display_name).where(Artist.id.in_(artist_ids))
        )
    }


def failures(session: Session, *, limit: int = RECENT_FAILURES) -> list[Failure]:
    """Failed (or partly failed) payouts and failed reversals, newest first."""
    payouts = session.scalars(
        select(Payout)
        .where(or_(Payout.status == PayoutStatus.FAILED, Payout.status == PayoutStatus.PARTIAL))
        .order_by(Payout.id.desc())
        .limit(limit)
    ).all()
    reversals = session.execute(
        select(PayoutReversal, PayoutTransfer.artist_id, Payout.currency)
        .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
        .join(Payout, Payout.id == PayoutTransfer.payout_id)
        .where(PayoutReversal.status == ReversalStatus.FAILED)
        .order_by(PayoutReversal.id.desc())
        .limit(limit)
    ).all()
    names = _names(session, {p.artist_id for p in payouts} | {int(a) for _r, a, _c in reversals})
    found = [
        Failure(
            what="payout",
            id=p.id,
            artist_id=p.artist_id,
            artist_name=names.get(p.artist_id, f"Artist {p.artist_id}"),
            amount_minor=p.amount_minor,
            currency=p.currency,
            code=p.failure_code,
            message=p.failure_message,
            at=p.finished_at or p.created_at,
        )
        for p in payouts
    ]
    found += [
        Failure(
            what="reversal",
            id=r.id,
            artist_id=int(artist),
            artist_name=names.get(int(artist), f"Artist {artist}"),
            amount_minor=r.amount_minor,
            currency=str(currency),
            code=r.failure_code,
            message=r.failure_message,
            at=r.finished_at or r.created_at,
        )
        for r, artist, currency in reversals
    ]
    found.sort(key=lambda f: f.at, reverse=True)
    return found[:limit]


def _pending_transfers() -> Any:
    """Per payout in transit: the amount and number of its transfers Stripe has not answered."""
    return (
        select(
            PayoutTransfer.payout_id.label("payout_id"),
            func.coalesce(func.sum(PayoutTransfer.amount_minor), 0).label("amount_minor"),
            func.count(PayoutTransfer.id).label("transfers"),
        )
        .where(PayoutTransfer.status == TransferStatus.PENDING)
        .group_by(PayoutTransfer.payout_id)
        .subquery()
    )


def in_transit(session: Session, *, limit: int = LIST_ROWS) -> list[InTransit]:
    """Payouts with transfers Stripe has not answered (the next run or a webhook settles them),
    largest first: one query, whatever the number of rows."""
    pending = _pending_transfers()
    amount = func.coalesce(pending.c.amount_minor, 0)
    rows = session.execute(
        select(Payout, Artist.display_name, amount, func.coalesce(pending.c.transfers, 0))
        .outerjoin(pending, pending.c.payout_id == Payout.id)
        .outerjoin(Artist, Artist.id == Payout.artist_id)
        .where(Payout.status == PayoutStatus.IN_TRANSIT)
        .order_by(amount.desc(), Payout.id)
        .limit(limit)
    ).all()
    return [
        InTransit(
            payout_id=p.id,
            run_id=p.run_id,
            artist_id=p.artist_id,
            artist_name=str(name) if name is not None else f"Artist {p.artist_id}",
            amount_minor=int(total),
            currency=p.currency,
            pending_transfers=int(count),
            since=p.created_at,
        )
        for p, name, total, count in rows
    ]


def in_transit_totals(session: Session) -> list[TransitTotals]:
    """Every payout in transit, per currency, summed in SQL (the list on the page is cut)."""
    pending = _pending_transfers()
    rows = session.execute(
        select(
            Payout.currency,
            func.count(Payout.id),
            func.coalesce(func.sum(func.coalesce(pending.c.amount_minor, 0)), 0),
        )
        .outerjoin(pending, pending.c.payout_id == Payout.id)
        .where(Payout.status == PayoutStatus.IN_TRANSIT)
        .group_by(Payout.currency)
        .order_by(Payout.currency)
    )
    return [TransitTotals(str(c), int(n), int(total)) for c, n, total in rows]


def run_totals(session: Session, run_ids: list[int]) -> dict[int, list[RunTotal]]:
    """What each run paid per currency: transfers Stripe accepted, less none reversed (a
    reversal is a refund's business, not the run's), from the payouts of the run."""
    if not run_ids:
        return {}
    sent = case(
        (PayoutTransfer.status == TransferStatus.SENT, PayoutTransfer.amount_minor), else_=0
    )
    found: dict[int, list[RunTotal]] = defaultdict(list)
    for run_id, currency, total in session.execute(
        select(Payout.run_id, Payout.currency, func.sum(sent))
        .join(PayoutTransfer, PayoutTransfer.payout_id == Payout.id)
        .where(Payout.run_id.in_(run_ids))
        .group_by(Payout.run_id, Payout.currency)
        .having(func.sum(sent) != 0)
        .order_by(Payout.run_id, Payout.currency)
    ):
        found[int(run_id)].append(RunTotal(int(run_id), str(currency), int(total)))
    return dict(found)


def recent_runs(session: Session, *, limit: int = RECENT_RUNS) -> list[PayoutRun]:
    return list(session.scalars(select(PayoutRun).order_by(PayoutRun.id.desc()).limit(limit)))


def latest_run_id(session: Session) -> int | None:
    return session.scalar(select(PayoutRun.id).order_by(PayoutRun.id.desc()).limit(1))


def overview(session: Session) -> Overview:
    """Everything the admin payouts page shows, from the database alone (no Stripe call)."""
    plans = services.upcoming(session)
    to_pay = _largest([p for p in plans if not p.blocked], lambda p: p.amount_minor)
    waiting = _largest([p for p in plans if p.blocked], lambda p: p.available_minor)
    transit_totals = in_transit_totals(session)
    runs = recent_runs(session)
    return Overview(
        to_pay=to_pay[:LIST_ROWS],
        waiting=waiting[:LIST_ROWS],
        totals=_totals(plans),  # every plan, not the cut lists
        runs=runs,
        failures=failures(session),
        in_transit=in_transit(session),
        to_pay_more=max(0, len(to_pay) - LIST_ROWS),
        waiting_more=max(0, len(waiting) - LIST_ROWS),
        in_transit_more=max(0, sum(t.payouts for t in transit_totals) - LIST_ROWS),
        in_transit_totals=transit_totals,
        run_totals=run_totals(session, [r.id for r in runs]),
    )


def _largest(
    plans: list[services.PlannedPayout], amount: Callable[[services.PlannedPayout], int]
) -> list[services.PlannedPayout]:
    return sorted(plans, key=lambda p: (-amount(p), p.artist_id))
