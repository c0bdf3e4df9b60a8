"""Webhooks: events the payment processor sends, verified, recorded once, then acted on."""
