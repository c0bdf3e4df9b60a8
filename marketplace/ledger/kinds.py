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
    STOCK_WITHDRAWN = "stock.withdrawn"  # the source no longer offers it: out of the catalog
    STOCK_REINSTATED = "stock.reinstated"  # the source offers it again
    STOCK_TAKEN_DOWN = "stock.taken_down"  # an accepted claim: never offered again
    # Bulk ingest: one entry for a chunk of new or changed records, its payload the Merkle
    # root over their leaves (catalog.models.StockChunk says how a record's leaf is made).
    STOCK_CHUNK_REGISTERED = "stock.chunk_registered"
    # Sales (Buyers issue).
    ORDER_PAID = "order.paid"
    DATASET_ITEM_SOLD = "dataset.item_sold"
    ORDER_REFUNDED = "order.refunded"
    # Delivery: an order's certificate seals the Merkle root over its item records.
    DATASET_CERTIFIED = "dataset.certified"
    # Money movements: each money transaction is also one of these log entries.
    PAYMENT_CAPTURED = "payment.captured"
    EARNINGS_ALLOCATED = "earnings.allocated"
    PAYOUT_INITIATED = "payout.initiated"  # payable -> payouts in transit, before Stripe
    PAYOUT_SENT = "payout.sent"  # Stripe accepted the transfer: in transit -> paid
    PAYOUT_FAILED = "payout.failed"  # Stripe refused it: in transit -> payable again
    PAYOUT_REVERSED = "payout.reversed"  # a transfer reversal after a refund: back to payable
    PAYOUT_NETTED = "payout.netted"  # what is owed back on one order, deducted from another
    REFUND_ISSUED = "refund.issued"
    # Governance: an item taken down after a claim, recalled from an order that held it.
    ORDER_ITEM_RECALLED = "order.item_recalled"


MONEY_KINDS = frozenset(
    {
        EntryKind.PAYMENT_CAPTURED,
        EntryKind.EARNINGS_ALLOCATED,
        EntryKind.PAYOUT_INITIATED,
        EntryKind.PAYOUT_SENT,
        EntryKind.PAYOUT_FAILED,
        EntryKind.PAYOUT_REVERSED,
        EntryKind.PAYOUT_NETTED,
        EntryKind.REFUND_ISSUED,
    }
)

# The ids an entry may concern; the first four are also indexed columns for lookups.
SUBJECT_KEYS = ("work", "artist", "order", "organization", "stock", "payout", "optout", "claim")


# What people read instead of the dotted names (tables, entry pages). A kind added without a
# label still reads as words: kind_label() spells out its dotted name.
KIND_LABELS: dict[str, str] = {
    EntryKind.WORK_REGISTERED: "Work registered",
    EntryKind.WORK_TERMS_SET: "Terms set",
    EntryKind.WORK_CONSENT_WITHDRAWN: "Consent withdrawn",
    EntryKind.WORK_REVIEW_CLEARED: "Cleared after review",
    EntryKind.WORK_TAKEN_DOWN: "Work taken down",
    EntryKind.OPTOUT_REGISTERED: "Opt-out registered",
    EntryKind.OPTOUT_REMOVED: "Opt-out removed",
    EntryKind.STOCK_REGISTERED: "Museum record added",
    EntryKind.STOCK_UPDATED: "Museum record updated",
    EntryKind.STOCK_CHUNK_REGISTERED: "Museum records added or updated (one chunk)",
    EntryKind.ORDER_PAID: "Order paid",
    EntryKind.DATASET_ITEM_SOLD: "Sold in a dataset",
    EntryKind.DATASET_CERTIFIED: "Dataset certified",
    EntryKind.PAYMENT_CAPTURED: "Payment received",
    EntryKind.EARNINGS_ALLOCATED: "Earnings allocated",
    EntryKind.PAYOUT_INITIATED: "Payout started",
    EntryKind.PAYOUT_SENT: "Payout sent",
    EntryKind.PAYOUT_FAILED: "Payout failed",
    EntryKind.PAYOUT_REVERSED: "Payout reversed after a refund",
    EntryKind.PAYOUT_NETTED: "Owed amount deducted",
    EntryKind.REFUND_ISSUED: "Refund issued",
    EntryKind.STOCK_TAKEN_DOWN: "Museum record taken down",
    EntryKind.ORDER_ITEM_RECALLED: "Recalled from a dataset",
}


def kind_label(kind: str) -> str:
    """The human name of an entry kind ("work.terms_set" reads "Terms set")."""
    label = KIND_LABELS.get(kind)
    if label is None:
        words = kind.replace(".", " ").replace("_", " ").strip()
        label = words[:1].upper() + words[1:]
    return label
