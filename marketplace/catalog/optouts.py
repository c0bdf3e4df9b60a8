"""Keeping opted-out items out of the catalog: the registry's rules applied to catalog items.

An item matched by an active opt-out rule is unavailable (search, item page, collections,
similar works, bundles), whatever its artist or museum says, and `catalog_item_optouts` records
which rules match it, so that withdrawing a rule frees only the items nothing else blocks.
Matching runs from both sides, with the registry's own normalisation and matching:

- the item side (`check_items`): when an item is written (upload, terms, mirroring, ingest),
  its URLs are checked against the registry's per-process copy of the address rules
  (`optout.url_hits`) and its hashes in SQL (`optout.image_rule_ids`);
- the rule side (`match_rule`): when a rule is registered, the items it matches are found
  through indexes kept for it: each item's normalised URLs (`catalog_item_addresses`, by key
  hash or by host), the distinct hosts (`catalog_item_hosts`, few, compared with the rule's
  domain in Python), and the image hashes with the pHash cut into the registry's four bands
  (`catalog_item_images`), so no path scans the catalog.

Both sides run in the writing transaction, so the flag is down when the rule (or the item)
commits. Each item-side check first takes a shared lock on the registry's counter row, which
every registration holds exclusively until it commits (PostgreSQL; SQLite writers are serial
anyway): a rule and an item committed at the same moment cannot miss each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import Table, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from marketplace import imaging
from marketplace.artists.models import Work
from marketplace.catalog.models import (
    CatalogItem,
    ItemAddress,
    ItemHost,
    ItemImage,
    ItemOptOut,
    StockRecord,
)
from marketplace.db import bulk_insert, utcnow
from marketplace.optout import services as optout
from marketplace.optout.models import OptOutRule, OptOutState, RuleKind
from marketplace.optout.urls import BadUrl, host_suffixes, normalize_url

_CHUNK = 5000


def _chunks(ids: Sequence[int], size: int = _CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def key_hash(key: str) -> int:
    """A signed 64-bit digest of a normalised URL (indexed; the key itself can be long)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def max_distance() -> int:
    return int(current_app.config["OPTOUT_PHASH_DISTANCE"])


def wait_for_registrations(session: Session) -> None:
    """Wait for opt-out registrations in flight to commit, and hold new ones off until this
    transaction commits (a shared lock on the counter row they update; a no-op on SQLite)."""
    session.execute(select(OptOutState.id).where(OptOutState.id == 1).with_for_update(read=True))


# --- The item side ---------------------------------------------------------------------------


def _marks(session: Session, item_ids: list[int]) -> tuple[dict[int, list[str]], dict[int, Any]]:
    """(item id -> URLs, item id -> (sha256, unsigned pHash)) as the items' sources hold them."""
    urls: dict[int, list[str]] = {}
    images: dict[int, Any] = {}
    rows = session.execute(
        select(
            CatalogItem.id,
            Work.sha256,
            Work.phash,
            StockRecord.sha256,
            StockRecord.phash,
            StockRecord.image_urls,
            StockRecord.page_url,
        )
        .select_from(CatalogItem)
        .outerjoin(Work, Work.id == CatalogItem.work_id)
        .outerjoin(StockRecord, StockRecord.id == CatalogItem.stock_id)
        .where(CatalogItem.id.in_(item_ids))
    )
    for item_id, w_sha, w_phash, s_sha, s_phash, image_urls, page_url in rows:
        found = [u for u in [*(image_urls or []), page_url] if u]
        if found:
            urls[item_id] = list(dict.fromkeys(found))
        sha256, phash = w_sha or s_sha, w_phash if w_phash is not None else s_phash
        if sha256 or phash is not None:
            unsigned = imaging.from_signed64(int(phash)) if phash is not None else None
            images[item_id] = (sha256, unsigned)
    return urls, images


def _insert_ignoring_present(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(model)
    session.execute(stmt.on_conflict_do_nothing(), rows)


_ADDRESSES = Table("catalog_item_addresses", ItemAddress.metadata)
_IMAGES = Table("catalog_item_images", ItemImage.metadata)
_OPTOUTS = Table("catalog_item_optouts", ItemOptOut.metadata)


def _record_marks(
    session: Session,
    item_ids: list[int],
    urls: dict[int, list[str]],
    images: dict[int, Any],
    *,
    fresh: bool,
) -> list[tuple[int, str, str]]:
    """Rewrite the items' rows in the tables rules are matched through; returns each item's
    normalised addresses as (item id, host, key)."""
    if not fresh:
        session.execute(delete(ItemAddress).where(ItemAddress.item_id.in_(item_ids)))
        session.execute(delete(ItemImage).where(ItemImage.item_id.in_(item_ids)))
    addresses: list[tuple[int, str, str]] = []
    for item_id, found in urls.items():
        keys: dict[str, str] = {}
        for url in found:
            try:
                normalized = normalize_url(url)
            except BadUrl:
                continue  # the registry cannot match it either
            keys.setdefault(normalized.key, normalized.host)
        addresses.extend((item_id, host, key) for key, host in keys.items())
    connection = session.connection()
    bulk_insert(
        connection,
        _ADDRESSES,
        [
            {"item_id": item_id, "host": host, "key_hash": key_hash(key), "key": key}
            for item_id, host, key in addresses
        ],
    )
    hosts = sorted({host for _, host, _ in addresses})
    _insert_ignoring_present(session, ItemHost, [{"host": h} for h in hosts])
    image_rows = []
    for item_id, (sha256, phash) in images.items():
        bands = imaging.phash_bands(phash) if phash is not None else [None] * 4
        image_rows.append(
            {
                "item_id": item_id,
                "sha256": sha256,
                "phash": imaging.to_signed64(phash) if phash is not None else None,
                **{f"phash_b{i}": band for i, band in enumerate(bands)},
            }
        )
    bulk_insert(connection, _IMAGES, image_rows)
    return addresses


def check_items(session: Session, item_ids: Sequence[int], *, fresh: bool = False) -> list[int]:
    """Record what rules match these items by, find the active rules that match them now and
    take those items out of the catalog (the caller has set `available` from the item's own
    state). `fresh`: the items were inserted in this transaction (nothing to replace). Returns
    the ids of the opted-out items. The caller owns the transaction and tells the search
    index (these ids are among those it changed)."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        return []
    wait_for_registrations(session)
    blocked: list[int] = []
    distance = max_distance()
    for part in _chunks(ids):
        urls, images = _marks(session, part)
        addresses = _record_marks(session, part, urls, images, fresh=fresh)
        rules: dict[int, set[int]] = {}
        answers = optout.normalized_url_hits(session, [(h, k) for _, h, k in addresses])
        for (item_id, _host, _key), hits in zip(addresses, answers, strict=True):
            if hits:
                rules.setdefault(item_id, set()).update(h.rule_id for h in hits)
        for item_id, (sha256, phash) in images.items():
            found_ids = optout.image_rule_ids(
                session, sha256=sha256, phash=phash, max_distance=distance
            )
            if found_ids:
                rules.setdefault(item_id, set()).update(found_ids)
        if not fresh:
            session.execute(delete(ItemOptOut).where(ItemOptOut.item_id.in_(part)))
        if rules:
            rows = [{"rule_id": r, "item_id": i} for i, found in rules.items() for r in found]
            bulk_insert(session.connection(), _OPTOUTS, rows)
            hit = sorted(rules)
            session.execute(
                update(CatalogItem)
                .where(CatalogItem.id.in_(hit), CatalogItem.available.is_(True))
                .values(available=False, updated_at=utcnow())
                .execution_options(synchronize_session="fetch")
            )
            blocked.extend(hit)
    return blocked


# --- The rule side ---------------------------------------------------------------------------


def _matching_items(session: Session, rule: OptOutRule) -> Any:
    """A SELECT of the ids of items `rule` matches (possibly repeated), or a list of ids."""
    if rule.kind is RuleKind.URL:
        return select(ItemAddress.item_id).where(
            ItemAddress.key_hash == key_hash(rule.value), ItemAddress.key == rule.value
        )
    if rule.kind is RuleKind.PREFIX:
        return select(ItemAddress.item_id).where(
            ItemAddress.host == (rule.host or ""),
            func.substr(ItemAddress.key, 1, len(rule.value)) == rule.value,
        )
    if rule.kind is RuleKind.DOMAIN:
        hosts = [
            host
            for host in session.scalars(select(ItemHost.host))
            if rule.value in host_suffixes(host)
        ]
        return select(ItemAddress.item_id).where(ItemAddress.host.in_(hosts or [""]))
    if rule.kind is RuleKind.SHA256:
        return select(ItemImage.item_id).where(ItemImage.sha256 == rule.value.lower())
    # pHash: the items sharing a band (give or take a bit), then their exact distance.
    assert rule.phash is not None
    phash = imaging.from_signed64(int(rule.phash))
    columns = (ItemImage.phash_b0, ItemImage.phash_b1, ItemImage.phash_b2, ItemImage.phash_b3)
    rows = session.execute(
        select(ItemImage.item_id, ItemImage.phash).where(
            or_(
                *(
                    column.in_(imaging.band_neighbours(band))
                    for column, band in zip(columns, imaging.phash_bands(phash), strict=True)
                )
            )
        )
    )
    distance = max_distance()
    return [
        item_id
        for item_id, value in rows
        if value is not None
        and imaging.hamming(phash, imaging.from_signed64(int(value))) <= distance
    ]


def match_rule(session: Session, rule: OptOutRule) -> list[int]:
    """Record every item a newly registered rule matches and take the available ones out of
    the catalog, in set-based statements (a domain rule over a whole museum is one INSERT and
    one UPDATE). Returns the ids of the items it made unavailable."""
    matching = _matching_items(session, rule)
    if isinstance(matching, list):
        rows = [{"rule_id": rule.id, "item_id": i} for i in sorted(set(matching))]
        if rows:
            session.execute(insert(ItemOptOut), rows)
    else:
        source = matching.subquery()
        session.execute(
            insert(ItemOptOut).from_select(
                ["rule_id", "item_id"],
                select(literal(rule.id), source.c.item_id).distinct(),
            )
        )
    return list(
        session.scalars(
            update(CatalogItem)
            .where(
                # Driven from the rule's rows (their primary key), not from every available item.
                CatalogItem.id.in_(select(ItemOptOut.item_id).where(ItemOptOut.rule_id == rule.id)),
                CatalogItem.available.is_(True),
            )
            .values(available=False, updated_at=utcnow())
            .returning(CatalogItem.id)
            .execution_options(synchronize_session=False)
        )
    )


def unmatch_rule(session: Session, rule_id: int) -> tuple[list[int], list[int]]:
    """Forget a withdrawn rule's matches. Returns (stock items it freed and that are offered
    again — not withdrawn by their museum, not taken down — and works whose items nothing
    else blocks: the caller re-indexes those)."""
    freed = list(
        session.scalars(
            delete(ItemOptOut)
            .where(ItemOptOut.rule_id == rule_id)
            .returning(ItemOptOut.item_id)
            .execution_options(synchronize_session=False)
        )
    )
    restored: list[int] = []
    works: list[int | None] = []
    unblocked = ~exists().where(ItemOptOut.item_id == CatalogItem.id)
    for part in _chunks(freed):
        restored += session.scalars(
            update(CatalogItem)
            .where(
                CatalogItem.id.in_(part),
                CatalogItem.available.is_(False),
                CatalogItem.taken_down_at.is_(None),  # a takedown is never undone here
                unblocked,
                CatalogItem.stock_id.in_(
                    select(StockRecord.id).where(StockRecord.withdrawn_at.is_(None))
                ),
            )
            .values(available=True, updated_at=utcnow())
            .returning(CatalogItem.id)
            .execution_options(synchronize_session=False)
        ).all()
        works += session.scalars(
            select(CatalogItem.work_id).where(
                CatalogItem.id.in_(part), CatalogItem.work_id.is_not(None), unblocked
            )
        ).all()
    return restored, [w for w in works if w is not None]


def opted_out_items(session: Session, item_ids: Sequence[int]) -> set[int]:
    """Which of these items an active rule matches (what collections and pages say why)."""
    found: set[int] = set()
    for part in _chunks(list(item_ids)):
        found.update(
            session.scalars(select(ItemOptOut.item_id).where(ItemOptOut.item_id.in_(part)))
        )
    return found
