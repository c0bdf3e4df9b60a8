"""Factories: plain functions with keyword defaults that call the real services."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from marketplace.accounts import services as accounts
from marketplace.accounts.models import User, UserRole
from marketplace.db import transaction
from tests.conftest import PASSWORD

_counter = itertools.count(1)


def _app_context(db: Session) -> Any:
    return db.info["app"].app_context()


def make_user(
    db: Session,
    *,
    role: UserRole = UserRole.ARTIST,
    email: str | None = None,
    password: str = PASSWORD,
    display_name: str | None = None,
    organization_name: str | None = None,
    join_code: str | None = None,
    verified: bool = True,
) -> User:
    n = next(_counter)
    with _app_context(db), transaction(db) as session:
        user = accounts.sign_up(
            session,
            email=email or f"user{n}@example.com",
            password=password,
            role=role,
            display_name=display_name or f"User {n}",
            organization_name=organization_name
            if organization_name or join_code or role is not UserRole.BUYER
            else f"Organization {n}",
            join_code=join_code,
        )
        if verified:
            accounts.verify_email_now(session, user)
    return user


def make_artist(db: Session, **kwargs: Any) -> User:
    return make_user(db, role=UserRole.ARTIST, **kwargs)


def make_buyer(db: Session, **kwargs: Any) -> User:
    return make_user(db, role=UserRole.BUYER, **kwargs)


def make_admin(db: Session, *, email: str = "admin@example.com") -> User:
    with _app_context(db), transaction(db) as session:
        return accounts.create_admin(session, email=email, password=PASSWORD, display_name="Admin")


def make_api_token(db: Session, user: User, name: str = "training pipeline") -> str:
    """An active API token of the user's organization; returns the plaintext."""
    with _app_context(db), transaction(db) as session:
        return accounts.create_api_token(session, user, name).plaintext
