"""Claims, takedowns and recalls: the rules the public form, the admin console and jobs share.

An accepted claim takes its item down (a ledger entry; the item leaves search, collections,
open quotes and future bundles at once) and recalls it from every paid order that held it: one
`Recall` row and one `order.item_recalled` entry per order, and a notice to the buying
organization. Past entries are never rewritten: the recall is a new fact about an old sale.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace import imaging, storage
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.artists.models import Artist, Work
from marketplace.buyers.models import Order, OrderItem
from marketplace.catalog import search
from marketplace.catalog.models import CatalogItem
from marketplace.db import utcnow
from marketplace.delivery.models import FileKind, Package, PackageFile
from marketplace.governance.models import (
    AdminAction,
    Claim,
    ClaimFile,
    ClaimKind,
    ClaimStatus,
    Recall,
)
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import EntryKind
from marketplace.security import BadToken, load_token, sign_token
from marketplace.storage import keys
from marketplace.text import first_problem
from marketplace.urls import InvalidURL, normalize_http_url

log = logging.getLogger(__name__)

STATUS_TOKEN_PURPOSE = "claim-status"  # noqa: S105 - a signing salt, not a secret
MAX_EVIDENCE_FILES = 5
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_LINKS = 10
MIN_STATEMENT = 20
MAX_STATEMENT = 10_000
MAX_REASON = 2_000
# Evidence is shown to administrators only, and served with the type read from its bytes.
_EVIDENCE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ClaimError(Exception):
    """A claim or a decision that cannot be made as asked; the message says why."""


class ClaimNotFound(ClaimError):
    pass


@dataclass(frozen=True)
class Evidence:
    filename: str
    data: bytes


def _evidence_type(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    image = imaging.sniff_format(data)
    if image in _EVIDENCE_TYPES:
        return _EVIDENCE_TYPES[image]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain; charset=utf-8"


def _clean_links(links: str) -> str:
    lines = [line.strip() for line in links.splitlines() if line.strip()]
    if len(lines) > MAX_LINKS:
        raise ClaimError(f"Give at most {MAX_LINKS} links.")
    clean = []
    for number, line in enumerate(lines, start=1):
        try:
            clean.append(normalize_http_url(line))
        except InvalidURL as exc:
            raise ClaimError(f"Link {number} is not a web address: {exc}") from exc
    return "\n".join(clean)


def file_claim(
    session: Session,
    *,
    item_id: int,
    kind: str,
    name: str,
    email: str,
    statement: str,
    links: str = "",
    evidence: Sequence[Evidence] = (),
    user: User | None = None,
) -> Claim:
    """Record a claim with its evidence; nothing is stored if any part is refused (the
    evidence objects are removed again if the transaction rolls back)."""
    item = session.get(CatalogItem, item_id)
    if item is None:
        raise ClaimNotFound(f"No item {item_id} in the catalog.")
    try:
        claim_kind = ClaimKind(kind)
    except ValueError as exc:
        raise ClaimError("Choose what the claim is about.") from exc
    name, statement = name.strip(), statement.strip()
    problem = first_problem([name, statement, links])
    if problem is not None:
        raise ClaimError(f"The claim {problem}.")
    if not 0 < len(name) <= 200:
        raise ClaimError("Give your name (at most 200 characters).")
    try:
        address = accounts.normalize_email(email)
    except accounts.InvalidEmail as exc:
        raise ClaimError(f"The email address is not valid: {exc}") from exc
    if not MIN_STATEMENT <= len(statement) <= MAX_STATEMENT:
        raise ClaimError(f"Explain the claim in {MIN_STATEMENT} to {MAX_STATEMENT:,} characters.")
    if len(evidence) > MAX_EVIDENCE_FILES:
        raise ClaimError(f"Attach at most {MAX_EVIDENCE_FILES} files.")
    typed = []
    for upload in evidence:
        if not upload.data:
            raise ClaimError(f"The file “{upload.filename}” is empty.")
        if len(upload.data) > MAX_EVIDENCE_BYTES:
            raise ClaimError(f"The file “{upload.filename}” is larger than 10 MB.")
        media_type = _evidence_type(upload.data)
        if media_type is None:
            raise ClaimError(
                f"The file “{upload.filename}” is not an image (JPEG, PNG, WebP), a PDF or text."
            )
        typed.append((upload, media_type))
    claim = Claim(
        item_id=item.id,
        kind=claim_kind,
        claimant_name=name,
        claimant_email=address,
        claimant_user_id=user.id if user is not None else None,
        statement=statement,
        links=_clean_links(links),
    )
    session.add(claim)
    session.flush()
    for number, (upload, media_type) in enumerate(typed, start=1):
        key = keys.claim_evidence(claim.id, number)
        storage.put(session, key, upload.data, content_type=media_type)
        claim.files.append(
            ClaimFile(
                filename=upload.filename.replace("/", "_")[-255:] or f"evidence-{number}",
                storage_key=key,
                media_type=media_type,
                size_bytes=len(upload.data),
                sha256=hashlib.sha256(upload.data).hexdigest(),
            )
        )
    log.info("claim %s filed on item %s (%s)", claim.id, item.id, claim_kind.value)
    return claim


def status_token(claim: Claim) -> str:
    """The claimant's link to follow their claim: signed, bound to the claim and its email."""
    return sign_token(STATUS_TOKEN_PURPOSE, {"claim": claim.id, "email": claim.claimant_email})


def claim_for_token(session: Session, token: str) -> Claim:
    """The claim a status link names; ClaimNotFound for a forged, foreign or expired link."""
    try:
        payload = load_token(
            STATUS_TOKEN_PURPOSE, token, int(current_app.config["CLAIM_LINK_MAX_AGE"])
        )
    except BadToken as exc:
        raise ClaimNotFound(str(exc)) from exc
    claim_id = payload.get("claim")
    claim = session.get(Claim, claim_id) if isinstance(claim_id, int) else None
    if claim is None or claim.claimant_email != payload.get("email"):
        raise ClaimNotFound("This link is not valid.")
    return claim


def get_claim(session: Session, claim_id: int, *, lock: bool = False) -> Claim:
    claim = session.get(Claim, claim_id, with_for_update=lock)
    if claim is None:
        raise ClaimNotFound(f"No claim {claim_id}.")
    return claim


def claims_queue(session: Session, *, limit: int = 200) -> tuple[list[Claim], list[Claim]]:
    """Open claims, oldest first, and the latest decided ones."""
    open_claims = session.scalars(
        select(Claim).where(Claim.status == ClaimStatus.OPEN).order_by(Claim.id).limit(limit)
    ).all()
    decided = session.scalars(
        select(Claim).where(Claim.status != ClaimStatus.OPEN).order_by(Claim.id.desc()).limit(50)
    ).all()
    return list(open_claims), list(decided)


def item_of(session: Session, claim: Claim) -> CatalogItem:
    item = session.get(CatalogItem, claim.item_id)
    if item is None:  # pragma: no cover - a claim's item is a foreign key
        raise ClaimNotFound(f"No item {claim.item_id}.")
    return item


def uploading_artist(session: Session, claim: Claim) -> Artist | None:
    """For a claim on an artist's work: the artist who uploaded it."""
    item = item_of(session, claim)
    if item.work_id is None:
        return None
    work = session.get(Work, item.work_id)
    return work.artist if work is not None else None


def record_admin_action(
    session: Session,
    actor: User,
    action: str,
    *,
    target_type: str,
    target_id: int | None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AdminAction:
    """The audit log's one writer: who did what to what, and why."""
    row = AdminAction(
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        reason=reason[:MAX_REASON],
        details=details or {},
    )
    session.add(row)
    return row


def _decision_reason(reason: str) -> str:
    reason = reason.strip()
    problem = first_problem([reason])
    if problem is not None:
        raise ClaimError(f"The reason {problem}.")
    if not reason:
        raise ClaimError("Give the reason for the decision: it is sent to the claimant.")
    if len(reason) > MAX_REASON:
        raise ClaimError(f"Keep the reason under {MAX_REASON:,} characters.")
    return reason


def take_down(session: Session, item: CatalogItem, claim: Claim) -> int:
    """Take the item out of the catalog for good: search, collections, open quotes and future
    bundles stop offering it in this transaction. Returns the takedown's ledger entry."""
    session.refresh(item, with_for_update=True)
    item.available = False
    item.taken_down_at = utcnow()
    item.updated_at = utcnow()
    if item.work_id is not None:
        kind, subject = EntryKind.WORK_TAKEN_DOWN, {"work": item.work_id}
    else:
        kind, subject = EntryKind.STOCK_TAKEN_DOWN, {"stock": item.stock_id or 0}
    seq = ledger.append(
        session,
        kind,
        subject={**subject, "claim": claim.id},
        payload={"item": item.id, "claim_kind": claim.kind.value},
    )
    search.items_changed(session, [item.id])
    return seq


def _package_files(session: Session, order_ids: list[int]) -> dict[int, list[PackageFile]]:
    """Each order's shards in order, to say which file holds a recalled item."""
    rows = session.execute(
        select(Package.order_id, PackageFile)
        .join(PackageFile, PackageFile.package_id == Package.id)
        .where(Package.order_id.in_(order_ids), PackageFile.kind == FileKind.SHARD)
        .order_by(PackageFile.path)
    ).all()
    found: dict[int, list[PackageFile]] = {}
    for order_id, file in rows:
        found.setdefault(order_id, []).append(file)
    return found


def _shard_of(session: Session, order_item: OrderItem, shards: list[PackageFile]) -> str:
    """The shard holding a delivered item: shards hold the delivered items in position order."""
    if order_item.delivered_sha256 is None or not shards:
        return ""
    before = session.scalar(
        select(func.count())
        .select_from(OrderItem)
        .where(
            OrderItem.order_id == order_item.order_id,
            OrderItem.position < order_item.position,
            OrderItem.delivered_sha256.is_not(None),
        )
    )
    rank = int(before or 0)
    for shard in shards:
        if rank < shard.item_count:
            return shard.path
        rank -= shard.item_count
    return ""


def recall_item(session: Session, item: CatalogItem, claim: Claim, reason: str) -> list[Recall]:
    """One recall per paid order that contained the item, each a ledger entry."""
    rows = session.execute(
        select(OrderItem, Order)
        .join(Order, Order.id == OrderItem.order_id)
        .where(OrderItem.item_id == item.id, Order.paid_at.is_not(None))
        .order_by(Order.id)
    ).all()
    shards = _package_files(session, [order.id for _, order in rows])
    recalls = []
    for order_item, order in rows:
        exists = session.scalar(
            select(Recall.id).where(Recall.order_id == order.id, Recall.item_id == item.id)
        )
        if exists is not None:
            continue
        recall = Recall(
            order_id=order.id,
            organization_id=order.organization_id,
            item_id=item.id,
            claim_id=claim.id,
            position=order_item.position,
            key=f"{order_item.position:09d}",
            package_file=_shard_of(session, order_item, shards.get(order.id, [])),
            sha256=order_item.delivered_sha256,
            title=item.title[:500],
            reason=reason,
        )
        subject = {"order": order.id, "organization": order.organization_id, "claim": claim.id}
        if item.work_id is not None:
            subject["work"] = item.work_id
        elif item.stock_id is not None:
            subject["stock"] = item.stock_id
        recall.ledger_seq = ledger.append(
            session,
            EntryKind.ORDER_ITEM_RECALLED,
            subject=subject,
            payload={
                "item": item.id,
                "key": recall.key,
                "file": recall.package_file,
                "sold_seq": order_item.ledger_seq,
                "reason": reason[:500],
            },
        )
        session.add(recall)
        recalls.append(recall)
    session.flush()
    return recalls


def accept_claim(session: Session, claim: Claim, admin: User, reason: str) -> list[Recall]:
    """Take the claimed item down and recall it from every paid order that held it."""
    reason = _decision_reason(reason)
    session.refresh(claim, with_for_update=True)
    if claim.status is not ClaimStatus.OPEN:
        raise ClaimError(f"This claim was already {claim.status.value}.")
    item = item_of(session, claim)
    if item.taken_down_at is None:
        claim.ledger_seq = take_down(session, item, claim)
    recalls = recall_item(session, item, claim, reason)
    claim.status = ClaimStatus.ACCEPTED
    claim.decided_at = utcnow()
    claim.decided_by_id = admin.id
    claim.decision_reason = reason
    record_admin_action(
        session,
        admin,
        "claim.accept",
        target_type="claim",
        target_id=claim.id,
        reason=reason,
        details={"item": item.id, "recalled_orders": [r.order_id for r in recalls]},
    )
    log.info("claim %s accepted: item %s taken down, %d recalls", claim.id, item.id, len(recalls))
    return recalls


def reject_claim(session: Session, claim: Claim, admin: User, reason: str) -> None:
    reason = _decision_reason(reason)
    session.refresh(claim, with_for_update=True)
    if claim.status is not ClaimStatus.OPEN:
        raise ClaimError(f"This claim was already {claim.status.value}.")
    claim.status = ClaimStatus.REJECTED
    claim.decided_at = utcnow()
    claim.decided_by_id = admin.id
    claim.decision_reason = reason
    record_admin_action(
        session, admin, "claim.reject", target_type="claim", target_id=claim.id, reason=reason
    )


def counter_notice(session: Session, claim: Claim, artist: Artist, text: str) -> None:
    """The uploading artist's one answer to a claim on their work."""
    session.refresh(claim, with_for_update=True)
    owner = uploading_artist(session, claim)
    if owner is None or owner.id != artist.id:
        raise ClaimNotFound(f"No claim {claim.id} on your works.")
    if claim.counter_at is not None:
        raise ClaimError("You have answered this claim already.")
    text = text.strip()
    problem = first_problem([text])
    if problem is not None:
        raise ClaimError(f"The answer {problem}.")
    if not MIN_STATEMENT <= len(text) <= MAX_STATEMENT:
        raise ClaimError(f"Answer in {MIN_STATEMENT} to {MAX_STATEMENT:,} characters.")
    claim.counter_notice = text
    claim.counter_at = utcnow()


def claims_on_artist(session: Session, artist: Artist) -> list[Claim]:
    """Claims on the artist's works, newest first."""
    return list(
        session.scalars(
            select(Claim)
            .join(CatalogItem, CatalogItem.id == Claim.item_id)
            .join(Work, Work.id == CatalogItem.work_id)
            .where(Work.artist_id == artist.id)
            .order_by(Claim.id.desc())
        )
    )


def recalls_for_claim(session: Session, claim_id: int) -> list[Recall]:
    return list(
        session.scalars(select(Recall).where(Recall.claim_id == claim_id).order_by(Recall.id))
    )


def recalls_for_order(session: Session, order_id: int) -> list[Recall]:
    return list(
        session.scalars(select(Recall).where(Recall.order_id == order_id).order_by(Recall.id))
    )


def audit_log(
    session: Session, *, before: int | None = None, limit: int = 100, action: str | None = None
) -> list[AdminAction]:
    """Admin actions, newest first, `limit` at a time (keyset: ids below `before`)."""
    query = select(AdminAction).order_by(AdminAction.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AdminAction.action == action)
    if before is not None:
        query = query.where(AdminAction.id < before)
    return list(session.scalars(query))


def evidence_file(session: Session, claim_id: int, file_id: int) -> ClaimFile:
    file = session.get(ClaimFile, file_id)
    if file is None or file.claim_id != claim_id:
        raise ClaimNotFound("No such file.")
    return file


def evidence_bytes(file: ClaimFile) -> bytes:
    return storage.get(file.storage_key)
