"""Our commands beside Flask's own: database, worker, admin, demo, and each feature's group.

The app factory registers them; `marketplace.cli.main` is the console entry point.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from rq.cron import CronScheduler

from marketplace import jobs, migrate
from marketplace.accounts import services as accounts
from marketplace.catalog.cli import catalog_cli, ingest_command, search_cli
from marketplace.compliance.cli import compliance_cli
from marketplace.db import get_engine, transaction
from marketplace.demo import seed_demo
from marketplace.ledger.cli import ledger_cli
from marketplace.payments.cli import stripe_emulator_command
from marketplace.payouts import tasks as payout_tasks
from marketplace.payouts.cli import payouts_cli
from marketplace.reservations.cli import reservations_cli

db_cli = AppGroup("db", help="Create and migrate the database schema (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(get_engine(), revision)
    click.echo(f"Database at {revision}.")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(get_engine(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision_command(message: str) -> None:
    """Write a new migration from the difference between models and database."""
    migrate.revision(get_engine(), message)


@db_cli.command("current")
def current_command() -> None:
    """Show the database's migration revision."""
    migrate.current(get_engine())


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker for the app's queue (needs REDIS_URL)."""
    if jobs.redis_connection() is None:
        raise click.ClickException("REDIS_URL is not set: jobs run inline, no worker is needed.")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    jobs.set_worker_app(app)
    sent = jobs.dispatch_pending()
    if sent:
        click.echo(f"{sent} jobs sent from the outbox.")
    worker = jobs.MarketplaceWorker(
        [jobs.queue(app)],
        connection=jobs.redis_connection(app),
        # Maintenance (RQ's registry cleanup and our outbox sweep) every minute, not ten.
        maintenance_interval=jobs.WORKER_MAINTENANCE_SECONDS,
    )
    worker.work(burst=burst, with_scheduler=False)


def build_scheduler(app: Flask) -> CronScheduler:
    """RQ's cron scheduler with our periodic jobs: the payout run on PAYOUT_SCHEDULE."""
    connection = jobs.redis_connection(app)
    if connection is None:
        raise click.ClickException("REDIS_URL is not set: there is no queue to schedule into.")
    scheduler = CronScheduler(connection=connection, name=f"marketplace:{jobs.queue(app).name}")
    # Through `jobs.run_job`, as every job we queue: it opens the app context the job needs
    # (RQ would otherwise call the function bare, outside any app).
    scheduler.register(
        jobs.run_job,
        args=(f"{payout_tasks.scheduled_run.__module__}.{payout_tasks.scheduled_run.__name__}",),
        queue_name=jobs.queue(app).name,
        cron=str(app.config["PAYOUT_SCHEDULE"]),
        name="payouts-run",
    )
    return scheduler


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Queue periodic jobs (the payout run) for the workers; run one per deployment."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    build_scheduler(app).start()


jobs_cli = AppGroup("jobs", help="Background jobs: send what the job outbox still holds.")


@jobs_cli.command("sweep")
def sweep_command() -> None:
    """Send jobs recorded while Redis was unreachable (workers also do this as they run)."""
    if jobs.redis_connection() is None:
        raise click.ClickException("REDIS_URL is not set: jobs run inline, nothing to send.")
    click.echo(f"{jobs.dispatch_pending()} jobs sent from the outbox.")


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True)
@click.option("--name", "display_name", default="Administrator")
@click.password_option()
def create_admin_command(email: str, display_name: str, password: str) -> None:
    """Create an administrator account."""
    try:
        with transaction() as session:
            user = accounts.create_admin(
                session, email=email, password=password, display_name=display_name
            )
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Administrator {user.email} created (id {user.id}).")


@click.command("suspend-user")
@with_appcontext
@click.argument("email")
def suspend_user_command(email: str) -> None:
    """Suspend an account: it cannot log in, and its open sessions end at once."""
    with transaction() as session:
        user = accounts.find_user_by_email(session, email)
        if user is None:
            raise click.ClickException(f"No account with the email {email}.")
        accounts.suspend_user(session, user)
    click.echo(f"Account {user.email} suspended; its sessions have ended.")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Seed a small demo (artists, a buyer organization); running it again changes nothing."""
    report = seed_demo()
    for line in report:
        click.echo(line)


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(create_admin_command)
    app.cli.add_command(suspend_user_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(reservations_cli)
    app.cli.add_command(ingest_command)
    app.cli.add_command(catalog_cli)
    app.cli.add_command(search_cli)
    app.cli.add_command(stripe_emulator_command)
    app.cli.add_command(payouts_cli)
    app.cli.add_command(compliance_cli)
