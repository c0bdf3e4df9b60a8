"""The opt-out ("Do Not Train") registry: artists list what must never be trained on."""

from flask import Blueprint

bp = Blueprint("optout", __name__, url_prefix="/optout")

from marketplace.optout import views  # noqa: E402, F401
