"""The buyers' API: bundles in one call, their quotes, checkout, and orders."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from flask_openapi3 import Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from marketplace.accounts.models import User
from marketplace.api.auth import BEARER_SECURITY, current_token, token_required
from marketplace.api.blueprint import bp
from marketplace.api.catalog import SearchFilters
from marketplace.api.schemas import ApiIn, ErrorResponse, JsonBody
from marketplace.buyers import eligibility
from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, Quote
from marketplace.db import MAX_ROW_ID, get_session, transaction
from marketplace.errors import APIError
from marketplace.ledger.canonical import format_timestamp
from marketplace.payments import gateway as payments

tag = Tag(name="bundles", description="Datasets to buy: bundles, quotes, checkout and orders.")
_AUTH: dict[str, Any] = {"security": BEARER_SECURITY, "tags": [tag]}
_ID = Field(ge=1, le=MAX_ROW_ID)
_STATUS = {
    "not_found": 404,
    "invalid_bundle": 422,
    "nothing_to_buy": 422,
    "bundle_not_ready": 409,
    "quote_expired": 409,
    "quote_not_current": 409,
    "order_state": 409,
}

IntendedUse = Literal[
    "generative_training",
    "non_generative_training",
    "commercial_use",
    "fine_tuning",
    "style_imitation",
]


def _json_integer(value: Any) -> Any:
    """A JSON number with no fraction (1 or 1.0), never true/false or "1"."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer")
    return value


# A row id as JSON: an integer in the range our id columns hold (a bigger one is a 422, never
# a database error).
JsonRowId = Annotated[int, Ge(1), Le(MAX_ROW_ID), BeforeValidator(_json_integer)]


class BundleIn(JsonBody):
    """Exactly one of `work_ids`, `collection_id` or `query`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    intended_uses: list[IntendedUse] = Field(min_length=1, max_length=5)
    work_ids: list[JsonRowId] | None = Field(
        default=None, max_length=buyers.WORK_IDS_MAX, description="Ids from /api/v1/works"
    )
    collection_id: JsonRowId | None = None
    query: SearchFilters | None = Field(
        default=None, description="A search, with the filters /api/v1/works takes"
    )


class QuoteOut(BaseModel):
    id: str
    status: str
    expired: bool
    expires_at: str
    currency: str
    item_count: int
    counts: dict[str, int] = Field(description="Items per licence: licensed, cc0, public_domain")
    obligations: dict[str, int] = Field(description="e.g. attribution: items that require it")
    licensed_minor: int
    handling_minor: int
    minimum_adjustment_minor: int = Field(description="Raise to the card minimum")
    tax_minor: int = Field(description="Always 0: tax is not computed yet")
    total_minor: int
    artists_minor: int
    platform_minor: int


class BundleOut(BaseModel):
    id: int
    name: str
    status: str = Field(description="building, ready or failed")
    error: str
    intended_uses: list[str]
    source: dict[str, Any]
    currency: str
    included_count: int
    excluded_count: int
    excluded: dict[str, int] = Field(description="Items left out per reason code")
    checked_at: str | None
    quote: QuoteOut | None


class BundleList(BaseModel):
    items: list[BundleOut]


class BundlePath(ApiIn):
    bundle_id: int = _ID


class BundleItemsQuery(ApiIn):
    excluded: bool = False
    after: int = Field(default=0, ge=0, le=MAX_ROW_ID)
    limit: int = Field(default=100, ge=1, le=1000)


class BundleItemOut(BaseModel):
    id: int
    title: str
    license: str
    reason: str | None = Field(description="Why it is left out (a code), or null")
    reason_text: str | None
    detail: str


class BundleItemPage(BaseModel):
    items: list[BundleItemOut]
    next_after: int | None


class CheckoutIn(JsonBody):
    model_config = ConfigDict(extra="forbid")

    quote_id: str = Field(min_length=1, max_length=40)


class OrderOut(BaseModel):
    id: int
    bundle_id: int
    status: str
    currency: str
    item_count: int
    total_minor: int
    artists_minor: int
    platform_minor: int
    refunded_minor: int
    dropped: dict[str, int] = Field(description="Items left out at checkout, per reason code")
    fulfilled_count: int
    created_at: str
    paid_at: str | None
    ledger_seq: int | None = Field(description="The order.paid ledger entry")


class PaymentOut(BaseModel):
    """Confirm this PaymentIntent with Stripe.js (or the Stripe API) to pay the order."""

    payment_intent_id: str
    client_secret: str
    publishable_key: str
    stripe_js_url: str
    amount_minor: int
    currency: str


class CheckoutOut(OrderOut):
    payment: PaymentOut | None = Field(
        description="For a priced order: the PaymentIntent to confirm (null when free or paid)"
    )


class OrderList(BaseModel):
    items: list[OrderOut]


class OrderPath(ApiIn):
    order_id: int = _ID


class OrderItemsQuery(ApiIn):
    after: int = Field(default=-1, ge=-1, le=MAX_ROW_ID)
    limit: int = Field(default=100, ge=1, le=1000)


class OrderItemOut(BaseModel):
    position: int
    item_id: int
    title: str
    licence: str
    terms_id: int | None
    price_minor: int
    artist_share_minor: int
    attribution_required: bool
    sha256: str | None
    ledger_seq: int | None


class OrderItemPage(BaseModel):
    items: list[OrderItemOut]
    next_after: int | None


def _buyer() -> User:
    token = current_token()
    if token.organization_id is None:
        raise APIError(403, "buyer_token_required", "Use an API token of a buyer organization.")
    user: User = token.created_by
    return user


def _raise(exc: buyers.BuyersError) -> APIError:
    return APIError(_STATUS.get(exc.code, 422), exc.code, str(exc))


def quote_json(quote: Quote) -> dict[str, Any]:
    return {
        "id": quote.public_id,
        "status": quote.status.value,
        "expired": buyers.is_expired(quote),
        "expires_at": format_timestamp(quote.expires_at),
        "currency": quote.currency,
        "item_count": quote.item_count,
        "counts": quote.counts,
        "obligations": quote.obligations,
        "licensed_minor": quote.licensed_minor,
        "handling_minor": quote.handling_minor,
        "minimum_adjustment_minor": quote.minimum_adjustment_minor,
        "tax_minor": 0,
        "total_minor": quote.total_minor,
        "artists_minor": quote.artists_minor,
        "platform_minor": quote.platform_minor,
    }


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    session = get_session()
    quote = buyers.current_quote(session, bundle)
    return {
        "id": bundle.id,
        "name": bundle.name,
        "status": bundle.status.value,
        "error": bundle.error,
        "intended_uses": bundle.intended_uses,
        "source": bundle.source,
        "currency": bundle.currency,
        "included_count": bundle.included_count,
        "excluded_count": bundle.excluded_count,
        "excluded": buyers.excluded_counts(session, bundle),
        "checked_at": format_timestamp(bundle.checked_at) if bundle.checked_at else None,
        "quote": quote_json(quote) if quote is not None else None,
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "bundle_id": order.bundle_id,
        "status": order.status.value,
        "currency": order.currency,
        "item_count": order.item_count,
        "total_minor": order.total_minor,
        "artists_minor": order.artists_minor,
        "platform_minor": order.platform_minor,
        "refunded_minor": order.refunded_minor,
        "dropped": order.dropped,
        "fulfilled_count": order.fulfilled_count,
        "created_at": format_timestamp(order.created_at),
        "paid_at": format_timestamp(order.paid_at) if order.paid_at else None,
        "ledger_seq": order.paid_seq,
    }


def _bundle(bundle_id: int) -> Bundle:
    try:
        return buyers.get_bundle(get_session(), _buyer(), bundle_id)
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc


def _order(order_id: int) -> Order:
    try:
        return buyers.get_order(get_session(), _buyer(), order_id)
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc


_ERRORS: dict[str | int, Any] = {401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse}


@bp.get("/bundles", responses={200: BundleList, **_ERRORS}, **_AUTH)
@token_required
def list_bundles() -> dict[str, Any]:
    """Your organization's bundles, newest first."""
    return {"items": [bundle_json(b) for b in buyers.list_bundles(get_session(), _buyer())]}


@bp.post(
    "/bundles",
    responses={202: BundleOut, 422: ErrorResponse, **_ERRORS},
    **_AUTH,
)
@token_required
def create_bundle(body: BundleIn) -> tuple[dict[str, Any], int]:
    """Build a bundle from work ids, a collection or a search query, in one call.

    The items are gathered and checked by a job: poll the bundle until `status` is `ready`,
    then check out its `quote`."""
    request = buyers.BundleRequest(
        name=body.name,
        intended_uses=list(body.intended_uses),
        work_ids=body.work_ids,
        collection_id=body.collection_id,
        query=body.query.model_dump(exclude_none=True) if body.query is not None else None,
    )
    try:
        with transaction() as session:
            bundle = buyers.create_bundle(session, _buyer(), request)
            bundle_id = bundle.id
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc
    return bundle_json(_bundle(bundle_id)), 202


@bp.get("/bundles/<id:bundle_id>", responses={200: BundleOut, **_ERRORS}, **_AUTH)
@token_required
def get_bundle(path: BundlePath) -> dict[str, Any]:
    """One bundle with its current quote (another organization's is 404)."""
    return bundle_json(_bundle(path.bundle_id))


@bp.get("/bundles/<id:bundle_id>/items", responses={200: BundleItemPage, **_ERRORS}, **_AUTH)
@token_required
def bundle_items(path: BundlePath, query: BundleItemsQuery) -> dict[str, Any]:
    """The bundle's included items, or with `excluded=true` those left out and why."""
    bundle = _bundle(path.bundle_id)
    rows = buyers.bundle_items(
        get_session(), bundle, excluded=query.excluded, after=query.after, limit=query.limit + 1
    )
    page = rows[: query.limit]
    return {
        "items": [
            {
                "id": item.id,
                "title": item.title,
                "license": item.license.value,
                "reason": row.reason or None,
                "reason_text": eligibility.REASONS.get(row.reason) if row.reason else None,
                "detail": row.detail,
            }
            for row, item in page
        ],
        "next_after": page[-1][0].item_id if len(rows) > query.limit else None,
    }


@bp.post(
    "/bundles/<id:bundle_id>/quote",
    responses={202: BundleOut, 409: ErrorResponse, **_ERRORS},
    **_AUTH,
)
@token_required
def requote_bundle(path: BundlePath) -> tuple[dict[str, Any], int]:
    """Check every item again and make a new quote (the old one stops being current)."""
    bundle = _bundle(path.bundle_id)
    try:
        with transaction() as session:
            buyers.request_check(session, session.merge(bundle))
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc
    return bundle_json(_bundle(path.bundle_id)), 202


@bp.post(
    "/bundles/<id:bundle_id>/checkout",
    responses={
        200: CheckoutOut,
        201: CheckoutOut,
        409: ErrorResponse,
        422: ErrorResponse,
        **_ERRORS,
    },
    **_AUTH,
)
@token_required
def checkout(path: BundlePath, body: CheckoutIn) -> tuple[dict[str, Any], int]:
    """Turn the bundle's current quote into an order (the same order if asked again).

    A free order is paid at once; a priced one awaits payment. Items whose consent ended
    since the quote are left out (`dropped`)."""
    bundle = _bundle(path.bundle_id)
    try:
        with transaction() as session:
            result = buyers.checkout(session, _buyer(), session.merge(bundle), body.quote_id)
            order_id, created = result.order.id, result.created
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc
    answer = order_json(_order(order_id))
    answer["payment"] = _payment_or_none(order_id)
    return answer, 201 if created else 200


def _payment_json(payment: buyers.PaymentSession) -> dict[str, Any]:
    return {
        "payment_intent_id": payment.payment_intent_id,
        "client_secret": payment.client_secret,
        "publishable_key": payment.publishable_key,
        "stripe_js_url": payment.stripe_js_url,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
    }


def _payment_or_none(order_id: int) -> dict[str, Any] | None:
    try:
        with transaction() as session:
            order = buyers.get_order(session, _buyer(), order_id)
            return _payment_json(buyers.payment_session(session, order))
    except buyers.ConsentLost:
        buyers.cancel_unpayable(order_id)
        return None
    except buyers.OrderStateError:
        return None
    except payments.PaymentsError:
        return None  # GET /orders/<id>/payment asks again


@bp.post(
    "/orders/<id:order_id>/payment",
    responses={200: PaymentOut, 409: ErrorResponse, 503: ErrorResponse, **_ERRORS},
    **_AUTH,
)
@token_required
def order_payment(path: OrderPath) -> dict[str, Any]:
    """The order's PaymentIntent (opened on first call, the same one afterwards)."""
    order = _order(path.order_id)
    try:
        with transaction() as session:
            return _payment_json(buyers.payment_session(session, session.merge(order)))
    except buyers.ConsentLost as exc:
        buyers.cancel_unpayable(order.id)
        raise APIError(409, "consent_lost", str(exc)) from exc
    except buyers.BuyersError as exc:
        raise _raise(exc) from exc
    except payments.PaymentsError as exc:
        raise APIError(
            503, "payments_unavailable", "The payment service cannot be reached."
        ) from exc


@bp.get("/orders", responses={200: OrderList, **_ERRORS}, **_AUTH)
@token_required
def list_orders() -> dict[str, Any]:
    """Your organization's orders, newest first."""
    return {"items": [order_json(o) for o in buyers.list_orders(get_session(), _buyer())]}


@bp.get("/orders/<id:order_id>", responses={200: OrderOut, **_ERRORS}, **_AUTH)
@token_required
def get_order(path: OrderPath) -> dict[str, Any]:
    """One order (another organization's is 404)."""
    return order_json(_order(path.order_id))


@bp.get("/orders/<id:order_id>/items", responses={200: OrderItemPage, **_ERRORS}, **_AUTH)
@token_required
def order_items(path: OrderPath, query: OrderItemsQuery) -> dict[str, Any]:
    """The order's items with the terms version, price and ledger entry of each."""
    order = _order(path.order_id)
    rows = buyers.order_items(get_session(), order, after=query.after, limit=query.limit + 1)
    page = rows[: query.limit]
    return {
        "items": [
            {
                "position": row.position,
                "item_id": row.item_id,
                "title": item.title,
                "licence": row.licence.value,
                "terms_id": row.terms_id,
                "price_minor": row.price_minor,
                "artist_share_minor": row.artist_share_minor,
                "attribution_required": row.attribution_required,
                "sha256": row.sha256,
                "ledger_seq": row.ledger_seq,
            }
            for row, item in page
        ],
        "next_after": page[-1][0].position if len(rows) > query.limit else None,
    }
