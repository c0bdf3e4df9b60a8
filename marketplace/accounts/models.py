"""Users, buyer organizations and their API tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, UTCDateTime, utcnow, value_enum

if TYPE_CHECKING:
    from marketplace.artists.models import Artist


class UserRole(enum.StrEnum):
    ARTIST = "artist"
    BUYER = "buyer"
    ADMIN = "admin"


class OrganizationRole(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class Organization(Base):
    """A buyer company; its members share its collections, orders and API tokens."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    join_code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[User]] = relationship(back_populates="organization")
    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="organization")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(value_enum(UserRole))
    display_name: Mapped[str] = mapped_column(String(120))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(default=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    organization_role: Mapped[OrganizationRole | None] = mapped_column(value_enum(OrganizationRole))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the login id in session and remember cookies: raising it ends every login.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    organization: Mapped[Organization | None] = relationship(back_populates="members")
    artist: Mapped[Artist | None] = relationship(back_populates="user", uselist=False)

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """`<id>:<session version>`: cookies made before a version bump no longer load a user."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def has_role(self, *roles: UserRole | str) -> bool:
        return self.role in roles


class ApiToken(Base):
    """A bearer token: a buyer organization's, or an artist's own (no organization).

    Only its SHA-256 is kept.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization | None] = relationship(back_populates="api_tokens")
    created_by: Mapped[User] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
