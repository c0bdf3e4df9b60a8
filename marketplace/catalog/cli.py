"""`marketplace ingest SOURCE FILE` and `marketplace catalog mirror`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from marketplace.catalog import search_index, services
from marketplace.catalog.bulk import BULK_MIN_LINES
from marketplace.catalog.ingest import UnusableFile, count_lines, ingest_file
from marketplace.catalog.models import CatalogItem
from marketplace.catalog.sources import ADAPTERS, get_adapter
from marketplace.catalog.tasks import enqueue_mirrors
from marketplace.db import transaction

catalog_cli = AppGroup("catalog", help="Public-domain stock: mirroring images.")
search_cli = AppGroup("search", help="The search index beside the database.")


@search_cli.command("reindex")
@click.option(
    "--if-empty",
    is_flag=True,
    help="Only build when the index holds no works (a fresh folder, or a database from before).",
)
@with_appcontext
def reindex_command(if_empty: bool) -> None:
    """Rebuild the search index from the database in a new folder, then swap it in."""
    if if_empty and not search_index.is_empty():
        click.echo("The search index holds works; nothing to do.")
        return
    with transaction() as session:
        total = int(
            session.scalar(
                select(func.count()).select_from(CatalogItem).where(CatalogItem.available)
            )
            or 0
        )
        with click.progressbar(length=max(total, 1), label="Indexing works") as bar:
            count, path = search_index.rebuild(session, progress=bar.update)
    click.echo(f"{count} works indexed into {path}.")


@click.command("ingest")
@click.argument("source")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mirror", is_flag=True, help="Queue image mirroring for the new records.")
@click.option(
    "--bulk/--no-bulk",
    default=None,
    help="The bulk path: mapping in a second process, one ledger entry per chunk, indexes "
    f"built after the load. Default: for files of {BULK_MIN_LINES:,} lines or more.",
)
@click.option(
    "--remap",
    is_flag=True,
    help="Bulk path: map records whose bytes did not change too (after an adapter change).",
)
@with_appcontext
def ingest_command(source: str, file: Path, mirror: bool, bulk: bool | None, remap: bool) -> None:
    """Load SOURCE's open-access metadata FILE (bulk export or saved API responses)."""
    try:
        adapter = get_adapter(source)
    except KeyError as exc:
        raise click.BadParameter(
            f"unknown source {source!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from exc
    estimate = count_lines(file)  # one record per line in JSONL/CSV; a guide for the rest
    with click.progressbar(length=estimate, label=f"Ingesting {file.name}") as bar:
        try:
            report = ingest_file(adapter, file, progress=bar.update, bulk=bulk, remap=remap)
        except UnusableFile as exc:  # nothing could be read: say why, and exit non-zero
            if exc.report is not None:
                for line in exc.report.summary_lines():
                    click.echo(line)
            raise click.ClickException(str(exc)) from None
        bar.update(max(0, estimate - bar.pos))
    for line in report.summary_lines():
        click.echo(line)
    if mirror:
        click.echo(f"{enqueue_mirrors(source)} images queued for mirroring.")


@catalog_cli.command("mirror")
@click.option("--source", help="Only this source.")
@click.option("--limit", type=int, help="At most this many records.")
@click.option("--retry", is_flag=True, help="Also retry records whose mirroring failed.")
@with_appcontext
def mirror_command(source: str | None, limit: int | None, retry: bool) -> None:
    """Queue image downloads for stock records not mirrored yet."""
    click.echo(f"{enqueue_mirrors(source, limit, retry)} images queued for mirroring.")


@catalog_cli.command("apply-optouts")
@with_appcontext
def apply_optouts_command() -> None:
    """Match every catalog item against the opt-out registry (once after upgrading)."""
    with transaction() as session:
        total = int(session.scalar(select(func.count()).select_from(CatalogItem)) or 0)
    with click.progressbar(length=max(total, 1), label="Checking works") as bar:
        blocked = services.apply_optouts_to_catalog(progress=bar.update)
    click.echo(f"{blocked} works are kept out by opt-out rules.")
