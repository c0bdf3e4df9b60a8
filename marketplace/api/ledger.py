"""Public, read-only ledger endpoints: checkpoints, keys, entries with proofs, consistency.

No login: anyone holding a certificate must be able to check it. The shapes are stable.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import Tag
from pydantic import BaseModel, Field

from marketplace.api.blueprint import bp
from marketplace.api.schemas import ApiIn, ErrorResponse
from marketplace.db import get_session
from marketplace.errors import APIError
from marketplace.extensions import limiter
from marketplace.ledger import services as ledger

tag = Tag(name="ledger", description="The public provenance log (RFC 6962, C2SP checkpoints).")

_MAX_SEQ = 2**62
ApiAnswer = Response | dict[str, Any]


class PublicKeyResponse(BaseModel):
    verifier_key: str = Field(description="C2SP note verifier key: name+hexkeyid+base64(0x01||pk)")
    origin: str = Field(description="The checkpoint origin line (also the key name).")
    public_key_pem: str


class EntryResponse(BaseModel):
    seq: int
    kind: str
    timestamp: str = Field(description="RFC 3339, UTC")
    entry: str = Field(description="Base64 of the exact canonical (RFC 8785) bytes hashed.")
    leaf_hash: str = Field(description="Hex SHA-256(0x00 || entry)")
    tree_size: int = Field(description="Size of the latest checkpoint the proof is against.")
    inclusion_proof: list[str] = Field(description="Hex hashes, RFC 9162 section 2.1.3.1")


class ConsistencyQuery(ApiIn):
    from_: int = Field(alias="from", ge=1, le=_MAX_SEQ, description="An older published size")
    to: int = Field(ge=1, le=_MAX_SEQ, description="A newer published size")


class ConsistencyResponse(BaseModel):
    from_: int = Field(alias="from")
    to: int
    consistency_proof: list[str] = Field(description="Hex hashes, RFC 9162 section 2.1.4.1")


class EntryPath(ApiIn):
    seq: int = Field(ge=0, le=_MAX_SEQ)


class CheckpointPath(ApiIn):
    size: int = Field(ge=1, le=_MAX_SEQ)


def _note_response(note: str) -> Response:
    return Response(note, mimetype="text/plain", headers={"Cache-Control": "no-cache"})


@bp.get(
    "/ledger/checkpoint",
    tags=[tag],
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        404: ErrorResponse,
    },
)
@limiter.limit("600 per minute")
def latest_checkpoint() -> ApiAnswer:
    """The latest signed checkpoint, as C2SP signed-note text. Public."""
    checkpoint = ledger.latest_checkpoint(get_session())
    if checkpoint is None:
        raise APIError(404, "no_checkpoint", "The ledger is empty: nothing was published yet.")
    return _note_response(checkpoint.note)


@bp.get(
    "/ledger/checkpoints/<int:size>",
    tags=[tag],
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        404: ErrorResponse,
    },
)
@limiter.limit("600 per minute")
def checkpoint_at(path: CheckpointPath) -> ApiAnswer:
    """The checkpoint published at a given tree size, for witnesses and monitors. Public."""
    try:
        checkpoint = ledger.get_checkpoint(get_session(), path.size)
    except ledger.CheckpointNotFound as exc:
        raise APIError(404, "checkpoint_not_found", str(exc)) from exc
    return _note_response(checkpoint.note)


@bp.get("/ledger/public-key", tags=[tag], responses={200: PublicKeyResponse})
def public_key() -> ApiAnswer:
    """The key that signs checkpoints, as a note verifier key and as PEM. Public."""
    who = ledger.identity()
    return PublicKeyResponse(
        verifier_key=who.verifier_key, origin=who.origin, public_key_pem=who.public_key_pem
    ).model_dump()


@bp.get(
    "/ledger/entries/<int:seq>",
    tags=[tag],
    responses={200: EntryResponse, 404: ErrorResponse},
)
@limiter.limit("600 per minute")
def ledger_entry(path: EntryPath) -> ApiAnswer:
    """One entry, its exact bytes and an inclusion proof against the latest checkpoint. Public."""
    try:
        proof = ledger.entry_proof(get_session(), path.seq)
    except ledger.EntryNotFound as exc:
        raise APIError(404, "entry_not_found", str(exc)) from exc
    return proof.to_json()


@bp.get(
    "/ledger/consistency",
    tags=[tag],
    responses={200: ConsistencyResponse, 404: ErrorResponse, 422: ErrorResponse},
)
@limiter.limit("600 per minute")
def consistency(query: ConsistencyQuery) -> ApiAnswer:
    """A consistency proof between two published tree sizes (from <= to). Public."""
    if query.from_ > query.to:
        raise APIError(422, "invalid_range", "`from` must not be larger than `to`.")
    try:
        proof = ledger.consistency_proof(get_session(), query.from_, query.to)
    except ledger.CheckpointNotFound as exc:
        raise APIError(404, "checkpoint_not_found", str(exc)) from exc
    return {"from": query.from_, "to": query.to, "consistency_proof": [h.hex() for h in proof]}
