"""The `marketplace` console command: Flask's `run` and `shell` plus our commands."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from marketplace.app import create_app
from marketplace.payments.cli import run_with_emulator_command


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Manage the marketplace: serve it, migrate it, run workers, seed a demo."""


# Flask's `run`, plus the Stripe emulator beside the app when no Stripe key is configured.
main.add_command(run_with_emulator_command, "run")
