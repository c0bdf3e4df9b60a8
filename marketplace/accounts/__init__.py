"""Accounts: users, roles, log-in, email verification, password reset, API tokens."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

from marketplace.accounts import views  # noqa: E402, F401
