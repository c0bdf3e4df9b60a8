"""The Stripe emulator: localstripe plus what the marketplace needs and localstripe lacks.

localstripe (PyPI) is a stateful fake of Stripe's API on aiohttp. `extend()` registers our
extensions on its application before it starts, so `marketplace run` and the tests use one
emulator:

- PaymentIntents take `transfer_group`, `description` and `automatic_payment_methods`; their
  charges carry the transfer group; `latest_charge` is an id (expandable), as in Stripe's API.
- `POST /v1/payment_intents/{id}/confirm` takes a `payment_method` (server side, secret key) or
  `payment_method_data` with the client secret and publishable key (the browser, as Stripe.js
  does). Stripe's test payment methods (`pm_card_visa`, `pm_card_chargeDeclined`, ...) exist, and
  4000 0000 0000 0002 is declined when charged.
- `Idempotency-Key` is honoured on every POST: a replay answers the first response, the same
  key with other parameters answers 400 `idempotency_error`.
- Connect: `/v1/accounts` and `/v1/transfers` (with `transfer_group` and `destination`).
- Refunds send `charge.refunded` and `refund.created` events; webhooks are signed as Stripe signs
  them (`/_config/webhooks/{id}` registers an endpoint) and go out without localstripe's delay;
  `POST /_config/webhook_deliveries/flush` waits for every pending delivery and reports them.
- `/js.stripe.com/v3/` serves our Stripe.js stand-in with the Payment Element subset
  (`marketplace/payments/static/stripe-emulator.js`).

This module is a test/development tool: it is never imported by the app's request path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe import webhooks as ls_webhooks
from localstripe.errors import UserError

from marketplace.payments.signing import stripe_signature

logger = logging.getLogger(__name__)

JS_FILE = Path(__file__).resolve().parent / "static" / "stripe-emulator.js"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TEST_CARDS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
}
DECLINED_CARDS = frozenset({"4000000000000002", "4000000000009995", "4000000000009987"})

_state: dict[str, Any] = {
    "extended": False,
    "state_file": None,
    "idempotency": {},  # (api key, idempotency key) -> (request digest, status, body)
    "pending": set(),  # delivery tasks not finished yet
    "deliveries": [],  # finished deliveries: {"event", "type", "url", "status"}
    "links": {},  # onboarding links not used yet
    "base_url": "",  # where this emulator answers, for the links it hands out
}


# --- Persistence: none by default, a file of our choosing when asked ----------------------


def _dump_to_disk(self: ls.Store) -> None:
    path = _state["state_file"]
    if path is not None:
        import pickle

        try:
            with open(path, "wb") as f:
                pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            logger.warning("emulator state not saved to %s: %s", path, exc)


def _load_from_disk(self: ls.Store) -> None:
    path = _state["state_file"]
    if path is not None and Path(path).exists():
        import pickle

        with open(path, "rb") as f:
            self.clear()
            self.update(pickle.load(f))  # noqa: S301 - our own file, written above


def _json(body: object, status: int = 200) -> web.StreamResponse:
    response: web.StreamResponse = ls_server.json_response(body, status=status)
    return response


# --- PaymentIntents, charges, refunds, payment methods ------------------------------------


def _patch_resources() -> None:
    ls.Store.dump_to_disk = _dump_to_disk
    ls.Store.try_load_from_disk = _load_from_disk

    pi_init = ls.PaymentIntent.__init__

    def payment_intent_init(
        self: Any,
        transfer_group: Any = None,
        description: Any = None,
        automatic_payment_methods: Any = None,
        **kwargs: Any,
    ) -> None:
        for value in (transfer_group, description):
            if value is not None and (not isinstance(value, str) or len(value) > 5000):
                raise UserError(400, "Bad request")
        if automatic_payment_methods is not None and not isinstance(
            automatic_payment_methods, dict
        ):
            raise UserError(400, "Bad request")
        if isinstance(kwargs.get("payment_method"), str):
            _test_payment_method(kwargs["payment_method"])
        pi_init(self, **kwargs)
        self.transfer_group = transfer_group
        self.description = description
        self.automatic_payment_methods = automatic_payment_methods or {"enabled": True}

    ls.PaymentIntent.__init__ = payment_intent_init
    ls.PaymentIntent.transfer_group = None
    ls.PaymentIntent.description = None
    ls.Charge.transfer_group = None

    create_charge = ls.PaymentIntent._create_charge

    def payment_intent_create_charge(self: Any, on_failure_now: Any) -> None:
        try:
            create_charge(self, on_failure_now)
        finally:
            if self.latest_charge is not None:
                self.latest_charge.transfer_group = self.transfer_group
                self.latest_charge.description = self.description

    ls.PaymentIntent._create_charge = payment_intent_create_charge

    pi_export = ls.PaymentIntent._export

    def payment_intent_export(self: Any, expand: Any = None) -> dict[str, Any]:
        """`latest_charge` is an id unless expanded, as in Stripe's API."""
        expand = [] if expand is None else expand
        if not isinstance(expand, list):
            return pi_export(self, expand=expand)  # type: ignore[no-any-return]
        wanted = any(p == "latest_charge" or p.startswith("latest_charge.") for p in expand)
        rest = [p for p in expand if not (p == "latest_charge" or p.startswith("latest_charge."))]
        obj: dict[str, Any] = pi_export(self, expand=rest)
        charge = obj.get("latest_charge")
        if isinstance(charge, dict) and not wanted:
            obj["latest_charge"] = charge["id"]
        return obj

    ls.PaymentIntent._export = payment_intent_export

    declined = ls.PaymentMethod._charging_is_declined

    def charging_is_declined(self: Any) -> bool:
        number = getattr(self, "_card_number", None)
        return bool(declined(self)) or number in DECLINED_CARDS

    ls.PaymentMethod._charging_is_declined = charging_is_declined

    refund_init = ls.Refund.__init__

    def refund_init_with_events(self: Any, *args: Any, **kwargs: Any) -> None:
        refund_init(self, *args, **kwargs)
        charge = ls.Charge._api_retrieve(self.charge)
        if self.payment_intent is None:
            self.payment_intent = charge.payment_intent
        ls.schedule_webhook(ls.Event("refund.created", self))
        ls.schedule_webhook(ls.Event("charge.refunded", charge))

    ls.Refund.__init__ = refund_init_with_events


def _test_payment_method(pm_id: str) -> None:
    """Stripe's test payment methods (pm_card_visa, ...) exist in every test-mode account."""
    number = TEST_CARDS.get(pm_id)
    if number is None or ("payment_method:" + pm_id) in ls.store:
        return
    pm = ls.PaymentMethod(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    )
    del ls.store["payment_method:" + pm.id]
    pm.id = pm_id
    ls.store["payment_method:" + pm_id] = pm


async def _confirm(request: web.Request) -> web.StreamResponse:
    """Confirm a PaymentIntent with a payment method, server side or from the browser."""
    data = await ls_server.get_post_data(request, remove_auth=False) or {}
    pi = ls.PaymentIntent._api_retrieve(request.match_info["id"])
    secret_key = ls_server.get_api_key(request)
    if secret_key is None:
        # The browser: publishable key plus the intent's client secret, as Stripe.js sends.
        key, client_secret = data.get("key"), data.get("client_secret")
        if not (isinstance(key, str) and key.startswith("pk_")) or client_secret != (
            pi.client_secret
        ):
            raise UserError(401, "Unauthorized")
    for name in ("key", "client_secret", "return_url", "payment_user_agent", "referrer"):
        data.pop(name, None)
    expand = data.pop("expand", None)
    payment_method = data.pop("payment_method", None)
    pm_data = data.pop("payment_method_data", None)
    data.pop("use_stripe_sdk", None)
    data.pop("mandate_data", None)
    if data:
        raise UserError(400, "Unexpected " + ", ".join(data.keys()))
    if pm_data is not None:
        if not isinstance(pm_data, dict):
            raise UserError(400, "Bad request")
        payment_method = ls.PaymentMethod(**pm_data).id
    if payment_method is not None:
        if not isinstance(payment_method, str):
            raise UserError(400, "Bad request")
        _test_payment_method(payment_method)
        ls.PaymentMethod._api_retrieve(payment_method)  # 404 when unknown
        if pi.status not in ("requires_payment_method", "requires_confirmation"):
            raise UserError(
                400,
                f"This PaymentIntent's status is {pi.status}; it cannot be confirmed.",
                {"code": "payment_intent_unexpected_state"},
            )
        pi.payment_method = payment_method
        pi.latest_charge = None
    if pi.status != "requires_confirmation":
        raise UserError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            {"code": "payment_intent_unexpected_state"},
        )
    pi._confirm(on_failure_now=pi._report_failure)
    return _json(pi._export(expand=expand))


async def _retrieve_with_client_secret(request: web.Request) -> web.StreamResponse:
    """A PaymentIntent for the browser: publishable key and client secret, as Stripe.js asks."""
    pi = ls.PaymentIntent._api_retrieve(request.match_info["id"])
    key = request.query.get("key", "")
    if not key.startswith("pk_") or request.query.get("client_secret") != pi.client_secret:
        raise UserError(401, "Unauthorized")
    return _json(pi._export())


# --- Connect: accounts and transfers ------------------------------------------------------


class Account(ls.StripeObject):  # type: ignore[misc]
    """A connected account (https://docs.stripe.com/api/accounts/object), ready at once."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(
        self,
        type: Any = None,  # Stripe's parameter name
        country: Any = None,
        email: Any = None,
        capabilities: Any = None,
        business_type: Any = None,
        metadata: Any = None,
        controller: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type is None and controller is None:
            raise UserError(400, "Missing required param: type.", {"param": "type"})
        if type is not None and type not in ("express", "standard", "custom"):
            raise UserError(400, "Invalid type: must be one of express, standard, custom.")
        for value in (country, email, business_type):
            if value is not None and not isinstance(value, str):
                raise UserError(400, "Bad request")
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request")
        super().__init__()
        self.type = type or "express"
        self.country = (country or "US").upper()
        self.email = email
        self.business_type = business_type
        self.metadata = metadata or {}
        self.default_currency = "usd"
        requested = capabilities if isinstance(capabilities, dict) else {}
        # As at Stripe: nothing is enabled until the account holder finishes onboarding.
        self.capabilities = {name: "inactive" for name in requested} or {"transfers": "inactive"}
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False

    def _complete_onboarding(self) -> None:
        self.capabilities = {name: "active" for name in self.capabilities}
        self.charges_enabled = self.payouts_enabled = self.details_submitted = True
        ls.store["account:" + self.id] = self  # persist the change
        ls.schedule_webhook(ls.Event("account.updated", self))


class AccountLink(ls.StripeObject):  # type: ignore[misc]
    """A one-time onboarding link (https://docs.stripe.com/api/account_links); in the emulator,
    visiting it completes onboarding at once and redirects to `return_url`."""

    object = "account_link"
    _id_prefix = "acctlink_"

    def __init__(
        self,
        account: Any = None,
        type: Any = None,  # Stripe's parameter name
        refresh_url: Any = None,
        return_url: Any = None,
        collect: Any = None,
        collection_options: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type not in ("account_onboarding", "account_update"):
            raise UserError(400, "Invalid type: must be account_onboarding or account_update.")
        for name, value in (("refresh_url", refresh_url), ("return_url", return_url)):
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise UserError(400, f"Invalid URL: {name}", {"param": name})
        if not isinstance(account, str):
            raise UserError(400, "Missing required param: account.", {"param": "account"})
        Account._api_retrieve(account)  # 404 when unknown
        super().__init__()
        del ls.store["account_link:" + self.id]  # links are not retrievable at Stripe either
        self.expires_at = self.created + 300
        self._account = account
        self._return_url = return_url
        _state["links"][self.id] = self
        self.url = f"{_state['base_url']}/_onboarding/{self.id}"

    def _export(self, expand: Any = None) -> dict[str, Any]:
        return {
            "object": "account_link",
            "created": self.created,
            "expires_at": self.expires_at,
            "url": self.url,
        }


async def _onboarding(request: web.Request) -> web.StreamResponse:
    """The emulator's stand-in for Stripe-hosted onboarding: done at once, then back to the app."""
    link = _state["links"].pop(request.match_info["id"], None)
    if link is None:
        raise UserError(404, "This onboarding link was used or never existed.")
    Account._api_retrieve(link._account)._complete_onboarding()
    raise web.HTTPFound(link._return_url)


class Transfer(ls.StripeObject):  # type: ignore[misc]
    """A transfer to a connected account (https://docs.stripe.com/api/transfers/object)."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        amount: Any = None,
        currency: Any = None,
        destination: Any = None,
        transfer_group: Any = None,
        description: Any = None,
        metadata: Any = None,
        source_transaction: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        amount = ls.try_convert_to_int(amount)
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise UserError(400, "Invalid positive integer", {"param": "amount"})
        if not isinstance(currency, str) or not re.fullmatch(r"[a-z]{3}", currency):
            raise UserError(400, "Invalid currency", {"param": "currency"})
        if not isinstance(destination, str):
            raise UserError(400, "Missing required param: destination.", {"param": "destination"})
        if Account._api_retrieve(destination).capabilities.get("transfers") != "active":
            raise UserError(
                400,
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                {"param": "destination"},
            )
        for value in (transfer_group, description, source_transaction):
            if value is not None and not isinstance(value, str):
                raise UserError(400, "Bad request")
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request")
        if source_transaction is not None:
            ls.Charge._api_retrieve(source_transaction)
        super().__init__()
        self.amount = amount
        self.amount_reversed = 0
        self.currency = currency
        self.destination = destination
        self.destination_payment = "py_" + ls.random_id(14)
        self.transfer_group = transfer_group
        self.description = description
        self.metadata = metadata or {}
        self.reversed = False
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.balance_transaction = None
        ls.schedule_webhook(ls.Event("transfer.created", self))

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        destination: Any = None,
        transfer_group: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        listing = super()._api_list_all(url, limit=limit, starting_after=starting_after, **kwargs)
        listing._list = [
            t
            for t in listing._list
            if (destination is None or t.destination == destination)
            and (transfer_group is None or t.transfer_group == transfer_group)
        ]
        return listing


# --- Webhooks: Stripe's signature, no delay, flushable ------------------------------------


async def _send_webhook(event: Any) -> None:
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    await asyncio.sleep(0)  # answer the API call first, as Stripe does
    for webhook in list(ls_webhooks._webhooks.values()):
        if webhook.events is not None and event.type not in webhook.events:
            continue
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": stripe_signature(payload, webhook.secret, int(time.time())),
        }
        status: int | str
        try:
            async with (
                ClientSession() as session,
                session.post(webhook.url, data=payload, headers=headers) as response,
            ):
                status = response.status
        except (ClientError, OSError) as exc:
            status = type(exc).__name__
        _state["deliveries"].append(
            {"event": event.id, "type": event.type, "url": webhook.url, "status": status}
        )
        logger.info("webhook %s %s -> %s", event.type, event.id, status)


def _schedule_webhook(event: Any) -> None:
    task = asyncio.ensure_future(_send_webhook(event))
    _state["pending"].add(task)
    task.add_done_callback(_state["pending"].discard)


async def _flush_deliveries(request: web.Request) -> web.StreamResponse:
    """Wait until every scheduled webhook went out; answer (and forget) the deliveries."""
    while _state["pending"]:
        await asyncio.gather(*list(_state["pending"]), return_exceptions=True)
    deliveries, _state["deliveries"] = _state["deliveries"], []
    return _json({"deliveries": deliveries})


async def _delete_webhook(request: web.Request) -> web.StreamResponse:
    ls_webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


# --- Stripe.js stand-in -------------------------------------------------------------------


async def _stripe_js(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=JS_FILE.read_bytes(),
        content_type="application/javascript",
        headers={"Cache-Control": "no-cache"},
    )


# --- Idempotency and routing --------------------------------------------------------------

_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"^/js\.stripe\.com/v3/?$"), _stripe_js),
    ("POST", re.compile(r"^/v1/payment_intents/(?P<id>pi_\w+)/confirm$"), _confirm),
    ("POST", re.compile(r"^/_config/webhook_deliveries/flush$"), _flush_deliveries),
    ("DELETE", re.compile(r"^/_config/webhooks/(?P<id>[^/]+)$"), _delete_webhook),
    ("GET", re.compile(r"^/_onboarding/(?P<id>acctlink_\w+)$"), _onboarding),
]


def _public_get(request: web.Request) -> Handler | None:
    match = re.match(r"^/v1/payment_intents/(?P<id>pi_\w+)$", request.path)
    if request.method == "GET" and match and ls_server.get_api_key(request) is None:
        request.match_info.update(match.groupdict())
        return _retrieve_with_client_secret
    return None


def _saving(handler: Handler) -> Handler:
    """Our handlers skip localstripe's middlewares, so they save the store themselves."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            changes = request.method != "GET" or request.path.startswith("/_onboarding/")
            if changes and _state["state_file"]:
                ls.store.dump_to_disk()

    return run


@web.middleware
async def _extensions_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our routes first (they may replace localstripe's), then idempotent replay of POSTs."""
    ours: Handler | None = _public_get(request)
    for method, pattern, candidate in _ROUTES:
        match = pattern.match(request.path)
        if ours is None and request.method == method and match:
            request.match_info.update(match.groupdict())
            ours = candidate
    if request.method == "OPTIONS":
        return web.Response(status=204)
    target = _saving(ours) if ours is not None else handler
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await target(request)
    body = await request.read()
    digest = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
    api_key = ls_server.get_api_key(request) or ""
    cache_key = (hashlib.sha256(api_key.encode()).hexdigest(), key)
    cached = _state["idempotency"].get(cache_key)
    if cached is not None:
        if cached[0] != digest:
            return _json(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    }
                },
                status=400,
            )
        return web.Response(
            body=cached[2],
            status=cached[1],
            content_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    try:
        response = await target(request)
    except UserError as exc:
        response = exc.to_response()
    if response.status < 500 and isinstance(response, web.Response) and response.body is not None:
        body_bytes = response.body if isinstance(response.body, bytes) else b""
        _state["idempotency"][cache_key] = (digest, response.status, body_bytes)
    response.headers["Idempotency-Key"] = key
    return response


def _register_connect_routes(app: web.Application) -> None:
    app.router.add_route(
        "POST", "/v1/account_links", ls_server.api_create(AccountLink, "/v1/account_links")
    )
    for cls in (Account, Transfer):
        url = "/v1/" + cls.object + "s"
        app.router.add_route("POST", url, ls_server.api_create(cls, url))
        app.router.add_route("GET", url + "/{id}", ls_server.api_retrieve(cls, url))
        app.router.add_route("POST", url + "/{id}", ls_server.api_update(cls, url))
        app.router.add_route("GET", url, ls_server.api_list_all(cls, url))


def extend(state_file: str | None = None) -> web.Application:
    """localstripe's app with our extensions, registered once per process before it starts."""
    _state["state_file"] = state_file
    app: web.Application = ls_server.app
    if not _state["extended"]:
        _patch_resources()
        ls.schedule_webhook = _schedule_webhook
        ls_webhooks.schedule_webhook = _schedule_webhook
        app.middlewares.insert(1, _extensions_middleware)  # after errors, before auth
        _register_connect_routes(app)
        _state["extended"] = True
    return app


def serve(
    host: str,
    port: int,
    *,
    state_file: str | None = None,
    announce: bool = False,
    exit_with_parent: bool = False,
) -> None:
    """Run the emulator until interrupted; with `announce`, print its URL once it accepts;
    with `exit_with_parent`, stop when the process that started it is gone (even if killed)."""
    app = extend(state_file)
    ls.store.try_load_from_disk()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        _state["base_url"] = f"http://{host}:{actual_port}"
        if announce:  # only now: whoever reads this line may call at once
            print(f"stripe-emulator listening on http://{host}:{actual_port}", flush=True)
        try:
            parent = os.getppid()
            while not exit_with_parent or os.getppid() == parent:
                await asyncio.sleep(1)
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the marketplace's Stripe emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state-file", default=None, help="Keep the emulator's data here.")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    serve(
        args.host,
        args.port,
        state_file=args.state_file,
        announce=True,
        exit_with_parent=args.exit_with_parent,
    )


if __name__ == "__main__":
    main()
