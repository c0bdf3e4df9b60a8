"""`marketplace ledger ...`: inspect and verify the provenance and money ledgers."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from marketplace.db import get_session
from marketplace.ledger import services
from marketplace.ledger.audit import verify_all

ledger_cli = AppGroup("ledger", help="Inspect and verify the provenance and money ledgers.")


@ledger_cli.command("verify")
def verify_command() -> None:
    """Recompute every hash, root, signature and balance; exit 1 naming the first bad entry."""
    report = verify_all(get_session())
    click.echo(report.summary())
    raise SystemExit(0 if report.ok else 1)


@ledger_cli.command("checkpoint")
def checkpoint_command() -> None:
    """Print the latest signed checkpoint (C2SP signed note)."""
    checkpoint = services.latest_checkpoint(get_session())
    if checkpoint is None:
        raise click.ClickException("The ledger is empty: no checkpoint was published yet.")
    click.echo(checkpoint.note, nl=False)


@ledger_cli.command("proof")
@click.argument("seq", type=click.IntRange(min=0))
def proof_command(seq: int) -> None:
    """Print entry SEQ with its inclusion proof, as GET /api/v1/ledger/entries/SEQ does."""
    try:
        proof = services.entry_proof(get_session(), seq)
    except services.EntryNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(proof.to_json(), indent=2))


@ledger_cli.command("bundle")
@click.argument("seqs", nargs=-1, type=click.IntRange(min=0), required=True)
def bundle_command(seqs: tuple[int, ...]) -> None:
    """Print a proof bundle for SEQS that `python -m marketplace.ledger.verify` checks offline."""
    try:
        bundle = services.proof_bundle(get_session(), list(seqs))
    except services.EntryNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(bundle, indent=2))
