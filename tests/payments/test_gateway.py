"""The gateway against the emulator: the real `stripe` library over HTTP, as in production."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from marketplace.payments import gateway
from marketplace.payments.signing import stripe_signature


@pytest.fixture
def app_config(stripe_config: dict[str, Any]) -> dict[str, Any]:
    return stripe_config


@pytest.fixture
def stripe_app(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


def _paid_intent(key: str, amount_minor: int = 2500, **extra: Any) -> gateway.PaymentIntentInfo:
    pi = gateway.create_payment_intent(
        amount_minor=amount_minor,
        currency="usd",
        idempotency_key=f"{key}-create",
        metadata={"order": key},
        transfer_group=f"order-{key}",
        **extra,
    )
    return gateway.confirm_payment_intent(
        pi.id, payment_method="pm_card_visa", idempotency_key=f"{key}-confirm"
    )


def test_payment_intent_keeps_amount_currency_metadata_and_transfer_group(stripe_app):
    created = gateway.create_payment_intent(
        amount_minor=1999,
        currency="USD",
        idempotency_key="order-41-intent",
        metadata={"order": "41"},
        transfer_group="order-41",
        description="Bundle 7",
    )
    assert created.id.startswith("pi_")
    assert created.status == "requires_payment_method"
    assert created.client_secret is not None
    assert created.client_secret.startswith(created.id + "_secret_")

    again = gateway.retrieve_payment_intent(created.id)
    assert (again.amount_minor, again.currency) == (1999, "usd")
    assert again.metadata == {"order": "41"}
    assert again.transfer_group == "order-41"
    assert again.latest_charge is None


def test_test_card_pays_and_the_charge_carries_the_transfer_group(stripe_app):
    paid = _paid_intent("42")
    assert paid.status == "succeeded"
    assert paid.latest_charge is not None
    assert paid.latest_charge.startswith("ch_")

    charge = gateway.retrieve_charge(paid.latest_charge)
    assert charge.status == "succeeded"
    assert charge.amount_minor == 2500
    assert charge.payment_intent == paid.id
    assert charge.transfer_group == "order-42"
    assert not charge.refunded


def test_declined_card_raises_payment_declined_and_a_new_card_can_pay(stripe_app):
    pi = gateway.create_payment_intent(
        amount_minor=700, currency="usd", idempotency_key="order-43-intent"
    )
    with pytest.raises(gateway.PaymentDeclined) as declined:
        gateway.confirm_payment_intent(
            pi.id, payment_method="pm_card_chargeDeclined", idempotency_key="order-43-try-1"
        )
    assert declined.value.code == "card_declined"
    assert "declined" in declined.value.message
    assert gateway.retrieve_payment_intent(pi.id).status == "requires_payment_method"

    paid = gateway.confirm_payment_intent(
        pi.id, payment_method="pm_card_visa", idempotency_key="order-43-try-2"
    )
    assert paid.status == "succeeded"


def test_same_idempotency_key_returns_the_same_intent_and_refuses_other_parameters(stripe_app):
    first = gateway.create_payment_intent(
        amount_minor=1200, currency="usd", idempotency_key="order-44-intent", transfer_group="o44"
    )
    replay = gateway.create_payment_intent(
        amount_minor=1200, currency="usd", idempotency_key="order-44-intent", transfer_group="o44"
    )
    assert replay == first

    with pytest.raises(gateway.PaymentsError) as conflict:
        gateway.create_payment_intent(
            amount_minor=9900, currency="usd", idempotency_key="order-44-intent"
        )
    assert conflict.value.code == "idempotency_error"
    assert gateway.retrieve_payment_intent(first.id).amount_minor == 1200


def test_replayed_confirm_charges_once(stripe_app):
    pi = gateway.create_payment_intent(
        amount_minor=800, currency="usd", idempotency_key="order-45-intent"
    )
    first = gateway.confirm_payment_intent(
        pi.id, payment_method="pm_card_visa", idempotency_key="order-45-confirm"
    )
    second = gateway.confirm_payment_intent(
        pi.id, payment_method="pm_card_visa", idempotency_key="order-45-confirm"
    )
    assert first.latest_charge == second.latest_charge
    assert second.status == "succeeded"


def test_refunds_in_part_then_in_full(stripe_app):
    paid = _paid_intent("46", amount_minor=3000)
    part = gateway.refund_payment_intent(
        paid.id, idempotency_key="refund-46-1", amount_minor=1000, metadata={"order": "46"}
    )
    assert (part.amount_minor, part.currency, part.status) == (1000, "usd", "succeeded")
    assert part.charge == paid.latest_charge
    assert part.payment_intent == paid.id
    assert part.metadata == {"order": "46"}
    assert paid.latest_charge is not None
    assert gateway.retrieve_charge(paid.latest_charge).amount_refunded_minor == 1000

    replay = gateway.refund_payment_intent(
        paid.id, idempotency_key="refund-46-1", amount_minor=1000, metadata={"order": "46"}
    )
    assert replay.id == part.id  # a retried refund refunds once

    rest = gateway.refund_payment_intent(paid.id, idempotency_key="refund-46-2")
    assert rest.amount_minor == 3000  # the emulator refunds the charge amount when none is given
    charge = gateway.retrieve_charge(paid.latest_charge)
    assert charge.refunded


def test_unknown_payment_intent_is_payment_not_found(stripe_app):
    with pytest.raises(gateway.PaymentNotFound):
        gateway.retrieve_payment_intent("pi_doesnotexist000")


def test_unreachable_stripe_is_payments_unavailable(app_config, database_url, tmp_path):
    from tests.conftest import make_test_app

    server = make_server("127.0.0.1", 0, lambda e, s: [])  # type: ignore[arg-type]
    closed = f"http://127.0.0.1:{server.server_port}"
    server.server_close()  # nothing listens there now
    app = make_test_app(database_url, tmp_path, **{**app_config, "STRIPE_API_BASE": closed})
    with app.app_context(), pytest.raises(gateway.PaymentsUnavailable) as unavailable:
        gateway.create_payment_intent(amount_minor=500, currency="usd", idempotency_key="o-47")
    assert "nothing was charged" in unavailable.value.message


def test_artist_onboards_then_receives_a_transfer_in_the_orders_group(stripe_app, stripe_emulator):
    account = gateway.create_connected_account(
        email="artist@example.org", country="us", idempotency_key="artist-7-account"
    )
    assert account.id.startswith("acct_")
    assert not account.payouts_enabled
    with pytest.raises(gateway.PaymentsError, match="capabilities"):
        gateway.create_transfer(
            amount_minor=400,
            currency="usd",
            destination=account.id,
            transfer_group="order-48",
            idempotency_key="payout-8",
        )

    link = gateway.create_account_link(
        account.id,
        refresh_url="http://127.0.0.1:5000/payouts/refresh",
        return_url="http://127.0.0.1:5000/payouts/done",
    )
    assert stripe_emulator.visit_onboarding_link(link) == "http://127.0.0.1:5000/payouts/done"
    onboarded = gateway.retrieve_connected_account(account.id)
    assert onboarded.payouts_enabled
    assert onboarded.email == "artist@example.org"

    transfer = gateway.create_transfer(
        amount_minor=400,
        currency="usd",
        destination=account.id,
        transfer_group="order-48",
        idempotency_key="payout-9",
    )
    assert (transfer.amount_minor, transfer.destination) == (400, account.id)
    assert transfer.transfer_group == "order-48"
    again = gateway.create_transfer(
        amount_minor=400,
        currency="usd",
        destination=account.id,
        transfer_group="order-48",
        idempotency_key="payout-9",
    )
    assert again.id == transfer.id  # a retried payout pays once
    assert stripe_emulator.visit_onboarding_link(link) == "status 404"  # links are single-use


def test_transfer_to_unknown_account_is_refused(stripe_app):
    with pytest.raises(gateway.PaymentNotFound):
        gateway.create_transfer(
            amount_minor=400,
            currency="usd",
            destination="acct_nobody00000000",
            transfer_group=None,
            idempotency_key="payout-10",
        )


# --- Webhooks -----------------------------------------------------------------------------


def test_payment_webhook_arrives_signed_and_verifies(
    stripe_app, stripe_emulator, stripe_webhooks, receiver
):
    stripe_webhooks(receiver.url, stripe_app.config["STRIPE_WEBHOOK_SECRET"])
    paid = _paid_intent("49")

    deliveries = stripe_emulator.flush_webhooks()
    assert {"type": "payment_intent.succeeded", "url": receiver.url, "status": 200} in [
        {k: d[k] for k in ("type", "url", "status")} for d in deliveries
    ]
    events = [gateway.verify_webhook(body, signature) for body, signature in receiver.received]
    succeeded = [e for e in events if e.type == "payment_intent.succeeded"]
    assert len(succeeded) == 1
    event = succeeded[0]
    assert event.id.startswith("evt_")
    assert event.object["id"] == paid.id
    assert event.object["transfer_group"] == "order-49"
    assert event.object["metadata"] == {"order": "49"}
    assert event.object["latest_charge"] == paid.latest_charge


def test_refund_sends_a_signed_charge_refunded_event(
    stripe_app, stripe_emulator, stripe_webhooks, receiver
):
    paid = _paid_intent("50")
    stripe_emulator.flush_webhooks()
    stripe_webhooks(receiver.url, stripe_app.config["STRIPE_WEBHOOK_SECRET"])
    gateway.refund_payment_intent(paid.id, idempotency_key="refund-50")
    stripe_emulator.flush_webhooks()

    events = [gateway.verify_webhook(body, signature) for body, signature in receiver.received]
    refunded = [e for e in events if e.type == "charge.refunded"]
    assert len(refunded) == 1
    assert refunded[0].object["payment_intent"] == paid.id
    assert refunded[0].object["refunded"] is True


def _event_payload(object_id: str = "pi_123") -> bytes:
    body = {
        "id": "evt_test_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": object_id, "object": "payment_intent"}},
    }
    return json.dumps(body).encode()


def test_correctly_signed_event_verifies(stripe_app):
    payload = _event_payload()
    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    event = gateway.verify_webhook(payload, stripe_signature(payload, secret, int(time.time())))
    assert (event.id, event.type, event.object["id"]) == (
        "evt_test_1",
        "payment_intent.succeeded",
        "pi_123",
    )


@pytest.mark.parametrize(
    "forgery",
    ["other_secret", "tampered_body", "stale_timestamp", "no_header", "garbage_header"],
)
def test_forged_or_stale_webhook_is_refused(stripe_app, forgery):
    payload = _event_payload()
    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    now = int(time.time())
    header: str | None = stripe_signature(payload, secret, now)
    if forgery == "other_secret":
        header = stripe_signature(payload, "whsec_attacker", now)
    elif forgery == "tampered_body":
        payload = _event_payload("pi_attacker")
    elif forgery == "stale_timestamp":
        header = stripe_signature(payload, secret, now - 3600)
    elif forgery == "no_header":
        header = None
    else:
        header = "t=1,v1=deadbeef"
    with pytest.raises(gateway.InvalidWebhook):
        gateway.verify_webhook(payload, header)


def test_webhook_is_refused_without_a_signing_secret(app_config, database_url, tmp_path):
    from tests.conftest import make_test_app

    config = {
        **app_config,
        "STRIPE_SECRET_KEY": "sk_test_abc",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_abc",
        "STRIPE_WEBHOOK_SECRET": None,
    }
    app = make_test_app(database_url, tmp_path, **config)
    payload = _event_payload()
    with app.app_context(), pytest.raises(gateway.InvalidWebhook):
        gateway.verify_webhook(payload, stripe_signature(payload, "whsec_x", int(time.time())))
