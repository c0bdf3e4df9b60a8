"""What the admin payouts page shows: read-only queries over the payout rows.

Kept apart from `services.py` (the rules that move money): nothing here writes or calls Stripe.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
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
class Overview:
    to_pay: list[services.PlannedPayout]
    waiting: list[services.PlannedPayout]
    totals: list[Totals]
    runs: list[PayoutRun]
    failures: list[Failure]
    in_transit: list[InTransit] = field(default_factory=list)


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


def in_transit(session: Session) -> list[InTransit]:
    """Payouts with transfers Stripe has not answered (the next run or a webhook settles them)."""
    payouts = session.scalars(
        select(Payout).where(Payout.status == PayoutStatus.IN_TRANSIT).order_by(Payout.id)
    ).all()
    names = _names(session, {p.artist_id for p in payouts})
    found = []
    for p in payouts:
        pending = [t for t in p.transfers if t.status is TransferStatus.PENDING]
        found.append(
            InTransit(
                payout_id=p.id,
                run_id=p.run_id,
                artist_id=p.artist_id,
                artist_name=names.get(p.artist_id, f"Artist {p.artist_id}"),
                amount_minor=sum(t.amount_minor for t in pending),
                currency=p.currency,
                pending_transfers=len(pending),
                since=p.created_at,
            )
        )
    return found


def recent_runs(session: Session, *, limit: int = RECENT_RUNS) -> list[PayoutRun]:
    return list(session.scalars(select(PayoutRun).order_by(PayoutRun.id.desc()).limit(limit)))


def latest_run_id(session: Session) -> int | None:
    return session.scalar(select(PayoutRun.id).order_by(PayoutRun.id.desc()).limit(1))


def overview(session: Session) -> Overview:
    """Everything the admin payouts page shows, from the database alone (no Stripe call)."""
    plans = services.upcoming(session)
    return Overview(
        to_pay=[p for p in plans if not p.blocked],
        waiting=[p for p in plans if p.blocked],
        totals=_totals(plans),
        runs=recent_runs(session),
        failures=failures(session),
        in_transit=in_transit(session),
    )
