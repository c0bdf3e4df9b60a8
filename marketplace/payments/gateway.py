"""The one place that talks to Stripe: typed results, our own errors, our ids as idempotency keys.

With no STRIPE_SECRET_KEY the app runs against the embedded emulator (`payments/emulator.py`) in
test mode; the calls below are the same either way, through the official `stripe` library's
`StripeClient`. Callers own their database transactions: nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import stripe
from flask import Flask, current_app
from stripe import RequestOptions
from stripe.params import (
    PaymentIntentCreateParams,
    RefundCreateParams,
    TransferCreateParams,
    TransferListParams,
    TransferReversalCreateParams,
)

logger = logging.getLogger(__name__)

STRIPE_JS_URL = "https://js.stripe.com/v3/"
EMULATOR_JS_PATH = "/js.stripe.com/v3/"
WEBHOOK_PATH = "/webhooks/stripe"  # where the app receives Stripe events
EMULATOR_SECRET_KEY = "sk_test_emulator"  # noqa: S105 - the local emulator accepts any sk_ key
EMULATOR_PUBLISHABLE_KEY = "pk_test_emulator"
EXTENSION_KEY = "payments"
# Origins Stripe.js needs (https://docs.stripe.com/security/guide#content-security-policy).
_STRIPE_CSP: dict[str, tuple[str, ...]] = {
    "script-src": ("https://js.stripe.com",),
    "frame-src": ("https://js.stripe.com", "https://hooks.stripe.com"),
    "connect-src": ("https://api.stripe.com",),
    # Connect onboarding (Account Links) and Express dashboard login links: our POST forms
    # answer with a redirect there, which `form-action` must admit.
    "form-action": ("https://connect.stripe.com",),
}


# --- Errors -------------------------------------------------------------------------------


class PaymentsError(Exception):
    """Stripe refused the request; the message is safe to show to the person paying."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PaymentDeclined(PaymentsError):
    """The card (or other payment method) was declined; nothing was charged."""


class PaymentNotFound(PaymentsError):
    """No such object at Stripe (an unknown or foreign id)."""


class PaymentsUnavailable(PaymentsError):
    """Stripe could not be reached or answered with a server error; retry later, same key."""


class PaymentsConflict(PaymentsUnavailable):
    """Another request with the same idempotency key is still running at Stripe (409): the
    outcome is unknown, so retry later with the same key, as for PaymentsUnavailable."""


class InvalidWebhook(PaymentsError):
    """A webhook whose signature, timestamp or body does not check out; answer 400."""


# --- Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    status: str  # requires_payment_method, requires_confirmation, processing, succeeded, ...
    amount_minor: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str]
    transfer_group: str | None
    latest_charge: str | None  # the charge id


@dataclass(frozen=True)
class ChargeInfo:
    id: str
    status: str  # succeeded, pending, failed
    amount_minor: int
    amount_refunded_minor: int
    currency: str
    payment_intent: str | None
    transfer_group: str | None
    refunded: bool
    metadata: dict[str, str]


@dataclass(frozen=True)
class RefundInfo:
    id: str
    status: str | None  # succeeded, pending, failed, canceled
    amount_minor: int
    currency: str
    charge: str | None
    payment_intent: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class ConnectedAccountInfo:
    id: str
    email: str | None
    country: str | None
    charges_enabled: bool
    payouts_enabled: bool
    metadata: dict[str, str]
    details_submitted: bool  # the holder finished onboarding (even if restricted since)
    requirements_due: tuple[str, ...]  # currently_due + past_due, deduplicated, sorted
    disabled_reason: str | None  # e.g. "requirements.past_due"; None when not restricted


@dataclass(frozen=True)
class TransferInfo:
    id: str
    amount_minor: int
    currency: str
    destination: str | None
    transfer_group: str | None
    metadata: dict[str, str]
    amount_reversed_minor: int
    reversed: bool  # wholly reversed
    created: int  # Unix seconds, Stripe's clock
    source_transaction: str | None  # the charge id the transfer was funded from


@dataclass(frozen=True)
class TransferReversalInfo:
    id: str
    transfer: str
    amount_minor: int
    currency: str
    metadata: dict[str, str]
    created: int  # Unix seconds, Stripe's clock


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: int  # Unix seconds, Stripe's clock
    object: dict[str, Any] = field(repr=False)  # event.data.object as plain JSON


# --- Settings and client ------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    secret_key: str = field(repr=False)
    publishable_key: str
    webhook_secret: str | None = field(repr=False)
    webhook_tolerance_seconds: int
    api_base: str | None  # None: Stripe's own
    js_url: str
    emulated: bool
    # Stripe signs events of connected accounts (`account.updated`) for a Connect endpoint
    # with that endpoint's own secret; both secrets are accepted at /webhooks/stripe.
    connect_webhook_secret: str | None = field(default=None, repr=False)

    @property
    def test_mode(self) -> bool:
        return self.emulated or self.secret_key.startswith(("sk_test_", "rk_test_"))


def emulator_url(config: Mapping[str, object]) -> str:
    """Where the embedded emulator answers: STRIPE_API_BASE, else loopback STRIPE_EMULATOR_PORT."""
    base = config.get("STRIPE_API_BASE")
    if isinstance(base, str) and base:
        return base.rstrip("/")
    return f"http://127.0.0.1:{config.get('STRIPE_EMULATOR_PORT', 8420)}"


def emulator_webhook_secret(config: Mapping[str, object]) -> str:
    """The emulator's signing secret, derived from SECRET_KEY so it is stable but not public."""
    explicit = config.get("STRIPE_WEBHOOK_SECRET")
    if isinstance(explicit, str) and explicit:
        return explicit
    key = str(config.get("SECRET_KEY") or "").encode()
    return "whsec_" + hmac.new(key, b"stripe-emulator-webhooks", hashlib.sha256).hexdigest()[:32]


def settings_from_config(config: Mapping[str, object]) -> Settings:
    secret = config.get("STRIPE_SECRET_KEY")
    tolerance = int(str(config.get("STRIPE_WEBHOOK_TOLERANCE", 300)))
    js_url = config.get("STRIPE_JS_URL")
    connect_secret = config.get("STRIPE_CONNECT_WEBHOOK_SECRET")
    if not secret:
        base = emulator_url(config)
        return Settings(
            secret_key=EMULATOR_SECRET_KEY,
            publishable_key=EMULATOR_PUBLISHABLE_KEY,
            webhook_secret=emulator_webhook_secret(config),
            webhook_tolerance_seconds=tolerance,
            api_base=base,
            js_url=str(js_url) if js_url else base + EMULATOR_JS_PATH,
            emulated=True,
            connect_webhook_secret=str(connect_secret) if connect_secret else None,
        )
    api_base = config.get("STRIPE_API_BASE")
    webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")
    return Settings(
        secret_key=str(secret),
        publishable_key=str(config.get("STRIPE_PUBLISHABLE_KEY") or ""),
        webhook_secret=str(webhook_secret) if webhook_secret else None,
        webhook_tolerance_seconds=tolerance,
        api_base=str(api_base).rstrip("/") if api_base else None,
        js_url=str(js_url) if js_url else STRIPE_JS_URL,
        emulated=False,
        connect_webhook_secret=str(connect_secret) if connect_secret else None,
    )


@dataclass(frozen=True)
class _State:
    settings: Settings
    client: stripe.StripeClient


def init_app(app: Flask) -> None:
    """Bind a StripeClient to the app and tell every template whether Stripe is in test mode."""
    settings = settings_from_config(app.config)
    client = stripe.StripeClient(
        settings.secret_key,
        base_addresses={"api": settings.api_base} if settings.api_base else None,
        # Every POST carries our idempotency key, so the library's retries never charge twice.
        max_network_retries=int(str(app.config.get("STRIPE_MAX_NETWORK_RETRIES", 2))),
    )
    app.extensions[EXTENSION_KEY] = _State(settings, client)
    logger.info(
        "Stripe: %s%s",
        "emulator at " + (settings.api_base or "") if settings.emulated else "Stripe API",
        " (test mode)" if settings.test_mode else "",
    )

    @app.context_processor
    def _stripe_template_values() -> dict[str, object]:
        return {"stripe_test_mode": settings.test_mode}


def _state() -> _State:
    state = current_app.extensions[EXTENSION_KEY]
    assert isinstance(state, _State)
    return state


def _keyed(idempotency_key: str) -> RequestOptions:
    """Our key, in STRIPE_IDEMPOTENCY_PREFIX's namespace: deployments (or test databases) that
    share one Stripe account never replay each other's requests."""
    prefix = str(current_app.config.get("STRIPE_IDEMPOTENCY_PREFIX") or "")
    return {"idempotency_key": (prefix + idempotency_key)[:255]}


def _client() -> stripe.StripeClient:
    return _state().client


def settings() -> Settings:
    return _state().settings


def test_mode() -> bool:
    """True with the emulator or a test key: no real money moves (the banner says so)."""
    return _state().settings.test_mode


def publishable_key() -> str:
    return _state().settings.publishable_key


def stripe_js_url() -> str:
    """Where pages load Stripe.js from: Stripe's, or the emulator's stand-in."""
    return _state().settings.js_url


def csp_sources(config: Mapping[str, object] | None = None) -> dict[str, list[str]]:
    """Origins the Content-Security-Policy must admit, per directive, for Stripe.js to work."""
    current = settings_from_config(config) if config is not None else _state().settings
    sources: dict[str, list[str]] = {}

    def add(directive: str, origin: str) -> None:
        if origin and origin not in sources.setdefault(directive, []):
            sources[directive].append(origin)

    js_origin = _origin(current.js_url)
    if current.emulated:
        add("script-src", js_origin)
        add("connect-src", _origin(current.api_base or ""))
        add("connect-src", js_origin)
        add("form-action", _origin(current.api_base or ""))  # its onboarding and Express pages
    else:
        for directive, origins in _STRIPE_CSP.items():
            for origin in origins:
                add(directive, origin)
        add("script-src", js_origin)
    return sources


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


@contextmanager
def _calling(operation: str) -> Iterator[None]:
    """Turn the library's exceptions into ours; log the outcome by ids, never keys or bodies."""
    try:
        yield
    except stripe.CardError as exc:
        logger.info("Stripe %s declined: %s", operation, exc.code)
        raise PaymentDeclined(
            exc.user_message or "The card was declined.", code=exc.code or "card_declined"
        ) from exc
    except stripe.InvalidRequestError as exc:
        logger.info("Stripe %s refused (%s): %s", operation, exc.http_status, exc.code)
        if exc.http_status == 404 or exc.code == "resource_missing":
            raise PaymentNotFound(
                "The payment provider has no such object.", code="resource_missing"
            ) from exc
        raise PaymentsError(
            exc.user_message or "The payment provider refused the request.", code=exc.code
        ) from exc
    except stripe.IdempotencyError as exc:
        logger.warning("Stripe %s: idempotency key reused with other parameters", operation)
        raise PaymentsError(
            "This payment was already started with different details.", code="idempotency_error"
        ) from exc
    except stripe.APIError as exc:
        if exc.http_status != 409:
            raise _unavailable(operation, exc) from exc
        logger.warning("Stripe %s: idempotency key in use (request %s)", operation, exc.request_id)
        raise PaymentsConflict(
            "The same request is still being processed; please try again shortly.",
            code="idempotency_key_in_use",
        ) from exc
    except (
        stripe.APIConnectionError,
        stripe.RateLimitError,
        stripe.AuthenticationError,
        stripe.PermissionError,
    ) as exc:
        raise _unavailable(operation, exc) from exc
    except stripe.StripeError as exc:
        logger.warning("Stripe %s failed: %s", operation, type(exc).__name__)
        raise PaymentsError(
            "The payment provider refused the request.", code="payments_error"
        ) from exc


def _unavailable(operation: str, exc: stripe.StripeError) -> PaymentsUnavailable:
    logger.warning(
        "Stripe %s unavailable: %s (request %s)", operation, type(exc).__name__, exc.request_id
    )
    return PaymentsUnavailable(
        "Payments are unavailable right now; nothing was charged. Please try again shortly.",
        code="payments_unavailable",
    )


def _id_of(value: object) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return found if isinstance(found, str) else None


def _metadata(value: object) -> dict[str, str]:
    if isinstance(value, stripe.StripeObject):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {}


# --- PaymentIntents -----------------------------------------------------------------------


def _payment_intent_info(pi: stripe.PaymentIntent) -> PaymentIntentInfo:
    return PaymentIntentInfo(
        id=pi.id,
        status=pi.status,
        amount_minor=pi.amount,
        currency=pi.currency,
        client_secret=pi.client_secret,
        metadata=_metadata(pi.metadata),
        transfer_group=pi.transfer_group,
        latest_charge=_id_of(pi.latest_charge),
    )


def create_payment_intent(
    *,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    metadata: Mapping[str, str] | None = None,
    transfer_group: str | None = None,
    description: str | None = None,
) -> PaymentIntentInfo:
    """Open a PaymentIntent for the Payment Element. Keyed on our id: a retry returns the same.

    `transfer_group` (our order id) lets the payouts pay artists with separate transfers.
    """
    if amount_minor <= 0:
        raise PaymentsError("A payment must be for a positive amount.", code="amount_too_small")
    params: PaymentIntentCreateParams = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "metadata": dict(metadata or {}),
    }
    if transfer_group is not None:
        params["transfer_group"] = transfer_group
    if description is not None:
        params["description"] = description
    with _calling("payment_intents.create"):
        pi = _client().v1.payment_intents.create(params=params, options=_keyed(idempotency_key))
    logger.info("Stripe PaymentIntent %s created (key %s)", pi.id, idempotency_key)
    return _payment_intent_info(pi)


def retrieve_payment_intent(payment_intent_id: str) -> PaymentIntentInfo:
    """The PaymentIntent as Stripe has it now (the source of truth, e.g. after a webhook)."""
    with _calling("payment_intents.retrieve"):
        pi = _client().v1.payment_intents.retrieve(payment_intent_id)
    return _payment_intent_info(pi)


def confirm_payment_intent(
    payment_intent_id: str, *, payment_method: str, idempotency_key: str
) -> PaymentIntentInfo:
    """Confirm server-side with a saved payment method (pages confirm with Stripe.js instead).

    Raises PaymentDeclined when the card is declined; the intent then wants a new method.
    """
    with _calling("payment_intents.confirm"):
        pi = _client().v1.payment_intents.confirm(
            payment_intent_id,
            params={"payment_method": payment_method},
            options=_keyed(idempotency_key),
        )
    return _payment_intent_info(pi)


def cancel_payment_intent(payment_intent_id: str, *, idempotency_key: str) -> PaymentIntentInfo:
    """Give up an unpaid PaymentIntent (an expired quote, a replaced order)."""
    with _calling("payment_intents.cancel"):
        pi = _client().v1.payment_intents.cancel(payment_intent_id, options=_keyed(idempotency_key))
    return _payment_intent_info(pi)


# --- Charges and refunds ------------------------------------------------------------------


def retrieve_charge(charge_id: str) -> ChargeInfo:
    with _calling("charges.retrieve"):
        charge = _client().v1.charges.retrieve(charge_id)
    return ChargeInfo(
        id=charge.id,
        status=charge.status,
        amount_minor=charge.amount,
        amount_refunded_minor=charge.amount_refunded,
        currency=charge.currency,
        payment_intent=_id_of(charge.payment_intent),
        transfer_group=charge.transfer_group,
        refunded=bool(charge.refunded),
        metadata=_metadata(charge.metadata),
    )


def refund_payment_intent(
    payment_intent_id: str,
    *,
    idempotency_key: str,
    amount_minor: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> RefundInfo:
    """Refund a paid PaymentIntent, whole (`amount_minor` None) or in part; keyed on our id."""
    params: RefundCreateParams = {"payment_intent": payment_intent_id}
    if amount_minor is not None:
        if amount_minor <= 0:
            raise PaymentsError("A refund must be for a positive amount.", code="amount_too_small")
        params["amount"] = amount_minor
    if metadata:
        params["metadata"] = dict(metadata)
    with _calling("refunds.create"):
        refund = _client().v1.refunds.create(params=params, options=_keyed(idempotency_key))
    logger.info("Stripe refund %s of %s (key %s)", refund.id, payment_intent_id, idempotency_key)
    return RefundInfo(
        id=refund.id,
        status=refund.status,
        amount_minor=refund.amount,
        currency=refund.currency,
        charge=_id_of(refund.charge),
        payment_intent=_id_of(refund.payment_intent) or payment_intent_id,
        metadata=_metadata(refund.metadata),
    )


# --- Connect (payouts to artists) ---------------------------------------------------------


def _account_info(account: stripe.Account) -> ConnectedAccountInfo:
    requirements = getattr(account, "requirements", None)  # absent from very old objects
    due: set[str] = set()
    disabled_reason: str | None = None
    if requirements is not None:
        due.update(getattr(requirements, "currently_due", None) or ())
        due.update(getattr(requirements, "past_due", None) or ())
        disabled_reason = getattr(requirements, "disabled_reason", None)
    return ConnectedAccountInfo(
        id=account.id,
        email=account.email,
        country=account.country,
        charges_enabled=bool(account.charges_enabled),
        payouts_enabled=bool(account.payouts_enabled),
        metadata=_metadata(account.metadata),
        details_submitted=bool(getattr(account, "details_submitted", False)),
        requirements_due=tuple(sorted(str(field) for field in due)),
        disabled_reason=disabled_reason,
    )


def create_connected_account(
    *,
    email: str,
    country: str,
    idempotency_key: str,
    metadata: Mapping[str, str] | None = None,
) -> ConnectedAccountInfo:
    """An Express connected account for an artist, so transfers can pay them."""
    with _calling("accounts.create"):
        account = _client().v1.accounts.create(
            params={
                "type": "express",
                "email": email,
                "country": country.upper(),
                "capabilities": {"transfers": {"requested": True}},
                "metadata": dict(metadata or {}),
            },
            options=_keyed(idempotency_key),
        )
    logger.info("Stripe connected account %s created (key %s)", account.id, idempotency_key)
    return _account_info(account)


def retrieve_connected_account(account_id: str) -> ConnectedAccountInfo:
    with _calling("accounts.retrieve"):
        account = _client().v1.accounts.retrieve(account_id)
    return _account_info(account)


def create_account_link(account_id: str, *, refresh_url: str, return_url: str) -> str:
    """A one-time URL where the artist finishes Stripe onboarding; never log or store it."""
    with _calling("account_links.create"):
        link = _client().v1.account_links.create(
            params={
                "account": account_id,
                "type": "account_onboarding",
                "refresh_url": refresh_url,
                "return_url": return_url,
            }
        )
    return link.url


def create_login_link(account_id: str) -> str:
    """A single-use URL to the artist's Express dashboard (onboarded Express accounts only);
    a bearer credential: never log or store it."""
    with _calling("accounts.login_links.create"):
        link = _client().v1.accounts.login_links.create(account_id)
    return link.url


def _transfer_info(transfer: stripe.Transfer) -> TransferInfo:
    return TransferInfo(
        id=transfer.id,
        amount_minor=transfer.amount,
        currency=transfer.currency,
        destination=_id_of(transfer.destination),
        transfer_group=transfer.transfer_group,
        metadata=_metadata(transfer.metadata),
        amount_reversed_minor=int(transfer.amount_reversed or 0),
        reversed=bool(transfer.reversed),
        created=int(transfer.created),
        source_transaction=_id_of(transfer.source_transaction),
    )


def _reversal_info(reversal: stripe.TransferReversal) -> TransferReversalInfo:
    return TransferReversalInfo(
        id=reversal.id,
        transfer=_id_of(reversal.transfer) or "",
        amount_minor=reversal.amount,
        currency=reversal.currency,
        metadata=_metadata(reversal.metadata),
        created=int(reversal.created),
    )


def create_transfer(
    *,
    amount_minor: int,
    currency: str,
    destination: str,
    transfer_group: str | None,
    idempotency_key: str,
    metadata: Mapping[str, str] | None = None,
    source_transaction: str | None = None,
) -> TransferInfo:
    """Move money from the platform to a connected account; keyed on our payout id.

    With `source_transaction` (the buyer's charge id) Stripe funds the transfer from that charge
    and refuses transfers that would add up to more than it.
    """
    if amount_minor <= 0:
        raise PaymentsError("A transfer must be for a positive amount.", code="amount_too_small")
    params: TransferCreateParams = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "destination": destination,
        "metadata": dict(metadata or {}),
    }
    if transfer_group is not None:
        params["transfer_group"] = transfer_group
    if source_transaction is not None:
        params["source_transaction"] = source_transaction
    with _calling("transfers.create"):
        transfer = _client().v1.transfers.create(params=params, options=_keyed(idempotency_key))
    logger.info("Stripe transfer %s to %s (key %s)", transfer.id, destination, idempotency_key)
    return _transfer_info(transfer)


def retrieve_transfer(transfer_id: str) -> TransferInfo:
    """The transfer as Stripe has it now, reversals included."""
    with _calling("transfers.retrieve"):
        transfer = _client().v1.transfers.retrieve(transfer_id)
    return _transfer_info(transfer)


def list_transfers(
    *,
    transfer_group: str | None = None,
    destination: str | None = None,
    created_gte: int | None = None,
) -> Iterator[TransferInfo]:
    """Every matching transfer, newest first, fetched a page at a time as the caller iterates
    (so a PaymentsError may come from any step of the iteration)."""
    params: TransferListParams = {"limit": 100}
    if transfer_group is not None:
        params["transfer_group"] = transfer_group
    if destination is not None:
        params["destination"] = destination
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    with _calling("transfers.list"):
        for transfer in _client().v1.transfers.list(params=params).auto_paging_iter():
            yield _transfer_info(transfer)


def create_transfer_reversal(
    transfer_id: str,
    *,
    amount_minor: int,
    idempotency_key: str,
    metadata: Mapping[str, str] | None = None,
) -> TransferReversalInfo:
    """Take (part of) a transfer back from the connected account; keyed on our id, so a retry
    reverses once. Stripe refuses more than is left of the transfer, or more than the account's
    available balance (PaymentsError, code `insufficient_funds`)."""
    if amount_minor <= 0:
        raise PaymentsError("A reversal must be for a positive amount.", code="amount_too_small")
    params: TransferReversalCreateParams = {
        "amount": amount_minor,
        "metadata": dict(metadata or {}),
    }
    with _calling("transfers.reversals.create"):
        reversal = _client().v1.transfers.reversals.create(
            transfer_id, params=params, options=_keyed(idempotency_key)
        )
    logger.info(
        "Stripe transfer reversal %s of %s (key %s)", reversal.id, transfer_id, idempotency_key
    )
    return _reversal_info(reversal)


def list_transfer_reversals(transfer_id: str) -> list[TransferReversalInfo]:
    """Every reversal of a transfer, newest first."""
    with _calling("transfers.reversals.list"):
        listing = _client().v1.transfers.reversals.list(transfer_id, params={"limit": 100})
        return [_reversal_info(r) for r in listing.auto_paging_iter()]


# --- Webhooks -----------------------------------------------------------------------------


def _construct_event(
    payload: bytes, header: str, secrets: list[str], current: Settings
) -> stripe.Event:
    """The event if any configured secret signed it (the platform's, then Connect's)."""
    for secret in secrets[:-1]:
        try:
            event: stripe.Event = stripe.Webhook.construct_event(
                payload, header, secret, tolerance=current.webhook_tolerance_seconds
            )
            return event
        except stripe.SignatureVerificationError:
            continue
    last: stripe.Event = stripe.Webhook.construct_event(
        payload, header, secrets[-1], tolerance=current.webhook_tolerance_seconds
    )
    return last


def verify_webhook(payload: bytes, signature_header: str | None) -> WebhookEvent:
    """Check the Stripe-Signature of the raw body (stripe.Webhook.construct_event) and parse it.

    Raises InvalidWebhook for a missing/forged/stale signature or a malformed body, and when no
    webhook secret is configured (an unverifiable event must never be acted on).
    """
    current = _state().settings
    secrets = [s for s in (current.webhook_secret, current.connect_webhook_secret) if s]
    if not secrets:
        raise InvalidWebhook("No webhook signing secret is configured.", code="no_webhook_secret")
    try:
        event = _construct_event(payload, signature_header or "", secrets, current)
        body = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        logger.warning("Stripe webhook refused: bad signature")
        raise InvalidWebhook("The webhook signature does not match.", code="bad_signature") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        logger.warning("Stripe webhook refused: malformed body")
        raise InvalidWebhook("The webhook body is not a Stripe event.", code="bad_body") from exc
    data = body.get("data") if isinstance(body, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    if not (
        isinstance(event_id, str)
        and isinstance(event_type, str)
        and isinstance(created, int)
        and isinstance(obj, dict)
        and event_id == event.id
    ):
        raise InvalidWebhook("The webhook body is not a Stripe event.", code="bad_body")
    return WebhookEvent(id=event_id, type=event_type, created=created, object=obj)
