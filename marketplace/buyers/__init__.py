"""Buyers: organization settings, members and API tokens (orders follow)."""

from flask import Blueprint

bp = Blueprint("buyers", __name__, url_prefix="/buyers")

from marketplace.buyers import views  # noqa: E402, F401
