"""Artists: profiles (works, terms and the opt-out registry follow)."""

from flask import Blueprint

bp = Blueprint("artists", __name__, url_prefix="/artists")

from marketplace.artists import views  # noqa: E402, F401
