"""The buyer's side of a sale: bundles, quotes, checkout, payment, fulfilment and refunds.

Rules chosen where the issue left a choice (the README repeats them):

- Consent wins over a quote. At checkout, items whose work was withdrawn or sent to review,
  whose artist now keeps it out of training, whose museum withdrew it, or that a newer opt-out
  rule matches are dropped from the order (listed, and the total recomputed). Everything else
  keeps the quoted terms version and price while the quote is valid: the artist consented to
  those terms when the buyer was quoted. An expired quote cannot be checked out; a new quote
  shows what changed.
- A non-zero total below the card minimum (MINIMUM_CHARGE_MINOR) is raised to it, shown as its
  own line; the platform keeps the difference. A zero total skips the card and is paid at once.
- Sales tax / VAT is not computed yet: `_tax_minor()` is where Stripe Tax would add it.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import jobs
from marketplace.accounts.models import User, UserRole
from marketplace.artists.models import TermsKind, WorkStatus
from marketplace.artists.terms import format_money
from marketplace.buyers import eligibility, pricing
from marketplace.buyers.models import (
    Bundle,
    BundleItem,
    BundleStatus,
    ItemLicence,
    Order,
    OrderItem,
    OrderRefund,
    OrderStatus,
    Quote,
    QuoteItem,
    QuoteStatus,
)
from marketplace.catalog import search
from marketplace.catalog.models import CatalogItem, Collection, CollectionItem
from marketplace.db import MAX_ROW_ID, transaction, utcnow
from marketplace.delivery import packages as delivery
from marketplace.ledger import money
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.payments import gateway as payments
from marketplace.payouts import services as payouts

log = logging.getLogger(__name__)

BUILD_JOB = "marketplace.buyers.tasks.build_bundle"
FULFIL_JOB = "marketplace.buyers.tasks.fulfil_order"
NAME_MAX = 120
WORK_IDS_MAX = 10_000  # one API call; larger bundles come from collections or queries


class BuyersError(Exception):
    """A buyer-side rule was broken; the message is safe to show."""

    code = "invalid"


class NotFound(BuyersError):
    code = "not_found"


class InvalidBundle(BuyersError):
    code = "invalid_bundle"


class BundleNotReady(BuyersError):
    code = "bundle_not_ready"


class NothingToBuy(BuyersError):
    code = "nothing_to_buy"


class QuoteExpired(BuyersError):
    code = "quote_expired"


class QuoteNotCurrent(BuyersError):
    code = "quote_not_current"


class ConsentLost(BuyersError):
    """Some of an unpaid order's items lost consent since checkout: it must not be paid as it
    stands. Nothing was written; the caller cancels the order (`cancel_order`) in its own
    transaction and tells the buyer to ask for a new quote."""


class OrderStateError(BuyersError):
    code = "order_state"


def _config(name: str) -> int:
    return int(current_app.config[name])


def _currency() -> str:
    return str(current_app.config["DEFAULT_CURRENCY"]).lower()


# --- Bundles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleRequest:
    """What a buyer asks for: a name, intended uses and exactly one source of items."""

    name: str
    intended_uses: Sequence[str]
    work_ids: Sequence[int] | None = None
    collection_id: int | None = None
    query: Mapping[str, Any] | None = None


def _is_admin(user: User) -> bool:
    return user.has_role(UserRole.ADMIN)


def _organization_id(user: User) -> int:
    if user.organization_id is None:
        raise NotFound("No organization.")
    return int(user.organization_id)


def _validated_source(session: Session, user: User, request: BundleRequest) -> dict[str, Any]:
    given = [
        name
        for name, value in (
            ("work_ids", request.work_ids),
            ("collection_id", request.collection_id),
            ("query", request.query),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidBundle("Build a bundle from exactly one of: work ids, a collection, a query.")
    if request.work_ids is not None:
        ids = list(dict.fromkeys(int(i) for i in request.work_ids))
        if not ids:
            raise InvalidBundle("The list of work ids is empty.")
        if len(ids) > WORK_IDS_MAX:
            raise InvalidBundle(
                f"At most {WORK_IDS_MAX:,} work ids per bundle; use a collection for more."
            )
        known: set[int] = set()
        in_range = [i for i in ids if 1 <= i <= MAX_ROW_ID]  # others cannot exist (or bind)
        for start in range(0, len(in_range), 2000):
            part = in_range[start : start + 2000]
            known.update(session.scalars(select(CatalogItem.id).where(CatalogItem.id.in_(part))))
        unknown = [i for i in ids if i not in known]
        if unknown:
            shown = ", ".join(str(i) for i in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise InvalidBundle(f"No such works: {shown}{more}.")
        return {"work_ids": ids}
    if request.collection_id is not None:
        collection = session.get(Collection, request.collection_id)
        if collection is None or collection.organization_id != user.organization_id:
            raise NotFound("No such collection.")
        return {"collection_id": collection.id}
    assert request.query is not None
    params = {
        str(k): [_param(x) for x in v] if isinstance(v, list) else [_param(v)]
        for k, v in request.query.items()
    }
    params.pop("cursor", None)
    try:
        parsed = search.parse_query(params)
    except search.InvalidSearch as exc:
        raise InvalidBundle(f"The query is not valid: {exc}") from exc
    return {"query": parsed.to_params()}


def _param(value: Any) -> str:
    """A query value as the catalog's URL parameters spell it (true/false for booleans)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def create_bundle(session: Session, user: User, request: BundleRequest) -> Bundle:
    """Record the bundle and queue its build (gather, check, quote) as a job."""
    organization_id = _organization_id(user)
    name = request.name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidBundle(f"Give the bundle a name of 1 to {NAME_MAX} characters.")
    uses = list(dict.fromkeys(request.intended_uses))
    if not uses:
        raise InvalidBundle("Declare at least one intended use.")
    unknown = [u for u in uses if u not in eligibility.INTENDED_USES]
    if unknown:
        raise InvalidBundle(
            f"Unknown intended use {unknown[0]!r}; choose from "
            + ", ".join(eligibility.INTENDED_USES)
            + "."
        )
    if "generative_training" not in uses and "non_generative_training" not in uses:
        raise InvalidBundle("Declare generative or non-generative training (or both).")
    source = _validated_source(session, user, request)
    bundle = Bundle(
        organization_id=organization_id,
        created_by_id=user.id,
        name=name,
        intended_uses=[u for u in eligibility.INTENDED_USES if u in uses],
        source=source,
        currency=_currency(),
        status=BundleStatus.BUILDING,
    )
    session.add(bundle)
    session.flush()
    _queue_build(session, bundle.id, rebuild=True)
    return bundle


def _queue_build(session: Session, bundle_id: int, *, rebuild: bool) -> None:
    jobs.enqueue_after_commit(
        session, BUILD_JOB, bundle_id, rebuild, job_id=f"bundle-{bundle_id}-{secrets.token_hex(4)}"
    )


def list_bundles(session: Session, user: User) -> Sequence[Bundle]:
    return session.scalars(
        select(Bundle)
        .where(Bundle.organization_id == _organization_id(user))
        .order_by(Bundle.id.desc())
    ).all()


def get_bundle(session: Session, user: User, bundle_id: int) -> Bundle:
    """The bundle if it belongs to the user's organization; NotFound otherwise."""
    bundle = session.get(Bundle, bundle_id)
    if bundle is None or (not _is_admin(user) and bundle.organization_id != user.organization_id):
        raise NotFound("No such bundle.")
    return bundle


def request_check(session: Session, bundle: Bundle, *, rebuild: bool = False) -> None:
    """Check every item again and make a new quote (with `rebuild`, gather from the source
    again first), as a job."""
    session.refresh(bundle, with_for_update=True)
    if bundle.status is BundleStatus.BUILDING:
        raise BundleNotReady("The bundle is being checked; wait for it to finish.")
    bundle.status = BundleStatus.BUILDING
    bundle.error = ""
    _queue_build(session, bundle.id, rebuild=rebuild)


def _source_item_ids(session: Session, bundle: Bundle) -> Iterator[int]:
    cap = _config("BUNDLE_MAX_ITEMS")
    source = bundle.source
    if "work_ids" in source:
        yield from (int(i) for i in source["work_ids"][:cap])
    elif "collection_id" in source:
        yield from session.scalars(
            select(CollectionItem.item_id)
            .where(CollectionItem.collection_id == int(source["collection_id"]))
            .order_by(CollectionItem.added_at, CollectionItem.item_id)
            .limit(cap)
        )
    else:
        params = {k: v if isinstance(v, list) else [str(v)] for k, v in source["query"].items()}
        yield from search.iter_matching_ids(session, search.parse_query(params), cap)


def build_bundle(bundle_id: int, rebuild: bool) -> None:
    """The job: gather items (on `rebuild`), judge each, store the verdicts, quote the rest."""
    try:
        with transaction() as session:
            bundle = session.get(Bundle, bundle_id)
            if bundle is None:
                return
            if rebuild:
                ids = list(dict.fromkeys(_source_item_ids(session, bundle)))
            else:
                ids = list(
                    session.scalars(
                        select(BundleItem.item_id)
                        .where(BundleItem.bundle_id == bundle_id)
                        .order_by(BundleItem.item_id)
                    )
                )
            registry = eligibility.RegistryCheck.load(
                session, max_distance=_config("OPTOUT_PHASH_DISTANCE")
            )
            mark = eligibility.registry_mark(session)
            verdicts: list[eligibility.Verdict] = []
            for start in range(0, len(ids), 10_000):
                part = list(eligibility.candidates(session, ids[start : start + 10_000]))
                verdicts.extend(
                    eligibility.judge(
                        session,
                        part,
                        intended_uses=bundle.intended_uses,
                        currency=bundle.currency,
                        registry=registry,
                    )
                )
            session.execute(delete(BundleItem).where(BundleItem.bundle_id == bundle_id))
            for start in range(0, len(verdicts), 10_000):
                session.execute(
                    insert(BundleItem),
                    [
                        {
                            "bundle_id": bundle_id,
                            "item_id": v.candidate.item_id,
                            "reason": v.reason,
                            "detail": v.detail,
                        }
                        for v in verdicts[start : start + 10_000]
                    ],
                )
            included = [v for v in verdicts if v.included]
            bundle.included_count = len(included)
            bundle.excluded_count = len(verdicts) - len(included)
            bundle.registry_mark = mark
            bundle.checked_at = utcnow()
            _supersede_open_quotes(session, bundle)
            if included:
                _write_quote(session, bundle, included, mark)
            bundle.status = BundleStatus.READY
        log.info("bundle %s checked: %s included", bundle_id, len(included))
    except Exception:
        log.exception("bundle %s build failed", bundle_id)
        with transaction() as session:
            bundle = session.get(Bundle, bundle_id)
            if bundle is not None:
                bundle.status = BundleStatus.FAILED
                bundle.error = (
                    "Checking the bundle failed. Try again; if it fails again, contact us."
                )
        raise


def drop_item(session: Session, bundle: Bundle, item_id: int) -> None:
    """Remove one item from the bundle; the current quote no longer matches, so re-quote."""
    session.refresh(bundle, with_for_update=True)
    if bundle.status is BundleStatus.BUILDING:
        raise BundleNotReady("The bundle is being checked; wait for it to finish.")
    row = session.get(BundleItem, (bundle.id, item_id))
    if row is None:
        raise NotFound("That item is not in this bundle.")
    session.delete(row)
    session.flush()
    request_check(session, bundle)


def bundle_items(
    session: Session, bundle: Bundle, *, excluded: bool, after: int = 0, limit: int = 50
) -> Sequence[tuple[BundleItem, CatalogItem]]:
    """A page of the bundle's included (or excluded) items, by catalog id after `after`."""
    condition = BundleItem.reason != "" if excluded else BundleItem.reason == ""
    return [
        (row, item)
        for row, item in session.execute(
            select(BundleItem, CatalogItem)
            .join(CatalogItem, CatalogItem.id == BundleItem.item_id)
            .where(BundleItem.bundle_id == bundle.id, condition, BundleItem.item_id > after)
            .order_by(BundleItem.item_id)
            .limit(limit)
        ).all()
    ]


def excluded_counts(session: Session, bundle: Bundle) -> dict[str, int]:
    rows = session.execute(
        select(BundleItem.reason, func.count())
        .where(BundleItem.bundle_id == bundle.id, BundleItem.reason != "")
        .group_by(BundleItem.reason)
    ).all()
    return {str(reason): int(count) for reason, count in rows}


# --- Quotes --------------------------------------------------------------------------------


def _supersede_open_quotes(session: Session, bundle: Bundle) -> None:
    session.execute(
        update(Quote)
        .where(Quote.bundle_id == bundle.id, Quote.status == QuoteStatus.OPEN)
        .values(status=QuoteStatus.SUPERSEDED)
    )


def _quote_rows(
    verdicts: Iterable[eligibility.Verdict], commission_bps: int, handling_fee: int
) -> Iterator[dict[str, Any]]:
    for position, verdict in enumerate(verdicts):
        candidate = verdict.candidate
        terms = candidate.terms
        licensed = terms is not None and terms.kind is TermsKind.LICENSE
        price = int(terms.price_minor or 0) if licensed and terms is not None else 0
        charge = pricing.item_charge(pricing.PricedItem(price, licensed), handling_fee)
        yield {
            "position": position,
            "item_id": candidate.item_id,
            "licence": verdict.licence,
            "work_id": candidate.work_id,
            "stock_id": candidate.stock_id,
            "terms_id": terms.id if terms is not None else None,
            "artist_id": candidate.artist_id,
            "price_minor": charge,
            "artist_share_minor": pricing.artist_share(price, commission_bps) if licensed else 0,
            "attribution_required": bool(terms is not None and terms.attribution_required),
        }


def _write_quote(
    session: Session, bundle: Bundle, included: Sequence[eligibility.Verdict], mark: int
) -> Quote:
    commission = _config("PLATFORM_COMMISSION_BPS")
    handling_fee = _config("HANDLING_FEE_MINOR")
    rows = list(_quote_rows(included, commission, handling_fee))
    totals = pricing.totals(
        (pricing.PricedItem(r["price_minor"], r["licence"] is ItemLicence.LICENSED) for r in rows),
        commission_bps=commission,
        handling_fee_minor=handling_fee,
        minimum_charge_minor=_config("MINIMUM_CHARGE_MINOR"),
    )
    now = utcnow()
    quote = Quote(
        public_id=f"q_{secrets.token_urlsafe(18)}",
        bundle_id=bundle.id,
        organization_id=bundle.organization_id,
        currency=bundle.currency,
        item_count=len(rows),
        licensed_minor=totals.licensed_minor,
        handling_minor=totals.handling_minor,
        minimum_adjustment_minor=totals.minimum_adjustment_minor,
        total_minor=totals.total_minor,
        artists_minor=totals.artists_minor,
        platform_minor=totals.platform_minor,
        commission_bps=commission,
        counts=dict(Counter(r["licence"].value for r in rows)),
        obligations={"attribution": sum(1 for r in rows if r["attribution_required"])},
        registry_mark=mark,
        created_at=now,
        expires_at=now + timedelta(seconds=_config("QUOTE_TTL_SECONDS")),
    )
    session.add(quote)
    session.flush()
    for start in range(0, len(rows), 10_000):
        session.execute(
            insert(QuoteItem), [{"quote_id": quote.id, **r} for r in rows[start : start + 10_000]]
        )
    return quote


def current_quote(session: Session, bundle: Bundle) -> Quote | None:
    """The bundle's open quote (expired or not), if any."""
    return session.scalar(
        select(Quote)
        .where(Quote.bundle_id == bundle.id, Quote.status == QuoteStatus.OPEN)
        .order_by(Quote.id.desc())
        .limit(1)
    )


def is_expired(quote: Quote, now: datetime | None = None) -> bool:
    return (now or utcnow()) >= quote.expires_at


def get_quote(session: Session, bundle: Bundle, public_id: str) -> Quote:
    quote = session.scalar(select(Quote).where(Quote.public_id == public_id))
    if quote is None or quote.bundle_id != bundle.id:
        raise NotFound("No such quote for this bundle.")
    return quote


@dataclass(frozen=True)
class QuoteChanges:
    """How a new quote differs from an older one (shown when an expired quote is renewed)."""

    repriced: int
    no_longer_included: int
    newly_included: int
    total_before: int
    total_after: int


def quote_changes(session: Session, old: Quote, new: Quote) -> QuoteChanges:
    def prices(quote: Quote) -> dict[int, tuple[int | None, int]]:
        return {
            item_id: (terms_id, price)
            for item_id, terms_id, price in session.execute(
                select(QuoteItem.item_id, QuoteItem.terms_id, QuoteItem.price_minor).where(
                    QuoteItem.quote_id == quote.id
                )
            ).all()
        }

    before, after = prices(old), prices(new)
    return QuoteChanges(
        repriced=sum(1 for k, v in after.items() if k in before and before[k][1] != v[1]),
        no_longer_included=sum(1 for k in before if k not in after),
        newly_included=sum(1 for k in after if k not in before),
        total_before=old.total_minor,
        total_after=new.total_minor,
    )


def previous_quote(session: Session, quote: Quote) -> Quote | None:
    return session.scalar(
        select(Quote)
        .where(Quote.bundle_id == quote.bundle_id, Quote.id < quote.id)
        .order_by(Quote.id.desc())
        .limit(1)
    )


# --- Checkout ------------------------------------------------------------------------------


def _consent_lost(session: Session, quote: Quote) -> dict[int, str]:
    """position -> reason for quote items whose consent or open access ended since the quote."""
    rows = session.execute(
        select(QuoteItem.position, QuoteItem.item_id).where(QuoteItem.quote_id == quote.id)
    ).all()
    positions = {int(item_id): int(position) for position, item_id in rows}
    lost = _items_lost(session, list(positions), registry_mark=quote.registry_mark)
    return {positions[item_id]: reason for item_id, reason in lost.items()}


def _items_lost(session: Session, ids: list[int], *, registry_mark: int) -> dict[int, str]:
    """item id -> reason for the items that left the catalog, lost their artist's consent or
    match an opt-out rule registered after `registry_mark`."""
    lost: dict[int, str] = {}
    registry = eligibility.RegistryCheck.load(
        session,
        max_distance=_config("OPTOUT_PHASH_DISTANCE"),
        above=registry_mark,
    )
    for start in range(0, len(ids), 10_000):
        part = list(eligibility.candidates(session, ids[start : start + 10_000]))
        found = {c.item_id for c in part}
        for item_id in ids[start : start + 10_000]:
            if item_id not in found:
                lost[item_id] = "unavailable"
        for candidate in part:
            reason = _consent_reason(candidate)
            if reason:
                lost[candidate.item_id] = reason
        for item_id in registry.matches(session, [c for c in part if c.item_id not in lost]):
            lost[item_id] = "opted_out"
    return lost


def order_consent_lost(session: Session, order: Order) -> dict[int, str]:
    """item id -> reason for the order's items whose consent or open access ended since its
    quote: such an order must not be paid for as it stands."""
    ids = [
        int(i)
        for i in session.scalars(select(OrderItem.item_id).where(OrderItem.order_id == order.id))
    ]
    return _items_lost(session, ids, registry_mark=order.quote.registry_mark)


def _consent_reason(candidate: eligibility.Candidate) -> str:
    if candidate.taken_down:
        return "taken_down"
    if candidate.work_id is None:
        if candidate.opted_out:
            return "opted_out"
        return "" if candidate.available else "stock_withdrawn"
    if candidate.work_status is WorkStatus.WITHDRAWN:
        return "withdrawn"
    if candidate.work_status is WorkStatus.REVIEW:
        return "in_review"
    if candidate.terms is None or candidate.terms.kind is TermsKind.NOT_AVAILABLE:
        return "not_available"
    return "opted_out" if candidate.opted_out else ""


@dataclass
class Checkout:
    order: Order
    created: bool  # False: the quote had been checked out already (same order returned)
    dropped: dict[str, int] = field(default_factory=dict)


def checkout(session: Session, user: User, bundle: Bundle, quote_id: str) -> Checkout:
    """Turn an open, unexpired quote into an order: once per quote, whoever asks twice.

    Items whose consent ended since the quote are dropped (see the module docstring). A free
    order is paid at once; a priced one awaits payment.
    """
    quote = get_quote(session, bundle, quote_id)
    existing = session.scalar(select(Order).where(Order.quote_id == quote.id))
    if existing is not None:
        return Checkout(existing, created=False, dropped=dict(existing.dropped))
    if quote.status is not QuoteStatus.OPEN:
        raise QuoteNotCurrent(
            "This quote was replaced by a newer one; check out the current quote."
        )
    if is_expired(quote):
        raise QuoteExpired("This quote has expired; ask for a new quote to see today's prices.")
    claimed = session.execute(
        update(Quote)
        .where(Quote.id == quote.id, Quote.status == QuoteStatus.OPEN)
        .values(status=QuoteStatus.ORDERED)
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult for UPDATE
    if claimed != 1:  # a parallel checkout claimed it first and has committed its order
        existing = session.scalar(select(Order).where(Order.quote_id == quote.id))
        if existing is None:
            raise QuoteNotCurrent("This quote is no longer open.")
        return Checkout(existing, created=False, dropped=dict(existing.dropped))
    lost = _consent_lost(session, quote)
    dropped = dict(Counter(lost.values()))
    items = session.execute(
        select(QuoteItem).where(QuoteItem.quote_id == quote.id).order_by(QuoteItem.position)
    ).scalars()
    kept = [i for i in items if i.position not in lost]
    if not kept:
        raise NothingToBuy(
            "Every item of this quote has left the catalog or lost its artist's consent."
        )
    # A free item's quoted charge is the handling fee frozen in the quote (the same for each).
    fee = next((i.price_minor for i in kept if i.licence is not ItemLicence.LICENSED), 0)
    totals = pricing.totals(
        (pricing.PricedItem(i.price_minor, i.licence is ItemLicence.LICENSED) for i in kept),
        commission_bps=quote.commission_bps,
        handling_fee_minor=fee,
        minimum_charge_minor=_config("MINIMUM_CHARGE_MINOR"),
    )
    total = totals.total_minor + _tax_minor()
    order = Order(
        organization_id=bundle.organization_id,
        bundle_id=bundle.id,
        quote_id=quote.id,
        created_by_id=user.id,
        status=OrderStatus.AWAITING_PAYMENT,
        currency=quote.currency,
        item_count=len(kept),
        total_minor=total,
        artists_minor=sum(i.artist_share_minor for i in kept),
        platform_minor=total - sum(i.artist_share_minor for i in kept),
        dropped=dropped,
    )
    session.add(order)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(Order).where(Order.quote_id == quote.id))
        if existing is None:
            raise
        return Checkout(existing, created=False, dropped=dict(existing.dropped))
    sha = _sha256s(session, [i.item_id for i in kept])
    for start in range(0, len(kept), 10_000):
        session.execute(
            insert(OrderItem),
            [
                {
                    "order_id": order.id,
                    "position": n,
                    "item_id": i.item_id,
                    "licence": i.licence,
                    "work_id": i.work_id,
                    "stock_id": i.stock_id,
                    "terms_id": i.terms_id,
                    "artist_id": i.artist_id,
                    "price_minor": i.price_minor,
                    "artist_share_minor": i.artist_share_minor,
                    "attribution_required": i.attribution_required,
                    "sha256": sha.get(i.item_id),
                }
                for n, i in enumerate(kept[start : start + 10_000], start=start)
            ],
        )
    for older in session.scalars(
        select(Order).where(
            Order.bundle_id == bundle.id, Order.id != order.id, Order.status.in_(_PAYABLE)
        )
    ):
        cancel_order(session, older)  # a newer quote replaces it: never two live charges
    if order.total_minor == 0:
        _mark_paid(session, order, payment_intent_id=None)
    return Checkout(order, created=True, dropped=dropped)


def _tax_minor() -> int:
    """Sales tax / VAT: out of scope for now. Stripe Tax (a tax calculation on the order's
    lines and the buyer's address) would be called here and its amount added to the charge."""
    return 0


def _sha256s(session: Session, item_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for candidate in eligibility.candidates(session, item_ids):
        if candidate.sha256:
            found[candidate.item_id] = candidate.sha256
    return found


# --- Orders --------------------------------------------------------------------------------


def list_orders(session: Session, user: User, *, limit: int = 500) -> Sequence[Order]:
    """The organization's orders, newest first; an administrator sees every organization's."""
    stmt = select(Order).order_by(Order.id.desc()).limit(limit)
    if not _is_admin(user):
        stmt = stmt.where(Order.organization_id == _organization_id(user))
    return session.scalars(stmt).all()


def get_order(session: Session, user: User, order_id: int) -> Order:
    """The order if the user's organization placed it (or the user is an admin)."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("No such order.")
    if not _is_admin(user) and order.organization_id != user.organization_id:
        raise NotFound("No such order.")
    return order


def order_items(
    session: Session, order: Order, *, after: int = -1, limit: int = 50
) -> Sequence[tuple[OrderItem, CatalogItem]]:
    return [
        (row, item)
        for row, item in session.execute(
            select(OrderItem, CatalogItem)
            .join(CatalogItem, CatalogItem.id == OrderItem.item_id)
            .where(OrderItem.order_id == order.id, OrderItem.position > after)
            .order_by(OrderItem.position)
            .limit(limit)
        ).all()
    ]


def order_counts(session: Session, order: Order) -> dict[str, int]:
    rows = session.execute(
        select(OrderItem.licence, func.count())
        .where(OrderItem.order_id == order.id)
        .group_by(OrderItem.licence)
    ).all()
    return {str(ItemLicence(licence).value): int(count) for licence, count in rows}


def attribution_count(session: Session, order: Order) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                OrderItem.order_id == order.id, OrderItem.attribution_required.is_(True)
            )
        )
        or 0
    )


def _artist_shares(session: Session, order: Order) -> dict[int, int]:
    rows = session.execute(
        select(OrderItem.artist_id, func.sum(OrderItem.artist_share_minor))
        .where(OrderItem.order_id == order.id, OrderItem.artist_id.is_not(None))
        .group_by(OrderItem.artist_id)
    ).all()
    return {int(artist): int(total) for artist, total in rows if artist is not None and total}


def _mark_paid(session: Session, order: Order, *, payment_intent_id: str | None) -> None:
    """Record the payment (once): the money transaction, the order.paid entry, fulfilment."""
    session.refresh(order, with_for_update=True)  # the row as it is now, locked until commit
    if order.status not in _PAYABLE:
        return
    currency = order.currency
    lost = order_consent_lost(session, order) if payment_intent_id else {}
    if order.total_minor > 0:
        postings = [money.debit(money.processor_clearing(currency), order.total_minor)]
        for artist_id, share in sorted(_artist_shares(session, order).items()):
            postings.append(money.credit(money.artist_payable(artist_id, currency), share))
        if order.platform_minor > 0:
            postings.append(money.credit(money.platform_revenue(currency), order.platform_minor))
        money.record_transaction(
            session,
            key=f"order:{order.id}:payment",
            kind=EntryKind.PAYMENT_CAPTURED,
            currency=currency,
            postings=postings,
            subject={"order": order.id, "organization": order.organization_id},
            memo=f"Order {order.id} paid"
            + (f" ({payment_intent_id})" if payment_intent_id else ""),
        )
    order.paid_seq = ledger.append(
        session,
        EntryKind.ORDER_PAID,
        subject={"order": order.id, "organization": order.organization_id},
        payload={
            "quote": order.quote.public_id,
            "items": order.item_count,
            "total_minor": order.total_minor,
            "artists_minor": order.artists_minor,
            "platform_minor": order.platform_minor,
            "currency": currency,
            "payment": payment_intent_id or "free",
        },
    )
    order.status = OrderStatus.PAID
    order.paid_at = utcnow()
    if payment_intent_id:
        order.payment_intent_id = payment_intent_id
    if lost:
        # Paid from a page opened before consent ended: nothing of it may be sold, so the
        # payment goes back in full and the order is never fulfilled (no dataset.item_sold).
        log.warning("order %s paid after %s items lost consent: refunded", order.id, len(lost))
        session.flush()
        refund_order(
            session,
            order,
            amount_minor=None,
            reason=f"{len(lost)} items lost consent before the payment arrived",
            purpose="consent-lost",
        )
        return
    jobs.enqueue_after_commit(session, FULFIL_JOB, order.id, job_id=f"fulfil-{order.id}")


_FULFILLABLE = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
_PAYABLE = (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_FAILED)


@dataclass(frozen=True)
class PaymentSession:
    """What the checkout page (or an API client) needs to confirm the payment with Stripe.js."""

    payment_intent_id: str
    client_secret: str
    publishable_key: str
    stripe_js_url: str
    amount_minor: int
    currency: str


def payment_session(session: Session, order: Order) -> PaymentSession:
    """The order's PaymentIntent, opened once (keyed on the order) and reused on every visit.

    `transfer_group` is the order, so that payouts can pay each artist with its own transfer.
    Raises OrderStateError if the order is not awaiting payment; payments errors propagate.
    """
    session.refresh(order, with_for_update=True)
    if order.status not in _PAYABLE:
        raise OrderStateError("This order is not awaiting payment.")
    lost = order_consent_lost(session, order)
    if lost:
        raise ConsentLost(
            f"{len(lost):,} of this order's items left the catalog or lost their artist's "
            "consent since checkout, so the order was cancelled and nothing was charged. "
            "Ask for a new quote on the bundle."
        )
    if order.payment_intent_id:
        info = payments.retrieve_payment_intent(order.payment_intent_id)
    else:
        info = payments.create_payment_intent(
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"order:{order.id}:{order.quote.public_id}:payment-intent",
            metadata={"order_id": str(order.id), "organization_id": str(order.organization_id)},
            transfer_group=transfer_group(order),
            description=f"Training dataset, order {order.id} ({order.item_count:,} images)",
        )
        order.payment_intent_id = info.id
    if info.status == "succeeded":
        settle_payment(session, order, info)
        raise OrderStateError("This order is paid.")
    if not info.client_secret:
        raise OrderStateError("The payment cannot be taken now; try again in a minute.")
    return PaymentSession(
        payment_intent_id=info.id,
        client_secret=info.client_secret,
        publishable_key=payments.publishable_key(),
        stripe_js_url=payments.stripe_js_url(),
        amount_minor=order.total_minor,
        currency=order.currency,
    )


def transfer_group(order: Order) -> str:
    return f"order_{order.id}"


def cancel_order(session: Session, order: Order) -> bool:
    """Give up an unpaid order: its PaymentIntent is cancelled at Stripe first, so a payment
    page left open cannot pay it any more. False (and the payment recorded instead) if Stripe
    says it was paid meanwhile."""
    session.refresh(order, with_for_update=True)
    if order.status not in _PAYABLE:
        return order.status is OrderStatus.CANCELLED
    if order.payment_intent_id:
        info = payments.retrieve_payment_intent(order.payment_intent_id)
        if info.status == "succeeded":
            settle_payment(session, order, info)
            return False
        if info.status != "canceled":
            payments.cancel_payment_intent(
                order.payment_intent_id, idempotency_key=f"order:{order.id}:cancel"
            )
    order.status = OrderStatus.CANCELLED
    log.info("order %s cancelled before payment", order.id)
    return True


def cancel_unpayable(order_id: int) -> None:
    """After ConsentLost: cancel the order in a transaction of its own (the one that raised
    was rolled back)."""
    with transaction() as session:
        order = session.get(Order, order_id)
        if order is not None:
            cancel_order(session, order)


def settle_payment(session: Session, order: Order, info: payments.PaymentIntentInfo) -> bool:
    """Record what Stripe says of the order's PaymentIntent (never what a browser says): paid if
    it succeeded for the order's amount, failed if it wants a new payment method."""
    if info.id != order.payment_intent_id and order.payment_intent_id is not None:
        log.error("payment intent %s is not order %s's", info.id, order.id)
        return False
    if info.status == "succeeded":
        if order.payment_intent_id is None:
            order.payment_intent_id = info.id
        return record_payment(
            session,
            order,
            payment_intent_id=info.id,
            amount_minor=info.amount_minor,
            currency=info.currency,
        )
    if info.status == "requires_payment_method" and order.status is OrderStatus.AWAITING_PAYMENT:
        order.status = OrderStatus.PAYMENT_FAILED
    return False


def reconcile_payment(session: Session, order: Order) -> bool:
    """Ask Stripe about the order's payment now (after the browser's redirect, or a webhook)."""
    if order.status not in _PAYABLE or not order.payment_intent_id:
        return False
    return settle_payment(session, order, payments.retrieve_payment_intent(order.payment_intent_id))


def order_for_payment_intent(session: Session, payment_intent_id: str) -> Order | None:
    return session.scalar(
        select(Order).where(Order.payment_intent_id == payment_intent_id).with_for_update()
    )


def record_payment(
    session: Session, order: Order, *, payment_intent_id: str, amount_minor: int, currency: str
) -> bool:
    """The processor says the order's payment succeeded: record it once. False (and nothing
    written) if the amount or currency is not the order's."""
    if amount_minor != order.total_minor or currency.lower() != order.currency:
        log.error(
            "payment %s for order %s: %s %s does not match the order's %s %s",
            payment_intent_id,
            order.id,
            amount_minor,
            currency,
            order.total_minor,
            order.currency,
        )
        return False
    _mark_paid(session, order, payment_intent_id=payment_intent_id)
    return True


def fulfil_order(order_id: int) -> None:
    """The job: one dataset.item_sold ledger entry per item, in chunks; safe to rerun (items
    that have their entry are skipped, and each chunk commits with its seqs)."""
    chunk = _config("FULFILMENT_CHUNK")
    while True:
        with transaction() as session:
            order = session.get(Order, order_id)
            if order is None or order.status not in _FULFILLABLE or order.fulfilled_at:
                return
            rows = (
                session.execute(
                    select(OrderItem)
                    .where(OrderItem.order_id == order_id, OrderItem.ledger_seq.is_(None))
                    .order_by(OrderItem.position)
                    .limit(chunk)
                )
                .scalars()
                .all()
            )
            if not rows:
                if order.status is OrderStatus.PAID:
                    order.status = OrderStatus.FULFILLED
                order.fulfilled_at = utcnow()
                delivery.order_fulfilled(session, order)  # queues the package build
                log.info("order %s fulfilled: %s items", order_id, order.item_count)
                return
            appended = ledger.append_many(session, (_sold_entry(order, row) for row in rows))
            session.execute(
                update(OrderItem),
                [
                    {"order_id": order_id, "position": row.position, "ledger_seq": seq}
                    for row, seq in zip(rows, appended.seqs, strict=True)
                ],
            )
            order.fulfilled_count += len(rows)


def _sold_entry(order: Order, row: OrderItem) -> ledger.NewEntry:
    subject = {"order": order.id, "organization": order.organization_id}
    if row.work_id is not None:
        subject["work"] = row.work_id
    if row.artist_id is not None:
        subject["artist"] = row.artist_id
    if row.stock_id is not None:
        subject["stock"] = row.stock_id
    payload: dict[str, Any] = {
        "item": row.item_id,
        "position": row.position,
        "licence": row.licence.value,
        "terms": row.terms_id,
        "price_minor": row.price_minor,
        "artist_share_minor": row.artist_share_minor,
        "currency": order.currency,
        "attribution_required": row.attribution_required,
    }
    if row.sha256:
        payload["sha256"] = row.sha256
    return ledger.NewEntry(EntryKind.DATASET_ITEM_SOLD, subject, payload)


# --- Refunds -------------------------------------------------------------------------------


def _refunds_taken(session: Session, order: Order) -> dict[int, int]:
    taken: dict[int, int] = {}
    for refund in session.scalars(select(OrderRefund).where(OrderRefund.order_id == order.id)):
        for artist, amount in refund.artists.items():
            taken[int(artist)] = taken.get(int(artist), 0) + int(amount)
    return taken


def record_refund(
    session: Session, order: Order, *, refund_id: str, amount_minor: int, reason: str = ""
) -> OrderRefund:
    """Record a refund the processor made (once per refund id): the reversing money
    transaction and an order.refunded provenance entry, which revokes the order's licence
    when the order is refunded in full."""
    session.refresh(order, with_for_update=True)
    existing = session.scalar(select(OrderRefund).where(OrderRefund.refund_id == refund_id))
    if existing is not None:
        if existing.order_id != order.id:
            raise OrderStateError("That refund belongs to another order.")
        return existing
    if order.status not in (
        OrderStatus.PAID,
        OrderStatus.FULFILLED,
        OrderStatus.PARTIALLY_REFUNDED,
    ):
        raise OrderStateError("Only a paid order can be refunded.")
    if not 0 < amount_minor <= order.total_minor - order.refunded_minor:
        raise OrderStateError(
            "A refund is more than zero and at most what has not been refunded yet."
        )
    artists, platform = pricing.refund_parts(
        _artist_shares(session, order),
        _refunds_taken(session, order),
        refund_minor=amount_minor,
        refunded_before=order.refunded_minor,
        total_minor=order.total_minor,
    )
    currency = order.currency
    postings = [money.credit(money.processor_clearing(currency), amount_minor)]
    postings += [
        money.debit(money.artist_payable(artist, currency), part)
        for artist, part in sorted(artists.items())
    ]
    if platform > 0:
        postings.append(money.debit(money.refunds(currency), platform))
    elif platform < 0:  # the platform recovers rounding it absorbed in earlier partial refunds
        postings.append(money.credit(money.refunds(currency), -platform))
    money.record_transaction(
        session,
        key=f"order:{order.id}:refund:{refund_id}"[:200],
        kind=EntryKind.REFUND_ISSUED,
        currency=currency,
        postings=postings,
        subject={"order": order.id, "organization": order.organization_id},
        memo=f"Refund {refund_id} of order {order.id}",
    )
    order.refunded_minor += amount_minor
    full = order.refunded_minor == order.total_minor
    seq = ledger.append(
        session,
        EntryKind.ORDER_REFUNDED,
        subject={"order": order.id, "organization": order.organization_id},
        payload={
            "refund": refund_id,
            "amount_minor": amount_minor,
            "refunded_minor": order.refunded_minor,
            "currency": currency,
            "licence_revoked": full,
            "reason": reason[:500],
        },
    )
    refund = OrderRefund(
        order_id=order.id,
        refund_id=refund_id,
        amount_minor=amount_minor,
        artists={str(k): v for k, v in artists.items()},
        platform_minor=platform,
        reason=reason[:500],
        ledger_seq=seq,
    )
    session.add(refund)
    order.status = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
    if full:
        order.refunded_at = utcnow()
    session.flush()
    payouts.order_refunded(session, order, refund)  # reverse shares already paid out
    if full:
        delivery.order_refunded_in_full(session, order)  # nothing left to download
    log.info("order %s refunded %s (%s)", order.id, amount_minor, refund_id)
    return refund


def sync_refunds(session: Session, order: Order) -> OrderRefund | None:
    """Record what Stripe has refunded of the order's charge beyond what we recorded.

    The admin action and the `charge.refunded` webhook both end here, keyed on the charge and
    its cumulative refunded amount, so a refund is recorded once whichever arrives first."""
    if not order.payment_intent_id:
        return None
    intent = payments.retrieve_payment_intent(order.payment_intent_id)
    if not intent.latest_charge:
        return None
    charge = payments.retrieve_charge(intent.latest_charge)
    session.flush()
    session.refresh(order, with_for_update=True)  # what is recorded now, not a stale copy
    delta = charge.amount_refunded_minor - order.refunded_minor
    if delta <= 0:
        return None
    return record_refund(
        session,
        order,
        refund_id=f"{charge.id}:{charge.amount_refunded_minor}",
        amount_minor=delta,
        reason="refunded at the payment processor",
    )


def refund_order(
    session: Session,
    order: Order,
    *,
    amount_minor: int | None,
    reason: str,
    purpose: str = "admin",
) -> OrderRefund | None:
    """Refund an order (whole, or `amount_minor` of it) through Stripe.

    The processor's idempotency key names the refund's `purpose` ("admin", "missing-items",
    "consent-lost") beside the amounts, so a retry of one refund is the same refund, while two
    different refunds of the same amount from the same base (an administrator's and the
    package build's) stay two."""
    if order.status not in (*_FULFILLABLE, OrderStatus.FULFILLED) or not order.payment_intent_id:
        raise OrderStateError("Only a paid card order can be refunded.")
    left = order.total_minor - order.refunded_minor
    amount = left if amount_minor is None else amount_minor
    if not 0 < amount <= left:
        raise OrderStateError(
            f"Refund more than nothing and at most {format_money(left, order.currency)}."
        )
    payments.refund_payment_intent(
        order.payment_intent_id,
        idempotency_key=f"order:{order.id}:refund:{purpose}:{order.refunded_minor}:{amount}",
        amount_minor=amount,
        metadata={"order_id": str(order.id), "reason": reason[:200]},
    )
    return sync_refunds(session, order)
