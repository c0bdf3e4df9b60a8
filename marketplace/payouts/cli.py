"""`marketplace payouts run | reconcile | upcoming`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.artists.terms import format_money
from marketplace.db import get_session
from marketplace.payouts import services

payouts_cli = AppGroup("payouts", help="Pay artists through Stripe Connect and check the result.")


@payouts_cli.command("run")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for a run already in progress to finish.",
)
def run_command(wait: float) -> None:
    """Pay every artist whose available balance reaches PAYOUT_MINIMUM_MINOR."""
    try:
        outcome = services.run_payouts(trigger="cli", wait_seconds=wait)
    except services.RunInProgress as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Run {outcome.run_id}: {outcome.paid} paid, {outcome.failed} failed, "
        f"{outcome.resumed} resumed from an earlier run, {outcome.unknown} awaiting Stripe."
    )


@payouts_cli.command("upcoming")
def upcoming_command() -> None:
    """What a run started now would pay, and who would wait and why."""
    plans = services.upcoming(get_session())
    if not plans:
        click.echo("Nobody has money past the holding period.")
    for plan in plans:
        amount = format_money(plan.available_minor, plan.currency)
        click.echo(
            f"artist {plan.artist_id} ({plan.artist_name}): {amount}"
            + (
                f" - waits: {plan.blocked}"
                if plan.blocked
                else f" in {len(plan.parts)} transfer(s)"
            )
        )


@payouts_cli.command("reconcile")
def reconcile_command() -> None:
    """Compare payouts with the ledger and with Stripe's transfers; exit 1 on any difference."""
    differences = services.reconcile()
    for difference in differences:
        click.echo(str(difference))
    click.echo(
        "Payouts, ledger and Stripe agree."
        if not differences
        else f"{len(differences)} difference(s)."
    )
    raise SystemExit(1 if differences else 0)
