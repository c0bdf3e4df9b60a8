"""Logins end when they should: a password change, a reset or a suspension ends every open
session and every remember-me cookie of the account, on every device."""

from __future__ import annotations

import re

import pytest

from marketplace.accounts import services
from marketplace.accounts.models import User
from marketplace.db import transaction
from tests.conftest import PASSWORD
from tests.factories import make_artist

NEW_PASSWORD = "a different long passphrase 7"
DASHBOARD = "/artists/dashboard"


def logged_in_device(app, user, *, remember: bool):
    """Another browser: its own cookie jar, logged in as `user`."""
    device = app.test_client()
    response = device.post(
        "/accounts/login",
        data={"email": user.email, "password": PASSWORD, "remember": "y" if remember else ""},
    )
    assert response.status_code == 302
    assert device.get(DASHBOARD).status_code == 200
    return device


def only_the_remember_cookie(app, device) -> None:
    """As after a browser restart: the session cookie is gone, the remember cookie stays."""
    device.delete_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert device.get_cookie("remember_token") is not None


def is_logged_out(device) -> bool:
    response = device.get(DASHBOARD)
    return response.status_code == 302 and "/accounts/login" in response.headers["Location"]


@pytest.fixture
def user(db):
    return make_artist(db, email="ada@example.com")


def test_a_password_reset_ends_every_session_and_remember_cookie(app, client, db, user, outbox):
    session_device = logged_in_device(app, user, remember=False)
    remembered_device = logged_in_device(app, user, remember=True)
    only_the_remember_cookie(app, remembered_device)
    assert remembered_device.get(DASHBOARD).status_code == 200  # the cookie works before

    client.post("/accounts/password/forgot", data={"email": user.email})
    text = outbox()[-1].get_content()
    link = re.search(r"http://localhost(/accounts/password/reset/\S+)", text).group(1)
    assert client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
    only_the_remember_cookie(app, remembered_device)

    assert is_logged_out(session_device)
    assert is_logged_out(remembered_device)


def test_changing_the_password_ends_other_logins(app, db, user):
    device = logged_in_device(app, user, remember=True)
    with app.app_context(), transaction(db) as session:
        services.change_password(session, session.get(User, user.id), PASSWORD, NEW_PASSWORD)
    assert is_logged_out(device)
    only_the_remember_cookie(app, device)
    assert is_logged_out(device)


def test_changing_the_password_needs_the_current_one(app, db, user):
    device = logged_in_device(app, user, remember=False)
    with pytest.raises(services.InvalidCredentials), app.app_context(), transaction(db) as session:
        services.change_password(session, session.get(User, user.id), "wrong", NEW_PASSWORD)
    assert not is_logged_out(device)


def test_suspending_an_account_ends_its_logins_and_a_new_log_in_is_refused(app, db, user):
    device = logged_in_device(app, user, remember=True)
    with app.app_context(), transaction(db) as session:
        services.suspend_user(session, session.get(User, user.id))
    only_the_remember_cookie(app, device)
    assert is_logged_out(device)
    again = app.test_client().post(
        "/accounts/login", data={"email": user.email, "password": PASSWORD}
    )
    assert again.status_code == 401


def test_the_suspend_user_command_ends_the_accounts_sessions(app, db, user):
    device = logged_in_device(app, user, remember=False)
    result = app.test_cli_runner().invoke(args=["suspend-user", "ADA@example.com"])
    assert result.exit_code == 0, result.output
    assert is_logged_out(device)
    unknown = app.test_cli_runner().invoke(args=["suspend-user", "nobody@example.com"])
    assert unknown.exit_code == 1
    assert "No account with the email nobody@example.com" in unknown.output


def test_remember_cookie_is_http_only_and_same_site_lax(app, client, db, user):
    response = client.post(
        "/accounts/login", data={"email": user.email, "password": PASSWORD, "remember": "y"}
    )
    cookie = next(
        value
        for value in response.headers.getlist("Set-Cookie")
        if value.startswith("remember_token=")
    )
    assert "SameSite=Lax" in cookie
    assert "HttpOnly" in cookie
