from __future__ import annotations

import re
import time

import time_machine
from sqlalchemy import select

from marketplace.accounts import services
from marketplace.accounts.models import User
from marketplace.security import sign_token
from tests.conftest import PASSWORD
from tests.factories import make_artist, make_user

NEW_PASSWORD = "a much better passphrase 2026"


def _reset_link(outbox) -> str:
    text = outbox()[-1].get_content()
    return re.search(r"http://localhost(/accounts/password/reset/\S+)", text).group(1)


def test_password_reset_by_mailed_link_works_once(client, db, outbox):
    user = make_artist(db, email="ada@example.com")
    response = client.post("/accounts/password/forgot", data={"email": "ADA@example.com"})
    assert response.status_code == 302
    link = _reset_link(outbox)
    assert client.get(link).status_code == 200
    response = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert (
        client.post("/accounts/login", data={"email": user.email, "password": PASSWORD}).status_code
        == 401
    )
    assert (
        client.post(
            "/accounts/login", data={"email": user.email, "password": NEW_PASSWORD}
        ).status_code
        == 302
    )
    client.post("/accounts/logout")
    # The link was bound to the old password hash: it cannot be used again.
    again = client.post(
        link, data={"password": "another passphrase 99", "confirm": "another passphrase 99"}
    )
    assert again.status_code == 400
    assert b"already been used" in again.data


def test_forgot_password_does_not_reveal_whether_an_account_exists(client, db, outbox):
    make_artist(db, email="ada@example.com")
    known = client.post("/accounts/password/forgot", data={"email": "ada@example.com"})
    unknown = client.post("/accounts/password/forgot", data={"email": "who@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert [m["To"] for m in outbox() if "Reset" in m["Subject"]] == ["ada@example.com"]


def test_reset_with_weak_password_keeps_the_old_one(client, db, outbox):
    user = make_artist(db)
    client.post("/accounts/password/forgot", data={"email": user.email})
    link = _reset_link(outbox)
    response = client.post(link, data={"password": "short", "confirm": "short"})
    assert response.status_code == 422
    assert b"Use at least 10 characters" in response.data
    assert (
        client.post("/accounts/login", data={"email": user.email, "password": PASSWORD}).status_code
        == 302
    )


def test_expired_reset_link_is_refused(app, client, db, outbox):
    user = make_artist(db)
    app.config["PASSWORD_RESET_MAX_AGE"] = 3600
    with time_machine.travel(time.time() - 3601, tick=False):  # mailed over an hour ago
        client.post("/accounts/password/forgot", data={"email": user.email})
        link = _reset_link(outbox)
    response = client.get(link)
    assert response.status_code == 400
    assert b"expired" in response.data


def test_tampered_and_foreign_tokens_are_refused(app, client, db):
    user = make_user(db, verified=False)
    assert client.get("/accounts/verify/garbage").status_code == 400
    assert client.get("/accounts/password/reset/garbage").status_code == 400
    with app.test_request_context():
        # A reset token must not verify an email, and vice versa (purpose-bound salts).
        reset_token = services.password_reset_token(user)
        verify_token = services.email_verification_token(user)
        forged = sign_token("email-verify", {"uid": user.id, "email": "other@example.com"})
    assert client.get(f"/accounts/verify/{reset_token}").status_code == 400
    assert client.get(f"/accounts/password/reset/{verify_token}").status_code == 400
    assert client.get(f"/accounts/verify/{forged}").status_code == 400
    tampered = verify_token[:-2] + ("AA" if verify_token[-2:] != "AA" else "BB")
    assert client.get(f"/accounts/verify/{tampered}").status_code == 400
    db.refresh(user)
    assert user.email_verified_at is None


def test_expired_verification_link_is_refused(app, client, db):
    user = make_user(db, verified=False)
    app.config["EMAIL_TOKEN_MAX_AGE"] = 3 * 24 * 3600
    with app.test_request_context(), time_machine.travel(time.time() - 3 * 24 * 3600 - 1):
        token = services.email_verification_token(user)  # signed three days and a second ago
    response = client.get(f"/accounts/verify/{token}")
    assert response.status_code == 400
    assert b"expired" in response.data
    assert db.get(User, user.id).email_verified_at is None


def test_csrf_failure_is_a_clear_400_and_writes_nothing(database_url, tmp_path):
    from marketplace.db import get_database
    from tests.conftest import make_test_app

    app = make_test_app(database_url, tmp_path, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    response = client.post(
        "/accounts/signup",
        data={
            "role": "artist",
            "display_name": "Mallory",
            "email": "m@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 400
    assert b"The form expired or came from another site" in response.data
    with get_database(app).sessions() as session:
        assert session.scalar(select(User)) is None
    # With the token from the page, the same form goes through.
    page = client.get("/accounts/signup").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/accounts/signup",
        data={
            "csrf_token": token,
            "role": "artist",
            "display_name": "Ada",
            "email": "ada@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 302
    get_database(app).engine.dispose()


def test_production_cookies_are_secure(database_url, tmp_path, monkeypatch):
    from marketplace.config import load_config

    monkeypatch.setenv("MARKETPLACE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 10 + "a-long-random-secret-for-production-use")
    config = load_config(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
