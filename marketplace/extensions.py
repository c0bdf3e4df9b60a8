"""Module-level Flask extensions, bound to each app in `create_app`."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


def rate_limit_key(value: str) -> str:
    """Prefix a rate-limit key with the app's namespace (the limiter object outlives apps)."""
    return f"{current_app.config.get('RATELIMIT_NAMESPACE', '')}/{value}"


def client_address() -> str:
    return rate_limit_key(get_remote_address())


limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)
