"""Artists' profiles. Works, terms and the opt-out registry arrive with the Artists issue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from marketplace.artists.models import Artist

if TYPE_CHECKING:
    from marketplace.accounts.models import User


def create_profile(session: Session, user: User, *, display_name: str) -> Artist:
    """The public profile every artist account has from sign-up on."""
    artist = Artist(user=user, display_name=display_name.strip()[:120])
    session.add(artist)
    session.flush()
    return artist
