"""The catalog: public-domain stock, one search over everything on offer, collections."""

from flask import Blueprint

# Routes spell their full paths: /catalog/..., /collections/..., and shared links /c/<token>.
bp = Blueprint("catalog", __name__)

from marketplace.catalog import views  # noqa: E402, F401
