"""Ids typed or tampered into addresses and forms: a clear 4xx or the first page, never a 500.

`str.isdigit()` admits "²" and other Unicode digits that `int()` then refuses, and a number past
the INTEGER range overflows the database driver; both once gave 500s on the buyer's pages.
"""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from marketplace.app import IdConverter
from tests.buyers.support import DONATE, bundle, work_item
from tests.factories import make_artist, make_buyer

BAD_IDS = ["²", "٣", "99999999999999999999", "2147483648", "-1", "0", "1e3"]


def test_every_page_route_bounds_its_ids(app):
    loose = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/api/")  # validated by the API's path models
        for converter in rule._converters.values()
        if isinstance(converter, IntegerConverter)
        and not isinstance(converter, IdConverter)
        and converter.max is None  # unbounded: past BIGINT the driver overflows
    ]
    assert loose == []


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_in_a_buyers_addresses_and_forms_are_refused_cleanly(client, db, login, bad):
    artist = make_artist(db)
    buyer = make_buyer(db)
    bundle_id = bundle(db, buyer, [work_item(db, artist, DONATE)])
    login(buyer)

    assert client.get(f"/bundles/{bad}").status_code == 404
    assert client.get(f"/orders/{bad}").status_code == 404
    assert client.get(f"/orders/{bad}/certificate.json").status_code == 404
    assert client.get(f"/orders/{bad}/package").status_code == 404
    assert client.get(f"/bundles/new?collection={bad}").status_code == 200
    page = client.get(f"/bundles/{bundle_id}?after={bad}")
    assert page.status_code == 200  # the first page
    for source, field in (("work_ids", "work_ids"), ("collection", "collection_id")):
        response = client.post(
            "/bundles/new",
            data={
                "name": "x",
                "intended_uses": ["generative_training"],
                "source": source,
                field: bad,
            },
        )
        assert response.status_code == 422, (source, response.status_code)
    assert (
        client.post(
            "/collections/add-item", data={"collection_id": bad, "item_id": bad}
        ).status_code
        == 400
    )


@pytest.mark.parametrize("bad", ["²", "99999999999999999999"])
def test_bad_work_ids_in_batch_terms_are_ignored(client, db, login, bad):
    artist = make_artist(db)
    login(artist)
    response = client.post("/artists/works/terms", data={"work_ids": [bad]})
    assert response.status_code < 500


def test_a_login_cookie_with_unicode_digits_is_no_login(client, db, app):
    from marketplace.app import _load_user

    with app.test_request_context():
        assert _load_user("²:1") is None
        assert _load_user("1:²") is None
        assert _load_user("99999999999:1") is None
