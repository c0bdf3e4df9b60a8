"""Artists: profiles, works, versioned licence terms, consent signals."""

from flask import Blueprint

# Routes spell their full paths: /artists/..., and the public /terms/<id> and /works/<id>/...
bp = Blueprint("artists", __name__)

from marketplace.artists import views  # noqa: E402, F401
