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
- Connect: `/v1/accounts` (with `requirements`), `/v1/account_links`,
  `/v1/accounts/{id}/login_links` (the link opens `/_express/{id}`, a stand-in dashboard),
  `/v1/transfers` (`transfer_group`, `destination`, `source_transaction` checked against its
  charge; lists filter by `destination`, `transfer_group` and `created`, newest first) and
  `/v1/transfers/{id}/reversals`. Each connected account has an available balance: transfers
  raise it, reversals lower it, and a reversal it cannot cover fails (`insufficient_funds`).
  Events: `account.updated`, `transfer.created`, `transfer.reversed`, `transfer.updated`.
- Test hooks: `POST /_config/accounts/{id}/restrict` (Stripe wants more information: transfers
  and payouts stop), `.../enable` (all requirements met), `.../balance` (`available`, minor
  units of usd).
- A second request with an `Idempotency-Key` whose first request is still running answers 409
  `idempotency_key_in_use`, as Stripe does.
- Refunds send `charge.refunded` and `refund.created` events; webhooks are signed as Stripe signs
  them (`/_config/webhooks/{id}` registers an endpoint) and go out without localstripe's delay;
  `POST /_config/webhook_deliveries/flush` waits for every pending delivery and reports them.
- `/js.stripe.com/v3/` serves our Stripe.js stand-in with the Payment Element subset
  (`marketplace/payments/static/stripe-emulator.js`).

Request and response shapes follow Stripe's API reference at API version 2026-10-28.endive (the
installed `stripe` library's `stripe.api_version`). This module is a test/development tool: it is
never imported by the app's request path.
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
    "in_flight": set(),  # idempotency cache keys whose first request is still running
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


# What Stripe asks of a new Express account before it may receive transfers, and what it asks
# again when it restricts one (https://docs.stripe.com/api/accounts/object#account_object-requirements).
ONBOARDING_FIELDS = (
    "business_profile.url",
    "external_account",
    "individual.dob.day",
    "individual.dob.month",
    "individual.dob.year",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)
RESTRICTED_FIELDS = ("individual.verification.document",)


def _requirements(due: tuple[str, ...]) -> dict[str, Any]:
    """Stripe's `requirements` hash: nothing due once enabled; past due (so disabled) otherwise."""
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


class Account(ls.StripeObject):  # type: ignore[misc]
    """A connected account (https://docs.stripe.com/api/accounts/object): restricted until its
    holder finishes onboarding, then able to receive transfers. `_available` is its available
    balance per currency, which transfers raise and reversals lower."""

    object = "account"
    _id_prefix = "acct_"
    requirements: dict[str, Any] | None = None  # accounts from older state files lack it

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
        self.requirements = _requirements(ONBOARDING_FIELDS)
        self._available: dict[str, int] = {}

    def _set_enabled(self, enabled: bool, due: tuple[str, ...] = ()) -> None:
        """Every capability, both flags and `requirements` move together; sends account.updated."""
        self.capabilities = {
            name: "active" if enabled else "inactive" for name in self.capabilities
        }
        self.charges_enabled = self.payouts_enabled = enabled
        self.requirements = _requirements(() if enabled else due)
        ls.store["account:" + self.id] = self  # persist the change
        ls.schedule_webhook(ls.Event("account.updated", self))

    def _complete_onboarding(self) -> None:
        self.details_submitted = True
        self._set_enabled(True)

    def _available_balance(self, currency: str) -> int:
        if "_available" not in vars(self):  # a state file from before balances: derive it
            self._available = {}
            for transfer in _transfers():
                if transfer.destination == self.id:
                    left = transfer.amount - transfer.amount_reversed
                    self._available[transfer.currency] = (
                        self._available.get(transfer.currency, 0) + left
                    )
        return int(self._available.get(currency, 0))

    def _add_to_balance(self, currency: str, amount: int) -> None:
        self._available[currency] = self._available_balance(currency) + amount
        ls.store["account:" + self.id] = self

    def _export(self, expand: Any = None) -> dict[str, Any]:
        obj: dict[str, Any] = super()._export(expand=expand)
        if not isinstance(obj.get("requirements"), dict):  # a state file from before requirements
            enabled = bool(obj.get("payouts_enabled"))
            obj["requirements"] = _requirements(() if enabled else ONBOARDING_FIELDS)
        return obj


async def _account_hook(request: web.Request) -> web.StreamResponse:
    """Test hooks: `restrict` (Stripe wants more information: no transfers, no payouts),
    `enable` (all requirements met), `balance` (set the available balance in `currency`,
    usd unless given)."""
    account = Account._api_retrieve(request.match_info["id"])
    action = request.match_info["action"]
    if action == "restrict":
        account._set_enabled(False, RESTRICTED_FIELDS)
    elif action == "enable":
        account.details_submitted = True
        account._set_enabled(True)
    else:
        data = await ls_server.get_post_data(request) or {}
        available = ls.try_convert_to_int(data.get("available"))
        if not isinstance(available, int) or isinstance(available, bool):
            raise UserError(400, "Invalid integer: available", {"param": "available"})
        currency = str(data.get("currency") or "usd").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise UserError(400, "Invalid currency", {"param": "currency"})
        account._available_balance(currency)
        account._available[currency] = available
        ls.store["account:" + account.id] = account
    return _json(account._export())


async def _create_login_link(request: web.Request) -> web.StreamResponse:
    """POST /v1/accounts/{id}/login_links: only Express accounts that finished onboarding."""
    account = _account_or_missing(request.match_info["id"], "account")
    if account.type != "express":
        raise UserError(
            400,
            "Login links can only be created for Express accounts connected to your platform.",
            {"param": "account"},
        )
    if not account.details_submitted:
        raise UserError(
            400,
            "Cannot create a login link for an account that has not completed onboarding.",
            {"param": "account"},
        )
    return _json(
        {
            "object": "login_link",
            "created": int(time.time()),
            "url": f"{_state['base_url']}/_express/{account.id}",
        }
    )


async def _express_dashboard(request: web.Request) -> web.StreamResponse:
    """Where a login link leads: a page that says what it is, nothing to load from elsewhere."""
    account = Account._api_retrieve(request.match_info["id"])
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<title>Express dashboard (emulated)</title>"
        "<h1>Express dashboard (emulated)</h1>"
        f"<p>This is the Stripe emulator's stand-in for the Express dashboard of {account.id}."
        " No real Stripe account exists.</p></html>"
    )
    return web.Response(text=body, content_type="text/html")


def _account_or_missing(account_id: Any, param: str) -> Any:
    """An account by id, or Stripe's 400 `resource_missing` naming the parameter."""
    found = ls.store.get("account:" + account_id) if isinstance(account_id, str) else None
    if found is None:
        raise UserError(
            400 if param != "account" else 404,
            f"No such {param}: '{account_id}'",
            {"code": "resource_missing", "param": param},
        )
    return found


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


def _transfers() -> list[Any]:
    """Every transfer, newest first (Stripe's list order; the store keeps insertion order)."""
    return [value for key, value in reversed(ls.store.items()) if key.startswith("transfer:")]


def _created_filter(created: Any) -> Callable[[int], bool]:
    """Stripe's `created` list filter: a timestamp, or a hash of gt/gte/lt/lte."""
    if created is None:
        return lambda _: True
    exact = ls.try_convert_to_int(created)
    if isinstance(exact, int):
        return lambda value: value == exact
    if not isinstance(created, dict) or set(created) - {"gt", "gte", "lt", "lte"}:
        raise UserError(400, "Invalid created filter", {"param": "created"})
    bounds = {op: ls.try_convert_to_int(v) for op, v in created.items()}
    if not all(isinstance(v, int) for v in bounds.values()):
        raise UserError(400, "Invalid integer", {"param": "created"})
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return lambda value: all(checks[op](value, bound) for op, bound in bounds.items())


def _list_of(url: str, items: list[Any], limit: Any, starting_after: Any) -> Any:
    """A Stripe list of `items` (already filtered and ordered), paged by limit/starting_after."""
    listing = ls.List(url, limit=limit, starting_after=starting_after)
    if listing._limit > 100:
        raise UserError(400, "Invalid limit: must be at most 100", {"param": "limit"})
    listing._list = items
    if starting_after is not None and not any(i.id == starting_after for i in items):
        raise UserError(
            400,
            f"No such object: '{starting_after}'",
            {"code": "resource_missing", "param": "starting_after"},
        )
    return listing


class Transfer(ls.StripeObject):  # type: ignore[misc]
    """A transfer to a connected account (https://docs.stripe.com/api/transfers/object).

    With `source_transaction` the charge must have succeeded, be in the transfer's currency and
    cover it: the transfers from one charge never add up to more than the charge. Stripe does not
    require the transfer's `transfer_group` to match the charge's, so neither do we.
    """

    object = "transfer"
    _id_prefix = "tr_"
    _reversal_ids: tuple[str, ...] = ()  # newest first; transfers from older state files

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
        account = _account_or_missing(destination, "destination")
        if account.capabilities.get("transfers") != "active":
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
            _check_source_transaction(source_transaction, amount, currency)
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
        self._reversal_ids = ()
        account._add_to_balance(currency, amount)
        ls.schedule_webhook(ls.Event("transfer.created", self))

    def _update(self, **data: Any) -> None:
        """Stripe lets only `description` and `metadata` change on a transfer."""
        if set(data) - {"description", "metadata"}:
            raise UserError(400, "Received unknown parameter: " + ", ".join(sorted(data)))
        super()._update(**data)

    def _reversals(self) -> list[Any]:
        return [ls.store["transfer_reversal:" + rid] for rid in self._reversal_ids]

    def _export(self, expand: Any = None) -> dict[str, Any]:
        obj: dict[str, Any] = super()._export(expand=expand)
        reversals = self._reversals()
        obj["reversals"] = {
            "object": "list",
            "data": [r._export() for r in reversals[:10]],
            "has_more": len(reversals) > 10,
            "total_count": len(reversals),
            "url": f"/v1/transfers/{self.id}/reversals",
        }
        return obj

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        destination: Any = None,
        transfer_group: Any = None,
        created: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Filters first, then pages: `starting_after` is a position in the filtered list."""
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs.keys()))
        for value in (destination, transfer_group):
            if value is not None and not isinstance(value, str):
                raise UserError(400, "Bad request")
        in_range = _created_filter(created)
        items = [
            t
            for t in _transfers()
            if (destination is None or t.destination == destination)
            and (transfer_group is None or t.transfer_group == transfer_group)
            and in_range(t.created)
        ]
        return _list_of(url, items, limit, starting_after)


def _check_source_transaction(charge_id: str, amount: int, currency: str) -> None:
    charge = ls.store.get("charge:" + charge_id)
    if charge is None:
        raise UserError(
            400,
            f"No such charge: '{charge_id}'",
            {"code": "resource_missing", "param": "source_transaction"},
        )
    if charge.status != "succeeded":
        raise UserError(
            400,
            f"The source_transaction {charge_id} has not succeeded.",
            {"param": "source_transaction"},
        )
    if charge.currency != currency:
        raise UserError(
            400,
            f"The currency of source_transaction's balance transaction ({charge.currency}) "
            f"must be the same as the transfer currency ({currency}).",
            {"param": "currency"},
        )
    already = sum(t.amount for t in _transfers() if t.source_transaction == charge_id)
    if already + amount > charge.amount:
        raise UserError(
            400,
            f"Insufficient funds in source_transaction {charge_id}: {charge.amount - already} "
            f"{currency} left to transfer, {amount} requested.",
            {"code": "balance_insufficient", "param": "amount"},
        )


class TransferReversal(ls.StripeObject):  # type: ignore[misc]
    """A reversal of (part of) a transfer (https://docs.stripe.com/api/transfer_reversals):
    the connected account's available balance must cover it, as Stripe requires for transfers
    that were not made by a destination charge."""

    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(
        self,
        transfer: Any = None,
        amount: Any = None,
        description: Any = None,
        metadata: Any = None,
        refund_application_fee: Any = None,  # no application fees here: accepted, ignored
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs.keys()))
        parent = Transfer._api_retrieve(transfer)
        left = parent.amount - parent.amount_reversed
        if amount is not None:
            amount = ls.try_convert_to_int(amount)
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                raise UserError(400, "Invalid positive integer", {"param": "amount"})
        if description is not None and not isinstance(description, str):
            raise UserError(400, "Bad request", {"param": "description"})
        if metadata is not None and not isinstance(metadata, dict):
            raise UserError(400, "Bad request", {"param": "metadata"})
        if left == 0:
            raise UserError(
                400, f"Transfer {parent.id} is already fully reversed.", {"param": "amount"}
            )
        amount = left if amount is None else amount
        if amount > left:
            raise UserError(
                400,
                f"You have requested a reversal of {amount} {parent.currency}, but only {left} "
                f"{parent.currency} of transfer {parent.id} remains.",
                {"param": "amount"},
            )
        account = Account._api_retrieve(parent.destination)
        if account._available_balance(parent.currency) < amount:
            raise UserError(
                400,
                f"Insufficient funds in the connected account {account.id} to reverse "
                f"{amount} {parent.currency}.",
                {"code": "insufficient_funds", "param": "amount"},
            )
        super().__init__()
        self.amount = amount
        self.balance_transaction = None
        self.currency = parent.currency
        self.destination_payment_refund = "pyr_" + ls.random_id(14)
        self.metadata = metadata or {}
        self.source_refund = None
        self.transfer = parent.id
        self._description = description
        parent.amount_reversed += amount
        parent.reversed = parent.amount_reversed == parent.amount
        parent._reversal_ids = (self.id, *parent._reversal_ids)
        ls.store["transfer:" + parent.id] = parent  # persist the change
        account._add_to_balance(parent.currency, -amount)
        ls.schedule_webhook(ls.Event("transfer.reversed", parent))
        ls.schedule_webhook(ls.Event("transfer.updated", parent))


async def _create_reversal(request: web.Request) -> web.StreamResponse:
    data = await ls_server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    data.pop("transfer", None)  # the path names the transfer
    reversal = TransferReversal(transfer=request.match_info["id"], **data)
    return _json(reversal._export(expand=expand))


async def _list_reversals(request: web.Request) -> web.StreamResponse:
    transfer = Transfer._api_retrieve(request.match_info["id"])
    query = ls_server.unflatten_data(request.query)
    expand = query.pop("expand", None)
    limit, starting_after = query.pop("limit", None), query.pop("starting_after", None)
    if query:
        raise UserError(400, "Received unknown parameter: " + ", ".join(query.keys()))
    url = f"/v1/transfers/{transfer.id}/reversals"
    return _json(_list_of(url, transfer._reversals(), limit, starting_after)._export(expand=expand))


async def _retrieve_reversal(request: web.Request) -> web.StreamResponse:
    transfer = Transfer._api_retrieve(request.match_info["id"])
    reversal_id = request.match_info["reversal"]
    if reversal_id not in transfer._reversal_ids:
        raise UserError(
            404, f"No such transfer reversal: '{reversal_id}'", {"code": "resource_missing"}
        )
    query = ls_server.unflatten_data(request.query)
    return _json(ls.store["transfer_reversal:" + reversal_id]._export(expand=query.get("expand")))


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
    ("GET", re.compile(r"^/_express/(?P<id>acct_\w+)$"), _express_dashboard),
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
    if cached is None and cache_key in _state["in_flight"]:
        return _json(
            {
                "error": {
                    "type": "idempotency_error",
                    "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using this "
                    "idempotency key; try again later.",
                }
            },
            status=409,
        )
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
    _state["in_flight"].add(cache_key)
    try:
        response = await target(request)
    except UserError as exc:
        response = exc.to_response()
    finally:
        _state["in_flight"].discard(cache_key)
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
    app.router.add_route("POST", "/v1/accounts/{id}/login_links", _create_login_link)
    app.router.add_route("POST", "/v1/transfers/{id}/reversals", _create_reversal)
    app.router.add_route("GET", "/v1/transfers/{id}/reversals", _list_reversals)
    app.router.add_route("GET", "/v1/transfers/{id}/reversals/{reversal}", _retrieve_reversal)
    app.router.add_route(
        "POST", "/_config/accounts/{id}/{action:restrict|enable|balance}", _account_hook
    )


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
