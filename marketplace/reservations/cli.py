"""`marketplace reservations load DOMAIN KIND FILE`, `fetch DOMAIN...`, `check URL`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from marketplace.db import get_session, transaction
from marketplace.optout.urls import BadUrl
from marketplace.reservations import services, tasks
from marketplace.reservations.models import ReservationSource
from marketplace.reservations.parsers import ReservationFileError

reservations_cli = AppGroup(
    "reservations", help="TDM reservations on record per domain (TDMRep, ai.txt, robots.txt)."
)


@reservations_cli.command("load")
@click.argument("domain")
@click.argument("kind", metavar="KIND")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(domain: str, kind: str, file: Path) -> None:
    """Put FILE on record as DOMAIN's KIND file (tdmrep, ai.txt or robots), replacing any."""
    try:
        with transaction() as session:
            result = services.load_file(
                session,
                domain,
                services.parse_kind(kind),
                file.read_bytes(),
                source=ReservationSource.CLI,
                max_bytes=int(current_app.config["RESERVATIONS_MAX_FILE_BYTES"]),
                source_url=None,
            )
            record = result.file
            summary = (
                f"{'Loaded' if result.changed else 'Already on record:'} {record.kind.value} "
                f"for {record.domain}: {len(record.rules)} rules, sha256 {record.sha256}"
            )
    except (services.ReservationError, ReservationFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary)
    if result.skipped_lines:
        lines = ", ".join(map(str, result.skipped_lines[:20]))
        click.echo(f"Lines not read (not a directive): {lines}")


@reservations_cli.command("fetch")
@click.argument("domains", nargs=-1, required=True)
def fetch_command(domains: tuple[str, ...]) -> None:
    """Fetch DOMAINS' tdmrep.json, ai.txt and robots.txt now (needs RESERVATIONS_LIVE_FETCH)."""
    if not tasks.live_fetch_enabled():
        raise click.ClickException(
            "RESERVATIONS_LIVE_FETCH is off: set it to 1 to let the app fetch from sites."
        )
    failed = False
    for domain in domains:
        try:
            outcomes = tasks.fetch_domain(domain)
        except services.ReservationError as exc:
            click.echo(f"{domain}: {exc}", err=True)
            failed = True
            continue
        for kind, outcome in outcomes.items():
            click.echo(f"{domain} {kind}: {outcome}")
    if failed:
        raise SystemExit(1)


@reservations_cli.command("check")
@click.argument("url")
def check_command(url: str) -> None:
    """Say whether URL falls under a reservation on record, and which rule."""
    try:
        found = services.lookup(get_session(), url)
    except BadUrl as exc:
        raise click.ClickException(str(exc)) from exc
    if found.hit is None:
        click.echo("No reservation on record.")
        return
    hit = found.hit
    click.echo(f"Reserved by {hit.kind} on {hit.domain}: {hit.rule}")
    if hit.policy_url:
        click.echo(f"Policy: {hit.policy_url}")
