"""An artist's payouts through the API: balances, payout history, monthly statements.

The same read functions as the pages (payouts.earnings, payouts.statements); an artist's token
sees only that artist's money, and nothing here takes an artist id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace import cursors
from marketplace.api.auth import BEARER_SECURITY, current_artist, token_required
from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse
from marketplace.db import get_session
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp
from marketplace.payouts import earnings, services, statements

tag = Tag(
    name="artist payouts",
    description="An artist's earnings, payouts through Stripe Connect and monthly statements.",
)

PAYOUTS_CURSOR = "api-artist-payouts"


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


class AccountOut(BaseModel):
    connected: bool = Field(description="A Stripe Express account is open for the artist.")
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: list[str] = Field(description="What Stripe still needs, in its codes.")
    disabled_reason: str | None


class BalanceOut(BaseModel):
    currency: str
    pending_minor: int = Field(description="Earnings still in the holding period.")
    available_minor: int = Field(
        description="Paid in the next run; negative when a refund came after a payout whose "
        "transfer could not be reversed (owed back, deducted from the next payouts)."
    )
    owed_back_minor: int
    in_transit_minor: int
    paid_minor: int = Field(description="Transferred to the artist's account, less reversals.")
    reversed_minor: int
    next_available_at: str | None


class TransferOut(BaseModel):
    order_id: int
    amount_minor: int
    status: str = Field(description="pending, sent or failed")
    stripe_transfer_id: str | None
    failure_message: str


class ReversalOut(BaseModel):
    order_id: int
    stripe_transfer_id: str | None
    stripe_reversal_id: str | None
    amount_minor: int
    status: str = Field(description="pending, reversed or failed (then owed back)")
    failure_message: str
    at: str


class PayoutOut(BaseModel):
    id: int
    created_at: str
    currency: str
    amount_minor: int
    status: str = Field(description="in_transit, paid, partial or failed")
    failure_code: str
    failure_message: str
    transfer_count: int
    transfers: list[TransferOut] = Field(description="The first 20 transfers (one per order).")
    reversals: list[ReversalOut]


class PayoutsResponse(BaseModel):
    account: AccountOut
    balances: list[BalanceOut]
    payouts: list[PayoutOut] = Field(description="Newest first.")
    next_cursor: str | None


class PayoutsQuery(ApiIn):
    limit: int = Field(default=10, ge=1, le=50)
    cursor: str | None = Field(default=None, max_length=200)


class StatementPath(ApiIn):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM (UTC)")


class StatementQuery(ApiIn):
    currency: str | None = Field(default=None, pattern=r"^[a-z]{3}$")


class StatementLineOut(BaseModel):
    seq: int = Field(description="The ledger entry.")
    created_at: str
    kind: str
    kind_label: str
    order_id: int | None
    payout_id: int | None
    memo: str
    amount_minor: int = Field(description="Signed: + raises what is owed to the artist.")
    balance_minor: int


class StatementTransferOut(BaseModel):
    sent_at: str
    payout_id: int
    order_id: int
    amount_minor: int
    stripe_transfer_id: str


class StatementReversalOut(BaseModel):
    at: str
    payout_id: int
    order_id: int
    stripe_transfer_id: str | None
    stripe_reversal_id: str | None
    amount_minor: int
    status: str
    failure_message: str


class StatementResponse(BaseModel):
    month: str
    currency: str
    account: str = Field(description="The ledger account the lines are postings of.")
    opening_minor: int
    closing_minor: int = Field(description="opening_minor + the lines' amounts, exactly.")
    credits_minor: int
    debits_minor: int
    lines: list[StatementLineOut]
    transfers: list[StatementTransferOut]
    reversals: list[StatementReversalOut]


def _reversal(r: earnings.ReversalLine) -> ReversalOut:
    return ReversalOut(
        order_id=r.order_id,
        stripe_transfer_id=r.stripe_transfer_id,
        stripe_reversal_id=r.stripe_reversal_id,
        amount_minor=r.amount_minor,
        status=r.status,
        failure_message=r.failure_message,
        at=format_timestamp(r.at),
    )


@bp.get(
    "/artist/payouts",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: PayoutsResponse, 401: ErrorResponse, 403: ErrorResponse, 422: ErrorResponse},
)
@token_required
def my_payouts(query: PayoutsQuery) -> dict[str, Any]:
    """The calling artist's Stripe account state, balances and payouts (newest first)."""
    artist = current_artist()
    session = get_session()
    before = cursors.decode_after(PAYOUTS_CURSOR, query.cursor)
    account = services.payout_account(session, artist.id)
    page = earnings.payouts(session, artist.id, before=before, limit=query.limit)
    return PayoutsResponse(
        account=AccountOut(
            connected=account is not None,
            payouts_enabled=bool(account and account.payouts_enabled),
            details_submitted=bool(account and account.details_submitted),
            requirements_due=list(account.requirements_due) if account else [],
            disabled_reason=account.disabled_reason if account else None,
        ),
        balances=[
            BalanceOut(
                currency=b.currency,
                pending_minor=b.pending_minor,
                available_minor=b.available_minor,
                owed_back_minor=max(0, -b.available_minor),
                in_transit_minor=b.in_transit_minor,
                paid_minor=b.paid_minor,
                reversed_minor=b.reversed_minor,
                next_available_at=_ts(b.next_available_at),
            )
            for b in services.balances(session, artist.id)
        ],
        payouts=[
            PayoutOut(
                id=p.id,
                created_at=format_timestamp(p.created_at),
                currency=p.currency,
                amount_minor=p.amount_minor,
                status=p.status,
                failure_code=p.failure_code,
                failure_message=p.failure_message,
                transfer_count=p.transfer_count,
                transfers=[
                    TransferOut(
                        order_id=t.order_id,
                        amount_minor=t.amount_minor,
                        status=t.status,
                        stripe_transfer_id=t.stripe_transfer_id,
                        failure_message=t.failure_message,
                    )
                    for t in p.transfers
                ],
                reversals=[_reversal(r) for r in p.reversals],
            )
            for p in page.items
        ],
        next_cursor=cursors.encode_after(PAYOUTS_CURSOR, page.next_after)
        if page.next_after
        else None,
    ).model_dump()


@bp.get(
    "/artist/statements/<month>",
    tags=[tag],
    security=BEARER_SECURITY,
    responses={200: StatementResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse},
)
@token_required
def my_statement(
    path: StatementPath, query: StatementQuery
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The calling artist's statement of a month: their payable account's ledger lines, with
    opening and closing balances that reconcile exactly with the ledger."""
    artist = current_artist()
    session = get_session()
    try:
        month = statements.parse_month(path.month)
    except statements.InvalidMonth as exc:
        raise APIError(404, "statement_not_found", str(exc)) from exc
    available = statements.currencies(session, artist.id)
    currency = query.currency or available[0]
    if currency not in available:
        raise APIError(404, "statement_not_found", f"You have no earnings in {currency.upper()}.")
    st = statements.statement(session, artist.id, artist.display_name, month, currency)
    return (
        StatementResponse(
            month=st.label,
            currency=st.currency,
            account=st.account_code,
            opening_minor=st.opening_minor,
            closing_minor=st.closing_minor,
            credits_minor=st.credits_minor,
            debits_minor=st.debits_minor,
            lines=[
                StatementLineOut(
                    seq=line.seq,
                    created_at=format_timestamp(line.created_at),
                    kind=line.kind,
                    kind_label=line.kind_label,
                    order_id=line.order_id,
                    payout_id=line.payout_id,
                    memo=line.memo,
                    amount_minor=line.amount_minor,
                    balance_minor=line.balance_minor,
                )
                for line in st.lines
            ],
            transfers=[
                StatementTransferOut(
                    sent_at=format_timestamp(t.sent_at),
                    payout_id=t.payout_id,
                    order_id=t.order_id,
                    amount_minor=t.amount_minor,
                    stripe_transfer_id=t.stripe_transfer_id,
                )
                for t in st.transfers
            ],
            reversals=[
                StatementReversalOut(
                    at=format_timestamp(r.at),
                    payout_id=r.payout_id,
                    order_id=r.order_id,
                    stripe_transfer_id=r.stripe_transfer_id,
                    stripe_reversal_id=r.stripe_reversal_id,
                    amount_minor=r.amount_minor,
                    status=r.status,
                    failure_message=r.failure_message,
                )
                for r in st.reversals
            ],
        ).model_dump(),
        200,
        {"Cache-Control": "private, no-store"},
    )  # a personal financial record
