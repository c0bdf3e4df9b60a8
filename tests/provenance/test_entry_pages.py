"""Each ledger entry has a page a person can read, with its bytes and proof one click away."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from marketplace.artists import services as artists
from marketplace.artists.models import TermsKind, Work, WorkTerms
from marketplace.artists.terms import TermsSpec
from marketplace.catalog.models import CatalogItem
from marketplace.db import transaction
from marketplace.ledger import merkle
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind, kind_label
from marketplace.ledger.models import LedgerEntry
from marketplace.ledger.verify import verify_document
from marketplace.optout.models import OptOutRule
from tests import images
from tests.factories import make_artist
from tests.ledger.test_money import capture

LICENSED = TermsSpec(TermsKind.LICENSE, 250, "usd", generative_training=True, commercial_use=True)


@pytest.fixture
def artist(db):
    return make_artist(db, display_name="Ada Okafor")


@pytest.fixture
def work(app, db, artist):
    with app.app_context(), transaction(db) as session:
        user = session.merge(artist)
        made = artists.register_work(
            session, user.artist, user, images.png(3, (400, 300)), title="Dusk", terms=LICENSED
        )
        return made.id


def terms_of(db, work_id: int) -> WorkTerms:
    return db.scalar(select(WorkTerms).where(WorkTerms.work_id == work_id))


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_terms_entry_page_says_what_was_agreed_and_how_to_verify_it(client, db, work):
    terms = terms_of(db, work)
    response = client.get(f"/ledger/entries/{terms.ledger_seq}")
    assert response.status_code == 200
    text = page_text(response)
    assert "<h1>Terms set</h1>" in text
    assert f"set terms version 1 for work {work}: Licensed, $2.50 per image." in text
    assert "generative training, commercial use" in text
    assert f'href="/terms/{terms.id}"' in text  # the licence text, one click away
    assert "Verify this entry" in text
    assert "Checked by this server" in text
    assert ledger.latest_checkpoint(db).note in text
    assert f'href="/ledger/entries/{terms.ledger_seq}/entry.json"' in text
    assert f'href="/ledger/entries/{terms.ledger_seq}/proof.json"' in text


def test_registration_page_names_the_work_and_links_to_its_catalog_item(client, db, work):
    seq = db.scalar(select(LedgerEntry.seq).where(LedgerEntry.kind == "work.registered"))
    item_id = db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work))
    text = page_text(client.get(f"/ledger/entries/{seq}"))
    assert "<h1>Work registered</h1>" in text
    assert f"registered work {work} “Dusk”." in text
    assert "PNG 400 \u00d7 300 px" in text
    assert db.get(Work, work).sha256 in text
    if item_id is not None:
        assert f'href="/catalog/items/{item_id}"' in text


def test_raw_bytes_are_exactly_the_signed_entry(client, db, work):
    seq = terms_of(db, work).ledger_seq
    response = client.get(f"/ledger/entries/{seq}/entry.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    stored = db.get(LedgerEntry, seq)
    assert response.data == bytes(stored.entry)
    assert merkle.leaf_hash(response.data) == bytes(stored.leaf_hash)


def test_downloaded_proof_verifies_offline_against_the_published_key(client, db, work):
    seq = terms_of(db, work).ledger_seq
    response = client.get(f"/ledger/entries/{seq}/proof.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    key = client.get("/api/v1/ledger/public-key").get_json()["verifier_key"]
    result = verify_document(response.get_json(), key=key)
    assert result.ok
    assert result.entries_ok == [seq]


def test_money_entry_page_lists_its_postings_in_money(app, client, db):
    with app.app_context(), transaction(db) as session:
        seq = capture(session).entry_seq
    text = page_text(client.get(f"/ledger/entries/{seq}"))
    assert "<h1>Payment received</h1>" in text
    assert "$100.00 for order 1, recorded as balanced debits and credits." in text
    assert "artist_payable:5:usd" in text
    assert "$96.80" in text
    assert "$70.00" in text
    assert "evt_1" in text


def test_an_entry_of_any_kind_reads_as_words(app, client, db):
    with app.app_context(), transaction(db) as session:
        seq = ledger.append(
            session, EntryKind.WORK_TAKEN_DOWN, subject={"work": 4}, payload={"legal_basis": "DMCA"}
        )
    text = page_text(client.get(f"/ledger/entries/{seq}"))
    assert "<h1>Work taken down</h1>" in text
    assert "Legal basis" in text
    assert "DMCA" in text


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/entries/{seq}",
        "/ledger/entries/{seq}/entry.json",
        "/ledger/entries/{seq}/proof.json",
    ],
)
def test_entries_that_do_not_exist_are_404(client, db, work, path):
    assert client.get(path.format(seq=0)).status_code == 200  # seq 0 is a real entry
    for seq in (999, 2**63, 10**30):
        assert client.get(path.format(seq=seq)).status_code == 404


def test_provenance_tables_show_labels_and_link_to_entry_pages(client, db, login, artist, work):
    seqs = list(db.scalars(select(LedgerEntry.seq).where(LedgerEntry.work_id == work)))
    login(artist)
    pages = [client.get(f"/artists/works/{work}")]
    item_id = db.scalar(select(CatalogItem.id).where(CatalogItem.work_id == work))
    if item_id is not None:
        pages.append(client.get(f"/catalog/items/{item_id}"))
    for response in pages:
        assert response.status_code == 200
        text = page_text(response)
        assert "<td>Work registered</td>" in text
        assert "<td>Terms set</td>" in text
        assert "work.terms_set" not in text
        assert "work.registered" not in text
        for seq in seqs:
            assert f'href="/ledger/entries/{seq}"' in text


def test_opt_out_rules_read_as_words_in_the_table_and_on_their_entry_page(client, db, login):
    login(make_artist(db))
    response = client.post("/optout/address", data={"kind": "domain", "address": "ada.example"})
    assert response.status_code == 302
    table = page_text(client.get("/optout/"))
    assert "<td>A domain and its subdomains</td>" in table
    assert "<td>domain</td>" not in table
    seq = db.scalar(select(OptOutRule.ledger_seq))
    text = page_text(client.get(f"/ledger/entries/{seq}"))
    assert "<h1>Opt-out registered</h1>" in text
    assert "for the domain ada.example and its subdomains: not to be used for training." in text


def test_every_entry_kind_has_a_human_label():
    for kind in EntryKind:
        label = kind_label(kind)
        assert not set(label) & {".", "_"}, kind
        assert label[0].isupper()
    assert kind_label("stock.withdrawn") == "Stock withdrawn"  # a kind added without a label
