"""One ledger entry told in words, with everything a reader needs to check it themselves.

The page reads only the signed entry bytes (never the lookup columns beside them), so what it
says is what the proof proves. Unknown kinds and odd payloads still get a page: a sentence from
the kind's label and the payload's fields as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.artists.models import TermsKind, WorkTerms
from marketplace.artists.terms import TermsSpec, format_money, summary
from marketplace.catalog.models import CatalogItem, StockRecord
from marketplace.ledger import services as ledger
from marketplace.ledger.kinds import MONEY_KINDS, EntryKind, kind_label
from marketplace.ledger.verify import verify_document
from marketplace.optout.models import RuleKind

EntryNotFound = ledger.EntryNotFound

# Terms flags in the order the upload form shows them, with their plain names.
USE_NAMES = {
    "generative_training": "generative training",
    "non_generative_training": "non-generative training",
    "commercial_use": "commercial use",
    "fine_tuning": "fine-tuning",
    "style_imitation": "style imitation",
}
SUBJECT_NAMES = {
    "work": "Work",
    "artist": "Artist",
    "order": "Order",
    "organization": "Organization",
    "stock": "Museum record",
    "payout": "Payout",
    "optout": "Opt-out",
}


@dataclass(frozen=True)
class Link:
    text: str
    endpoint: str | None = None  # a page to link to, with `args`
    args: Mapping[str, int] | None = None


@dataclass(frozen=True)
class PostingLine:
    account: str
    debit: str
    credit: str


@dataclass(frozen=True)
class EntryPage:
    """Everything the entry page shows; `bundle` is also what the proof download serves."""

    seq: int
    kind: str
    label: str
    headline: str
    recorded_at: datetime
    timestamp: str
    concerns: list[Link]
    facts: list[tuple[str, str]]
    postings: list[PostingLine]
    links: list[Link]
    leaf_hash: str
    tree_size: int
    inclusion_proof: list[str]
    checkpoint: str
    origin: str
    verifier_key: str
    verified_here: bool
    entry_bytes: bytes
    bundle: dict[str, Any]


def entry_bytes(session: Session, seq: int) -> bytes:
    """The exact signed bytes of a published entry; EntryNotFound otherwise."""
    return ledger.entry_proof(session, seq).entry


def describe_entry(session: Session, seq: int) -> EntryPage:
    """The readable page of entry `seq`; EntryNotFound unless a checkpoint covers it."""
    proof = ledger.entry_proof(session, seq)
    bundle = ledger.proof_bundle(session, [seq])
    who = ledger.identity()
    parsed = json.loads(proof.entry)
    kind = str(parsed.get("kind", proof.kind))
    subject = parsed.get("subject") if isinstance(parsed.get("subject"), dict) else {}
    payload = parsed.get("payload") if isinstance(parsed.get("payload"), dict) else {}
    describe = _DESCRIBERS.get(kind, _describe_other)
    headline, facts, postings = describe(subject, payload)
    return EntryPage(
        seq=proof.seq,
        kind=kind,
        label=kind_label(kind),
        headline=headline or f"{kind_label(kind)}.",
        recorded_at=proof.timestamp,
        timestamp=str(parsed.get("timestamp", "")),
        concerns=_concerns(session, subject),
        facts=facts,
        postings=postings,
        links=_links(session, seq, kind, payload),
        leaf_hash=proof.leaf_hash.hex(),
        tree_size=proof.tree_size,
        inclusion_proof=[h.hex() for h in proof.inclusion_proof],
        checkpoint=proof.checkpoint,
        origin=who.origin,
        verifier_key=who.verifier_key,
        verified_here=verify_document(bundle, key=who.verifier_key).ok,
        entry_bytes=proof.entry,
        bundle=bundle,
    )


# --- What happened, per kind ---------------------------------------------------------------

Described = tuple[str, list[tuple[str, str]], list[PostingLine]]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _who(subject: Mapping[str, Any], key: str) -> str:
    value = subject.get(key)
    return f"{SUBJECT_NAMES[key].lower()} {value}" if value is not None else f"a {key}"


def _titled(payload: Mapping[str, Any]) -> str:
    title = payload.get("title")
    return f" “{title}”" if isinstance(title, str) and title else ""


def _describe_registered(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    headline = (
        f"{_who(subject, 'artist').capitalize()} registered "
        f"{_who(subject, 'work')}{_titled(payload)}."
    )
    facts = [("Title", _text(payload.get("title", "")))]
    if "width" in payload and "height" in payload:
        size = f"{payload['width']} \u00d7 {payload['height']} px"
        facts.append(("Image", f"{_text(payload.get('format', ''))} {size}".strip()))
    facts.append(("Image SHA-256", _text(payload.get("sha256", ""))))
    if payload.get("in_review"):
        facts.append(("Review", "held for review as a possible duplicate"))
    if payload.get("file_prohibits_training"):
        facts.append(("File metadata", "the file itself said “no AI training”"))
    return headline, facts, []


def _terms_facts(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        spec = TermsSpec.from_json(dict(payload))
    except (TypeError, ValueError):
        return []
    facts = [("Terms", summary(spec))]
    if spec.kind is TermsKind.LICENSE and spec.price_minor is not None:
        facts.append(("Price per image", format_money(spec.price_minor, spec.currency)))
    if spec.kind is not TermsKind.NOT_AVAILABLE:
        uses = [name for flag, name in USE_NAMES.items() if payload.get(flag) is True]
        facts.append(("Permitted uses", ", ".join(uses) or "none"))
        facts.append(("Attribution required", _text(bool(payload.get("attribution_required")))))
    return facts


def _describe_terms(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    facts = _terms_facts(payload)
    said = facts[0][1] if facts else "new terms"
    version = payload.get("version")
    headline = (
        f"{_who(subject, 'artist').capitalize()} set terms"
        f"{f' version {version}' if version is not None else ''} for {_who(subject, 'work')}: "
        f"{said}."
    )
    if payload.get("overrides_file_signal"):
        facts.append(("File metadata", "said “no AI training”; the artist confirmed these terms"))
    return headline, facts, []


def _describe_withdrawn(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    headline = (
        f"{_who(subject, 'artist').capitalize()} withdrew consent for {_who(subject, 'work')}: "
        "it leaves every future sale."
    )
    return headline, [("Terms version withdrawn", _text(payload.get("terms_version", "")))], []


def _describe_review(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    headline = f"An administrator cleared {_who(subject, 'work')} after review: it may be offered."
    facts = [("Reason it was held", _text(payload.get("reason", "")))]
    if payload.get("note"):
        facts.append(("Note", _text(payload["note"])))
    return headline, facts, []


def _optout_facts(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    kind, value = _text(payload.get("kind", "")), _text(payload.get("value", ""))
    if kind not in set(RuleKind):
        return f"{kind} {value}".strip(), [("Kind", kind), ("Value", value)]
    rule = RuleKind(kind)
    what = {
        RuleKind.SHA256: f"the file with SHA-256 {value}",
        RuleKind.PHASH: f"the picture with perceptual hash {value}",
        RuleKind.URL: f"the address {value}",
        RuleKind.PREFIX: f"every address starting with {value}",
        RuleKind.DOMAIN: f"the domain {value} and its subdomains",
    }[rule]
    return what, [("Covers", rule.label), ("Value", value)]


def _describe_optout_registered(
    subject: Mapping[str, Any], payload: Mapping[str, Any]
) -> Described:
    what, facts = _optout_facts(payload)
    return f"An opt-out was registered for {what}: not to be used for training.", facts, []


def _describe_optout_removed(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    what, facts = _optout_facts(payload)
    return f"The opt-out for {what} was removed.", facts, []


def _stock_facts(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    record = f"{_text(payload.get('source', ''))} record {_text(payload.get('source_id', ''))}"
    facts = [
        ("Source", _text(payload.get("source", ""))),
        ("Source record", _text(payload.get("source_id", ""))),
        ("Title", _text(payload.get("title", ""))),
        ("Rights", _text(payload.get("rights_uri", ""))),
        ("Image address", _text(payload.get("image_url", ""))),
        ("Image SHA-256", _text(payload.get("content_sha256", ""))),
    ]
    return record + _titled(payload), [(name, value) for name, value in facts if value]


def _describe_stock_registered(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    record, facts = _stock_facts(payload)
    return f"The public-domain {record} joined the catalog.", facts, []


def _describe_stock_updated(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    record, facts = _stock_facts(payload)
    return f"The museum changed its {record}; the catalog follows.", facts, []


def _describe_stock_chunk(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    count = payload.get("records")
    source = _text(payload.get("source", ""))
    facts = [
        ("Source", source),
        ("Records", _text(count)),
        ("Merkle root of the records", _text(payload.get("merkle_root", ""))),
    ]
    return (
        f"{_text(count)} public-domain {source} records joined or changed in the catalog, "
        "each provable from this entry's Merkle root.",
        [(name, value) for name, value in facts if value],
        [],
    )


def _describe_money(subject: Mapping[str, Any], payload: Mapping[str, Any], kind: str) -> Described:
    currency = _text(payload.get("currency", ""))
    lines: list[PostingLine] = []
    debits = 0
    for posting in payload.get("postings", []) if isinstance(payload.get("postings"), list) else []:
        amount = posting.get("amount_minor") if isinstance(posting, dict) else None
        if not isinstance(amount, int):
            continue
        shown = format_money(amount, currency)
        is_debit = posting.get("direction") == "debit"
        debits += amount if is_debit else 0
        lines.append(
            PostingLine(
                account=_text(posting.get("account", "")),
                debit=shown if is_debit else "",
                credit="" if is_debit else shown,
            )
        )
    order = f" for order {subject['order']}" if subject.get("order") is not None else ""
    headline = f"{format_money(debits, currency)}{order}, recorded as balanced debits and credits."
    facts = [("Transaction key", _text(payload.get("key", "")))]
    if payload.get("memo"):
        facts.append(("Memo", _text(payload["memo"])))
    return headline, facts, lines


def _describe_other(subject: Mapping[str, Any], payload: Mapping[str, Any]) -> Described:
    facts = [(key.replace("_", " ").capitalize(), _text(value)) for key, value in payload.items()]
    return "", facts, []


def _money(kind: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Described]:
    return lambda subject, payload: _describe_money(subject, payload, kind)


_DESCRIBERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Described]] = {
    EntryKind.WORK_REGISTERED: _describe_registered,
    EntryKind.WORK_TERMS_SET: _describe_terms,
    EntryKind.WORK_CONSENT_WITHDRAWN: _describe_withdrawn,
    EntryKind.WORK_REVIEW_CLEARED: _describe_review,
    EntryKind.OPTOUT_REGISTERED: _describe_optout_registered,
    EntryKind.OPTOUT_REMOVED: _describe_optout_removed,
    EntryKind.STOCK_REGISTERED: _describe_stock_registered,
    EntryKind.STOCK_UPDATED: _describe_stock_updated,
    EntryKind.STOCK_CHUNK_REGISTERED: _describe_stock_chunk,
    **{kind.value: _money(kind.value) for kind in MONEY_KINDS},
}


# --- Where to read more --------------------------------------------------------------------


def _concerns(session: Session, subject: Mapping[str, Any]) -> list[Link]:
    """The ids the entry names, each linked to its public page where there is one."""
    found = []
    for key, value in subject.items():
        name = f"{SUBJECT_NAMES.get(key, key.capitalize())} {value}"
        if key == "work" and isinstance(value, int):
            item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.work_id == value))
            if item_id is not None:
                found.append(Link(name, "catalog.item_page", {"item_id": item_id}))
                continue
        found.append(Link(name))
    return found


def _links(session: Session, seq: int, kind: str, payload: Mapping[str, Any]) -> list[Link]:
    links = []
    if kind == EntryKind.WORK_TERMS_SET:
        terms_id = session.scalar(select(WorkTerms.id).where(WorkTerms.ledger_seq == seq))
        if terms_id is not None:
            links.append(
                Link("Read the licence text", "artists.show_terms", {"terms_id": terms_id})
            )
    if kind in (EntryKind.STOCK_REGISTERED, EntryKind.STOCK_UPDATED):
        item_id = session.scalar(
            select(CatalogItem.id)
            .join(StockRecord, StockRecord.id == CatalogItem.stock_id)
            .where(StockRecord.source == str(payload.get("source", "")))
            .where(StockRecord.source_id == str(payload.get("source_id", "")))
        )
        if item_id is not None:
            links.append(Link("See it in the catalog", "catalog.item_page", {"item_id": item_id}))
    return links
