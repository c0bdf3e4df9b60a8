"""The admin console's account actions: each needs a reason and lands in the audit log."""

from __future__ import annotations

from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.governance.models import AdminAction
from tests.conftest import PASSWORD
from tests.factories import make_admin, make_api_token, make_artist, make_buyer


def fresh(db):
    """The test's session reading what the app committed since (get() alone answers from the
    identity map without asking the database)."""
    db.rollback()
    db.expire_all()
    return db


def actions(db):
    fresh(db)
    return [(a.action, a.target_id, a.reason) for a in db.scalars(select(AdminAction))]


def test_suspending_a_buyer_ends_their_sessions_and_tokens_and_is_logged(app, db, login):
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    admin = make_admin(db)
    buyer_client, admin_client = app.test_client(), app.test_client()
    buyer_client.post("/accounts/login", data={"email": buyer.email, "password": PASSWORD})
    admin_client.post("/accounts/login", data={"email": admin.email, "password": PASSWORD})
    assert buyer_client.get("/bundles").status_code == 200

    refused = admin_client.post(f"/admin/users/{buyer.id}/suspend", data={"reason": ""})
    assert refused.status_code == 302
    assert fresh(db).get(User, buyer.id).is_active
    done = admin_client.post(
        f"/admin/users/{buyer.id}/suspend",
        data={"reason": "Chargeback fraud"},
        follow_redirects=True,
    )
    assert "Done: suspend" in done.get_data(True)
    assert not fresh(db).get(User, buyer.id).is_active
    assert buyer_client.get("/bundles").status_code == 302  # logged out everywhere
    api = buyer_client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    back = admin_client.post(
        f"/admin/users/{buyer.id}/reactivate",
        data={"reason": "Bank confirmed"},
        follow_redirects=True,
    )
    assert "Done: reactivate" in back.get_data(True), back.get_data(True)[-4000:]
    assert actions(db) == [
        ("user.suspend", buyer.id, "Chargeback fraud"),
        ("user.reactivate", buyer.id, "Bank confirmed"),
    ]
    audit = admin_client.get("/admin/audit").get_data(True)
    assert "Chargeback fraud" in audit
    assert "user.reactivate" in audit


def test_an_admin_cannot_suspend_themselves_or_another_admin(app, client, db, login):
    admin = make_admin(db)
    other = make_admin(db, email="second-admin@example.com")
    login(admin)
    for target in (admin, other):
        page = client.post(
            f"/admin/users/{target.id}/suspend", data={"reason": "test"}, follow_redirects=True
        )
        assert "cannot suspend" in page.get_data(True) or "command line" in page.get_data(True)
    assert fresh(db).get(User, admin.id).is_active
    assert db.get(User, other.id).is_active
    assert actions(db) == []
    assert client.post("/admin/users/999999/suspend", data={"reason": "x"}).status_code == 404


def test_the_identity_badge_shows_on_the_public_profile(client, db, login):
    artist = make_artist(db, display_name="Ada Okafor")
    login(make_admin(db))
    profile = f"/artists/{artist.artist.id}"
    assert 'data-testid="identity-verified"' not in client.get(profile).get_data(True)
    client.post(f"/admin/users/{artist.id}/verify", data={"reason": "Passport checked"})
    assert 'data-testid="identity-verified"' in client.get(profile).get_data(True)
    client.post(f"/admin/users/{artist.id}/unverify", data={"reason": "Document expired"})
    assert 'data-testid="identity-verified"' not in client.get(profile).get_data(True)
    assert [a[0] for a in actions(db)] == ["artist.verify_identity", "artist.unverify_identity"]


def test_the_user_search_takes_wildcards_literally(client, db, login):
    make_buyer(db, email="a_b@example.com")
    make_buyer(db, email="axb@example.com")
    login(make_admin(db))
    page = client.get("/admin/users", query_string={"email": "a_b"}).get_data(True)
    assert "a_b@example.com" in page
    assert "axb@example.com" not in page


def test_a_failed_job_is_listed_with_its_error_and_can_be_retried(app, client, db, login):
    from marketplace import jobs

    if jobs.redis_connection(app) is None:
        return  # inline jobs: the page says so (checked below)
    with app.app_context():
        jobs.enqueue("marketplace.governance.tasks.no_such_task", 7)
    from rq import SimpleWorker

    jobs.set_worker_app(app)
    with app.app_context():
        SimpleWorker([jobs.queue(app)], connection=jobs.redis_connection(app)).work(burst=True)
    login(make_admin(db))
    page = client.get("/admin/jobs").get_data(True)
    assert "marketplace.governance.tasks.no_such_task(7)" in page
    job_id = page.split('name="job_id" value="')[1].split('"')[0]
    assert (
        client.post("/admin/jobs/retry", data={"job_id": job_id, "reason": ""}).status_code == 302
    )
    client.post("/admin/jobs/retry", data={"job_id": job_id, "reason": "Fixed the data"})
    assert ("job.retry", None, "Fixed the data") in actions(db)
    assert "No failed jobs" in client.get("/admin/jobs").get_data(True)


def test_the_ledger_page_verifies_in_a_job_and_looks_up_entries(app, client, db, login, run_jobs):
    artist = make_artist(db)  # sign-up writes nothing to the ledger; a work does
    from tests.buyers.support import DONATE, work_item

    work_item(db, artist, DONATE)
    login(make_admin(db))
    page = client.get("/admin/ledger").get_data(True)
    assert 'data-testid="tree-size"' in page
    assert client.get("/admin/ledger?seq=0").headers["Location"].endswith("/ledger/entries/0")
    assert "No ledger entry" in client.get(
        "/admin/ledger?seq=99999", follow_redirects=True
    ).get_data(True)
    assert "No ledger entry" in client.get(
        "/admin/ledger?seq=%C2%B2", follow_redirects=True
    ).get_data(True)
    client.post("/admin/ledger")
    run_jobs()
    page = client.get("/admin/ledger").get_data(True)
    assert "ledger OK" in page
    assert [a[0] for a in actions(db)] == ["ledger.verify"]
