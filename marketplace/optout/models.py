"""The "Do Not Train" registry: hashes and URL rules that no dataset may include."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UTCDateTime, utcnow, value_enum


class RuleKind(enum.StrEnum):
    SHA256 = "sha256"  # exactly this file
    PHASH = "phash"  # this picture, give or take re-encoding (Hamming distance)
    URL = "url"  # exactly this address (scheme, fragment and default port ignored)
    PREFIX = "prefix"  # every address that starts with this one
    DOMAIN = "domain"  # every address on this host or its subdomains

    @property
    def label(self) -> str:
        """What the rule covers, in words (tables and ledger pages show this, not the value)."""
        return RULE_KIND_LABELS[self]


RULE_KIND_LABELS = {
    RuleKind.SHA256: "This exact file",
    RuleKind.PHASH: "This picture, re-encoded copies too",
    RuleKind.URL: "This exact address",
    RuleKind.PREFIX: "Every address starting with",
    RuleKind.DOMAIN: "A domain and its subdomains",
}


class OptOutRule(Base):
    __tablename__ = "optout_rules"
    __table_args__ = (
        Index("ix_optout_rules_kind_value", "kind", "value"),
        Index("ix_optout_rules_kind_host", "kind", "host"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[RuleKind] = mapped_column(value_enum(RuleKind, length=10))
    # Normalized form: url/prefix "host/path?query", a domain, a sha256 hex, a phash hex.
    value: Mapped[str] = mapped_column(String(2048))
    host: Mapped[str | None] = mapped_column(String(255))
    phash: Mapped[int | None] = mapped_column(BigInteger)
    phash_b0: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b1: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b2: Mapped[int | None] = mapped_column(Integer, index=True)
    phash_b3: Mapped[int | None] = mapped_column(Integer, index=True)
    label: Mapped[str] = mapped_column(Text, default="")
    # Kept only when the artist asked us to keep the image.
    image_key: Mapped[str | None] = mapped_column(String(255))
    # Set when the rule stands for a work whose terms are "not available for training".
    work_id: Mapped[int | None] = mapped_column(ForeignKey("works.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ledger_seq: Mapped[int | None] = mapped_column(BigInteger)  # set once the id exists
    # The registry generation that registered or withdrew this rule (see OptOutState).
    changed_generation: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0", index=True
    )


class OptOutState(Base):
    """One row: a counter every opt-out write bumps in its own transaction.

    Writers queue on the row's lock, so generations follow commit order and "the rules changed
    after generation g" is an exact question; per-process copies of the registry
    (`marketplace.optout.snapshot`) ask it to stay current.
    """

    __tablename__ = "optout_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
