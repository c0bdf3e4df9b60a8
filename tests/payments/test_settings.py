"""Stripe settings: validation, test mode and its banner, CSP sources, the embedded emulator."""

from __future__ import annotations

import ast
import socket
from pathlib import Path
from typing import Any

import pytest

from marketplace.config import ConfigError, check_config
from marketplace.payments import gateway
from tests.conftest import ROOT, make_test_app

LIVE = {
    "STRIPE_SECRET_KEY": "sk_live_" + "s3cr3t" * 4,
    "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_live",
}


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"STRIPE_PUBLISHABLE_KEY": "pk_test_abc"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_test_oops"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "sk_test_abc"}, "STRIPE_PUBLISHABLE_KEY"),
        (
            {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_PUBLISHABLE_KEY": "pk_test_abc"},
            "STRIPE_PUBLISHABLE_KEY",
        ),
        ({**LIVE, "STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET"),
        ({**LIVE, "STRIPE_WEBHOOK_SECRET": "not-a-secret"}, "STRIPE_WEBHOOK_SECRET"),
    ],
)
def test_inconsistent_stripe_settings_are_refused_without_echoing_keys(settings, names):
    with pytest.raises(ConfigError, match=names) as refused:
        check_config(settings)
    for value in settings.values():
        if value and len(value) > 12:
            assert value not in str(refused.value)


def test_no_stripe_key_means_the_emulator_in_test_mode():
    settings = gateway.settings_from_config({"STRIPE_EMULATOR_PORT": 9123, "SECRET_KEY": "k"})
    assert settings.emulated
    assert settings.test_mode
    assert settings.api_base == "http://127.0.0.1:9123"
    assert settings.js_url == "http://127.0.0.1:9123/js.stripe.com/v3/"
    assert settings.publishable_key.startswith("pk_test_")
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.startswith("whsec_")
    other = gateway.settings_from_config({"STRIPE_EMULATOR_PORT": 9123, "SECRET_KEY": "other"})
    assert other.webhook_secret != settings.webhook_secret  # derived, not a public constant


def test_live_keys_talk_to_stripe_and_are_not_test_mode():
    settings = gateway.settings_from_config(LIVE)
    assert not settings.emulated
    assert not settings.test_mode
    assert settings.api_base is None
    assert settings.js_url == "https://js.stripe.com/v3/"
    assert LIVE["STRIPE_SECRET_KEY"] not in repr(settings)


def test_csp_admits_stripe_js_origins():
    live = gateway.csp_sources(LIVE)
    assert "https://js.stripe.com" in live["script-src"]
    assert "https://js.stripe.com" in live["frame-src"]
    assert "https://api.stripe.com" in live["connect-src"]
    # Connect onboarding and Express dashboard links are reached by a POST's redirect.
    assert live["form-action"] == ["https://connect.stripe.com"]

    emulated = gateway.csp_sources({"STRIPE_EMULATOR_PORT": 9123})
    assert emulated["script-src"] == ["http://127.0.0.1:9123"]
    assert emulated["connect-src"] == ["http://127.0.0.1:9123"]
    assert emulated["form-action"] == ["http://127.0.0.1:9123"]
    assert "frame-src" not in emulated


def test_every_page_says_test_mode_with_the_emulator(client):
    page = client.get("/").get_data(as_text=True)
    assert "TEST MODE — no real money" in page


def test_test_key_also_shows_the_banner(database_url, tmp_path):
    app = make_test_app(
        database_url,
        tmp_path,
        STRIPE_SECRET_KEY="sk_test_abc",
        STRIPE_PUBLISHABLE_KEY="pk_test_abc",
    )
    assert "TEST MODE" in app.test_client().get("/").get_data(as_text=True)


def test_live_mode_shows_no_test_banner(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, **LIVE)
    assert "TEST MODE" not in app.test_client().get("/").get_data(as_text=True)


def test_only_the_payments_package_imports_stripe():
    offenders = []
    for path in (ROOT / "marketplace").rglob("*.py"):
        if path.is_relative_to(ROOT / "marketplace" / "payments"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "stripe" or n.startswith(("stripe.", "localstripe")) for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_embedded_emulator_starts_beside_the_app_and_takes_payments(
    database_url: str, tmp_path: Path
) -> None:
    """`marketplace run` without a Stripe key: the emulator the app is pointed at is running."""
    from marketplace.payments import cli

    config: dict[str, Any] = {
        "STRIPE_SECRET_KEY": None,
        "STRIPE_PUBLISHABLE_KEY": None,
        "STRIPE_API_BASE": None,
        "STRIPE_EMULATOR_PORT": _free_port(),
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }
    app = make_test_app(database_url, tmp_path, **config)
    assert cli.embedded_emulator_wanted(app)
    process = cli.start_embedded_emulator(app)
    try:
        with app.app_context():
            pi = gateway.create_payment_intent(
                amount_minor=900, currency="usd", idempotency_key="embedded-1"
            )
            paid = gateway.confirm_payment_intent(
                pi.id, payment_method="pm_card_visa", idempotency_key="embedded-2"
            )
        assert paid.status == "succeeded"
    finally:
        cli._stop(process)

    process = cli.start_embedded_emulator(app)  # a restarted `make run` remembers the payment
    try:
        with app.app_context():
            assert gateway.retrieve_payment_intent(pi.id).status == "succeeded"
    finally:
        cli._stop(process)


def test_a_configured_stripe_key_starts_no_emulator(database_url, tmp_path):
    from marketplace.payments import cli

    app = make_test_app(database_url, tmp_path, **LIVE)
    assert not cli.embedded_emulator_wanted(app)


def test_stripe_emulator_command_is_offered(app):
    result = app.test_cli_runner().invoke(args=["stripe-emulator", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output
