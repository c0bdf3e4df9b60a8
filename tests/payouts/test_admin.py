"""The admin payouts page: the next run and who waits, last runs, failures, payouts in transit,
the run button (queued once with Redis, run in the request without) and the check against
Stripe; admins only, CSRF on the button."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from marketplace import jobs
from marketplace.db import get_database, transaction
from marketplace.payments import gateway
from marketplace.payouts import services as payouts
from marketplace.payouts.admin_views import ADMIN_RUN_JOB_ID
from marketplace.payouts.models import (
    Payout,
    PayoutReversal,
    PayoutRun,
    PayoutStatus,
    ReversalStatus,
    RunStatus,
)
from tests.conftest import make_test_app
from tests.factories import PASSWORD, make_admin, make_artist, make_buyer
from tests.payouts.support import onboard, refund, run, sell


@pytest.fixture(params=["env"])
def jobs_backend(request):
    """ "env": as the suite runs (REDIS_URL or not); "inline" / "rq" force one."""
    return request.param


@pytest.fixture
def app_config(stripe_config, jobs_backend, request):
    config = {**stripe_config, "PAYOUT_HOLD_DAYS": 0, "PAYOUT_MINIMUM_MINOR": 1000}
    if jobs_backend == "inline":
        config |= {"REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://"}
    elif jobs_backend == "rq":
        url = request.getfixturevalue("redis_url")
        config |= {"REDIS_URL": url, "RATELIMIT_STORAGE_URI": url}
    return config


def page(client) -> str:
    response = client.get("/admin/payouts")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def table(html: str, testid: str) -> str:
    found = re.search(rf'<table class="table" data-testid="{testid}">(.*?)</table>', html, re.S)
    assert found, f"no {testid} table"
    return found.group(1)


def sync(db, account_id):
    with db.info["app"].app_context(), transaction(db) as session:
        payouts.sync_account(session, account_id)
    db.rollback()


def test_the_page_shows_who_the_next_run_pays_and_who_waits_and_why(
    client, db, login, run_jobs, stripe_emulator
):
    buyer = make_buyer(db)
    ada = make_artist(db, display_name="Ada")
    bea = make_artist(db, display_name="Bea")
    cy = make_artist(db, display_name="Cy")
    dee = make_artist(db, display_name="Dee")
    onboard(db, ada, stripe_emulator)
    onboard(db, cy, stripe_emulator)
    restricted = onboard(db, dee, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)  # 10.00
    sell(db, buyer, ada, 2500, run_jobs)  # + 20.00, a second transfer
    sell(db, buyer, bea, 1250, run_jobs)  # not onboarded
    sell(db, buyer, cy, 500, run_jobs)  # 4.00: below the minimum
    sell(db, buyer, dee, 1250, run_jobs)
    stripe_emulator.restrict_account(restricted)
    sync(db, restricted)
    login(make_admin(db))

    html = page(client)
    upcoming = table(html, "upcoming")
    assert "Ada" in upcoming
    assert "$30.00" in upcoming
    assert re.search(r"\$30\.00</td><td>2</td>", upcoming)
    assert "Bea" not in upcoming
    waiting = table(html, "waiting")
    assert re.search(r"Bea</a></td><td>\$10\.00</td><td>payouts not set up yet", waiting)
    assert re.search(r"Cy</a></td><td>\$4\.00</td><td>below the minimum payout", waiting)
    assert re.search(r"Dee</a></td><td>\$10\.00</td><td>Stripe has restricted payouts", waiting)
    totals = table(html, "upcoming-totals")
    assert "<td>USD</td><td>1</td><td>$30.00</td><td>2</td><td>3</td><td>$24.00</td>" in totals
    assert "No payout run yet." in html
    assert "No failures." in html
    assert "Nothing in transit." in html


def test_the_page_shows_runs_failures_and_payouts_in_transit(
    client, db, login, run_jobs, stripe_emulator, monkeypatch
):
    buyer = make_buyer(db)
    ada, dee = make_artist(db, display_name="Ada"), make_artist(db, display_name="Dee")
    eve, fay = make_artist(db, display_name="Eve"), make_artist(db, display_name="Fay")
    onboard(db, ada, stripe_emulator)
    restricted = onboard(db, dee, stripe_emulator)
    eve_account = onboard(db, eve, stripe_emulator)
    fay_account = onboard(db, fay, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    sell(db, buyer, dee, 1250, run_jobs)
    eve_order = sell(db, buyer, eve, 2500, run_jobs)
    stripe_emulator.restrict_account(restricted)
    sync(db, restricted)
    assert run(db).paid == 2  # Ada and Eve; Dee's payout fails: restricted

    stripe_emulator.set_balance(eve_account, 0)  # Eve withdrew it: the reversal will fail
    refund(db, eve_order)
    run_jobs()
    assert db.scalar(select(PayoutReversal)).status is ReversalStatus.FAILED

    sell(db, buyer, fay, 1250, run_jobs)
    create_transfer = gateway.create_transfer

    def timeout_for_fay(**kwargs):
        if kwargs["destination"] == fay_account:
            raise gateway.PaymentsUnavailable("timed out", code="timeout")
        return create_transfer(**kwargs)

    monkeypatch.setattr(payouts.payments, "create_transfer", timeout_for_fay)
    assert run(db).unknown == 1  # Fay's payout waits for Stripe's answer
    login(make_admin(db))

    html = page(client)
    runs = table(html, "runs")
    assert runs.count("<td>cli</td><td>finished</td>") == 2
    assert re.search(r"<td>finished</td><td>2</td><td>\$30\.00</td><td>1</td><td>0</td>", runs)
    assert "1 payout(s) await Stripe&#39;s answer" in runs
    failures = table(html, "failures")
    assert re.search(
        r"payout #\d+</td><td>Dee</td><td>\$10\.00</td><td>account_restricted", failures
    )
    assert re.search(
        r"reversal #\d+</td><td>Eve</td><td>\$20\.00</td><td>insufficient_funds", failures
    )
    in_transit = table(html, "in-transit")
    assert re.search(r"Fay</td><td>\$10\.00</td><td>1</td>", in_transit)

    sell(db, buyer, fay, 1875, run_jobs)  # more for Fay: it waits for the first payout
    waiting = table(page(client), "waiting")
    assert re.search(r"Fay</a></td><td>\$15\.00</td><td>a payout is still in transit", waiting)


@pytest.mark.parametrize("jobs_backend", ["inline"], indirect=True)
def test_without_redis_the_button_runs_the_payouts_in_the_request(
    client, db, login, run_jobs, stripe_emulator
):
    ada = make_artist(db)
    onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    login(make_admin(db))
    response = client.post("/admin/payouts/run", follow_redirects=True)
    assert response.status_code == 200
    assert re.search(r"Payout run \d+ finished: 1 paid \(\$10\.00\), 0 failed", response.text)
    [payout_run] = db.scalars(select(PayoutRun)).all()
    assert (payout_run.trigger, payout_run.status, payout_run.paid_count) == (
        "admin",
        RunStatus.FINISHED,
        1,
    )
    assert db.scalar(select(Payout)).status is PayoutStatus.PAID


@pytest.mark.parametrize("jobs_backend", ["rq"], indirect=True)
def test_with_redis_a_double_click_queues_one_run(
    app, client, db, login, run_jobs, stripe_emulator
):
    ada = make_artist(db)
    onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    login(make_admin(db))
    for _ in range(2):
        response = client.post("/admin/payouts/run", follow_redirects=True)
        assert "Payout run queued" in response.text
    assert "A payout run started from this page is queued." in page(client)
    assert jobs.queue(app).count == 1
    assert db.scalar(select(func.count()).select_from(PayoutRun)) == 0
    assert run_jobs() == 1
    db.rollback()
    [payout_run] = db.scalars(select(PayoutRun)).all()
    assert (payout_run.trigger, payout_run.paid_count) == ("admin", 1)
    html = page(client)
    assert "<td>admin</td><td>finished</td><td>1</td><td>$10.00</td>" in table(html, "runs")
    # Once that run is over, the button queues a new one under the same id.
    client.post("/admin/payouts/run")
    assert jobs.queue(app).get_job_ids() == [ADMIN_RUN_JOB_ID]


def test_check_against_stripe_says_they_agree_or_lists_differences(
    client, db, login, run_jobs, stripe_emulator
):
    ada = make_artist(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    assert run(db).paid == 1
    login(make_admin(db))
    html = client.get("/admin/payouts/reconcile").get_data(as_text=True)
    assert "The ledger, payouts and Stripe agree." in html

    with db.info["app"].app_context():
        stray = gateway.create_transfer(
            amount_minor=700,
            currency="usd",
            destination=account,
            transfer_group=None,
            idempotency_key=f"dashboard-{account}",
        )
    html = client.get("/admin/payouts/reconcile").get_data(as_text=True)
    assert "1 difference(s)" in html
    assert f"Stripe transfer {stray.id} (700 usd to {account}) matches no payout" in html


# --- Who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/payouts", "/admin/payouts/reconcile"])
def test_artists_and_buyers_are_refused_and_visitors_sent_to_log_in(client, db, login, path):
    assert client.get(path).status_code == 302  # to the login page
    assert "/accounts/login" in client.get(path).headers["Location"]
    for user in (make_artist(db), make_buyer(db)):
        login(user)
        assert client.get(path).status_code == 403
        client.post("/accounts/logout")


def test_only_an_admin_can_start_a_run(client, db, login, run_jobs, stripe_emulator):
    ada = make_artist(db)
    onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    response = client.post("/admin/payouts/run")
    assert response.status_code == 302
    assert "/accounts/login" in response.headers["Location"]
    for user in (ada, make_buyer(db)):
        login(user)
        assert client.post("/admin/payouts/run").status_code == 403
        client.post("/accounts/logout")
    run_jobs()
    assert db.scalar(select(func.count()).select_from(PayoutRun)) == 0
    assert db.scalar(select(func.count()).select_from(Payout)) == 0


def test_the_run_button_needs_the_forms_csrf_token(
    database_url, tmp_path, stripe_config, db, run_jobs, stripe_emulator
):
    ada = make_artist(db)
    onboard(db, ada, stripe_emulator)
    sell(db, make_buyer(db), ada, 1250, run_jobs)
    admin = make_admin(db)
    app = make_test_app(
        database_url,
        tmp_path,
        **stripe_config,
        PAYOUT_HOLD_DAYS=0,
        WTF_CSRF_ENABLED=True,
        REDIS_URL=None,
        RATELIMIT_STORAGE_URI="memory://",
    )
    client = app.test_client()
    login_page = client.get("/accounts/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    response = client.post(
        "/accounts/login",
        data={"csrf_token": token, "email": admin.email, "password": PASSWORD},
    )
    assert response.status_code == 302, response.get_data(as_text=True)

    refused = client.post("/admin/payouts/run")
    assert refused.status_code == 400
    db.rollback()
    assert db.scalar(select(func.count()).select_from(PayoutRun)) == 0

    html = client.get("/admin/payouts").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    accepted = client.post("/admin/payouts/run", data={"csrf_token": token})
    assert accepted.status_code == 302
    db.rollback()
    assert db.scalar(select(PayoutRun.paid_count)) == 1
    get_database(app).engine.dispose()
