"""Mail about claims and recalls, sent by jobs after the decision commits."""

from __future__ import annotations

import logging

from sqlalchemy import select

from marketplace import mail
from marketplace.accounts.models import User
from marketplace.db import transaction, utcnow
from marketplace.governance import services
from marketplace.governance.models import AdminAction, Claim, ClaimStatus, Recall
from marketplace.urls import external_url

log = logging.getLogger(__name__)


def send_claim_confirmation(claim_id: int) -> None:
    with transaction() as session:
        claim = session.get(Claim, claim_id)
        if claim is None:
            return
        link = external_url("governance.claim_status", token=services.status_token(claim))
        mail.send(
            mail.Message(
                to=claim.claimant_email,
                subject=f"We received your claim #{claim.id}",
                text=(
                    f"Hello {claim.claimant_name},\n\n"
                    f"we received your claim #{claim.id} about catalog item {claim.item_id} "
                    f"({claim.kind_label.lower()}). An administrator will review it; we will "
                    f"write to you with the decision and its reason.\n\n"
                    f"Follow your claim here:\n{link}\n"
                ),
            )
        )


def send_decision(claim_id: int) -> None:
    """The decision and its reason, to the claimant and to the uploading artist."""
    with transaction() as session:
        claim = session.get(Claim, claim_id)
        if claim is None or claim.status is ClaimStatus.OPEN:
            return
        outcome = (
            "accepted: the item was taken down and is no longer offered"
            if claim.status is ClaimStatus.ACCEPTED
            else "rejected"
        )
        link = external_url("governance.claim_status", token=services.status_token(claim))
        mail.send(
            mail.Message(
                to=claim.claimant_email,
                subject=f"Your claim #{claim.id} was {claim.status.value}",
                text=(
                    f"Your claim #{claim.id} about catalog item {claim.item_id} was {outcome}.\n\n"
                    f"Reason: {claim.decision_reason}\n\nFollow your claim here:\n{link}\n"
                ),
            )
        )
        artist = services.uploading_artist(session, claim)
        if artist is not None and artist.user.is_active:
            mail.send(
                mail.Message(
                    to=artist.user.email,
                    subject=f"A claim on your work was {claim.status.value}",
                    text=(
                        f"A claim on your work (catalog item {claim.item_id}) was {outcome}.\n\n"
                        f"Claim: {claim.kind_label}\n{claim.statement}\n\n"
                        f"Reason: {claim.decision_reason}\n\n"
                        "You may answer it once (counter-notice):\n"
                        f"{external_url('governance.counter_notice', claim_id=claim.id)}\n"
                    ),
                )
            )


def send_recall_notices(claim_id: int) -> None:
    """One notice per recalled order to the members of the buying organization."""
    with transaction() as session:
        recalls = session.scalars(
            select(Recall).where(Recall.claim_id == claim_id, Recall.notified_at.is_(None))
        ).all()
        for recall in recalls:
            members = session.scalars(
                select(User).where(
                    User.organization_id == recall.organization_id, User.is_active.is_(True)
                )
            ).all()
            where = (
                f"It sits in {recall.package_file} under the key {recall.key}."
                if recall.package_file
                else f"Its key in the order is {recall.key}."
            )
            for member in members:
                mail.send(
                    mail.Message(
                        to=member.email,
                        subject=f"Recall: an item of order #{recall.order_id} was taken down",
                        text=(
                            f"Item {recall.item_id} (“{recall.title}”) of your order "
                            f"#{recall.order_id} was taken down after a claim: "
                            f"{recall.reason}\n\n{where} Remove it from your data and from "
                            "models you train from now on.\n\n"
                            "The order's page lists every recalled item:\n"
                            f"{external_url('buyers.order_page', order_id=recall.order_id)}\n"
                            "Machine-readable list: "
                            f"{external_url('api.order_recalls', order_id=recall.order_id)}\n"
                        ),
                    )
                )
            recall.notified_at = utcnow()
        log.info("recall notices sent for claim %s: %d orders", claim_id, len(recalls))


def verify_ledger(action_id: int) -> None:
    """The admin console's "verify the ledger" button: the whole audit (every entry, node,
    checkpoint and money transaction), its outcome written onto the audit-log row."""
    from marketplace.ledger import audit

    with transaction() as session:
        report = audit.verify_all(session)
    with transaction() as session:
        action = session.get(AdminAction, action_id)
        if action is not None:
            action.details = {**action.details, "ok": report.ok, "result": report.summary()}
