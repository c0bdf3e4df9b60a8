"""Sign-up, log-in, email verification, password reset, organizations and API tokens.

Functions take a Session and plain values and never commit: the caller's `transaction()` does.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import jobs, mail
from marketplace.accounts.models import ApiToken, Organization, OrganizationRole, User, UserRole
from marketplace.artists import services as artist_services
from marketplace.db import get_session, utcnow
from marketplace.security import (
    DUMMY_PASSWORD_HASH,
    BadToken,
    check_password,
    fingerprint,
    hash_password,
    load_token,
    password_needs_rehash,
    sign_token,
)
from marketplace.urls import external_url

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
API_TOKEN_PREFIX = "mkt_"  # noqa: S105 - a public prefix, not a secret
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "letmein123",
        "iloveyou12",
        "administrator",
        "changeme123",
        "welcome123",
        "trustno1234",
        "1q2w3e4r5t",
        "qwerty12345",
        "abcdefghij",
        "0123456789",
    }
)


class AccountError(Exception):
    """A request about accounts that breaks a rule; the message is safe to show."""


class EmailTaken(AccountError):
    pass


class WeakPassword(AccountError):
    pass


class InvalidEmail(AccountError):
    pass


class InvalidCredentials(AccountError):
    pass


class SignUpRejected(AccountError):
    """Everything wrong with a sign-up, by form field, so the form can show it all at once."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems

    @property
    def only_email_taken(self) -> bool:
        """The details are fine but the account exists: a conflict (409), not bad input."""
        return self.problems == {"email": EMAIL_TAKEN}


class InvalidJoinCode(AccountError):
    pass


class NotOrganizationOwner(AccountError):
    pass


class TokenNotFound(AccountError):
    pass


def normalize_email(email: str) -> str:
    """The one spelling we store and look up: validated syntax, lower-cased."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return result.normalized.lower()


def check_password_strength(password: str, email: str = "") -> None:
    """Raise WeakPassword with a sentence a person can act on."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        raise WeakPassword("This password is too common or too easy to guess.")
    if email and lowered == email.lower():
        raise WeakPassword("Your password must not be your email address.")


def find_user_by_email(session: Session, email: str) -> User | None:
    try:
        normalized = normalize_email(email)
    except InvalidEmail:
        return None
    return session.scalar(select(User).where(User.email == normalized))


def _new_join_code() -> str:
    return secrets.token_urlsafe(18)


EMAIL_TAKEN = "An account with this email already exists. Log in instead."


def sign_up_problems(
    session: Session,
    *,
    email: str,
    password: str,
    role: UserRole | str | None,
    display_name: str,
    organization_name: str | None = None,
    join_code: str | None = None,
) -> dict[str, str]:
    """Every reason these sign-up details would be refused, by form field (empty: none).

    Reads only; the form shows all of them at once instead of one per attempt.
    """
    problems: dict[str, str] = {}
    if role not in (UserRole.ARTIST, UserRole.BUYER):
        problems["role"] = "Choose whether you sign up as an artist or a buyer."
    if not display_name.strip():
        problems["display_name"] = "Tell us the name to show."
    try:
        email = normalize_email(email)
    except InvalidEmail as exc:
        problems["email"] = str(exc)
    else:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            problems["email"] = EMAIL_TAKEN
    try:
        check_password_strength(password, email)
    except WeakPassword as exc:
        problems["password"] = str(exc)
    if role == UserRole.BUYER:
        if join_code:
            if _organization_by_join_code(session, join_code) is None:
                problems["join_code"] = "That join code does not match any organization."
        elif not (organization_name and organization_name.strip()):
            problems["organization_name"] = (
                "Name your organization, or give the join code of an existing one."
            )
    return problems


def _organization_by_join_code(session: Session, join_code: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.join_code == join_code.strip()))


def sign_up(
    session: Session,
    *,
    email: str,
    password: str,
    role: UserRole,
    display_name: str,
    organization_name: str | None = None,
    join_code: str | None = None,
) -> User:
    """Create an artist (with profile) or a buyer (creating or joining an organization).

    Sends the verification mail after commit. Raises SignUpRejected naming every problem
    (see `sign_up_problems`), or EmailTaken when a concurrent sign-up took the address first;
    writes nothing in those cases.
    """
    problems = sign_up_problems(
        session,
        email=email,
        password=password,
        role=role,
        display_name=display_name,
        organization_name=organization_name,
        join_code=join_code,
    )
    if problems:
        raise SignUpRejected(problems)
    email = normalize_email(email)
    display_name = display_name.strip()
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name[:120],
    )
    if role is UserRole.BUYER:
        organization = _organization_by_join_code(session, join_code) if join_code else None
        if organization is not None:
            user.organization = organization
            user.organization_role = OrganizationRole.MEMBER
        else:
            user.organization = Organization(
                name=(organization_name or "").strip()[:120], join_code=_new_join_code()
            )
            user.organization_role = OrganizationRole.OWNER
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent sign-up took the email first
        raise EmailTaken(EMAIL_TAKEN) from exc
    if role is UserRole.ARTIST:
        artist_services.create_profile(session, user, display_name=display_name)
    log.info("user %s signed up as %s", user.id, role.value)
    user_id = user.id
    jobs.enqueue_after_commit(session, send_verification_email, user_id)
    return user


def create_admin(session: Session, *, email: str, password: str, display_name: str) -> User:
    """An administrator, verified from the start (made from the command line)."""
    email = normalize_email(email)
    check_password_strength(password, email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken("An account with this email already exists.")
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=UserRole.ADMIN,
        display_name=display_name,
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """The user these credentials belong to; InvalidCredentials otherwise (same cost either way)."""
    user = find_user_by_email(session, email)
    if user is None or not user.is_active:
        check_password(DUMMY_PASSWORD_HASH, password)
        raise InvalidCredentials("Email or password is not correct.")
    if not check_password(user.password_hash, password):
        raise InvalidCredentials("Email or password is not correct.")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


# --- Email verification --------------------------------------------------------------------

VERIFY_PURPOSE = "email-verify"
RESET_PURPOSE = "password-reset"


def email_verification_token(user: User) -> str:
    return sign_token(VERIFY_PURPOSE, {"uid": user.id, "email": user.email})


def queue_verification_email(session: Session, user_id: int) -> None:
    """Mail a fresh confirmation link once the transaction commits (through the job outbox)."""
    jobs.enqueue_after_commit(session, send_verification_email, user_id)


def send_verification_email(user_id: int) -> None:
    """Job: mail a fresh verification link. Rerunning sends another valid link, nothing else."""
    user = get_session().get(User, user_id)
    if user is None or user.is_verified:
        return
    link = external_url("accounts.verify_email", token=email_verification_token(user))
    mail.send(
        mail.Message(
            to=user.email,
            subject="Confirm your email address",
            text=(
                f"Hello {user.display_name},\n\n"
                f"Please confirm your email address by opening this link:\n\n{link}\n\n"
                "The link is valid for three days. If you did not sign up, ignore this mail.\n"
            ),
        )
    )


def verify_email_now(session: Session, user: User) -> None:
    """Mark an address verified without a mail round trip (demo data, administrators)."""
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()


def verify_email(session: Session, token: str) -> User:
    """Mark the user's email verified; BadToken for a wrong, stale or foreign token."""
    payload = load_token(VERIFY_PURPOSE, token, int(current_app.config["EMAIL_TOKEN_MAX_AGE"]))
    user = session.get(User, payload.get("uid")) if isinstance(payload.get("uid"), int) else None
    if user is None or user.email != payload.get("email"):
        raise BadToken("This link is not valid.")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        log.info("user %s verified their email", user.id)
    return user


# --- Password reset ------------------------------------------------------------------------


def password_reset_token(user: User) -> str:
    """Bound to the current password hash, so the link works once."""
    return sign_token(RESET_PURPOSE, {"uid": user.id, "pw": fingerprint(user.password_hash)})


def request_password_reset(session: Session, email: str) -> None:
    """Mail a reset link if the account exists; says nothing either way (no enumeration)."""
    user = find_user_by_email(session, email)
    if user is None or not user.is_active:
        log.info("password reset requested for an unknown email")
        return
    user_id = user.id
    jobs.enqueue_after_commit(session, send_password_reset_email, user_id)


def send_password_reset_email(user_id: int) -> None:
    """Job: mail a reset link for the user's current password."""
    user = get_session().get(User, user_id)
    if user is None:
        return
    link = external_url("accounts.reset_password", token=password_reset_token(user))
    minutes = int(current_app.config["PASSWORD_RESET_MAX_AGE"]) // 60
    mail.send(
        mail.Message(
            to=user.email,
            subject="Reset your password",
            text=(
                f"Hello {user.display_name},\n\n"
                f"Open this link to choose a new password:\n\n{link}\n\n"
                f"It works once and expires in {minutes} minutes. If you did not ask for it, "
                "ignore this mail; your password stays as it is.\n"
            ),
        )
    )


def user_for_reset_token(session: Session, token: str) -> User:
    payload = load_token(RESET_PURPOSE, token, int(current_app.config["PASSWORD_RESET_MAX_AGE"]))
    uid = payload.get("uid")
    user = session.get(User, uid) if isinstance(uid, int) else None
    if user is None or payload.get("pw") != fingerprint(user.password_hash):
        raise BadToken("This link has already been used or is not valid.")
    if not user.is_active:  # a link mailed before the suspension must not reopen the account
        raise BadToken("This link is not valid.")
    return user


def reset_password(session: Session, token: str, new_password: str) -> User:
    """Set a new password; the token stops working because the hash it was bound to changed."""
    user = user_for_reset_token(session, token)
    check_password_strength(new_password, user.email)
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # they proved they read the mailbox
    log.info("user %s reset their password", user.id)
    return user


def change_password(session: Session, user: User, current: str, new_password: str) -> User:
    """Set a new password after checking the current one; every other login of the user ends."""
    if not check_password(user.password_hash, current):
        raise InvalidCredentials("The current password is not correct.")
    check_password_strength(new_password, user.email)
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    log.info("user %s changed their password", user.id)
    return user


def suspend_user(session: Session, user: User) -> User:
    """Stop the account: no log-in, and its open sessions and remember cookies stop working."""
    user.is_active = False
    end_sessions(user)
    log.info("user %s suspended", user.id)
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session and remember cookie of `user` (they carry the old version)."""
    user.session_version = (user.session_version or 1) + 1


# --- Organizations and API tokens ----------------------------------------------------------


def organization_members(session: Session, organization: Organization) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.organization_id == organization.id).order_by(User.id)
        )
    )


def is_organization_owner(user: User) -> bool:
    return user.organization_id is not None and user.organization_role == OrganizationRole.OWNER


def regenerate_join_code(session: Session, actor: User, organization: Organization) -> str:
    """A new join code (the old one stops working); only the organization's owner may."""
    if not is_organization_owner(actor) or actor.organization_id != organization.id:
        raise NotOrganizationOwner("Only the organization's owner can change the join code.")
    organization.join_code = _new_join_code()
    return organization.join_code


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plaintext: str  # shown once, never stored


def _token_digest(plaintext: str) -> str:
    # API tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow hash).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_token(session: Session, user: User, name: str) -> IssuedToken:
    """A buyer's token acts for their organization; an artist's token acts for the artist."""
    if user.organization is None and user.role is not UserRole.ARTIST:
        raise AccountError("Only artists and members of a buyer organization have API tokens.")
    name = name.strip()
    if not name:
        raise AccountError("Give the token a name, so you know later what uses it.")
    plaintext = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organization=user.organization if user.role is UserRole.BUYER else None,
        created_by=user,
        name=name[:80],
        prefix=plaintext[:12],
        token_sha256=_token_digest(plaintext),
    )
    session.add(token)
    session.flush()
    log.info("api token %s created for organization %s", token.id, token.organization_id)
    return IssuedToken(token=token, plaintext=plaintext)


def _tokens_of(user: User) -> Any:
    """Which tokens a user manages: their organization's, or (artists) their own."""
    if user.role is UserRole.BUYER and user.organization_id is not None:
        return ApiToken.organization_id == user.organization_id
    return (ApiToken.created_by_id == user.id) & ApiToken.organization_id.is_(None)


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(_tokens_of(user))
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        )
    )


def revoke_api_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens; anyone else's token is 'not found'."""
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id, _tokens_of(user)))
    if token is None:
        raise TokenNotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        log.info("api token %s revoked", token.id)
    return token


def find_active_api_token(session: Session, plaintext: str) -> ApiToken | None:
    """The token if it is unrevoked and its creator's account is not suspended: suspending a
    user stops every token they made, as it stops their sessions."""
    if not plaintext.startswith(API_TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = session.scalar(
        select(ApiToken)
        .join(User, User.id == ApiToken.created_by_id)
        .where(ApiToken.token_sha256 == _token_digest(plaintext), User.is_active.is_(True))
    )
    if token is None or token.revoked_at is not None:
        return None
    return token


def authenticate_api_token(session: Session, plaintext: str) -> ApiToken | None:
    """The active token a request presents, with its last use recorded; None if unknown."""
    token = find_active_api_token(session, plaintext)
    if token is not None:
        token.last_used_at = utcnow()
    return token


def count_users_by_role(session: Session) -> dict[str, int]:
    rows = session.execute(select(User.role, func.count()).group_by(User.role)).all()
    return {str(role): int(count) for role, count in rows}
