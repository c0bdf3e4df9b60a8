"""A suspended account stops everywhere at once: its API tokens (an artist's own, and those it
made for its organization), its sessions, and a password reset link mailed before."""

from __future__ import annotations

import re

from marketplace.accounts import services
from marketplace.accounts.models import User
from marketplace.db import transaction
from tests.conftest import PASSWORD
from tests.factories import make_api_token, make_artist, make_buyer


def suspend(app, db, user) -> None:
    with app.app_context(), transaction(db) as session:
        services.suspend_user(session, session.get(User, user.id))
    db.rollback()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_suspended_artists_api_token_is_refused(app, client, db):
    ada = make_artist(db)
    token = make_api_token(db, ada)
    assert client.get("/api/v1/artist/payouts", headers=auth(token)).status_code == 200
    suspend(app, db, ada)
    refused = client.get("/api/v1/artist/payouts", headers=auth(token))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_token"
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401


def test_an_organization_token_stops_when_its_creator_is_suspended(app, client, db):
    buyer = make_buyer(db)
    token = make_api_token(db, buyer)
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    suspend(app, db, buyer)
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401


def test_a_suspended_users_session_ends(app, client, db, login):
    ada = make_artist(db)
    login(ada)
    assert client.get("/artists/payouts").status_code == 200
    suspend(app, db, ada)
    assert client.get("/artists/payouts").status_code in (302, 401)
    assert (
        client.post("/accounts/login", data={"email": ada.email, "password": PASSWORD}).status_code
        == 401
    )


def test_a_reset_link_mailed_before_the_suspension_is_refused(app, client, db, outbox):
    ada = make_artist(db)
    client.post("/accounts/password/forgot", data={"email": ada.email})
    text = outbox()[-1].get_content()
    link = re.search(r"http://localhost(/accounts/password/reset/\S+)", text).group(1)
    suspend(app, db, ada)
    assert client.get(link).status_code == 400
    new = "a much better passphrase 2026"
    assert client.post(link, data={"password": new, "confirm": new}).status_code == 400
    db.expire_all()
    assert db.get(User, ada.id).is_active is False
    for password in (PASSWORD, new):
        login = client.post("/accounts/login", data={"email": ada.email, "password": password})
        assert login.status_code == 401
