"""Bundles: what a buyer may include for their intended use, quotes, checkout and free orders."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.artists import services as artists
from marketplace.artists.models import Work
from marketplace.buyers import services as buyers
from marketplace.buyers.models import (
    Bundle,
    BundleItem,
    BundleStatus,
    Order,
    OrderItem,
    OrderStatus,
    Quote,
)
from marketplace.db import transaction
from marketplace.ledger.models import LedgerEntry
from marketplace.optout import services as optout
from marketplace.optout.models import RuleKind
from tests import images
from tests.buyers.support import (
    DONATE,
    NOT_AVAILABLE,
    bundle,
    licence,
    stock_items,
    work_item,
    work_of,
)
from tests.factories import make_artist, make_buyer


@pytest.fixture
def artist(db):
    return make_artist(db, display_name="Ada Okafor")


@pytest.fixture
def buyer(db):
    return make_buyer(db)


def verdicts(db, bundle_id):
    return dict(
        db.execute(
            select(BundleItem.item_id, BundleItem.reason).where(BundleItem.bundle_id == bundle_id)
        ).all()
    )


def quote_of(db, bundle_id) -> Quote:
    db.expire_all()
    quote = buyers.current_quote(db, db.get(Bundle, bundle_id))
    assert quote is not None
    return quote


def do_checkout(db, buyer, bundle_id, quote_id):
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        result = buyers.checkout(session, user, session.get(Bundle, bundle_id), quote_id)
        order_id = result.order.id
        dropped = result.dropped
    db.expire_all()
    return db.get(Order, order_id), dropped


def test_mixed_bundle_includes_licensed_donated_and_public_domain_items(
    db, tmp_path, artist, buyer, run_jobs
):
    licensed = work_item(db, artist, licence(300, attribution_required=True))
    donated = work_item(db, artist, DONATE)
    stock = stock_items(db, tmp_path, 2)
    bundle_id = bundle(db, buyer, [licensed, donated, *stock])
    run_jobs()

    built = db.get(Bundle, bundle_id)
    assert built.status is BundleStatus.READY
    assert (built.included_count, built.excluded_count) == (4, 0)
    quote = quote_of(db, bundle_id)
    assert quote.counts == {"licensed": 1, "cc0": 1, "public_domain": 2}
    assert quote.obligations == {"attribution": 1}
    assert (quote.licensed_minor, quote.minimum_adjustment_minor, quote.total_minor) == (
        300,
        0,
        300,
    )
    assert (quote.artists_minor, quote.platform_minor) == (240, 60)


def test_items_that_do_not_permit_the_intended_use_are_excluded_with_their_reason(
    db, tmp_path, artist, buyer, run_jobs
):
    generative_only = work_item(db, artist, licence(300))
    commercial = work_item(db, artist, licence(400, commercial_use=True))
    kept_out = work_item(db, artist, NOT_AVAILABLE)
    withdrawn = work_item(db, artist, licence(500, commercial_use=True))
    with db.info["app"].app_context(), transaction(db) as session:
        artists.withdraw_consent(session, session.merge(work_of(db, withdrawn)), artist)
    stock = stock_items(db, tmp_path)[0]

    bundle_id = bundle(
        db,
        buyer,
        [generative_only, commercial, kept_out, withdrawn, stock],
        "generative_training",
        "commercial_use",
    )
    run_jobs()
    assert verdicts(db, bundle_id) == {
        generative_only: "use_not_permitted",
        commercial: "",
        kept_out: "not_available",
        withdrawn: "withdrawn",
        stock: "",
    }
    detail = db.scalar(select(BundleItem.detail).where(BundleItem.item_id == generative_only))
    assert "Commercial use" in detail
    assert buyers.excluded_counts(db, db.get(Bundle, bundle_id)) == {
        "use_not_permitted": 1,
        "not_available": 1,
        "withdrawn": 1,
    }


def test_opted_out_images_and_addresses_are_excluded(db, tmp_path, artist, buyer, run_jobs):
    other = make_artist(db, display_name="Other")
    data = images.png(4242)
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(artist)
        work = artists.register_work(
            session, owner.artist, owner, data, title="Mine", terms=licence()
        )
        work_id = work.id
        optout.register_image(
            session, session.merge(other), data, max_bytes=10**8, max_pixels=10**8
        )
    from marketplace.catalog.models import CatalogItem

    matched = db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work_id))
    stock = stock_items(db, tmp_path, 2)
    with db.info["app"].app_context(), transaction(db) as session:
        first_url = db.execute(
            select(CatalogItem.stock_id).where(CatalogItem.id == stock[0])
        ).scalar_one()
        from marketplace.catalog.models import StockRecord

        record = session.get(StockRecord, first_url)
        optout.register_address(session, session.merge(other), RuleKind.URL, record.image_urls[0])

    bundle_id = bundle(db, buyer, [matched, *stock])
    run_jobs()
    assert verdicts(db, bundle_id) == {matched: "opted_out", stock[0]: "opted_out", stock[1]: ""}


def test_a_bundle_of_only_excluded_items_has_no_quote(db, artist, buyer, run_jobs):
    kept_out = work_item(db, artist, NOT_AVAILABLE)
    bundle_id = bundle(db, buyer, [kept_out])
    run_jobs()
    db.expire_all()
    assert db.get(Bundle, bundle_id).included_count == 0
    assert buyers.current_quote(db, db.get(Bundle, bundle_id)) is None


def test_unknown_work_ids_and_empty_bundles_are_refused(db, buyer):
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        with pytest.raises(buyers.InvalidBundle, match="No such works: 999999"):
            buyers.create_bundle(
                session, user, buyers.BundleRequest("x", ["generative_training"], [999999])
            )
        with pytest.raises(buyers.InvalidBundle, match="No such works: 0, 9223372036854775808"):
            buyers.create_bundle(
                session, user, buyers.BundleRequest("x", ["generative_training"], [0, 2**63])
            )
        with pytest.raises(buyers.InvalidBundle, match="empty"):
            buyers.create_bundle(
                session, user, buyers.BundleRequest("x", ["generative_training"], [])
            )
        with pytest.raises(buyers.InvalidBundle, match="intended use"):
            buyers.create_bundle(
                session, user, buyers.BundleRequest("x", ["world_domination"], [1])
            )
    assert db.scalar(select(func.count()).select_from(Bundle)) == 0


def test_another_organizations_bundle_and_order_are_not_found(db, artist, buyer, run_jobs):
    item = work_item(db, artist, DONATE)
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    order, _ = do_checkout(db, buyer, bundle_id, quote_of(db, bundle_id).public_id)
    stranger = make_buyer(db)
    with pytest.raises(buyers.NotFound):
        buyers.get_bundle(db, stranger, bundle_id)
    with pytest.raises(buyers.NotFound):
        buyers.get_order(db, stranger, order.id)


def test_free_bundle_is_paid_at_once_and_every_item_gets_a_provenance_entry(
    db, tmp_path, artist, buyer, run_jobs
):
    donated = work_item(db, artist, DONATE)
    stock = stock_items(db, tmp_path, 3)
    bundle_id = bundle(db, buyer, [donated, *stock])
    run_jobs()
    quote = quote_of(db, bundle_id)
    assert quote.total_minor == 0
    order, _ = do_checkout(db, buyer, bundle_id, quote.public_id)
    run_jobs()
    db.expire_all()
    order = db.get(Order, order.id)
    assert order.status is OrderStatus.FULFILLED
    assert order.payment_intent_id is None
    seqs = db.scalars(select(OrderItem.ledger_seq).where(OrderItem.order_id == order.id)).all()
    assert len(seqs) == 4
    assert None not in seqs
    kinds = db.scalars(
        select(LedgerEntry.kind).where(LedgerEntry.order_id == order.id).order_by(LedgerEntry.seq)
    ).all()
    # Free: no money moved. The package build then seals the order's certificate.
    assert kinds == ["order.paid"] + ["dataset.item_sold"] * 4 + ["dataset.certified"]


def test_checkout_keeps_the_quoted_price_when_the_artist_reprices(db, artist, buyer, run_jobs):
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    quote = quote_of(db, bundle_id)
    with db.info["app"].app_context(), transaction(db) as session:
        artists.set_terms(session, session.merge(work_of(db, item)), artist, licence(900))
    order, dropped = do_checkout(db, buyer, bundle_id, quote.public_id)
    assert dropped == {}
    assert order.total_minor == 300
    assert order.status is OrderStatus.AWAITING_PAYMENT


def test_consent_withdrawn_after_the_quote_drops_the_item_at_checkout(
    db, tmp_path, artist, buyer, run_jobs
):
    keep = work_item(db, artist, licence(300))
    gone = work_item(db, artist, licence(700))
    bundle_id = bundle(db, buyer, [keep, gone])
    run_jobs()
    quote = quote_of(db, bundle_id)
    assert quote.total_minor == 1000
    with db.info["app"].app_context(), transaction(db) as session:
        artists.withdraw_consent(session, session.merge(work_of(db, gone)), artist)
    order, dropped = do_checkout(db, buyer, bundle_id, quote.public_id)
    assert dropped == {"withdrawn": 1}
    assert (order.item_count, order.total_minor) == (1, 300)
    assert db.scalars(select(OrderItem.item_id).where(OrderItem.order_id == order.id)).all() == [
        keep
    ]


def test_an_image_opted_out_after_the_quote_is_dropped_at_checkout(db, artist, buyer, run_jobs):
    data = images.png(777)
    with db.info["app"].app_context(), transaction(db) as session:
        owner = session.merge(artist)
        work = artists.register_work(session, owner.artist, owner, data, title="W", terms=licence())
        work_id = work.id
    keep = work_item(db, artist, licence(300))
    from marketplace.catalog.models import CatalogItem

    item = db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work_id))
    bundle_id = bundle(db, buyer, [item, keep])
    run_jobs()
    quote = quote_of(db, bundle_id)
    with db.info["app"].app_context(), transaction(db) as session:
        optout.register_image(
            session, session.merge(make_artist(db)), data, max_bytes=10**8, max_pixels=10**8
        )
    order, dropped = do_checkout(db, buyer, bundle_id, quote.public_id)
    assert dropped == {"opted_out": 1}
    assert order.item_count == 1


def test_an_expired_quote_cannot_be_checked_out_and_a_new_one_shows_what_changed(
    db, artist, buyer, run_jobs
):
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    quote = quote_of(db, bundle_id)
    with db.info["app"].app_context(), transaction(db) as session:
        session.get(Quote, quote.id).expires_at -= timedelta(hours=1)
        artists.set_terms(session, session.merge(work_of(db, item)), artist, licence(450))
    with pytest.raises(buyers.QuoteExpired):
        do_checkout(db, buyer, bundle_id, quote.public_id)
    assert db.scalar(select(func.count()).select_from(Order)) == 0

    with db.info["app"].app_context(), transaction(db) as session:
        buyers.request_check(session, session.get(Bundle, bundle_id))
    run_jobs()
    new = quote_of(db, bundle_id)
    changes = buyers.quote_changes(db, db.get(Quote, quote.id), new)
    assert (changes.repriced, changes.total_before, changes.total_after) == (1, 300, 450)
    with pytest.raises(buyers.QuoteNotCurrent):
        do_checkout(db, buyer, bundle_id, quote.public_id)


def test_tampered_or_foreign_quote_ids_are_not_found(db, artist, buyer, run_jobs):
    item = work_item(db, artist, licence(300))
    mine = bundle(db, buyer, [item])
    theirs = bundle(db, buyer, [item], name="other")
    run_jobs()
    with pytest.raises(buyers.NotFound):
        do_checkout(db, buyer, mine, quote_of(db, mine).public_id + "x")
    with pytest.raises(buyers.NotFound):
        do_checkout(db, buyer, mine, quote_of(db, theirs).public_id)


def test_checking_out_twice_gives_one_order(db, artist, buyer, run_jobs):
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    quote = quote_of(db, bundle_id)
    first, _ = do_checkout(db, buyer, bundle_id, quote.public_id)
    second, _ = do_checkout(db, buyer, bundle_id, quote.public_id)
    assert first.id == second.id
    assert db.scalar(select(func.count()).select_from(Order)) == 1


def test_parallel_checkouts_of_one_quote_make_one_order(app, db, artist, buyer, run_jobs):
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    quote_id = quote_of(db, bundle_id).public_id
    barrier = threading.Barrier(2)
    orders, errors = [], []

    def attempt():
        from marketplace.db import get_database

        session = get_database(app).sessions()
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                with transaction(session):
                    user = session.merge(buyer)
                    result = buyers.checkout(
                        session, user, session.get(Bundle, bundle_id), quote_id
                    )
                    orders.append(result.order.id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(orders) == 2
    assert orders[0] == orders[1]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Order)) == 1


def test_dropping_an_item_requotes_the_bundle(db, artist, buyer, run_jobs):
    a = work_item(db, artist, licence(300))
    b = work_item(db, artist, licence(200))
    bundle_id = bundle(db, buyer, [a, b])
    run_jobs()
    assert quote_of(db, bundle_id).total_minor == 500
    with db.info["app"].app_context(), transaction(db) as session:
        buyers.drop_item(session, session.get(Bundle, bundle_id), b)
    run_jobs()
    assert quote_of(db, bundle_id).total_minor == 300


def test_work_under_review_is_excluded(db, artist, buyer, run_jobs):
    item = work_item(db, artist, licence(300))
    with db.info["app"].app_context(), transaction(db) as session:
        from marketplace.artists.models import WorkStatus

        session.get(Work, work_of(db, item).id).status = WorkStatus.REVIEW
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    assert verdicts(db, bundle_id) == {item: "in_review"}
