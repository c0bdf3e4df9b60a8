"""`marketplace compliance check MANIFEST --out rows.parquet`: the job's classifier on a local
file, against this deployment's registry and catalog."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from flask import current_app
from flask.cli import AppGroup

from marketplace.compliance import services
from marketplace.compliance.classifier import CLASS_LABELS, RESULT_SCHEMA
from marketplace.compliance.manifest import FIELDS, ManifestError
from marketplace.db import get_session

compliance_cli = AppGroup("compliance", help="Check datasets against the opt-out registry.")


@compliance_cli.command("check")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write one row per manifest row: .parquet, or .csv as the web check gives.",
)
@click.option(
    "--use",
    "uses",
    multiple=True,
    help="Intended use (repeat or comma-separate); default generative_training.",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=NAME",
    help="Which column holds url, caption, sha256 or phash (e.g. url=IMAGE_LINK).",
)
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False, path_type=Path))
def check_command(
    manifest: Path,
    out: Path,
    uses: tuple[str, ...],
    columns: tuple[str, ...],
    summary_path: Path | None,
) -> None:
    """Classify every row of MANIFEST (CSV, JSON lines, Parquet or WebDataset tar)."""
    mapping: dict[str, str] = {}
    for given in columns:
        field_name, sep, name = given.partition("=")
        if not sep or field_name not in FIELDS:
            raise click.BadParameter(f"{given!r}: give FIELD=NAME, FIELD one of {FIELDS}")
        mapping[field_name] = name
    try:
        intended = services.parse_uses(list(uses))
    except services.ComplianceError as exc:
        raise click.BadParameter(str(exc)) from exc
    snapshot = services.load_snapshot(
        get_session(), phash_distance=int(current_app.config["OPTOUT_PHASH_DISTANCE"])
    )
    get_session().rollback()
    writer: pq.ParquetWriter | pacsv.CSVWriter
    if out.suffix.lower() == ".csv":
        writer = pacsv.CSVWriter(str(out), RESULT_SCHEMA)
    else:
        writer = pq.ParquetWriter(str(out), RESULT_SCHEMA)
    try:
        with writer:
            summary = services.classify_file(
                manifest, snapshot, intended, writer.write_batch, columns=mapping
            )
    except ManifestError as exc:
        out.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from exc
    for name, count in summary.counts.items():
        click.echo(f"{CLASS_LABELS[name]}: {count:,}")
    click.echo(
        f"{summary.rows:,} rows checked, {summary.skipped:,} unreadable, "
        f"{summary.duplicates:,} duplicates, {summary.problem_count:,} problems."
    )
    for problem in summary.problems[:20]:
        click.echo(f"row {problem['row']}: {problem['message']}", err=True)
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
