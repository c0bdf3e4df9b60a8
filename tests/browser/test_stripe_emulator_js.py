"""The emulator's Stripe.js stand-in: the Payment Element subset a checkout page uses.

A bare page (served here, not by the app) does what the checkout page will do with real
Stripe.js: `Stripe(pk).elements({clientSecret})`, `create("payment").mount(...)`,
`confirmPayment({elements, redirect: "if_required"})`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from marketplace.payments import gateway

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pay</title>
<script src="{js_url}"></script></head>
<body>
<form id="pay"><div id="payment-element"></div><button type="submit">Pay</button></form>
<p id="result" role="status"></p>
<script>
const stripe = Stripe("{publishable_key}");
const elements = stripe.elements({{clientSecret: "{client_secret}"}});
elements.create("payment").mount("#payment-element");
document.getElementById("pay").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const {{error, paymentIntent}} = await stripe.confirmPayment({{
    elements, redirect: "if_required", confirmParams: {{return_url: location.href}}}});
  document.getElementById("result").textContent =
    error ? "error: " + error.code + ": " + error.message : "paid: " + paymentIntent.status;
}});
</script></body></html>"""


@pytest.fixture
def app_config(stripe_config: dict[str, Any]) -> dict[str, Any]:
    return stripe_config


@pytest.fixture
def checkout_page(app: Flask) -> Iterator[tuple[str, gateway.PaymentIntentInfo]]:
    """A page with the Payment Element for a fresh PaymentIntent of USD 12.50."""
    with app.app_context():
        pi = gateway.create_payment_intent(
            amount_minor=1250, currency="usd", idempotency_key=f"js-{id(app)}"
        )
        html = PAGE.format(
            js_url=gateway.stripe_js_url(),
            publishable_key=gateway.publishable_key(),
            client_secret=pi.client_secret,
        )

    def serve(environ: Any, start_response: Any) -> Any:
        Request(environ)
        return Response(html, content_type="text/html")(environ, start_response)

    server = make_server("127.0.0.1", 0, serve, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", pi
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def browser_page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context()
    context.set_default_timeout(5_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _pay(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay").click()


def test_test_card_pays_through_the_payment_element(app, checkout_page, browser_page):
    url, pi = checkout_page
    browser_page.goto(url)
    _pay(browser_page, "4242 4242 4242 4242")
    expect(browser_page.locator("#result")).to_have_text("paid: succeeded")
    with app.app_context():
        assert gateway.retrieve_payment_intent(pi.id).status == "succeeded"


def test_declined_card_shows_the_decline_and_charges_nothing(app, checkout_page, browser_page):
    url, pi = checkout_page
    browser_page.goto(url)
    _pay(browser_page, "4000 0000 0000 0002")
    expect(browser_page.locator("#result")).to_have_text(
        "error: card_declined: Your card was declined."
    )
    expect(browser_page.get_by_role("alert")).to_have_text("Your card was declined.")
    with app.app_context():
        assert gateway.retrieve_payment_intent(pi.id).status == "requires_payment_method"

    _pay(browser_page, "4242 4242 4242 4242")  # another card on the same intent
    expect(browser_page.locator("#result")).to_have_text("paid: succeeded")


def test_incomplete_card_is_caught_in_the_page(checkout_page, browser_page):
    url, _pi = checkout_page
    browser_page.goto(url)
    _pay(browser_page, "4242 4242")
    expect(browser_page.get_by_role("alert")).to_have_text("Your card number is incomplete.")
