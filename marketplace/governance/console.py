"""The admin console's account actions: suspend, reactivate, verify an artist's identity.

Each is a plain function that records itself in the audit log (who, what, when, why), so the
page, the CLI and any later API share one rule.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts import services as accounts
from marketplace.accounts.models import User, UserRole
from marketplace.db import utcnow
from marketplace.governance.services import ClaimError, record_admin_action
from marketplace.text import first_problem

PAGE = 50


class ConsoleError(ClaimError):
    """An admin action that cannot be done as asked; the message says why."""


def _reason(reason: str) -> str:
    reason = reason.strip()
    problem = first_problem([reason])
    if problem is not None:
        raise ConsoleError(f"The reason {problem}.")
    if not reason:
        raise ConsoleError("Give a reason: it goes into the audit log.")
    return reason[:2000]


def _like(text: str) -> str:
    """A LIKE pattern matching `text` literally (its % and _ escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(
    session: Session, *, email: str = "", before: int | None = None, limit: int = PAGE
) -> list[User]:
    """Accounts newest first, `limit` at a time, optionally those whose email contains `email`."""
    query = select(User).order_by(User.id.desc()).limit(limit)
    if email.strip():
        query = query.where(User.email.like(_like(email.strip().lower()), escape="\\"))
    if before is not None:
        query = query.where(User.id < before)
    return list(session.scalars(query))


def get_user(session: Session, user_id: int, *, lock: bool = False) -> User:
    user = session.get(User, user_id, with_for_update=lock)
    if user is None:
        raise ConsoleError(f"No user {user_id}.")
    return user


def suspend(session: Session, admin: User, user: User, reason: str) -> None:
    """No more log-ins; open sessions, remember cookies and API tokens stop working at once."""
    reason = _reason(reason)
    if user.id == admin.id:
        raise ConsoleError("You cannot suspend your own account.")
    if user.role is UserRole.ADMIN:
        raise ConsoleError("Administrators are suspended from the command line, not here.")
    if not user.is_active:
        raise ConsoleError("This account is suspended already.")
    accounts.suspend_user(session, user)
    record_admin_action(
        session, admin, "user.suspend", target_type="user", target_id=user.id, reason=reason
    )


def reactivate(session: Session, admin: User, user: User, reason: str) -> None:
    reason = _reason(reason)
    if user.is_active:
        raise ConsoleError("This account is active.")
    user.is_active = True
    record_admin_action(
        session, admin, "user.reactivate", target_type="user", target_id=user.id, reason=reason
    )


def set_identity_verified(
    session: Session, admin: User, user: User, verified: bool, reason: str
) -> None:
    """Give (or take back) an artist's "identity verified" badge."""
    reason = _reason(reason)
    artist = user.artist
    if artist is None:
        raise ConsoleError("Only artists carry the identity badge.")
    if verified == (artist.identity_verified_at is not None):
        raise ConsoleError("The badge is already " + ("given." if verified else "withdrawn."))
    artist.identity_verified_at = utcnow() if verified else None
    record_admin_action(
        session,
        admin,
        "artist.verify_identity" if verified else "artist.unverify_identity",
        target_type="artist",
        target_id=artist.id,
        reason=reason,
    )
