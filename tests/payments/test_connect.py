"""Stripe Connect for payouts: the gateway and the emulator through the real `stripe` library.

The session's emulator is shared, so each test names its own accounts and transfer groups.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
import stripe
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from marketplace.payments import gateway
from tests.conftest import StripeEmulator, make_test_app, running_emulator


@pytest.fixture
def app_config(stripe_config: dict[str, Any]) -> dict[str, Any]:
    return stripe_config


@pytest.fixture
def stripe_app(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


def _key(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def _onboarded_account(emulator: StripeEmulator) -> gateway.ConnectedAccountInfo:
    account = gateway.create_connected_account(
        email="artist@example.org", country="us", idempotency_key=_key("account")
    )
    return _onboarded_account_from(emulator, account.id)


def _onboarded_account_from(
    emulator: StripeEmulator, account_id: str
) -> gateway.ConnectedAccountInfo:
    link = gateway.create_account_link(
        account_id, refresh_url="http://127.0.0.1/refresh", return_url="http://127.0.0.1/done"
    )
    assert emulator.visit_onboarding_link(link) == "http://127.0.0.1/done"
    return gateway.retrieve_connected_account(account_id)


def _transfer(
    account_id: str, amount_minor: int, group: str | None = None, **extra: Any
) -> gateway.TransferInfo:
    return gateway.create_transfer(
        amount_minor=amount_minor,
        currency=extra.pop("currency", "usd"),
        destination=account_id,
        transfer_group=group,
        idempotency_key=_key("payout"),
        **extra,
    )


def _paid_charge(amount_minor: int, group: str) -> str:
    pi = gateway.create_payment_intent(
        amount_minor=amount_minor,
        currency="usd",
        idempotency_key=_key("intent"),
        transfer_group=group,
    )
    paid = gateway.confirm_payment_intent(
        pi.id, payment_method="pm_card_visa", idempotency_key=_key("confirm")
    )
    assert paid.latest_charge is not None
    return paid.latest_charge


def _events(receiver: Any, kind: str) -> list[gateway.WebhookEvent]:
    events = [gateway.verify_webhook(body, signature) for body, signature in receiver.received]
    return [e for e in events if e.type == kind]


# --- Accounts: requirements, restriction, login links -------------------------------------


def test_new_account_lists_what_stripe_needs_until_onboarding_is_done(stripe_app, stripe_emulator):
    account = gateway.create_connected_account(
        email="artist@example.org", country="us", idempotency_key=_key("account")
    )
    assert not account.details_submitted
    assert not account.payouts_enabled
    assert not account.charges_enabled
    assert {"external_account", "individual.dob.day", "tos_acceptance.date"} <= set(
        account.requirements_due
    )
    assert list(account.requirements_due) == sorted(set(account.requirements_due))
    assert account.disabled_reason == "requirements.past_due"
    raw = gateway._client().v1.accounts.retrieve(account.id)
    assert raw.capabilities is not None
    assert raw.capabilities.transfers == "inactive"
    assert raw.requirements is not None
    assert raw.requirements.pending_verification == []

    onboarded = _onboarded_account_from(stripe_emulator, account.id)
    assert onboarded.details_submitted
    assert onboarded.payouts_enabled
    assert onboarded.charges_enabled
    assert (onboarded.requirements_due, onboarded.disabled_reason) == ((), None)
    raw = gateway._client().v1.accounts.retrieve(account.id)
    assert raw.capabilities is not None
    assert raw.capabilities.transfers == "active"
    assert raw.requirements is not None
    assert (raw.requirements.currently_due, raw.requirements.eventually_due) == ([], [])
    assert (raw.requirements.past_due, raw.requirements.disabled_reason) == ([], None)


def test_restricted_account_refuses_transfers_until_enabled_again(stripe_app, stripe_emulator):
    account = _onboarded_account(stripe_emulator)
    stripe_emulator.restrict_account(account.id)

    restricted = gateway.retrieve_connected_account(account.id)
    assert restricted.details_submitted
    assert not restricted.payouts_enabled
    assert not restricted.charges_enabled
    assert restricted.requirements_due == ("individual.verification.document",)
    assert restricted.disabled_reason == "requirements.past_due"
    with pytest.raises(gateway.PaymentsError, match="capabilities") as refused:
        _transfer(account.id, 300)
    assert not isinstance(refused.value, gateway.PaymentsUnavailable)
    assert list(gateway.list_transfers(destination=account.id)) == []

    stripe_emulator.enable_account(account.id)
    enabled = gateway.retrieve_connected_account(account.id)
    assert enabled.payouts_enabled
    assert (enabled.requirements_due, enabled.disabled_reason) == ((), None)
    assert _transfer(account.id, 300).amount_minor == 300


def test_restrict_and_enable_send_signed_account_updated_events(
    stripe_app, stripe_emulator, stripe_webhooks, receiver
):
    account = _onboarded_account(stripe_emulator)
    stripe_webhooks(receiver.url, stripe_app.config["STRIPE_WEBHOOK_SECRET"])
    stripe_emulator.restrict_account(account.id)
    stripe_emulator.enable_account(account.id)
    stripe_emulator.flush_webhooks()

    # Stripe does not promise delivery order (nor does the emulator, which sends events from
    # its own tasks): one restricted and one enabled event arrive, in either order.
    updated = sorted(
        (e.object for e in _events(receiver, "account.updated")),
        key=lambda o: o["payouts_enabled"],
    )
    assert [(o["id"], o["payouts_enabled"]) for o in updated] == [
        (account.id, False),
        (account.id, True),
    ]
    assert updated[0]["requirements"]["disabled_reason"] == "requirements.past_due"
    assert updated[0]["capabilities"] == {"transfers": "inactive"}
    assert updated[1]["requirements"]["currently_due"] == []


def test_unknown_account_hooks_answer_404(stripe_emulator):
    with pytest.raises(HTTPError) as missing:
        stripe_emulator.restrict_account("acct_nobody00000000")
    assert missing.value.code == 404


def test_login_link_opens_the_emulated_express_dashboard(stripe_app, stripe_emulator):
    account = _onboarded_account(stripe_emulator)
    url = gateway.create_login_link(account.id)
    assert url == f"{stripe_emulator.url}/_express/{account.id}"

    with urlopen(url, timeout=30) as response:  # noqa: S310 - the loopback emulator
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
    assert "Express dashboard (emulated)" in page
    assert account.id in page
    assert "src=" not in page  # nothing loaded from elsewhere
    assert "href=" not in page


def test_login_link_needs_an_onboarded_express_account(stripe_app, stripe_emulator):
    pending = gateway.create_connected_account(
        email="artist@example.org", country="us", idempotency_key=_key("account")
    )
    with pytest.raises(gateway.PaymentsError, match="onboarding"):
        gateway.create_login_link(pending.id)

    standard = gateway._client().v1.accounts.create(params={"type": "standard"})
    _onboarded_account_from(stripe_emulator, standard.id)
    with pytest.raises(gateway.PaymentsError, match="Express"):
        gateway.create_login_link(standard.id)

    with pytest.raises(gateway.PaymentNotFound):
        gateway.create_login_link("acct_nobody00000000")


# --- Transfers: source_transaction, listing ------------------------------------------------


def test_transfers_from_a_charge_may_not_exceed_it(stripe_app, stripe_emulator):
    group = _key("order")
    charge = _paid_charge(2500, group)
    artist, other = _onboarded_account(stripe_emulator), _onboarded_account(stripe_emulator)

    first = _transfer(artist.id, 1500, group, source_transaction=charge)
    assert (first.source_transaction, first.transfer_group) == (charge, group)
    assert (first.amount_reversed_minor, first.reversed) == (0, False)
    assert abs(first.created - time.time()) < 60
    second = _transfer(other.id, 1000, "another-group", source_transaction=charge)
    assert second.transfer_group == "another-group"  # Stripe does not tie the groups together

    with pytest.raises(gateway.PaymentsError) as too_much:
        _transfer(artist.id, 1, group, source_transaction=charge)
    assert too_much.value.code == "balance_insufficient"
    assert not isinstance(too_much.value, gateway.PaymentsUnavailable)
    assert [t.id for t in gateway.list_transfers(transfer_group=group)] == [first.id]


def test_transfer_from_an_unknown_charge_or_in_another_currency_is_refused(
    stripe_app, stripe_emulator
):
    artist = _onboarded_account(stripe_emulator)
    with pytest.raises(gateway.PaymentNotFound) as unknown:
        _transfer(artist.id, 100, source_transaction="ch_nosuchcharge0000")
    assert unknown.value.code == "resource_missing"

    charge = _paid_charge(900, _key("order"))
    with pytest.raises(gateway.PaymentsError, match="currency"):
        _transfer(artist.id, 100, currency="eur", source_transaction=charge)
    assert list(gateway.list_transfers(destination=artist.id)) == []


def test_transfers_list_by_group_destination_and_creation_time(stripe_app, stripe_emulator):
    group = _key("order")
    artist, other = _onboarded_account(stripe_emulator), _onboarded_account(stripe_emulator)
    made = [_transfer(artist.id, 100 + i, group) for i in range(3)]
    theirs = _transfer(other.id, 500, group)
    _transfer(artist.id, 700, _key("other-order"))

    in_group = list(gateway.list_transfers(transfer_group=group))
    assert [t.id for t in in_group] == [theirs.id] + [t.id for t in reversed(made)]  # newest first
    mine = list(gateway.list_transfers(transfer_group=group, destination=artist.id))
    assert {t.id for t in mine} == {t.id for t in made}
    later = int(time.time()) + 60
    assert list(gateway.list_transfers(transfer_group=group, created_gte=later)) == []
    assert len(list(gateway.list_transfers(transfer_group=group, created_gte=made[0].created))) == 4

    transfers = gateway._client().v1.transfers
    page = transfers.list(params={"transfer_group": group, "limit": 2})
    assert (len(page.data), page.has_more) == (2, True)
    rest = transfers.list(
        params={"transfer_group": group, "limit": 2, "starting_after": page.data[-1].id}
    )
    assert (len(rest.data), rest.has_more) == (2, False)
    every = transfers.list(params={"transfer_group": group, "limit": 1}).auto_paging_iter()
    assert [t.id for t in every] == [t.id for t in in_group]
    before = transfers.list(params={"transfer_group": group, "created": {"lt": made[0].created}})
    assert before.data == []
    within = transfers.list(
        params={"transfer_group": group, "created": {"lte": int(time.time()) + 1}}
    )
    assert len(within.data) == 4


def test_unknown_transfer_is_payment_not_found(stripe_app):
    with pytest.raises(gateway.PaymentNotFound):
        gateway.retrieve_transfer("tr_nosuchtransfer00")
    with pytest.raises(gateway.PaymentNotFound):
        gateway.create_transfer_reversal(
            "tr_nosuchtransfer00", amount_minor=100, idempotency_key=_key("reversal")
        )


# --- Reversals ----------------------------------------------------------------------------


def test_reversals_take_back_part_then_the_rest_and_no_more(stripe_app, stripe_emulator):
    artist = _onboarded_account(stripe_emulator)
    transfer = _transfer(artist.id, 1000, _key("order"))

    part = gateway.create_transfer_reversal(
        transfer.id, amount_minor=300, idempotency_key=_key("reversal"), metadata={"refund": "7"}
    )
    assert part.id.startswith("trr_")
    assert (part.transfer, part.amount_minor, part.currency) == (transfer.id, 300, "usd")
    assert part.metadata == {"refund": "7"}
    now = gateway.retrieve_transfer(transfer.id)
    assert (now.amount_reversed_minor, now.reversed) == (300, False)

    with pytest.raises(gateway.PaymentsError, match="only 700"):
        gateway.create_transfer_reversal(
            transfer.id, amount_minor=701, idempotency_key=_key("reversal")
        )
    rest = gateway.create_transfer_reversal(
        transfer.id, amount_minor=700, idempotency_key=_key("reversal")
    )
    done = gateway.retrieve_transfer(transfer.id)
    assert (done.amount_reversed_minor, done.reversed) == (1000, True)
    assert [r.id for r in gateway.list_transfer_reversals(transfer.id)] == [rest.id, part.id]
    with pytest.raises(gateway.PaymentsError, match="already fully reversed"):
        gateway.create_transfer_reversal(
            transfer.id, amount_minor=1, idempotency_key=_key("reversal")
        )

    raw = gateway._client().v1.transfers.retrieve(transfer.id)
    assert raw.reversals.object == "list"
    assert raw.reversals.total_count == 2  # type: ignore[attr-defined]
    assert raw.reversals.url == f"/v1/transfers/{transfer.id}/reversals"
    assert [r.id for r in raw.reversals.data] == [rest.id, part.id]
    one = gateway._client().v1.transfers.reversals.retrieve(transfer.id, part.id)
    assert one.object == "transfer_reversal"
    assert (one.amount, one.transfer, one.source_refund) == (300, transfer.id, None)
    assert one.destination_payment_refund is not None
    assert str(one.destination_payment_refund).startswith("pyr_")
    with pytest.raises(stripe.InvalidRequestError):
        gateway._client().v1.transfers.reversals.retrieve(transfer.id, "trr_nosuchreversal0")


def test_reversal_without_an_amount_takes_back_what_is_left(stripe_app, stripe_emulator):
    artist = _onboarded_account(stripe_emulator)
    transfer = _transfer(artist.id, 800)
    gateway.create_transfer_reversal(transfer.id, amount_minor=200, idempotency_key=_key("r"))
    rest = gateway._client().v1.transfers.reversals.create(
        transfer.id, params={"description": "refunded", "refund_application_fee": True}
    )
    assert rest.amount == 600
    assert gateway.retrieve_transfer(transfer.id).reversed


def test_reversal_beyond_the_connected_balance_is_refused(stripe_app, stripe_emulator):
    artist = _onboarded_account(stripe_emulator)
    transfer = _transfer(artist.id, 1000)
    stripe_emulator.set_balance(artist.id, 250)  # the artist paid most of it out already

    with pytest.raises(gateway.PaymentsError) as refused:
        gateway.create_transfer_reversal(
            transfer.id, amount_minor=300, idempotency_key=_key("reversal")
        )
    assert refused.value.code == "insufficient_funds"
    assert not isinstance(refused.value, gateway.PaymentsUnavailable)
    assert gateway.retrieve_transfer(transfer.id).amount_reversed_minor == 0

    gateway.create_transfer_reversal(transfer.id, amount_minor=250, idempotency_key=_key("r"))
    with pytest.raises(gateway.PaymentsError, match="Insufficient funds"):
        gateway.create_transfer_reversal(transfer.id, amount_minor=1, idempotency_key=_key("r"))

    _transfer(artist.id, 40)  # a new transfer raises the balance again
    gateway.create_transfer_reversal(transfer.id, amount_minor=40, idempotency_key=_key("r"))
    assert gateway.retrieve_transfer(transfer.id).amount_reversed_minor == 290


def test_same_idempotency_key_reverses_once(stripe_app, stripe_emulator):
    artist = _onboarded_account(stripe_emulator)
    transfer = _transfer(artist.id, 1000)
    key = _key("refund-reversal")

    first = gateway.create_transfer_reversal(transfer.id, amount_minor=400, idempotency_key=key)
    again = gateway.create_transfer_reversal(transfer.id, amount_minor=400, idempotency_key=key)
    assert again == first
    assert [r.id for r in gateway.list_transfer_reversals(transfer.id)] == [first.id]
    assert gateway.retrieve_transfer(transfer.id).amount_reversed_minor == 400

    with pytest.raises(gateway.PaymentsError) as other:
        gateway.create_transfer_reversal(transfer.id, amount_minor=500, idempotency_key=key)
    assert other.value.code == "idempotency_error"


def test_transfer_and_reversal_send_signed_events(
    stripe_app, stripe_emulator, stripe_webhooks, receiver
):
    artist = _onboarded_account(stripe_emulator)
    stripe_webhooks(receiver.url, stripe_app.config["STRIPE_WEBHOOK_SECRET"])
    transfer = _transfer(artist.id, 600, _key("order"))
    gateway.create_transfer_reversal(transfer.id, amount_minor=600, idempotency_key=_key("r"))
    stripe_emulator.flush_webhooks()

    (created,) = _events(receiver, "transfer.created")
    assert (created.object["id"], created.object["amount"]) == (transfer.id, 600)
    assert created.object["reversals"]["total_count"] == 0
    (reversed_,) = _events(receiver, "transfer.reversed")
    assert reversed_.object["id"] == transfer.id
    assert (reversed_.object["amount_reversed"], reversed_.object["reversed"]) == (600, True)
    assert reversed_.object["reversals"]["data"][0]["amount"] == 600
    (updated,) = _events(receiver, "transfer.updated")
    assert updated.object["amount_reversed"] == 600


# --- Errors that mean "try again later" ---------------------------------------------------


def test_a_request_still_running_with_the_same_key_is_a_conflict(
    app_config, database_url, tmp_path
):
    """Stripe answers 409 while a request with the same idempotency key is in progress; the
    outcome is unknown, so the caller must retry with the same key, not give up."""

    def busy(environ: Any, start_response: Any) -> Any:
        Request(environ).get_data()
        body = (
            '{"error": {"type": "idempotency_error", "code": "idempotency_key_in_use", '
            '"message": "There is currently another in-progress request using this key."}}'
        )
        return Response(body, status=409, content_type="application/json")(environ, start_response)

    server = make_server("127.0.0.1", 0, busy, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = {**app_config, "STRIPE_API_BASE": f"http://127.0.0.1:{server.server_port}"}
    app = make_test_app(database_url, tmp_path, **config)
    try:
        with app.app_context(), pytest.raises(gateway.PaymentsConflict) as conflict:
            gateway.create_transfer_reversal("tr_x", amount_minor=100, idempotency_key="r-1")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    assert isinstance(conflict.value, gateway.PaymentsUnavailable)
    assert conflict.value.code == "idempotency_key_in_use"


@pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")
def test_emulator_answers_409_while_the_first_request_with_a_key_runs():
    """The emulator's idempotency layer, in process, around a request that waits for us."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from marketplace.payments import emulator

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow(request: web.Request) -> web.StreamResponse:
            await release.wait()
            return web.json_response({"id": "slow_1"})

        app = web.Application(middlewares=[emulator._extensions_middleware])
        app.router.add_post("/v1/slow", slow)
        headers = {"Authorization": "Bearer sk_test_x", "Idempotency-Key": _key("slow")}
        async with TestClient(TestServer(app)) as client:
            first = asyncio.ensure_future(client.post("/v1/slow", data={"a": "1"}, headers=headers))
            for _ in range(500):  # until the first request is inside the handler
                if emulator._state["in_flight"]:
                    break
                await asyncio.sleep(0.01)
            busy = await asyncio.wait_for(
                client.post("/v1/slow", data={"a": "1"}, headers=headers), timeout=10
            )
            assert busy.status == 409
            error = (await busy.json())["error"]
            assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
            release.set()
            assert (await first).status == 200
            replay = await client.post("/v1/slow", data={"a": "1"}, headers=headers)
            assert replay.status == 200
            assert replay.headers["Idempotent-Replayed"] == "true"

    asyncio.run(scenario())


# --- The emulator's state file ------------------------------------------------------------


def test_accounts_transfers_and_reversals_survive_an_emulator_restart(
    app_config, database_url, tmp_path: Path
):
    state = tmp_path / "stripe-state.pickle"
    with running_emulator("--state-file", str(state)) as first:
        app = make_test_app(database_url, tmp_path, **{**app_config, "STRIPE_API_BASE": first.url})
        with app.app_context():
            account = _onboarded_account(first)
            transfer = _transfer(account.id, 900, "order-restart")
            reversal = gateway.create_transfer_reversal(
                transfer.id, amount_minor=400, idempotency_key="restart-reversal"
            )
            first.set_balance(account.id, 100)
    assert state.exists()

    with running_emulator("--state-file", str(state)) as second:
        app = make_test_app(database_url, tmp_path, **{**app_config, "STRIPE_API_BASE": second.url})
        with app.app_context():
            again = gateway.retrieve_connected_account(account.id)
            assert (again.payouts_enabled, again.requirements_due) == (True, ())
            kept = gateway.retrieve_transfer(transfer.id)
            assert (kept.amount_reversed_minor, kept.transfer_group) == (400, "order-restart")
            assert gateway.list_transfer_reversals(transfer.id) == [reversal]
            with pytest.raises(gateway.PaymentsError) as refused:  # the balance was kept too
                gateway.create_transfer_reversal(
                    transfer.id, amount_minor=101, idempotency_key="restart-2"
                )
            assert refused.value.code == "insufficient_funds"
