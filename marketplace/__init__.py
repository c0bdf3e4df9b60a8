"""A consent-first licensing marketplace for AI training images.

`create_app` is imported lazily so that `python -m marketplace.ledger.verify` (standard library
plus `cryptography`) never imports Flask or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketplace.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from marketplace.app import create_app

        return create_app
    raise AttributeError(name)
