"""Issue an order's provenance certificate: item records, their sealed Merkle root, proofs, a
signature. The checks a buyer runs are in `marketplace/ledger/verify.py` (one file, offline).

An order has one certificate. Issuing it appends one `dataset.certified` entry holding the
RFC 6962 root over the order's item records (delivered and missing, in position order), then
publishes a checkpoint that covers it, and embeds inclusion proofs against that checkpoint for
the seal, the order.paid entry and, for orders up to CERTIFICATE_ITEM_PROOFS_MAX items, every
dataset.item_sold entry and the terms and stock record entries the items were sold under.
The JSON is RFC 8785 canonical; the platform's certificate key signs
`SIGNATURE_CONTEXT + canonical bytes of everything but "signature"`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from marketplace import storage
from marketplace.accounts.models import Organization
from marketplace.artists.models import WorkTerms
from marketplace.buyers.models import Order, OrderItem, OrderStatus
from marketplace.catalog.models import StockRecord
from marketplace.certificates.models import Certificate
from marketplace.governance.models import Recall
from marketplace.ledger import services as ledger
from marketplace.ledger.canonical import format_timestamp
from marketplace.ledger.keys import load_signer
from marketplace.ledger.kinds import EntryKind
from marketplace.ledger.note import Signer
from marketplace.ledger.verify import (
    CERTIFICATE_FORMAT,
    SIGNATURE_CONTEXT,
    canonical_bytes,
    tree_root,
)

log = logging.getLogger(__name__)

_EXTENSION = "marketplace.certificates"
# A fully refunded order's licence is revoked (order.refunded): it gets no new certificate.
_CERTIFIED = (OrderStatus.FULFILLED, OrderStatus.PARTIALLY_REFUNDED)
_encode_str = json.encoder.encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses


class CertificateError(Exception):
    """A certificate request that cannot be met; the message is safe to show."""


class CertificateNotFound(CertificateError):
    pass


class LicenceRevoked(CertificateError):
    """The order was refunded in full: its certificate no longer vouches for a licence."""


class CertificateNotReady(CertificateError):
    pass


# --- The certificate key -----------------------------------------------------------------


def key_name(app: Flask | None = None) -> str:
    """The certificate key's name: the log's origin with `/certificates`, never the log key."""
    return f"{(app or current_app).config['LEDGER_ORIGIN']}/certificates"


def signer(app: Flask | None = None) -> Signer:
    """The platform certificate key, loaded once per app (made on first use if not configured)."""
    app = app or current_app
    found: Signer | None = app.extensions.get(_EXTENSION)
    if found is None:
        configured = app.config.get("CERTIFICATE_KEY_PATH")
        path = Path(str(configured or app.config["CERTIFICATE_DEFAULT_KEY_PATH"]))
        found = load_signer(key_name(app), path, create=not configured)
        app.extensions[_EXTENSION] = found
    return found


def public_key(app: Flask | None = None) -> str:
    """The certificate verifier key string (C2SP note key format) buyers pin."""
    return signer(app).verifier().to_string()


# --- Item records ------------------------------------------------------------------------


# Record fields in their canonical (sorted) order; a record is exactly these keys.
RECORD_FIELDS = (
    "artist",
    "attribution_required",
    "item",
    "key",
    "licence",
    "media_type",
    "missing_reason",
    "position",
    "price_minor",
    "sha256",
    "size_bytes",
    "sold_seq",
    "stock",
    "stock_seq",
    "terms",
    "terms_seq",
    "work",
)


def _record_text(
    artist: int | None,
    attribution: bool,
    item: int,
    position: int,
    licence: str,
    media_type: str | None,
    missing: str | None,
    price: int,
    sha256: str | None,
    size: int | None,
    sold_seq: int,
    stock: int | None,
    stock_seq: int | None,
    terms: int | None,
    terms_seq: int | None,
    work: int | None,
) -> str:
    n = "null"
    return (
        f'{{"artist":{n if artist is None else artist},'
        f'"attribution_required":{"true" if attribution else "false"},'
        f'"item":{item},"key":"{position:09d}",'
        f'"licence":{_encode_str(licence)},'
        f'"media_type":{n if media_type is None else _encode_str(media_type)},'
        f'"missing_reason":{n if missing is None else _encode_str(missing)},'
        f'"position":{position},"price_minor":{price},'
        f'"sha256":{n if sha256 is None else _encode_str(sha256)},'
        f'"size_bytes":{n if size is None else size},"sold_seq":{sold_seq},'
        f'"stock":{n if stock is None else stock},'
        f'"stock_seq":{n if stock_seq is None else stock_seq},'
        f'"terms":{n if terms is None else terms},'
        f'"terms_seq":{n if terms_seq is None else terms_seq},'
        f'"work":{n if work is None else work}}}'
    )


def record_json(record: dict[str, Any]) -> str:
    """The record's canonical JSON, written directly: the same text as
    `json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` for records
    of ints and strings (tested), several times faster for a million records."""
    if sorted(record) != list(RECORD_FIELDS):
        raise ValueError("not an item record")
    return _record_text(
        record["artist"],
        record["attribution_required"],
        record["item"],
        record["position"],
        record["licence"],
        record["media_type"],
        record["missing_reason"],
        record["price_minor"],
        record["sha256"],
        record["size_bytes"],
        record["sold_seq"],
        record["stock"],
        record["stock_seq"],
        record["terms"],
        record["terms_seq"],
        record["work"],
    )


@dataclass
class _Records:
    """The order's records as certificate JSON fragments, with what the summary needs."""

    items: list[str]  # '{"digest":..,"record":..}' for delivered items; digest: leaf hash
    missing: list[str]
    leaves: list[bytes]  # RFC 6962 leaf hashes of the record bytes, in position order
    sold_seqs: list[int]
    context_seqs: set[int]  # the terms and stock record entries the items point at
    counts: dict[str, int]
    attribution: int
    delivered_bytes: int


def _records(session: Session, order: Order, tree_size: int) -> _Records:
    """Every order item as its record, in position order, streamed from one query.

    The hot loop of a million-item certificate: rows go straight to canonical text (no dict per
    record), then to the two hashes, so the work per item is one f-string and two SHA-256.
    """
    query = (
        select(
            OrderItem.artist_id,
            OrderItem.attribution_required,
            OrderItem.item_id,
            OrderItem.position,
            type_coerce(OrderItem.licence, String),  # the plain value: no enum per row
            OrderItem.delivered_media_type,
            OrderItem.missing_reason,
            OrderItem.price_minor,
            OrderItem.delivered_sha256,
            OrderItem.delivered_bytes,
            OrderItem.ledger_seq,
            OrderItem.stock_id,
            StockRecord.ledger_seq,
            OrderItem.terms_id,
            WorkTerms.ledger_seq,
            OrderItem.work_id,
        )
        .outerjoin(WorkTerms, WorkTerms.id == OrderItem.terms_id)
        .outerjoin(StockRecord, StockRecord.id == OrderItem.stock_id)
        .where(OrderItem.order_id == order.id)
        .order_by(OrderItem.position)
    )
    sha256, text = hashlib.sha256, _record_text
    out = _Records([], [], [], [], set(), {}, 0, 0)
    add_item, add_missing, add_leaf = out.items.append, out.missing.append, out.leaves.append
    add_seq, counts = out.sold_seqs.append, out.counts
    # Core execution on the session's connection: rows as tuples, no ORM loading per row.
    # (the option on the statement, not the connection: the appends after it must not stream).
    result = session.connection().execute(query.execution_options(yield_per=20_000))
    for (
        artist,
        attribution,
        item,
        position,
        licence,
        media_type,
        missing,
        price,
        digest,
        size,
        sold_seq,
        stock,
        stock_seq,
        terms,
        terms_seq,
        work,
    ) in result:
        if sold_seq is None:
            raise CertificateNotReady(f"Item {position} has no ledger entry yet.")
        if stock_seq is not None and stock_seq >= tree_size:
            stock_seq = None  # a stock record's entry counts only if it was in the log at the sale
        if missing:
            record = text(
                artist, attribution, item, position, licence, None, missing, price,
                None, None, sold_seq, stock, stock_seq, terms, terms_seq, work,
            )  # fmt: skip
        elif digest is None or media_type is None or size is None:
            raise CertificateNotReady(f"Item {position} has not been delivered yet.")
        else:
            record = text(
                artist, attribution, item, position, licence, media_type, None, price,
                digest, size, sold_seq, stock, stock_seq, terms, terms_seq, work,
            )  # fmt: skip
        leaf = sha256(b"\x00" + record.encode()).digest()  # the digest is the RFC 6962 leaf
        add_leaf(leaf)
        add_seq(sold_seq)
        if terms_seq is not None:
            out.context_seqs.add(terms_seq)
        if stock_seq is not None:
            out.context_seqs.add(stock_seq)
        fragment = f'{{"digest":"{leaf.hex()}","record":{record}}}'
        if missing:
            add_missing(fragment)
        else:
            add_item(fragment)
            counts[licence] = counts.get(licence, 0) + 1
            out.attribution += bool(attribution)
            out.delivered_bytes += size or 0
    return out


# --- Issuing -------------------------------------------------------------------------------


def find_certificate(session: Session, order_id: int) -> Certificate | None:
    return session.get(Certificate, order_id)


def certificate_bytes(session: Session, order_id: int) -> bytes:
    """The stored certificate JSON, byte for byte; CertificateNotFound if not issued,
    LicenceRevoked once the order is refunded in full (the ledger's order.refunded entry
    says so to anyone holding a copy)."""
    order = session.get(Order, order_id)
    if order is not None and order.status is OrderStatus.REFUNDED:
        raise LicenceRevoked(
            "This order was refunded in full, so its licence is revoked and its certificate "
            "withdrawn."
        )
    found = find_certificate(session, order_id)
    if found is None:
        raise CertificateNotFound("No certificate has been issued for this order yet.")
    return storage.get(found.storage_key)


def storage_key(order_id: int, revision: int = 1) -> str:
    """Where a revision of the order's certificate is kept (every revision stays)."""
    if revision == 1:
        return f"certificates/{order_id}/certificate.json"
    return f"certificates/{order_id}/certificate-r{revision}.json"


def issue_certificate(session: Session, order_id: int) -> dict[str, Any]:
    """The order's certificate, issued on first call (one per order; later calls return it).

    Needs a fulfilled order whose every item is delivered (delivered_*) or has a
    missing_reason: CertificateNotReady otherwise. The caller owns the transaction; the seal
    entry, its checkpoint, the stored JSON and the Certificate row commit or roll back together.
    """
    existing = find_certificate(session, order_id)
    if existing is not None:
        parsed: dict[str, Any] = json.loads(storage.get(existing.storage_key))
        return parsed
    data, row = _issue(session, order_id)
    log.info("certificate issued for order %s: %s items", order_id, row.item_count)
    parsed = json.loads(data)
    return parsed


def issue_certificate_bytes(session: Session, order_id: int) -> bytes:
    """As `issue_certificate`, but the canonical JSON bytes (no parsing of a large order)."""
    if find_certificate(session, order_id) is not None:
        return certificate_bytes(session, order_id)
    return _issue(session, order_id)[0]


def reissue_certificate(session: Session, order_id: int) -> Certificate | None:
    """Issue the order's certificate again, marking the items recalled since (each with its
    `order.item_recalled` entry and proof, against a new checkpoint). The items and their
    sealed root are unchanged: a recall is a new fact about the same dataset. The previous
    revision's JSON stays in storage; the new one is served from now on. None when the order
    has no certificate yet (it will list the recalls when first issued) or its licence is
    revoked."""
    order = session.get(Order, order_id)
    existing = find_certificate(session, order_id)
    if existing is None or order is None or order.status not in _CERTIFIED:
        return None
    ledger.lock(session)
    session.refresh(existing)
    _, row = _issue(session, order_id, previous=existing)
    log.info("certificate of order %s re-issued as revision %s", order_id, row.revision)
    return row


def _recalls(session: Session, order_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Recall).where(Recall.order_id == order_id).order_by(Recall.id))
    return [
        {
            "key": row.key,
            "item": row.item_id,
            "seq": row.ledger_seq,
            "claim": row.claim_id,
            "reason": row.reason,
            "recalled_at": format_timestamp(row.created_at),
        }
        for row in rows
    ]


def _issue(
    session: Session, order_id: int, previous: Certificate | None = None
) -> tuple[bytes, Certificate]:
    order = session.get(Order, order_id)
    if order is None:
        raise CertificateNotFound("No such order.")
    if order.status not in _CERTIFIED or order.paid_seq is None or order.paid_at is None:
        raise CertificateNotReady("The certificate is issued once the order is fulfilled.")
    ledger.lock(session)  # one seal per order even if two deliveries race
    if previous is None:
        raced = find_certificate(session, order_id)
        if raced is not None:
            return storage.get(raced.storage_key), raced
    tree_size = order.paid_seq + 1
    records = _records(session, order, tree_size)
    count = len(records.leaves)
    if count == 0:
        raise CertificateNotReady("The order has no items.")
    root = tree_root(records.leaves).hex()
    missing_count = len(records.missing)
    if previous is None:
        seal_seq = ledger.append(
            session,
            EntryKind.DATASET_CERTIFIED,
            subject={"order": order.id, "organization": order.organization_id},
            payload={
                "order": order.id,
                "item_count": count,
                "missing_count": missing_count,
                "items_root": root,
            },
        )
    else:
        if root != previous.items_root:  # the records are the dataset: they never change
            raise CertificateError(f"order {order.id}: item records differ from those sealed")
        seal_seq = previous.seal_seq
    recalls = _recalls(session, order.id)
    checkpoint = ledger.publish_checkpoint(session)
    with_items = count <= int(current_app.config["CERTIFICATE_ITEM_PROOFS_MAX"])
    seqs = [seal_seq, order.paid_seq, *(r["seq"] for r in recalls if r["seq"] is not None)]
    if with_items:
        seqs += [*records.sold_seqs, *records.context_seqs]
    bundle = ledger.proof_bundle(session, seqs)
    organization = session.get(Organization, order.organization_id)
    who = signer()
    body: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT,
        "issued_at": format_timestamp(checkpoint.created_at),
        "order": {
            "id": order.id,
            "reference": order.quote.public_id,
            "organization": {
                "id": order.organization_id,
                "name": organization.name if organization else "",
            },
            "paid_at": format_timestamp(order.paid_at),
            "paid_seq": order.paid_seq,
            "intended_uses": list(order.bundle.intended_uses),
            "currency": order.currency,
            "total_minor": order.total_minor,
            "artists_minor": order.artists_minor,
            "platform_minor": order.platform_minor,
            "item_count": order.item_count,
        },
        "counts": dict(sorted(records.counts.items())),
        "obligations": {"attribution_required": records.attribution},
        "delivered_bytes": records.delivered_bytes,
        "tree_size_at_purchase": tree_size,
        "seal": {
            "seq": seal_seq,
            "items_root": root,
            "item_count": count,
            "missing_count": missing_count,
        },
        "item_entries_included": with_items,
        "recalls": recalls,
        "revision": previous.revision + 1 if previous is not None else 1,
        "ledger": bundle,
        "verify": {
            "page": "/verify",
            "verifier": "/verify/verifier.py",
            "command": (
                "python verifier.py certificate.json "
                f"--key '{bundle['verifier_key']}' --certificate-key '{public_key()}' "
                "--package ."
            ),
        },
    }
    large = {  # serialised and encoded once, spliced into both the signed and the full bytes
        "items": ("[" + ",".join(records.items) + "]").encode(),
        "missing": ("[" + ",".join(records.missing) + "]").encode(),
    }
    del records.items[:], records.missing[:]  # half a gigabyte for a million items
    unsigned = _assemble(body, large)
    value = who.private_key.sign(SIGNATURE_CONTEXT + unsigned)
    body["signature"] = {
        "algorithm": "Ed25519",
        "context": SIGNATURE_CONTEXT.decode().strip(),
        "key": who.verifier().to_string(),
        "value": base64.b64encode(value).decode("ascii"),
    }
    data = _assemble(body, large)
    revision = int(body["revision"])
    key = storage_key(order.id, revision)
    storage.put(session, key, data, content_type="application/json")
    if previous is not None:
        previous.storage_key = key
        previous.sha256 = hashlib.sha256(data).hexdigest()
        previous.size_bytes = len(data)
        previous.checkpoint_size = checkpoint.tree_size
        previous.key_id = who.key_id.hex()
        previous.revision = revision
        previous.reissued_at = checkpoint.created_at
        session.flush()
        return data, previous
    row = Certificate(
        order_id=order.id,
        storage_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        item_count=count,
        missing_count=missing_count,
        items_root=root,
        seal_seq=seal_seq,
        tree_size_at_purchase=tree_size,
        checkpoint_size=checkpoint.tree_size,
        key_id=who.key_id.hex(),
    )
    session.add(row)
    session.flush()
    return data, row


def _assemble(body: dict[str, Any], large: dict[str, bytes]) -> bytes:
    """Canonical JSON of `body` plus members already serialised canonically (`large`): what
    json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes for the whole,
    without serialising a million records twice."""
    parts = [
        _encode_str(name).encode() + b":" + canonical_bytes(body[name])
        if name in body
        else _encode_str(name).encode() + b":" + large[name]
        for name in sorted({*body, *large})
    ]
    return b"{" + b",".join(parts) + b"}"
