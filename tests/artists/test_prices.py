"""A typed price becomes a terms version only as the artist read it: in their locale, read back
to them, and confirmed; text that could mean two amounts is refused with how to write it."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from marketplace.artists.models import Artist, TermsKind, Work, WorkTerms
from tests import images
from tests.artists.test_works import confirmed, upload
from tests.factories import make_artist

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
def artist(db, login):
    user = make_artist(db, display_name="Ada Okafor")
    login(user)
    return user


@pytest.fixture
def work(client, db, artist) -> Work:
    upload(client, (images.png(7), "harbour.png"), kind="donate")
    return db.scalar(select(Work))


def licence(price: str, **extra: str) -> dict[str, str]:
    return {"kind": "license", "price": price, "generative_training": "y", **extra}


def versions(db) -> list[tuple[int, TermsKind, int | None]]:
    rows = db.scalars(select(WorkTerms).order_by(WorkTerms.id)).all()
    return [(t.version, t.kind, t.price_minor) for t in rows]


def token_in(html: str) -> str:
    marker = 'name="price_confirmation" type="hidden" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_a_comma_price_in_english_is_refused_not_read_as_hundreds(client, db, work):
    response = client.post(f"/artists/works/{work.id}/terms", data=licence("2,50"), headers=ENGLISH)
    assert response.status_code == 422
    assert "Write the amount in USD as 2.50 or 1,000.00." in response.get_data(as_text=True)
    assert versions(db) == [(1, TermsKind.DONATE, None)]


def test_a_typed_price_is_read_back_and_recorded_only_once_confirmed(client, db, work):
    url = f"/artists/works/{work.id}/terms"
    first = client.post(url, data=licence("2,50"), headers=GERMAN)
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "that is 2,50\xa0$ per image" in page
    assert versions(db) == [(1, TermsKind.DONATE, None)]  # nothing recorded yet

    second = client.post(
        url, data=licence("2,50", price_confirmation=token_in(page)), headers=GERMAN
    )
    assert second.status_code == 302
    assert versions(db) == [(1, TermsKind.DONATE, None), (2, TermsKind.LICENSE, 250)]


def test_a_confirmation_covers_only_the_amount_that_was_shown(client, db, work):
    url = f"/artists/works/{work.id}/terms"
    shown = token_in(client.post(url, data=licence("2.50"), headers=ENGLISH).get_data(True))
    changed = client.post(url, data=licence("25.00", price_confirmation=shown), headers=ENGLISH)
    assert changed.status_code == 200
    assert "that is $25.00 per image" in changed.get_data(as_text=True)
    forged = client.post(url, data=licence("25.00", price_confirmation="x.y.z"))
    assert forged.status_code == 200
    assert versions(db) == [(1, TermsKind.DONATE, None)]


def test_the_currency_sign_is_read_back_and_another_currency_refused(client, db, work):
    url = f"/artists/works/{work.id}/terms"
    dollars = client.post(url, data=licence("$3"), headers=ENGLISH)
    assert dollars.status_code == 200
    assert "that is $3.00 per image" in dollars.get_data(as_text=True)
    euros = client.post(url, data=licence("€3"), headers=ENGLISH)
    assert euros.status_code == 422
    assert "prices are in USD" in euros.get_data(as_text=True)
    assert versions(db) == [(1, TermsKind.DONATE, None)]


def test_saving_the_shown_price_unchanged_needs_no_new_confirmation(client, db, work):
    url = f"/artists/works/{work.id}/terms"
    client.post(url, data=confirmed(client, licence("2.50")))
    page = client.get(f"/artists/works/{work.id}").get_data(as_text=True)
    assert 'value="2.50"' in page
    response = client.post(
        url, data=licence("2.50", fine_tuning="y", price_confirmation=token_in(page))
    )
    assert response.status_code == 302
    assert [v[2] for v in versions(db)] == [None, 250, 250]


def test_the_price_check_reads_the_amount_for_the_form_script(client, work):
    german = client.get("/artists/price-check?price=2,50", headers=GERMAN).get_json()
    assert (german["ok"], german["amount_minor"], german["display"]) == (True, 250, "2,50\xa0$")
    assert german["token"]
    english = client.get("/artists/price-check?price=2,50", headers=ENGLISH).get_json()
    assert english["ok"] is False
    assert "2.50 or 1,000.00" in english["message"]


def test_an_unconfirmed_upload_price_stores_nothing_and_asks(client, db, artist):
    response = client.post(
        "/artists/works/new",
        data={"images": [(io.BytesIO(images.png(8)), "a.png")], **licence("4.20")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "that is $4.20 per image" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Work)) == 0


def test_unconfirmed_batch_terms_keep_the_selection_and_change_nothing(client, db, work):
    response = client.post(
        "/artists/works/terms", data={**licence("1,5"), "work_ids": [str(work.id)]}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'value="{work.id}" checked' in page
    asked = client.post(
        "/artists/works/terms", data={**licence("1.50"), "work_ids": [str(work.id)]}
    )
    assert asked.status_code == 200
    assert "that is $1.50 per image" in asked.get_data(as_text=True)
    assert versions(db) == [(1, TermsKind.DONATE, None)]


def test_unconfirmed_default_terms_are_not_saved(client, db, artist):
    response = client.post("/artists/defaults", data=licence("0.75"))
    assert response.status_code == 200
    assert "that is $0.75 per image" in response.get_data(as_text=True)
    assert db.scalar(select(Artist.default_terms)) is None


def test_the_marketplace_currency_is_the_configured_one_everywhere(app, client, db, work):
    app.config["DEFAULT_CURRENCY"] = "eur"
    url = f"/artists/works/{work.id}/terms"
    asked = client.post(url, data=licence("2,50"), headers=GERMAN)
    page = asked.get_data(as_text=True)
    assert "that is 2,50\xa0€ per image" in page
    assert "(EUR, 0,05\xa0€ to 1.000,00\xa0€)" in page
    client.post(url, data=licence("2,50", price_confirmation=token_in(page)), headers=GERMAN)
    terms = db.scalar(select(WorkTerms).order_by(WorkTerms.id.desc()))
    assert (terms.price_minor, terms.currency) == (250, "eur")
    assert "€2.50 per image" in client.get(f"/terms/{terms.id}").get_data(as_text=True)
    assert "Price per image (EUR)" in client.get("/catalog").get_data(as_text=True)
