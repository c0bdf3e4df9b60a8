"""The closed set of ledger entry kinds (dotted, past tense) and of the ids an entry concerns."""

from __future__ import annotations

import enum


class EntryKind(enum.StrEnum):
    # Works and consent (Artists issue).
    WORK_REGISTERED = "work.registered"
    WORK_TERMS_SET = "work.terms_set"
    WORK_CONSENT_WITHDRAWN = "work.consent_withdrawn"
    WORK_REVIEW_CLEARED = "work.review_cleared"
    WORK_TAKEN_DOWN = "work.taken_down"
    OPTOUT_REGISTERED = "optout.registered"
    OPTOUT_REMOVED = "optout.removed"
    # Public-domain stock (Catalog issue).
    STOCK_REGISTERED = "stock.registered"
    STOCK_UPDATED = "stock.updated"
    # Sales (Buyers issue).
    ORDER_PAID = "order.paid"
    DATASET_ITEM_SOLD = "dataset.item_sold"
    ORDER_REFUNDED = "order.refunded"
    # Money movements: each money transaction is also one of these log entries.
    PAYMENT_CAPTURED = "payment.captured"
    EARNINGS_ALLOCATED = "earnings.allocated"
    PAYOUT_SENT = "payout.sent"
    PAYOUT_FAILED = "payout.failed"
    REFUND_ISSUED = "refund.issued"


MONEY_KINDS = frozenset(
    {
        EntryKind.PAYMENT_CAPTURED,
        EntryKind.EARNINGS_ALLOCATED,
        EntryKind.PAYOUT_SENT,
        EntryKind.PAYOUT_FAILED,
        EntryKind.REFUND_ISSUED,
    }
)

# The ids an entry may concern; the first four are also indexed columns for lookups.
SUBJECT_KEYS = ("work", "artist", "order", "organization", "stock", "payout", "optout")
