"""Events of connected accounts come signed with the Connect endpoint's own secret."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.config import ConfigError, check_config
from marketplace.webhooks.models import StripeEvent
from tests.buyers.test_stripe import post_event


@pytest.fixture
def app_config(stripe_config):
    return {**stripe_config, "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_connect_test_secret"}


def test_an_event_signed_with_the_connect_secret_is_accepted(client, db, app):
    response = post_event(
        client,
        "whsec_connect_test_secret",
        "account.updated",
        {"id": "acct_unknown", "object": "account"},
        "evt_connect_1",
    )
    assert response.status_code == 200
    event = db.scalar(select(StripeEvent).where(StripeEvent.id == "evt_connect_1"))
    assert event.outcome == "unknown account"


def test_an_event_signed_with_neither_secret_is_refused(client, db, app):
    response = post_event(
        client, "whsec_someone_else", "account.updated", {"id": "acct_x"}, "evt_forged"
    )
    assert response.status_code == 400
    assert db.scalar(select(StripeEvent).where(StripeEvent.id == "evt_forged")) is None


def test_the_platform_secret_still_works_beside_it(client, db, app):
    response = post_event(
        client,
        app.config["STRIPE_WEBHOOK_SECRET"],
        "transfer.created",
        {"id": "tr_unknown", "object": "transfer"},
        "evt_platform_1",
    )
    assert response.status_code == 200


def test_a_connect_secret_must_look_like_one():
    with pytest.raises(ConfigError, match="STRIPE_CONNECT_WEBHOOK_SECRET"):
        check_config(
            {
                "STRIPE_SECRET_KEY": "sk_test_x",
                "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
                "STRIPE_CONNECT_WEBHOOK_SECRET": "not-a-secret",
            }
        )
