"""Acting on Stripe's events: idempotent on the event id, and safe in any order.

An event is a hint, not the truth: for a payment we ask Stripe for the PaymentIntent (or the
charge) as it is now and act on that, so a late `payment_failed` after a `succeeded`, or a
replayed event, changes nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.buyers import services as buyers
from marketplace.db import transaction
from marketplace.payments import gateway as payments
from marketplace.payouts import services as payouts
from marketplace.webhooks.models import StripeEvent

log = logging.getLogger(__name__)

PAYMENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
    }
)
REFUND_EVENTS = frozenset({"charge.refunded", "charge.refund.updated", "refund.updated"})


def _payment_intent_of(event: payments.WebhookEvent) -> str | None:
    obj = event.object
    value = obj.get("id") if event.type in PAYMENT_EVENTS else obj.get("payment_intent")
    return value if isinstance(value, str) and value else None


def receive(payload: bytes, signature: str | None) -> str:
    """Verify and handle one delivery; returns what happened. Raises InvalidWebhook (answer
    400, nothing changes) for a forged or stale one."""
    event = payments.verify_webhook(payload, signature)
    intent_id = _payment_intent_of(event)
    try:
        with transaction() as session:
            if session.get(StripeEvent, event.id) is not None:
                return "duplicate"
            outcome = _handle(session, event, intent_id)
            session.add(
                StripeEvent(
                    id=event.id,
                    type=event.type,
                    object_id=intent_id or str(event.object.get("id") or "")[:255],
                    outcome=outcome,
                )
            )
    except IntegrityError:  # the same event delivered twice at once: the other one handled it
        return "duplicate"
    log.info("stripe event %s (%s): %s", event.id, event.type, outcome)
    return outcome


def _handle(session: Session, event: payments.WebhookEvent, intent_id: str | None) -> str:
    if event.type in payouts.EVENT_TYPES:
        return payouts.handle_event(session, event)
    if event.type not in PAYMENT_EVENTS and event.type not in REFUND_EVENTS:
        return "ignored"
    if intent_id is None:
        return "ignored: no payment intent"
    order = buyers.order_for_payment_intent(session, intent_id)
    if order is None:
        return "unknown payment"
    if event.type in PAYMENT_EVENTS:
        paid = buyers.settle_payment(session, order, payments.retrieve_payment_intent(intent_id))
        return f"order {order.id}: {'paid' if paid else order.status.value}"
    refund = buyers.sync_refunds(session, order)
    return f"order {order.id}: " + (
        f"refund of {refund.amount_minor} recorded" if refund else "no new refund"
    )
