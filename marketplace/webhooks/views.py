"""POST /webhooks/stripe: no session, no CSRF (Stripe signs the body instead)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from marketplace.payments import gateway as payments
from marketplace.webhooks import services

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are a few KB


@bp.route("/stripe", methods=["POST"])
def stripe_webhook() -> ResponseReturnValue:
    too_large = jsonify(error={"code": "too_large", "message": "Event too large."}), 413
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return too_large
    # Also when the body comes chunked, without a Content-Length (the server then hands the
    # stream over unlimited): stop reading past the cap.
    chunks, size = [], 0
    while chunk := request.stream.read(64 * 1024):
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            return too_large
        chunks.append(chunk)
    payload = b"".join(chunks)
    try:
        outcome = services.receive(payload, request.headers.get("Stripe-Signature"))
    except payments.InvalidWebhook as exc:
        return jsonify(error={"code": exc.code or "invalid_webhook", "message": str(exc)}), 400
    except payments.PaymentsUnavailable:
        # Stripe retries deliveries that fail: let it come back when it can be checked.
        return jsonify(error={"code": "unavailable", "message": "Try again later."}), 503
    return jsonify(received=True, outcome=outcome)
