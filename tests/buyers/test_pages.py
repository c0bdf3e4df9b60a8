"""The buyer's pages: build a bundle from a collection or a search, see its quote, check out."""

from __future__ import annotations

from sqlalchemy import select

from marketplace.artists import services as artists
from marketplace.buyers.models import Bundle, Order, OrderStatus
from marketplace.catalog import services as catalog
from marketplace.db import transaction
from tests.buyers.support import DONATE, bundle, licence, stock_items, work_item, work_of
from tests.factories import make_artist, make_buyer


def collection_with(db, buyer, item_ids):
    with db.info["app"].app_context(), transaction(db) as session:
        user = session.merge(buyer)
        collection = catalog.create_collection(session, user, "Harbours")
        for item_id in item_ids:
            catalog.add_item(session, collection, item_id)
        return collection.id


def test_buyer_builds_a_bundle_from_a_collection_and_gets_a_free_order(
    client, db, login, tmp_path, run_jobs
):
    artist = make_artist(db)
    buyer = make_buyer(db)
    donated = work_item(db, artist, DONATE, title="Gift")
    kept_out = work_item(db, artist, DONATE, title="Private")
    stock = stock_items(db, tmp_path, 2)
    collection_id = collection_with(db, buyer, [donated, kept_out, *stock])
    with db.info["app"].app_context(), transaction(db) as session:
        artists.withdraw_consent(session, session.merge(work_of(db, kept_out)), artist)
    login(buyer)

    form = client.get(f"/bundles/new?collection={collection_id}").get_data(as_text=True)
    assert "Harbours (4 works)" in form
    response = client.post(
        "/bundles/new",
        data={
            "name": "Open set",
            "intended_uses": ["generative_training", "commercial_use"],
            "source": "collection",
            "collection_id": str(collection_id),
        },
    )
    assert response.status_code == 302
    run_jobs()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<strong>3</strong> included, 1 left out" in page
    assert 'data-testid="quote-total">$0.00' in page
    excluded = client.get(response.headers["Location"] + "?show=excluded").get_data(as_text=True)
    assert "Consent withdrawn" in excluded
    assert "Private" in excluded

    bundle_id = db.scalar(select(Bundle.id))
    quote_id = page.split('name="quote_id" type="hidden" value="')[1].split('"')[0]
    checkout = client.post(f"/bundles/{bundle_id}/checkout", data={"quote_id": quote_id})
    assert checkout.status_code == 302
    run_jobs()
    order_page = client.get(checkout.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="order-status">fulfilled' in order_page
    assert "1 donated (CC0), 2 public domain" in order_page


def test_bundle_form_reports_bad_input_beside_the_form(client, db, login):
    buyer = make_buyer(db)
    login(buyer)
    response = client.post(
        "/bundles/new",
        data={
            "name": "x",
            "intended_uses": ["generative_training"],
            "source": "work_ids",
            "work_ids": "12, abc",
        },
    )
    assert response.status_code == 422
    assert "&#39;abc&#39; is not a work id" in response.get_data(as_text=True)
    assert db.scalar(select(Bundle.id)) is None


def test_search_results_can_be_bundled(client, db, login, tmp_path, run_jobs):
    buyer = make_buyer(db)
    stock_items(db, tmp_path, 3)
    login(buyer)
    search = client.get("/catalog?license=public_domain").get_data(as_text=True)
    assert 'data-testid="bundle-results"' in search
    response = client.post(
        "/bundles/new",
        data={
            "name": "Search",
            "intended_uses": ["generative_training"],
            "source": "query",
            "query": "license=public_domain",
        },
    )
    assert response.status_code == 302
    run_jobs()
    assert db.scalar(select(Bundle.included_count)) == 3


def test_other_organizations_and_artists_cannot_see_bundles_or_orders(client, db, login, run_jobs):
    artist = make_artist(db)
    owner = make_buyer(db)
    item = work_item(db, artist, licence(300))
    bundle_id = bundle(db, owner, [item])
    run_jobs()
    stranger = make_buyer(db)
    login(stranger)
    assert client.get(f"/bundles/{bundle_id}").status_code == 404
    assert client.post(f"/bundles/{bundle_id}/check").status_code == 404
    assert (
        client.post(f"/bundles/{bundle_id}/checkout", data={"quote_id": "q_x"}).status_code == 404
    )
    client.post("/accounts/logout")
    login(artist)
    assert client.get(f"/bundles/{bundle_id}").status_code == 403


def test_priced_checkout_makes_an_order_awaiting_payment(client, db, login, run_jobs):
    artist = make_artist(db)
    buyer = make_buyer(db)
    item = work_item(db, artist, licence(20, attribution_required=True))
    bundle_id = bundle(db, buyer, [item])
    run_jobs()
    login(buyer)
    page = client.get(f"/bundles/{bundle_id}").get_data(as_text=True)
    assert 'data-testid="minimum-line">$0.30' in page
    assert "Attribution required for 1 items" in page
    quote_id = page.split('name="quote_id" type="hidden" value="')[1].split('"')[0]
    response = client.post(f"/bundles/{bundle_id}/checkout", data={"quote_id": quote_id})
    order = db.scalar(select(Order))
    assert response.headers["Location"].endswith(f"/orders/{order.id}/pay")
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.total_minor == 50


def test_admins_see_every_organizations_orders_and_buyers_only_their_own(
    client, db, login, run_jobs
):
    from tests.factories import make_admin

    artist = make_artist(db)
    first, second = make_buyer(db), make_buyer(db)
    for buyer in (first, second):
        bundle_id = bundle(db, buyer, [work_item(db, artist, DONATE)])
        run_jobs()
        login(buyer)
        page = client.get(f"/bundles/{bundle_id}").get_data(as_text=True)
        quote_id = page.split('name="quote_id" type="hidden" value="')[1].split('"')[0]
        client.post(f"/bundles/{bundle_id}/checkout", data={"quote_id": quote_id})
        client.post("/accounts/logout")
    orders = db.scalars(select(Order.id).order_by(Order.id)).all()
    login(first)
    mine = client.get("/orders").get_data(as_text=True)
    assert f"#{orders[0]}<" in mine
    assert f"#{orders[1]}<" not in mine
    assert client.get(f"/orders/{orders[1]}").status_code == 404
    client.post("/accounts/logout")
    login(make_admin(db))
    every = client.get("/orders").get_data(as_text=True)
    assert f"#{orders[0]}<" in every
    assert f"#{orders[1]}<" in every
    assert client.get(f"/orders/{orders[1]}").status_code == 200
