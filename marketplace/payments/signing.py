"""Stripe's webhook signature scheme, for the emulator and for tests that forge events.

Stripe signs `"{timestamp}.{payload}"` with HMAC-SHA256 under the endpoint's secret and sends
`Stripe-Signature: t={timestamp},v1={hex}`; `stripe.Webhook.construct_event` checks it.
"""

from __future__ import annotations

import hashlib
import hmac


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send for `payload` at `timestamp`."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
