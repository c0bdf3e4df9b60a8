"""Claims: anyone files one; an administrator accepts it; the item leaves the catalog at once
and every buying organization gets a recall, all on the ledger (issue #16's "done when")."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from marketplace.buyers import services as buyers
from marketplace.buyers.models import Bundle, Order, OrderStatus
from marketplace.catalog.models import CatalogItem
from marketplace.db import transaction
from marketplace.governance.models import AdminAction, Claim, ClaimStatus, Recall
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.models import LedgerEntry
from marketplace.ledger.verify import verify_certificate
from marketplace.storage import backend
from tests import images
from tests.buyers.support import DONATE, work_item
from tests.delivery.orders import checkout
from tests.factories import make_admin, make_api_token, make_artist, make_buyer

STATEMENT = "I painted this in 2019; it is on my website with the original file."


def file_claim(client, item_id, **overrides):
    data = {
        "csrf_token": csrf(client, f"/items/{item_id}/claim"),
        "kind": "not_theirs",
        "name": "Ada Painter",
        "email": "ada@example.org",
        "statement": STATEMENT,
        "links": "https://ada.example.org/works/blue",
        **overrides,
    }
    return client.post(f"/items/{item_id}/claim", data=data, content_type="multipart/form-data")


def csrf(client, url):
    """The form's CSRF token (tests run with CSRF off: then "")."""
    page = client.get(url)
    assert page.status_code == 200, url
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(True))
    return found[1] if found else ""


@pytest.fixture
def sold_twice(client, db, run_jobs):
    """A donated work and a second one, both in two paid orders of two organizations."""
    artist = make_artist(db)
    claimed = work_item(db, artist, DONATE, title="Blue heron")
    other = work_item(db, artist, DONATE, title="Grey heron")
    run_jobs()
    first, second = make_buyer(db), make_buyer(db)
    orders = [
        checkout(db, first, [claimed, other], run_jobs),
        checkout(db, second, [other, claimed], run_jobs),
    ]
    run_jobs()
    return artist, claimed, other, (first, second), orders


def test_an_accepted_claim_takes_the_item_down_and_recalls_it_from_both_orders(
    client, db, login, outbox, run_jobs, sold_twice
):
    artist, claimed, other, (first, second), orders = sold_twice
    assert client.get(f"/catalog/items/{claimed}").status_code == 200

    response = file_claim(client, claimed)  # logged out
    assert response.status_code == 302
    status_url = response.headers["Location"]
    claim = db.scalar(select(Claim))
    assert claim.status is ClaimStatus.OPEN
    confirmation = [m for m in outbox() if m["To"] == "ada@example.org"]
    assert len(confirmation) == 1
    assert status_url.split("?")[0] in confirmation[0].get_content()
    assert "Waiting for review" in client.get(status_url).get_data(True)

    admin = make_admin(db)
    login(admin)
    token = csrf(client, f"/admin/claims/{claim.id}")
    response = client.post(
        f"/admin/claims/{claim.id}/accept",
        data={"csrf_token": token, "reason": "The artist's website predates the upload."},
        follow_redirects=True,
    )
    assert "recalled from 2 orders" in response.get_data(True)
    run_jobs()

    # Gone everywhere: item page, search, API search, new bundles.
    db.expire_all()
    item = db.get(CatalogItem, claimed)
    assert item.taken_down_at is not None
    assert not item.available
    assert client.get(f"/catalog/items/{claimed}").status_code == 404
    assert "Blue heron" not in client.get("/catalog?q=heron").get_data(True)
    assert "Grey heron" in client.get("/catalog?q=heron").get_data(True)
    api = make_api_token(db, first)
    found = client.get("/api/v1/works?q=heron", headers={"Authorization": f"Bearer {api}"})
    assert [w["id"] for w in found.get_json()["items"]] == [other]
    with db.info["app"].app_context(), transaction(db) as session:
        created = buyers.create_bundle(
            session,
            session.merge(first),
            buyers.BundleRequest(
                name="Again", intended_uses=["generative_training"], work_ids=[claimed, other]
            ),
        )
        bundle_id = created.id
    run_jobs()
    quote = buyers.current_quote(db, db.get(Bundle, bundle_id))
    assert quote.item_count == 1

    # Recalled from both orders, each on the ledger, each organization told.
    recalls = db.scalars(select(Recall).order_by(Recall.order_id)).all()
    assert [r.order_id for r in recalls] == orders
    assert {r.organization_id for r in recalls} == {first.organization_id, second.organization_id}
    recalled = db.scalars(
        select(LedgerEntry).where(LedgerEntry.kind == EntryKind.ORDER_ITEM_RECALLED.value)
    ).all()
    assert sorted(e.seq for e in recalled) == sorted(r.ledger_seq for r in recalls)
    assert (
        db.scalar(select(func.count()).where(LedgerEntry.kind == EntryKind.WORK_TAKEN_DOWN.value))
        == 1
    )
    mails = outbox()
    for buyer, order_id in zip((first, second), orders, strict=True):
        notice = [m for m in mails if m["To"] == buyer.email and "Recall" in m["Subject"]]
        assert len(notice) == 1
        assert f"order #{order_id}" in notice[0]["Subject"]
    decision = [m for m in mails if "was accepted" in m["Subject"]]
    assert {m["To"] for m in decision} == {"ada@example.org", artist.email}
    assert all(r.notified_at is not None for r in db.scalars(select(Recall)))

    # The recall list per order, for the buying organization only.
    first_token, second_token = api, make_api_token(db, second)
    listed = client.get(
        f"/api/v1/orders/{orders[0]}/recalls", headers={"Authorization": f"Bearer {first_token}"}
    ).get_json()
    assert [(r["item_id"], r["claim_id"]) for r in listed["items"]] == [(claimed, claim.id)]
    assert listed["items"][0]["key"] == "000000000"  # the first item of the first order
    assert (
        client.get(
            f"/api/v1/orders/{orders[0]}/recalls",
            headers={"Authorization": f"Bearer {second_token}"},
        ).status_code
        == 404
    )
    second_list = client.get(
        f"/api/v1/orders/{orders[1]}/recalls", headers={"Authorization": f"Bearer {second_token}"}
    ).get_json()
    assert second_list["items"][0]["key"] == "000000001"

    # Each order's certificate is re-issued listing the recall, and verifies offline.
    for order_id, token in zip(orders, (first_token, second_token), strict=True):
        certificate = client.get(
            f"/api/v1/orders/{order_id}/certificate", headers={"Authorization": f"Bearer {token}"}
        ).get_json()
        assert certificate["revision"] == 2
        assert [r["item"] for r in certificate["recalls"]] == [claimed]
        result = verify_certificate(certificate)
        assert result.ok, result.summary
        assert "1 recalled since" in result.summary
        forged = json.loads(json.dumps(certificate))
        forged["recalls"][0]["seq"] = certificate["seal"]["seq"]
        assert "recall of item" in verify_certificate(forged).summary

    # The order pages say so, and the claimant's link shows the decision.
    client.get("/accounts/logout")
    login(second)
    assert 'data-testid="recalls"' in client.get(f"/orders/{orders[1]}").get_data(True)
    assert "Accepted" in client.get(status_url).get_data(True)
    assert db.scalar(select(AdminAction.action)) == "claim.accept"
    # A recall is a new fact about an old sale: the orders stay paid.
    assert {db.get(Order, o).status for o in orders} <= {OrderStatus.PAID, OrderStatus.FULFILLED}


def test_a_rejected_claim_changes_nothing_but_is_told_and_logged(
    client, db, login, outbox, sold_twice
):
    _artist, claimed, _other, _buyers, _orders = sold_twice
    file_claim(client, claimed, kind="other")
    claim = db.scalar(select(Claim))
    login(make_admin(db))
    token = csrf(client, f"/admin/claims/{claim.id}")
    assert (
        client.post(
            f"/admin/claims/{claim.id}/reject", data={"csrf_token": token, "reason": ""}
        ).status_code
        == 302
    )  # no reason: refused with a message, nothing decided
    db.expire_all()
    assert db.get(Claim, claim.id).status is ClaimStatus.OPEN
    client.post(
        f"/admin/claims/{claim.id}/reject",
        data={"csrf_token": token, "reason": "No evidence of prior publication."},
    )
    db.expire_all()
    assert db.get(Claim, claim.id).status is ClaimStatus.REJECTED
    assert db.get(CatalogItem, claimed).available
    assert db.scalar(select(func.count()).select_from(Recall)) == 0
    again = client.post(
        f"/admin/claims/{claim.id}/accept",
        data={"csrf_token": token, "reason": "Changed my mind."},
        follow_redirects=True,
    )
    assert "already rejected" in again.get_data(True)
    assert db.get(CatalogItem, claimed).taken_down_at is None
    assert [a.action for a in db.scalars(select(AdminAction))] == ["claim.reject"]
    subjects = [m["Subject"] for m in outbox()]
    assert subjects.count(f"Your claim #{claim.id} was rejected") == 1


def test_the_uploading_artist_answers_once_and_nobody_else_can(
    client, db, login, outbox, sold_twice
):
    artist, claimed, _other, _buyers, _orders = sold_twice
    file_claim(client, claimed)
    claim = db.scalar(select(Claim))
    stranger = make_artist(db)
    login(stranger)
    assert client.get(f"/artists/claims/{claim.id}").status_code == 404
    client.get("/accounts/logout")
    login(artist)
    assert f"#{claim.id}" in client.get("/artists/claims").get_data(True)
    token = csrf(client, f"/artists/claims/{claim.id}")
    answer = "This is my own painting; the claimant copied it from my portfolio."
    client.post(f"/artists/claims/{claim.id}", data={"csrf_token": token, "text": answer})
    client.post(f"/artists/claims/{claim.id}", data={"csrf_token": token, "text": "Second go."})
    db.expire_all()
    assert db.get(Claim, claim.id).counter_notice == answer


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"statement": "too short"}, "Explain the claim in 20"),
        ({"email": "not-an-address"}, "email address is not valid"),
        ({"links": "javascript:alert(1)"}, "Link 1 is not a web address"),
        ({"kind": "because"}, "Not a valid choice"),
        ({"name": "Ada\x00"}, "control character"),
    ],
)
def test_bad_claims_are_refused_with_a_reason_and_store_nothing(
    client, db, sold_twice, overrides, message
):
    _artist, claimed, *_ = sold_twice
    response = file_claim(client, claimed, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(True)
    assert db.scalar(select(func.count()).select_from(Claim)) == 0


def stored(db):
    with db.info["app"].app_context():
        return backend().keys("claims/")


def test_evidence_files_are_kept_private_and_bad_ones_leave_no_object(
    client, db, login, sold_twice
):
    _artist, claimed, *_ = sold_twice
    from io import BytesIO

    refused = file_claim(
        client, claimed, evidence=[(BytesIO(b"MZ\x90\x00 an executable"), "proof.exe")]
    )
    assert refused.status_code == 422
    assert "not an image" in refused.get_data(True)
    assert db.scalar(select(func.count()).select_from(Claim)) == 0
    assert stored(db) == []

    picture = images.png(5)
    accepted = file_claim(
        client,
        claimed,
        evidence=[(BytesIO(picture), "sketch.png"), (BytesIO(b"%PDF-1.4 draft"), "a.pdf")],
    )
    assert accepted.status_code == 302
    claim = db.scalar(select(Claim))
    assert len(stored(db)) == 2
    file = claim.files[0]
    assert client.get(f"/admin/claims/{claim.id}/files/{file.id}").status_code in (302, 401, 403)
    login(make_admin(db))
    got = client.get(f"/admin/claims/{claim.id}/files/{file.id}")
    assert got.data == picture
    assert got.headers["Content-Type"] == "image/png"
    assert "attachment" in got.headers["Content-Disposition"]
    assert client.get(f"/admin/claims/{claim.id + 1}/files/{file.id}").status_code == 404


def test_a_forged_or_foreign_status_link_is_404(client, db, sold_twice):
    _artist, claimed, *_ = sold_twice
    location = file_claim(client, claimed).headers["Location"]
    token = location.rsplit("/", 1)[1]
    assert client.get(f"/claims/status/{token[:-2]}xx").status_code == 404
    assert client.get("/claims/status/not-a-token").status_code == 404


ADMIN_PAGES = ["/admin/claims", "/admin/claims/1", "/admin/audit"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_for_admins_only(client, db, login, path):
    assert client.get(path).status_code in (302, 401)
    login(make_buyer(db))
    assert client.get(path).status_code == 403
