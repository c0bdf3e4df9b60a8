"""Module-level Flask extensions, bound to each app in `create_app`."""

from __future__ import annotations

from flask import Flask, current_app
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


def init_limiter(app: Flask) -> None:
    """Bind the limiter; a new app starts on its own storage, not on an older app's fallback."""
    limiter.init_app(app)
    limiter._storage_dead = False  # the flag belongs to the storage init_app just replaced


def rate_limit_storage_status() -> dict[str, object]:
    """Where rate limits are counted now: the configured storage, or the in-memory fallback."""
    if not limiter.enabled:
        return {"ok": True, "enabled": False}
    reachable = bool(limiter.storage.check())
    if reachable:
        return {"ok": True, "enabled": True, "storage": "configured"}
    # Flask-Limiter counts in this process's memory until the storage answers again.
    return {"ok": True, "enabled": True, "storage": "memory (fallback: storage unreachable)"}
