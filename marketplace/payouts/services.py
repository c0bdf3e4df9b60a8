"""Paying artists their shares through Stripe Connect: exactly once, crash or not.

Where the money is (all from the ledger, per artist, currency and order):

- an order's *net* for an artist is the sum of the postings on their payable account whose
  ledger entry names the order: + their share when it was paid, - what refunds took back,
  - what payouts moved to transit, + what transfer reversals brought back;
- *pending*: nets of orders paid less than the holding period ago; *available*: the rest
  (negative when a refund came after a payout whose transfer could not be reversed);
- *in transit*: transfers recorded but not yet answered by Stripe; *paid*: sent - reversed.

So pending + available + in transit + paid = shares - refunded shares, for every artist.

A run takes a lock that dies with its process (a PostgreSQL advisory lock, or a file lock
beside SQLite), first finishes what a crashed run left in transit (asking Stripe's transfer
list before sending again), then records each artist's payout *before* calling Stripe, with
the transfer row's id in the idempotency key. Only a definitive refusal from Stripe returns
money to payable; an unknown outcome (timeout, 5xx, 409) stays in transit for the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import case, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import jobs
from marketplace.artists.models import Artist
from marketplace.buyers.models import Order, OrderRefund
from marketplace.db import get_engine, get_session, transaction, utcnow
from marketplace.ledger import money
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    LedgerTransaction,
)
from marketplace.payments import gateway as payments
from marketplace.payouts.models import (
    Payout,
    PayoutAccount,
    PayoutReversal,
    PayoutRun,
    PayoutStatus,
    PayoutTransfer,
    ReversalStatus,
    RunStatus,
    TransferStatus,
)

log = logging.getLogger(__name__)

REVERSAL_JOB = "marketplace.payouts.tasks.reverse_overpaid"
RUN_JOB = "marketplace.payouts.tasks.scheduled_run"
_ADVISORY_LOCK_ID = 0x7061796F7574  # "payout"
_ROW_ID = re.compile(r"[1-9][0-9]{0,17}")  # our ids in Stripe metadata: ASCII, within BIGINT


class PayoutsError(Exception):
    """A payouts rule refused the request; the message is safe to show."""


class NotFound(PayoutsError):
    pass


class RunInProgress(PayoutsError):
    pass


def _config(name: str) -> Any:
    return current_app.config[name]


def _fault_point(name: str) -> None:
    """Crash tests kill the process here (FAULT_POINT, refused in production) to prove that
    a run stopped at the worst moment pays nobody twice when started again."""
    if _config("FAULT_POINT") == name:
        log.warning("fault point %s: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)


# --- Connected accounts ------------------------------------------------------------------


def payout_account(session: Session, artist_id: int) -> PayoutAccount | None:
    return session.scalar(select(PayoutAccount).where(PayoutAccount.artist_id == artist_id))


def _apply(account: PayoutAccount, info: payments.ConnectedAccountInfo) -> None:
    account.charges_enabled = info.charges_enabled
    account.payouts_enabled = info.payouts_enabled
    account.details_submitted = info.details_submitted
    account.requirements_due = list(info.requirements_due)
    account.disabled_reason = info.disabled_reason
    account.synced_at = utcnow()


def start_onboarding(
    session: Session, artist: Artist, *, email: str, refresh_url: str, return_url: str
) -> str:
    """The Stripe-hosted onboarding URL for the artist, opening their Express account first
    (once: keyed on the artist). Payments errors propagate; the caller owns the transaction.

    Two requests at once (a double click) queue on the artist's row, so the second finds the
    first's account; where no row lock exists (SQLite), a lost race on the unique artist id
    takes the winner's account (Stripe's idempotency key made it the same one)."""
    session.get(Artist, artist.id, with_for_update=True, populate_existing=True)
    account = payout_account(session, artist.id)
    if account is None:
        country = (artist.country or _config("PAYOUT_DEFAULT_COUNTRY")).upper()
        info = payments.create_connected_account(
            email=email,
            country=country,
            idempotency_key=f"artist:{artist.id}:connect-account",
            metadata={"artist_id": str(artist.id)},
        )
        account = PayoutAccount(
            artist_id=artist.id, stripe_account_id=info.id, country=info.country or country
        )
        _apply(account, info)
        try:
            with session.begin_nested():
                session.add(account)
                session.flush()
        except IntegrityError:
            log.info("artist %s: account opened by a concurrent request", artist.id)
            account = payout_account(session, artist.id)
            if account is None:
                raise
    return payments.create_account_link(
        account.stripe_account_id, refresh_url=refresh_url, return_url=return_url
    )


def sync_account(session: Session, stripe_account_id: str) -> PayoutAccount | None:
    """Ask Stripe for the account as it is now (after a return from onboarding, or an
    `account.updated` event, which is only a hint) and keep its state."""
    account = session.scalar(
        select(PayoutAccount)
        .where(PayoutAccount.stripe_account_id == stripe_account_id)
        .with_for_update()
    )
    if account is None:
        return None
    try:
        _apply(account, payments.retrieve_connected_account(stripe_account_id))
    except payments.PaymentNotFound:  # closed or deleted at Stripe: nothing can be sent there
        account.payouts_enabled = account.charges_enabled = False
        account.disabled_reason = "account not found at Stripe"
        account.synced_at = utcnow()
    return account


def login_link(session: Session, artist_id: int) -> str:
    """A single-use link to the artist's Express dashboard (only once onboarding is done)."""
    account = payout_account(session, artist_id)
    if account is None or not account.details_submitted:
        raise PayoutsError("Finish setting up payouts first.")
    return payments.create_login_link(account.stripe_account_id)


# --- Balances ------------------------------------------------------------------------------


def _signed_credit() -> Any:
    return case(
        (LedgerPosting.direction == "credit", LedgerPosting.amount_minor),
        else_=-LedgerPosting.amount_minor,
    )


def order_nets(
    session: Session, *, artist_id: int | None = None, order_id: int | None = None
) -> dict[tuple[int, str, int], int]:
    """(artist, currency, order) -> what the artist's payable account holds for that order."""
    stmt = (
        select(
            LedgerAccount.artist_id,
            LedgerAccount.currency,
            LedgerEntry.order_id,
            func.sum(_signed_credit()),
        )
        .select_from(LedgerPosting)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == LedgerPosting.transaction_key)
        .join(LedgerEntry, LedgerEntry.seq == LedgerTransaction.entry_seq)
        .where(LedgerAccount.artist_id.is_not(None))
        .group_by(LedgerAccount.artist_id, LedgerAccount.currency, LedgerEntry.order_id)
        .having(func.sum(_signed_credit()) != 0)  # settled orders are history, not work
    )
    if artist_id is not None:
        stmt = stmt.where(LedgerAccount.artist_id == artist_id)
    if order_id is not None:
        stmt = stmt.where(LedgerEntry.order_id == order_id)
    nets: dict[tuple[int, str, int], int] = {}
    for artist, currency, order, total in session.execute(stmt):
        if artist is None or order is None:
            continue
        nets[(int(artist), str(currency), int(order))] = int(total or 0)
    return nets


def hold_cutoff(now: datetime | None = None) -> datetime:
    """Orders paid at or before this moment are past the holding period."""
    return (now or utcnow()) - timedelta(days=int(_config("PAYOUT_HOLD_DAYS")))


def _paid_at(session: Session, order_ids: Sequence[int]) -> dict[int, datetime]:
    found: dict[int, datetime] = {}
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), 500):
        for order_id, paid_at in session.execute(
            select(Order.id, Order.paid_at).where(Order.id.in_(ids[start : start + 500]))
        ):
            if paid_at is not None:
                found[int(order_id)] = paid_at
    return found


def _by_hold(
    session: Session, nets: dict[tuple[int, str, int], int], now: datetime | None
) -> list[tuple[tuple[int, str, int], int, datetime | None]]:
    """Each order net with when it leaves the holding period: None when it already has (paid
    at or before the cutoff, or no payment time known), so balances and runs agree."""
    paid_at = _paid_at(session, [order for (_a, _c, order) in nets])
    cutoff = hold_cutoff(now)
    hold = timedelta(days=int(_config("PAYOUT_HOLD_DAYS")))
    found: list[tuple[tuple[int, str, int], int, datetime | None]] = []
    for key, net in nets.items():
        when = paid_at.get(key[2])
        found.append((key, net, when + hold if when is not None and when > cutoff else None))
    return found


@dataclass(frozen=True)
class Balances:
    currency: str
    pending_minor: int = 0
    available_minor: int = 0
    in_transit_minor: int = 0
    paid_minor: int = 0  # transferred and not reversed
    reversed_minor: int = 0  # taken back from the connected account after refunds
    next_available_at: datetime | None = None  # when the oldest pending earnings free up

    @property
    def owed_minor(self) -> int:
        """Everything not yet transferred (available may be negative: money owed back)."""
        return self.pending_minor + self.available_minor


def balances(session: Session, artist_id: int, *, now: datetime | None = None) -> list[Balances]:
    """The artist's money in each state, per currency (an artist has at most a few)."""
    state: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"pending": 0, "available": 0, "transit": 0, "paid": 0, "reversed": 0, "next": None}
    )
    for (_artist, currency, _order), net, frees in _by_hold(
        session, order_nets(session, artist_id=artist_id), now
    ):
        row = state[currency]
        if frees is not None:
            row["pending"] += net
            row["next"] = frees if row["next"] is None else min(row["next"], frees)
        else:
            row["available"] += net
    transfers = session.execute(
        select(Payout.currency, PayoutTransfer.status, func.sum(PayoutTransfer.amount_minor))
        .join(Payout, Payout.id == PayoutTransfer.payout_id)
        .where(PayoutTransfer.artist_id == artist_id)
        .group_by(Payout.currency, PayoutTransfer.status)
    )
    for currency, status, total in transfers:
        if status == TransferStatus.PENDING:
            state[currency]["transit"] += int(total or 0)
        elif status == TransferStatus.SENT:
            state[currency]["paid"] += int(total or 0)
    reversed_rows = session.execute(
        select(Payout.currency, func.sum(PayoutReversal.amount_minor))
        .join(PayoutTransfer, PayoutTransfer.id == PayoutReversal.transfer_id)
        .join(Payout, Payout.id == PayoutTransfer.payout_id)
        .where(
            PayoutTransfer.artist_id == artist_id,
            PayoutReversal.status == ReversalStatus.REVERSED,
        )
        .group_by(Payout.currency)
    )
    for currency, total in reversed_rows:
        state[currency]["paid"] -= int(total or 0)
        state[currency]["reversed"] += int(total or 0)
    return [
        Balances(
            currency=currency,
            pending_minor=row["pending"],
            available_minor=row["available"],
            in_transit_minor=row["transit"],
            paid_minor=row["paid"],
            reversed_minor=row["reversed"],
            next_available_at=row["next"],
        )
        for currency, row in sorted(state.items())
    ]


# --- Planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPayout:
    """What a run would pay one artist now, or why it would not."""

    artist_id: int
    artist_name: str
    currency: str
    available_minor: int
    parts: tuple[tuple[int, int], ...] = field(default=())  # (order id, amount) per transfer
    # (order owed back on, order it is deducted from, amount): recorded in the ledger
    nettings: tuple[tuple[int, int, int], ...] = field(default=())
    blocked: str = ""  # empty: will be paid
    restricted: bool = False  # blocked because Stripe restricted the account (a failure)

    @property
    def amount_minor(self) -> int:
        return sum(amount for _order, amount in self.parts)


def _split(
    available: dict[int, int],
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int, int], ...]]:
    """One transfer per order with money owed, and the nettings: what is owed back on other
    orders (refunds after a payout that could not be reversed) is deducted from the oldest
    orders first, each deduction naming both orders so that per-order nets stay true."""
    debts = [[order, -net] for order, net in sorted(available.items()) if net < 0]
    parts: list[tuple[int, int]] = []
    nettings: list[tuple[int, int, int]] = []
    for order_id in sorted(available):
        left = available[order_id]
        if left <= 0:
            continue
        while left > 0 and debts:
            debt = debts[0]
            taken = min(left, debt[1])
            nettings.append((debt[0], order_id, taken))
            left -= taken
            debt[1] -= taken
            if debt[1] == 0:
                debts.pop(0)
        if left > 0:
            parts.append((order_id, left))
    return tuple(parts), tuple(nettings)


def _in_transit_artists(session: Session) -> set[int]:
    return {
        int(artist)
        for artist in session.scalars(
            select(PayoutTransfer.artist_id)
            .where(PayoutTransfer.status == TransferStatus.PENDING)
            .distinct()
        )
    }


def upcoming(
    session: Session, *, now: datetime | None = None, artist_id: int | None = None
) -> list[PlannedPayout]:
    """Every artist with money past the holding period: what a run started now would do."""
    per_artist: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for (artist, currency, order), net, frees in _by_hold(
        session, order_nets(session, artist_id=artist_id), now
    ):
        if net != 0 and frees is None:
            per_artist[(artist, currency)][order] = net
    if not per_artist:
        return []
    artist_ids = sorted({artist for artist, _c in per_artist})
    accounts = {
        a.artist_id: a
        for a in session.scalars(
            select(PayoutAccount).where(PayoutAccount.artist_id.in_(artist_ids))
        )
    }
    names = {
        int(artist): str(name)
        for artist, name in session.execute(
            select(Artist.id, Artist.display_name).where(Artist.id.in_(artist_ids))
        )
    }
    in_transit = _in_transit_artists(session)
    minimum = int(_config("PAYOUT_MINIMUM_MINOR"))
    plans: list[PlannedPayout] = []
    for (artist, currency), available in sorted(per_artist.items()):
        total = sum(available.values())
        if total <= 0:
            continue
        account = accounts.get(artist)
        blocked, restricted = "", False
        parts, nettings = _split(available)
        if total < minimum:
            blocked = "below the minimum payout"
        elif account is None or not account.details_submitted:
            blocked = "payouts not set up yet"
        elif not account.can_receive:
            blocked = "Stripe has restricted payouts to this account" + (
                f" ({account.disabled_reason})" if account.disabled_reason else ""
            )
            restricted = True
        elif artist in in_transit:
            blocked = "a payout is still in transit"
        plans.append(
            PlannedPayout(
                artist_id=artist,
                artist_name=str(names.get(artist, f"Artist {artist}")),
                currency=currency,
                available_minor=total,
                parts=parts,
                nettings=nettings,
                blocked=blocked,
                restricted=restricted,
            )
        )
    return plans


# --- Runs ----------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(wait_seconds: float = 0.0) -> Iterator[None]:
    """One payout run at a time, on any number of machines; the lock dies with its process.

    Raises RunInProgress when another run holds it for longer than `wait_seconds`."""
    deadline = time.monotonic() + max(0.0, wait_seconds)
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not connection.scalar(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID}
            ):
                if time.monotonic() >= deadline:
                    raise RunInProgress("Another payout run is in progress.")
                time.sleep(0.2)
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID}
                )
        return
    path = Path(current_app.instance_path) / "payouts.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunInProgress("Another payout run is in progress.") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class RunOutcome:
    run_id: int
    paid: int = 0
    failed: int = 0
    resumed: int = 0
    paid_minor: int = 0
    unknown: int = 0  # payouts whose outcome Stripe did not tell us yet (left in transit)


def run_payouts(
    *, trigger: str = "cli", now: datetime | None = None, wait_seconds: float = 0.0
) -> RunOutcome:
    """Pay every artist whose available balance reaches the minimum. Safe to start twice,
    at once or after a crash: see the module docstring."""
    with run_lock(wait_seconds):
        with transaction() as session:
            for stale in session.scalars(
                select(PayoutRun).where(PayoutRun.status == RunStatus.RUNNING)
            ):  # we hold the lock, so their processes are gone
                stale.status = RunStatus.FAILED
                stale.finished_at = utcnow()
                stale.note = "interrupted: its process stopped; this run finished its payouts"
            run = PayoutRun(trigger=trigger[:20], status=RunStatus.RUNNING)
            session.add(run)
            session.flush()
            outcome = RunOutcome(run_id=run.id)
        try:
            _resume_unfinished(outcome)
            for plan in upcoming(get_session(), now=now):
                if plan.restricted:
                    _record_restricted(outcome, plan)
                elif not plan.blocked:
                    try:
                        sources = {order: _source_transaction(order) for order, _a in plan.parts}
                    except payments.PaymentsUnavailable:
                        log.warning("artist %s: Stripe unavailable; next run", plan.artist_id)
                        continue
                    payout_id = _record_intent(outcome.run_id, plan, sources, now=now)
                    if payout_id is not None:
                        _tally(outcome, _send(payout_id))
        except Exception as exc:
            with transaction() as session:
                failed = session.get(PayoutRun, outcome.run_id)
                assert failed is not None
                failed.status = RunStatus.FAILED
                failed.finished_at = utcnow()
                failed.note = f"stopped: {type(exc).__name__}: {exc}"[:2000]
            raise
        with transaction() as session:
            finished = session.get(PayoutRun, outcome.run_id)
            assert finished is not None
            finished.status = RunStatus.FINISHED
            finished.finished_at = utcnow()
            finished.paid_count = outcome.paid
            finished.failed_count = outcome.failed
            finished.resumed_count = outcome.resumed
            finished.paid_minor = outcome.paid_minor
            if outcome.unknown:
                finished.note = (
                    f"{outcome.unknown} payout(s) await Stripe's answer; the next run finishes them"
                )
    log.info(
        "payout run %s: %s paid (%s minor units), %s failed, %s resumed",
        outcome.run_id,
        outcome.paid,
        outcome.paid_minor,
        outcome.failed,
        outcome.resumed,
    )
    return outcome


def _tally(outcome: RunOutcome, payout: Payout) -> None:
    if payout.status in (PayoutStatus.PAID, PayoutStatus.PARTIAL):
        outcome.paid += 1
        outcome.paid_minor += sum(
            t.amount_minor for t in payout.transfers if t.status is TransferStatus.SENT
        )
    if payout.status in (PayoutStatus.FAILED, PayoutStatus.PARTIAL):
        outcome.failed += 1
    if payout.status is PayoutStatus.IN_TRANSIT:
        outcome.unknown += 1


def _record_restricted(outcome: RunOutcome, plan: PlannedPayout) -> None:
    """Stripe restricted the account: no money moves; the failure is shown and retried."""
    with transaction() as session:
        account = payout_account(session, plan.artist_id)
        session.add(
            Payout(
                run_id=outcome.run_id,
                artist_id=plan.artist_id,
                currency=plan.currency,
                amount_minor=plan.available_minor,
                destination=account.stripe_account_id if account else "",
                status=PayoutStatus.FAILED,
                failure_code="account_restricted",
                failure_message=plan.blocked
                + (
                    "; Stripe needs: " + ", ".join(account.requirements_due)
                    if account and account.requirements_due
                    else ""
                ),
                finished_at=utcnow(),
            )
        )
    outcome.failed += 1


def _transit_posting_subject(artist_id: int, payout_id: int, order_id: int) -> dict[str, int]:
    return {"artist": artist_id, "payout": payout_id, "order": order_id}


def _record_intent(
    run_id: int, plan: PlannedPayout, sources: dict[int, str | None], *, now: datetime | None
) -> int | None:
    """Commit the payout and its transfers, and move their amounts to payouts in transit,
    before Stripe hears of them. Re-plans under the artist's lock; None if nothing is due."""
    with transaction() as session:
        account = session.scalar(
            select(PayoutAccount).where(PayoutAccount.artist_id == plan.artist_id).with_for_update()
        )
        if account is None or not account.can_receive:
            return None
        if plan.artist_id in _in_transit_artists(session):
            return None
        fresh = [
            p
            for p in upcoming(session, now=now, artist_id=plan.artist_id)
            if p.currency == plan.currency and not p.blocked
        ]
        if not fresh or not fresh[0].parts:
            return None
        current = fresh[0]
        payout = Payout(
            run_id=run_id,
            artist_id=plan.artist_id,
            currency=plan.currency,
            amount_minor=current.amount_minor,
            destination=account.stripe_account_id,
            status=PayoutStatus.IN_TRANSIT,
        )
        session.add(payout)
        session.flush()
        for owed_on, deducted_from, amount in current.nettings:
            _record_netting(session, payout, owed_on, deducted_from, amount)
        for order_id, amount in current.parts:
            transfer = PayoutTransfer(
                payout_id=payout.id,
                artist_id=plan.artist_id,
                order_id=order_id,
                amount_minor=amount,
                status=TransferStatus.PENDING,
                source_transaction=sources.get(order_id),
            )
            session.add(transfer)
            session.flush()
            money.record_transaction(
                session,
                key=f"payout:{payout.id}:transfer:{transfer.id}:initiated",
                kind=EntryKind.PAYOUT_INITIATED,
                currency=plan.currency,
                postings=[
                    money.debit(money.artist_payable(plan.artist_id, plan.currency), amount),
                    money.credit(money.payouts_in_transit(plan.currency), amount),
                ],
                subject=_transit_posting_subject(plan.artist_id, payout.id, order_id),
                memo=f"Payout {payout.id}: order {order_id} share on its way",
            )
        return payout.id


def _record_netting(
    session: Session, payout: Payout, owed_on: int, deducted_from: int, amount: int
) -> None:
    """Move `amount` owed back on order `owed_on` onto order `deducted_from`, whose transfer
    is that much smaller: two transactions, each naming its order, through payout netting."""
    payable = money.artist_payable(payout.artist_id, payout.currency)
    netting = money.payout_netting(payout.currency)
    base = f"payout:{payout.id}:net:{owed_on}:{deducted_from}"
    memo = f"Payout {payout.id}: {amount} owed back on order {owed_on} deducted"
    money.record_transaction(
        session,
        key=f"{base}:from",
        kind=EntryKind.PAYOUT_NETTED,
        currency=payout.currency,
        postings=[money.debit(payable, amount), money.credit(netting, amount)],
        subject=_transit_posting_subject(payout.artist_id, payout.id, deducted_from),
        memo=memo + f" from order {deducted_from}",
    )
    money.record_transaction(
        session,
        key=f"{base}:onto",
        kind=EntryKind.PAYOUT_NETTED,
        currency=payout.currency,
        postings=[money.debit(netting, amount), money.credit(payable, amount)],
        subject=_transit_posting_subject(payout.artist_id, payout.id, owed_on),
        memo=memo + f" (settles order {owed_on})",
    )


def _definitive(exc: payments.PaymentsError) -> bool:
    """Stripe refused for good (nothing was transferred), as opposed to an unknown outcome."""
    return not isinstance(exc, payments.PaymentsUnavailable) and exc.code not in (
        "idempotency_error",
        "idempotency_key_in_use",
    )


def _transfer_metadata(transfer: PayoutTransfer) -> dict[str, str]:
    return {
        "payout": str(transfer.payout_id),
        "payout_transfer": str(transfer.id),
        "artist": str(transfer.artist_id),
        "order": str(transfer.order_id),
    }


def transfer_group(order_id: int) -> str:
    """The order's transfer group: its PaymentIntent carries the same (buyers.transfer_group)."""
    return f"order_{order_id}"


def _source_transaction(order_id: int) -> str | None:
    """The order's charge, so the transfer draws on that payment's funds."""
    session = get_session()
    intent = session.scalar(select(Order.payment_intent_id).where(Order.id == order_id))
    session.rollback()  # no read transaction held across the call
    return _charge_of(intent) if intent else None


@functools.lru_cache(maxsize=4096)
def _charge_of(payment_intent_id: str) -> str | None:
    """A succeeded PaymentIntent's charge never changes: ask Stripe once per process, not once
    per artist of a large order."""
    try:
        return payments.retrieve_payment_intent(payment_intent_id).latest_charge
    except payments.PaymentNotFound:  # not a Stripe payment (say, recorded by hand)
        return None


def _find_at_stripe(
    transfer_id: int, order_id: int, destination: str
) -> payments.TransferInfo | None:
    """A transfer Stripe made for this row in an earlier attempt (idempotency keys expire)."""
    for info in payments.list_transfers(
        transfer_group=transfer_group(order_id), destination=destination
    ):
        if info.metadata.get("payout_transfer") == str(transfer_id):
            return info
    return None


def _send(payout_id: int, *, resuming: bool = False) -> Payout:
    """Ask Stripe for each pending transfer of the payout and record each answer. Resuming a
    payout an earlier run left in transit, look in Stripe's transfer list first."""
    session = get_session()
    payout = session.get(Payout, payout_id)
    assert payout is not None
    destination, currency, artist_id = payout.destination, payout.currency, payout.artist_id
    pending = [
        (t.id, t.order_id, t.amount_minor, t.source_transaction, _transfer_metadata(t))
        for t in session.scalars(
            select(PayoutTransfer)
            .where(
                PayoutTransfer.payout_id == payout_id,
                PayoutTransfer.status == TransferStatus.PENDING,
            )
            .order_by(PayoutTransfer.id)
        )
    ]
    session.rollback()  # no read transaction held across Stripe's calls
    for transfer_id, order_id, amount, source, metadata in pending:
        try:
            found = _find_at_stripe(transfer_id, order_id, destination) if resuming else None
        except payments.PaymentsError as exc:  # cannot tell whether it exists: ask next run
            log.warning("payout %s: Stripe's transfer list unavailable (%s)", payout_id, exc.code)
            break
        created = found is None
        if found is None:
            if _refunded_since(artist_id, order_id):
                with transaction() as session:
                    _fail_transfers(
                        session,
                        payout_id,
                        [transfer_id],
                        code="order_refunded",
                        message="The order was refunded before this transfer was sent; what "
                        "is still owed is paid by the next run.",
                    )
                continue
            try:
                found = payments.create_transfer(
                    amount_minor=amount,
                    currency=currency,
                    destination=destination,
                    transfer_group=transfer_group(order_id),
                    source_transaction=source,
                    metadata=metadata,
                    idempotency_key=f"payout-{payout_id}-transfer-{transfer_id}",
                )
            except payments.PaymentsError as exc:
                if not _definitive(exc):
                    log.warning(
                        "payout %s transfer %s: outcome unknown (%s); left in transit",
                        payout_id,
                        transfer_id,
                        exc.code,
                    )
                    break
                with transaction() as session:
                    _fail_transfers(
                        session,
                        payout_id,
                        None,
                        code=exc.code or "refused",
                        message=exc.message,
                    )
                break
        if created:
            _fault_point("payout.transfer_created")
        with transaction() as session:
            if _record_sent(session, transfer_id, found) == "mismatch":
                break  # Stripe's answer does not match the row: left in transit, logged
    session = get_session()
    session.expire_all()
    payout = session.get(Payout, payout_id)
    assert payout is not None
    list(payout.transfers)  # loaded for the caller's tally
    session.rollback()
    return payout


def _record_sent(session: Session, transfer_id: int, info: payments.TransferInfo) -> str:
    """Stripe accepted the transfer: record it once, moving in transit to paid. Returns
    "recorded", "already" (a webhook or another attempt did) or "mismatch" (not this row's)."""
    transfer = session.get(PayoutTransfer, transfer_id, with_for_update=True)
    if transfer is None:
        return "mismatch"
    if transfer.status is not TransferStatus.PENDING:
        return "already" if transfer.stripe_transfer_id == info.id else "mismatch"
    payout = transfer.payout
    if info.amount_minor != transfer.amount_minor or info.destination != payout.destination:
        log.error("transfer %s does not match payout transfer %s", info.id, transfer.id)
        return "mismatch"
    transfer.status = TransferStatus.SENT
    transfer.stripe_transfer_id = info.id
    transfer.sent_at = utcnow()
    money.record_transaction(
        session,
        key=f"payout:{payout.id}:transfer:{transfer.id}:sent",
        kind=EntryKind.PAYOUT_SENT,
        currency=payout.currency,
        postings=[
            money.debit(money.payouts_in_transit(payout.currency), transfer.amount_minor),
            money.credit(money.processor_clearing(payout.currency), transfer.amount_minor),
        ],
        subject=_transit_posting_subject(transfer.artist_id, payout.id, transfer.order_id),
        memo=f"Payout {payout.id}: Stripe transfer {info.id}",
    )
    _settle_status(payout)
    if (
        sum(order_nets(session, artist_id=transfer.artist_id, order_id=transfer.order_id).values())
        < 0
    ):
        # A refund came while this transfer was on its way: take the share back now.
        _queue_reversal(session, transfer.order_id, transfer.artist_id, None)
    return "recorded"


def _refunded_since(artist_id: int, order_id: int) -> bool:
    """A refund took back part of this order's share after the transfer was planned: its net
    is below zero now that the transfer's amount is in transit."""
    session = get_session()
    nets = order_nets(session, artist_id=artist_id, order_id=order_id)
    session.rollback()
    return sum(nets.values()) < 0


def _fail_transfers(
    session: Session,
    payout_id: int,
    transfer_ids: Sequence[int] | None,
    *,
    code: str,
    message: str,
) -> None:
    """These transfers (None: every one not sent yet) will not be sent: their amounts return
    to payable, for the next run to pay what is still owed."""
    payout = session.get(Payout, payout_id)
    assert payout is not None
    for transfer in payout.transfers:
        if transfer.status is not TransferStatus.PENDING:
            continue
        if transfer_ids is not None and transfer.id not in transfer_ids:
            continue
        transfer.status = TransferStatus.FAILED
        transfer.failure_code = code[:64]
        transfer.failure_message = message[:2000]
        money.record_transaction(
            session,
            key=f"payout:{payout.id}:transfer:{transfer.id}:failed",
            kind=EntryKind.PAYOUT_FAILED,
            currency=payout.currency,
            postings=[
                money.debit(money.payouts_in_transit(payout.currency), transfer.amount_minor),
                money.credit(
                    money.artist_payable(transfer.artist_id, payout.currency),
                    transfer.amount_minor,
                ),
            ],
            subject=_transit_posting_subject(transfer.artist_id, payout.id, transfer.order_id),
            memo=f"Payout {payout.id}: transfer not sent ({transfer.failure_code})",
        )
    if transfer_ids is None or not any(t.status is TransferStatus.SENT for t in payout.transfers):
        payout.failure_code = code[:64]
        payout.failure_message = message[:2000]
    _settle_status(payout)


def _settle_status(payout: Payout) -> None:
    states = {t.status for t in payout.transfers}
    if TransferStatus.PENDING in states:
        payout.status = PayoutStatus.IN_TRANSIT
        return
    if states == {TransferStatus.SENT}:
        payout.status = PayoutStatus.PAID
    elif TransferStatus.SENT in states:
        payout.status = PayoutStatus.PARTIAL
    else:
        payout.status = PayoutStatus.FAILED
    if payout.finished_at is None:
        payout.finished_at = utcnow()


def _resume_unfinished(outcome: RunOutcome) -> None:
    """Finish what an earlier run left in transit, and reversals left unanswered."""
    session = get_session()
    payout_ids = list(
        session.scalars(
            select(Payout.id).where(Payout.status == PayoutStatus.IN_TRANSIT).order_by(Payout.id)
        )
    )
    reversal_ids = list(
        session.scalars(
            select(PayoutReversal.id)
            .where(PayoutReversal.status == ReversalStatus.PENDING)
            .order_by(PayoutReversal.id)
        )
    )
    session.rollback()  # end the read before the calls
    for payout_id in payout_ids:
        outcome.resumed += 1
        _tally(outcome, _send(payout_id, resuming=True))
    for reversal_id in reversal_ids:
        try:
            _send_reversal(reversal_id)
        except payments.PaymentsError as exc:  # one reversal must not stop everyone's payout
            log.warning("reversal %s left pending (%s)", reversal_id, exc.code)


# --- Refunds after a payout ----------------------------------------------------------------


def _queue_reversal(session: Session, order_id: int, artist_id: int, refund_id: int | None) -> None:
    jobs.enqueue_after_commit(
        session,
        REVERSAL_JOB,
        order_id,
        artist_id,
        refund_id,
        job_id=f"payout-reversal-{order_id}-{artist_id}-{refund_id or 'transfer'}",
    )


def order_refunded(session: Session, order: Order, refund: OrderRefund) -> None:
    """Called with each recorded refund: queue the reversal of shares already transferred.
    (A share still in transit is reversed once its transfer is recorded.)"""
    sent = set(
        session.scalars(
            select(PayoutTransfer.artist_id).where(
                PayoutTransfer.order_id == order.id, PayoutTransfer.status == TransferStatus.SENT
            )
        )
    )
    for artist_key, amount in sorted(refund.artists.items()):
        if int(amount) > 0 and int(artist_key) in sent:
            _queue_reversal(session, order.id, int(artist_key), refund.id)


def reverse_overpaid(order_id: int, artist_id: int, refund_id: int | None = None) -> list[int]:
    """Take back, by transfer reversal, what the artist was paid for the order beyond its net
    (refunds after the transfer); whatever cannot be reversed stays owed (a negative balance
    that the next payout deducts). Safe to rerun. Returns the reversal ids it sent."""
    with transaction() as session:
        created = _plan_reversals(session, artist_id, order_id, refund_id)
    for reversal_id in created:
        _send_reversal(reversal_id)
    return created


def _reversed_or_pending(session: Session, transfer_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PayoutReversal.amount_minor), 0)).where(
                PayoutReversal.transfer_id == transfer_id,
                PayoutReversal.status.in_([ReversalStatus.PENDING, ReversalStatus.REVERSED]),
            )
        )
        or 0
    )


def _plan_reversals(
    session: Session, artist_id: int, order_id: int, refund_id: int | None
) -> list[int]:
    transfers = session.scalars(
        select(PayoutTransfer)
        .where(
            PayoutTransfer.artist_id == artist_id,
            PayoutTransfer.order_id == order_id,
            PayoutTransfer.status == TransferStatus.SENT,
        )
        .order_by(PayoutTransfer.id.desc())
        .with_for_update()
    ).all()  # locked before the nets are read: one planner at a time per order and artist
    owed_back = -sum(order_nets(session, artist_id=artist_id, order_id=order_id).values())
    pending = sum(
        r.amount_minor
        for t in transfers
        for r in session.scalars(
            select(PayoutReversal).where(
                PayoutReversal.transfer_id == t.id,
                PayoutReversal.status == ReversalStatus.PENDING,
            )
        )
    )
    need = owed_back - pending
    created: list[int] = []
    for transfer in transfers:
        if need <= 0:
            break
        reversible = transfer.amount_minor - _reversed_or_pending(session, transfer.id)
        take = min(need, reversible)
        if take <= 0:
            continue
        reversal = PayoutReversal(
            transfer_id=transfer.id,
            refund_id=refund_id,
            amount_minor=take,
            status=ReversalStatus.PENDING,
        )
        session.add(reversal)
        session.flush()
        created.append(reversal.id)
        need -= take
    return created


def _send_reversal(reversal_id: int) -> None:
    with transaction() as session:
        reversal = session.get(PayoutReversal, reversal_id, with_for_update=True)
        if reversal is None or reversal.status is not ReversalStatus.PENDING:
            return
        transfer = reversal.transfer
        stripe_transfer = transfer.stripe_transfer_id
        amount = reversal.amount_minor
        metadata = {
            "payout_reversal": str(reversal.id),
            "payout_transfer": str(transfer.id),
            "refund": str(reversal.refund_id or ""),
        }
    assert stripe_transfer is not None
    found = None
    try:
        for existing in payments.list_transfer_reversals(stripe_transfer):
            if existing.metadata.get("payout_reversal") == str(reversal_id):
                found = existing
    except payments.PaymentsError as exc:  # cannot tell whether it exists: ask next run
        log.warning("reversal %s: Stripe's reversal list unavailable (%s)", reversal_id, exc.code)
        return
    if found is None:
        try:
            found = payments.create_transfer_reversal(
                stripe_transfer,
                amount_minor=amount,
                idempotency_key=f"payout-reversal-{reversal_id}",
                metadata=metadata,
            )
        except payments.PaymentsError as exc:
            if not _definitive(exc):
                log.warning("reversal %s: outcome unknown (%s)", reversal_id, exc.code)
                return
            with transaction() as session:
                reversal = session.get(PayoutReversal, reversal_id, with_for_update=True)
                if reversal is not None and reversal.status is ReversalStatus.PENDING:
                    reversal.status = ReversalStatus.FAILED
                    reversal.failure_code = (exc.code or "refused")[:64]
                    reversal.failure_message = exc.message[:2000]
                    reversal.finished_at = utcnow()
            return
    _fault_point("payout.reversal_created")
    with transaction() as session:
        _record_reversed(session, reversal_id, found.id)


def _record_reversed(session: Session, reversal_id: int, stripe_reversal_id: str) -> None:
    reversal = session.get(PayoutReversal, reversal_id, with_for_update=True)
    if reversal is None or reversal.status is ReversalStatus.REVERSED:
        return
    transfer = reversal.transfer
    currency = transfer.payout.currency
    reversal.status = ReversalStatus.REVERSED
    reversal.stripe_reversal_id = stripe_reversal_id
    reversal.finished_at = utcnow()
    money.record_transaction(
        session,
        key=f"payout-reversal:{reversal.id}",
        kind=EntryKind.PAYOUT_REVERSED,
        currency=currency,
        postings=[
            money.debit(money.processor_clearing(currency), reversal.amount_minor),
            money.credit(money.artist_payable(transfer.artist_id, currency), reversal.amount_minor),
        ],
        subject=_transit_posting_subject(transfer.artist_id, transfer.payout_id, transfer.order_id),
        memo=f"Transfer {transfer.stripe_transfer_id} reversed ({stripe_reversal_id})",
    )


# --- Stripe's events -----------------------------------------------------------------------

EVENT_TYPES = frozenset(
    {"account.updated", "transfer.created", "transfer.updated", "transfer.reversed"}
)


def handle_event(session: Session, event: payments.WebhookEvent) -> str:
    """An `account.*` or `transfer.*` event: ask Stripe for the object now and act on that.
    The caller owns the transaction (and records the event id once)."""
    object_id = event.object.get("id")
    if not isinstance(object_id, str) or not object_id:
        return "ignored: no object id"
    if event.type == "account.updated":
        account = sync_account(session, object_id)
        return (
            f"account {object_id}: payouts {'enabled' if account.payouts_enabled else 'disabled'}"
            if account
            else "unknown account"
        )
    if event.type.startswith("transfer."):
        return _sync_transfer(session, object_id)
    return "ignored"


def _sync_transfer(session: Session, stripe_transfer_id: str) -> str:
    try:
        info = payments.retrieve_transfer(stripe_transfer_id)
    except payments.PaymentNotFound:
        return "unknown transfer"
    transfer = session.scalar(
        select(PayoutTransfer)
        .where(PayoutTransfer.stripe_transfer_id == stripe_transfer_id)
        .with_for_update()  # transfer.reversed and transfer.updated arrive together
    )
    if transfer is None:
        wanted = info.metadata.get("payout_transfer", "")
        if not _ROW_ID.fullmatch(wanted):
            return "unknown transfer"
        transfer = session.get(PayoutTransfer, int(wanted))
        if transfer is None or transfer.status is not TransferStatus.PENDING:
            return "unknown transfer"
        if _record_sent(session, transfer.id, info) == "mismatch":
            return "transfer does not match"
        outcome = f"payout transfer {transfer.id}: sent"
    else:
        outcome = f"payout transfer {transfer.id}: {transfer.status.value}"
    if info.amount_reversed_minor > 0:
        outcome += _sync_reversals(session, transfer, stripe_transfer_id)
    return outcome


def _sync_reversals(session: Session, transfer: PayoutTransfer, stripe_transfer_id: str) -> str:
    """Record reversals made outside a run (say, from Stripe's Dashboard)."""
    known = {
        r.stripe_reversal_id: r
        for r in session.scalars(
            select(PayoutReversal).where(PayoutReversal.transfer_id == transfer.id)
        )
    }
    recorded = 0
    for info in payments.list_transfer_reversals(stripe_transfer_id):
        if info.id in known:
            continue
        ours = info.metadata.get("payout_reversal", "")
        row = session.get(PayoutReversal, int(ours)) if _ROW_ID.fullmatch(ours) else None
        if row is None or row.transfer_id != transfer.id or row.amount_minor != info.amount_minor:
            row = PayoutReversal(
                transfer_id=transfer.id,
                amount_minor=info.amount_minor,
                status=ReversalStatus.PENDING,
            )
            session.add(row)
            session.flush()
        if row.status is ReversalStatus.REVERSED:
            continue
        row.status = ReversalStatus.PENDING  # a failed row Stripe made after all
        _record_reversed(session, row.id, info.id)
        recorded += 1
    return f", {recorded} reversal(s) recorded" if recorded else ""


# --- Reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    kind: str  # a short code, e.g. "missing_at_stripe"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _ledger_keys(session: Session, prefix: str) -> set[str]:
    return set(
        session.scalars(
            select(LedgerTransaction.idempotency_key).where(
                LedgerTransaction.idempotency_key.like(prefix + "%")
            )
        )
    )


def reconcile() -> list[Difference]:
    """Compare our payout rows with the ledger and with Stripe's transfers; [] when they agree.

    Read only: a transfer Stripe made that we still show in transit is finished by the next
    run (or its `transfer.created` event), not here."""
    session = get_session()
    found: list[Difference] = []
    transfers = session.scalars(select(PayoutTransfer).order_by(PayoutTransfer.id)).all()
    payouts_by_id = {p.id: p for p in session.scalars(select(Payout))}
    steps: dict[tuple[int, int], set[str]] = defaultdict(set)  # (payout, transfer) -> steps
    for key in _ledger_keys(session, "payout:"):
        parts = key.split(":")
        if len(parts) == 5 and parts[2] == "transfer" and parts[1].isdigit() and parts[3].isdigit():
            steps[(int(parts[1]), int(parts[3]))].add(parts[4])
    in_transit: dict[str, int] = defaultdict(int)
    for t in transfers:
        payout = payouts_by_id[t.payout_id]
        expected = {
            TransferStatus.PENDING: {"initiated"},
            TransferStatus.SENT: {"initiated", "sent"},
        }
        want = expected.get(t.status, {"initiated", "failed"})
        have = steps.get((payout.id, t.id), set())
        if have != want:
            found.append(
                Difference(
                    "ledger_mismatch",
                    f"transfer row {t.id} is {t.status.value} but the ledger has "
                    f"{sorted(have) or 'nothing'} (expected {sorted(want)})",
                )
            )
        if t.status is TransferStatus.PENDING:
            in_transit[payout.currency] += t.amount_minor
    currencies = set(in_transit) | {p.currency for p in payouts_by_id.values()}
    for currency in sorted(currencies):
        ledger_transit = money.balance(session, money.payouts_in_transit(currency))
        if ledger_transit != in_transit.get(currency, 0):
            found.append(
                Difference(
                    "in_transit_mismatch",
                    f"{currency}: ledger holds {ledger_transit} in transit, "
                    f"payout rows {in_transit.get(currency, 0)}",
                )
            )
    reversal_keys = _ledger_keys(session, "payout-reversal:")
    reversed_by_transfer: dict[int, int] = defaultdict(int)
    for r in session.scalars(select(PayoutReversal)):
        has_entry = f"payout-reversal:{r.id}" in reversal_keys
        if (r.status is ReversalStatus.REVERSED) != has_entry:
            found.append(
                Difference(
                    "ledger_mismatch",
                    f"reversal {r.id} is {r.status.value} but its ledger entry is "
                    + ("present" if has_entry else "missing"),
                )
            )
        if r.status is ReversalStatus.REVERSED:
            reversed_by_transfer[r.transfer_id] += r.amount_minor
    ours = {t.id: t for t in transfers}
    by_stripe_id = {t.stripe_transfer_id: t for t in transfers if t.stripe_transfer_id}
    destinations = set(session.scalars(select(PayoutAccount.stripe_account_id)))
    seen: set[str] = set()
    session.rollback()  # no read transaction held across Stripe's pages
    if not destinations:
        return found
    first = min((t.created_at for t in transfers), default=None)
    since = int(first.timestamp()) - 86400 if first else None
    for info in payments.list_transfers(created_gte=since):
        if info.destination not in destinations:
            continue
        seen.add(info.id)
        mark = info.metadata.get("payout_transfer", "")
        row = by_stripe_id.get(info.id) or (
            ours.get(int(mark)) if _ROW_ID.fullmatch(mark) else None
        )
        if row is None:
            found.append(
                Difference(
                    "unknown_at_stripe",
                    f"Stripe transfer {info.id} ({info.amount_minor} {info.currency} to "
                    f"{info.destination}) matches no payout",
                )
            )
            continue
        if row.status is TransferStatus.PENDING:
            found.append(
                Difference(
                    "unrecorded_transfer",
                    f"Stripe made {info.id} for transfer row {row.id}, still in transit here "
                    "(the next run records it)",
                )
            )
        elif row.status is TransferStatus.FAILED:
            found.append(
                Difference(
                    "failed_but_sent",
                    f"transfer row {row.id} is recorded as refused but Stripe made {info.id}",
                )
            )
        elif row.stripe_transfer_id != info.id or row.amount_minor != info.amount_minor:
            found.append(
                Difference(
                    "amount_mismatch",
                    f"transfer row {row.id}: {row.amount_minor} as {row.stripe_transfer_id}, "
                    f"Stripe {info.amount_minor} as {info.id}",
                )
            )
        if row.status is TransferStatus.SENT and info.amount_reversed_minor != (
            reversed_by_transfer.get(row.id, 0)
        ):
            found.append(
                Difference(
                    "reversal_mismatch",
                    f"transfer {info.id}: Stripe reversed {info.amount_reversed_minor}, "
                    f"the ledger {reversed_by_transfer.get(row.id, 0)}",
                )
            )
    for stripe_id, row in sorted(by_stripe_id.items(), key=lambda item: item[1].id):
        if stripe_id not in seen:
            found.append(
                Difference(
                    "missing_at_stripe",
                    f"transfer row {row.id} names {stripe_id}, which Stripe does not list",
                )
            )
    return found
