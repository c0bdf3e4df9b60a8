"""Double-entry money: balanced transactions in integer minor units, keyed for idempotency.

Each money transaction is also a provenance entry whose payload lists its postings, so a
payout can be checked against the signed log, not only against our tables.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from marketplace.db import utcnow
from marketplace.ledger import services
from marketplace.ledger.kinds import MONEY_KINDS, EntryKind
from marketplace.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
)

log = logging.getLogger(__name__)

Direction = Literal["debit", "credit"]
_CURRENCY = re.compile(r"^[a-z]{3}$")
_ARTIST_ID = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits: str.isdigit also takes "²"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class MoneyError(services.LedgerError):
    pass


class Unbalanced(MoneyError):
    pass


class IdempotencyConflict(MoneyError):
    """The key was used before for a different transaction."""


class UnknownAccount(MoneyError):
    pass


@dataclass(frozen=True)
class Posting:
    account: str  # account code, e.g. "artist_payable:12:usd"
    direction: Direction
    amount_minor: int


def debit(account: str, amount_minor: int) -> Posting:
    return Posting(account, "debit", amount_minor)


def credit(account: str, amount_minor: int) -> Posting:
    return Posting(account, "credit", amount_minor)


# --- The chart of accounts -----------------------------------------------------------------


def processor_clearing(currency: str) -> str:
    """Cash held for us at the payment processor (asset)."""
    return f"processor_clearing:{currency}"


def platform_revenue(currency: str) -> str:
    return f"platform_revenue:{currency}"


def processor_fees(currency: str) -> str:
    return f"processor_fees:{currency}"


def artist_payable(artist_id: int, currency: str) -> str:
    """What we owe one artist (liability)."""
    return f"artist_payable:{artist_id}:{currency}"


def payouts_in_transit(currency: str) -> str:
    """Transfers sent to artists' accounts that the processor has not settled yet (liability)."""
    return f"payouts_in_transit:{currency}"


def payout_netting(currency: str) -> str:
    """Where a payout moves what an artist owes back on one order (a refund whose transfer
    could not be reversed) onto another order it pays for; it nets to zero in each payout."""
    return f"payout_netting:{currency}"


def refunds(currency: str) -> str:
    """Money returned to buyers (contra-revenue, kept as an expense account)."""
    return f"refunds:{currency}"


_FIXED_KINDS = {
    "processor_clearing": AccountKind.ASSET,
    "platform_revenue": AccountKind.REVENUE,
    "processor_fees": AccountKind.EXPENSE,
    "payouts_in_transit": AccountKind.LIABILITY,
    "payout_netting": AccountKind.LIABILITY,
    "refunds": AccountKind.EXPENSE,
}


def parse_account_code(code: str) -> tuple[AccountKind, str, int | None]:
    """(kind, currency, artist id) that `code` names; UnknownAccount outside our chart."""
    parts = code.split(":")
    if len(parts) == 2 and parts[0] in _FIXED_KINDS and _CURRENCY.match(parts[1]):
        return _FIXED_KINDS[parts[0]], parts[1], None
    if (
        len(parts) == 3
        and parts[0] == "artist_payable"
        and _ARTIST_ID.fullmatch(parts[1])
        and _CURRENCY.match(parts[2])
    ):
        return AccountKind.LIABILITY, parts[2], int(parts[1])
    raise UnknownAccount(f"{code!r} is not an account of our chart")


def ensure_account(session: Session, code: str, now: datetime | None = None) -> LedgerAccount:
    """The account for `code`, opened on first use (accounts are never changed).

    `now` is the time of the money entry that first names it; `ledger verify` checks the
    account's kind, currency, artist and opening time against the signed entries.
    """
    account = session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is not None:
        return account
    kind, currency, artist_id = parse_account_code(code)
    account = LedgerAccount(
        code=code, kind=kind, currency=currency, artist_id=artist_id, created_at=now or utcnow()
    )
    session.add(account)
    session.flush()
    return account


# --- Transactions --------------------------------------------------------------------------


def _signature(postings: Sequence[Posting]) -> Counter[tuple[str, str, int]]:
    return Counter((p.account, p.direction, p.amount_minor) for p in postings)


def _validate(kind: EntryKind, currency: str, postings: Sequence[Posting]) -> None:
    if kind not in MONEY_KINDS:
        raise MoneyError(f"{kind!r} is not a money transaction kind")
    if not _CURRENCY.match(currency):
        raise MoneyError("currency must be a lower-case ISO 4217 code such as 'usd'")
    if len(postings) < 2:
        raise Unbalanced("a transaction needs at least two postings")
    for posting in postings:
        if posting.direction not in ("debit", "credit"):
            raise MoneyError(
                f"posting direction must be debit or credit, not {posting.direction!r}"
            )
        amount = posting.amount_minor
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise MoneyError("posting amounts are positive integers in minor units")
    for posting in postings:
        _kind, account_currency, _artist = parse_account_code(posting.account)
        if account_currency != currency:
            raise MoneyError(f"account {posting.account} holds {account_currency}, not {currency}")
    debits = sum(p.amount_minor for p in postings if p.direction == "debit")
    credits = sum(p.amount_minor for p in postings if p.direction == "credit")
    if debits != credits:
        raise Unbalanced(f"debits {debits} and credits {credits} differ")


def find_transaction(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))


def postings_of(session: Session, key: str) -> list[Posting]:
    rows = session.execute(
        select(LedgerAccount.code, LedgerPosting.direction, LedgerPosting.amount_minor)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerPosting.transaction_key == key)
        .order_by(LedgerPosting.id)
    )
    return [
        Posting(code, "debit" if direction == "debit" else "credit", int(amount))
        for code, direction, amount in rows
    ]


def record_transaction(
    session: Session,
    *,
    key: str,
    kind: EntryKind,
    currency: str,
    postings: Sequence[Posting],
    subject: Mapping[str, int] | None = None,
    memo: str = "",
) -> LedgerTransaction:
    """Record a balanced transaction once per idempotency key.

    The same key with the same postings returns the first transaction and writes nothing; with
    different postings it raises IdempotencyConflict. Unbalanced or malformed postings raise
    before anything is written. The caller owns the transaction.
    """
    if not _KEY.match(key):
        raise MoneyError("an idempotency key is 1-200 printable ASCII characters")
    _validate(kind, currency, postings)
    services.lock(session)
    existing = find_transaction(session, key)
    if existing is not None:
        same = (
            existing.kind == kind.value
            and existing.currency == currency
            and _signature(postings_of(session, key)) == _signature(postings)
        )
        if not same:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for other postings")
        return existing
    now = utcnow()  # under the lock: the entry, the header and new accounts share this moment
    accounts = {p.account: ensure_account(session, p.account, now) for p in postings}
    payload: dict[str, Any] = {
        "key": key,
        "currency": currency,
        "memo": memo,
        "postings": [
            {"account": p.account, "direction": p.direction, "amount_minor": p.amount_minor}
            for p in postings
        ],
    }
    seq = services.append(session, kind, subject=subject, payload=payload, now=now)
    session.execute(
        insert(LedgerPosting),
        [
            {
                "transaction_key": key,
                "account_id": accounts[p.account].id,
                "direction": p.direction,
                "amount_minor": p.amount_minor,
                "currency": currency,
            }
            for p in postings
        ],
    )
    transaction = LedgerTransaction(
        idempotency_key=key,
        kind=kind.value,
        currency=currency,
        memo=memo,
        entry_seq=seq,
        created_at=now,
    )
    session.add(transaction)
    session.flush()  # the header last: the database checks the postings balance here
    log.info("money transaction %s (%s) recorded as ledger entry %s", key, kind.value, seq)
    return transaction


def balance(session: Session, code: str) -> int:
    """The account's balance from its postings, positive on its normal side."""
    account = session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is None:
        return 0
    signed = case(
        (LedgerPosting.direction == "debit", LedgerPosting.amount_minor),
        else_=-LedgerPosting.amount_minor,
    )
    total = int(
        session.scalar(
            select(func.coalesce(func.sum(signed), 0)).where(LedgerPosting.account_id == account.id)
        )
        or 0
    )
    debit_normal = account.kind in (AccountKind.ASSET, AccountKind.EXPENSE)
    return total if debit_normal else -total
