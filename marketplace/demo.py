"""A small demo data set for `make run`, made through the same services as the pages."""

from __future__ import annotations

from sqlalchemy import select

from marketplace.accounts import services as accounts
from marketplace.accounts.models import User, UserRole
from marketplace.db import transaction

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed on purpose; demo accounts only

DEMO_ARTISTS = [
    ("ada@demo.example", "Ada Okafor"),
    ("bruno@demo.example", "Bruno Lindqvist"),
    ("chen@demo.example", "Chen Wei"),
]
DEMO_BUYER = ("buyer@demo.example", "Dana Buyer", "Open Vision Labs")


def _ensure_user(email: str, **kwargs: object) -> tuple[User, bool]:
    with transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is not None:
            return user, False
        user = accounts.sign_up(session, email=email, password=DEMO_PASSWORD, **kwargs)  # type: ignore[arg-type]
        accounts.verify_email_now(session, user)
        return user, True


def seed_demo() -> list[str]:
    """Create what is missing, report what exists; safe to run any number of times."""
    lines = []
    for email, name in DEMO_ARTISTS:
        _user, made = _ensure_user(email, role=UserRole.ARTIST, display_name=name)
        lines.append(f"artist {email}: {'created' if made else 'exists'}")
    email, name, org = DEMO_BUYER
    _user, made = _ensure_user(email, role=UserRole.BUYER, display_name=name, organization_name=org)
    lines.append(f"buyer {email} of {org}: {'created' if made else 'exists'}")
    lines.append(f"Demo accounts log in with the password {DEMO_PASSWORD!r}.")
    return lines
