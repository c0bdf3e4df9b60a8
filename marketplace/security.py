"""Signed tokens, password hashing and the decorators every view uses to name its audience."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import abort, current_app
from flask_login import current_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

P = ParamSpec("P")
R = TypeVar("R")

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


# A hash to check against when the email is unknown, so both paths cost the same.
DUMMY_PASSWORD_HASH = _hasher.hash("not a real password, only for timing")


class BadToken(Exception):
    """A signed link that is malformed, tampered with, meant for something else, or too old."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=purpose)


def sign_token(purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe token bound to `purpose`, so a reset link never verifies an email."""
    return _serializer(purpose).dumps(payload)


def load_token(purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
    """The payload of a valid token; BadToken otherwise."""
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise BadToken("This link has expired.", expired=True) from exc
    except BadSignature as exc:
        raise BadToken("This link is not valid.") from exc
    if not isinstance(payload, dict):
        raise BadToken("This link is not valid.")
    return payload


def fingerprint(value: str) -> str:
    """A short keyed digest, e.g. of a password hash, to make a token single-use."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]


def role_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Only logged-in users with one of `roles` may call the view; others get login or 403."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def login_required_any(view: Callable[P, R]) -> Callable[P, R]:
    """Any logged-in user, whatever the role."""
    return role_required("artist", "buyer", "admin")(view)
