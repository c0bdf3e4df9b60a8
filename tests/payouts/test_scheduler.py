"""`marketplace scheduler`: RQ's cron scheduler queues the payout run on PAYOUT_SCHEDULE, and
a worker running that job pays the artists due, as a run of trigger "schedule"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace import jobs
from marketplace.commands import build_scheduler
from marketplace.config import ConfigError
from marketplace.payouts.models import Payout, PayoutRun, PayoutStatus, RunStatus
from tests.conftest import make_test_app
from tests.factories import make_artist, make_buyer
from tests.payouts.support import onboard, sell, transfers_to

SCHEDULE = "15 5 * * 1"  # Mondays at 05:15 UTC


@pytest.fixture
def app_config(stripe_config, redis_url):
    return {
        **stripe_config,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "PAYOUT_HOLD_DAYS": 0,
        "PAYOUT_MINIMUM_MINOR": 1000,
        "PAYOUT_SCHEDULE": SCHEDULE,
    }


def test_the_scheduler_registers_the_payout_run_on_the_configured_cron(app):
    with app.app_context():
        scheduler = build_scheduler(app)
    [cron_job] = scheduler.get_jobs()
    assert (cron_job.name, cron_job.cron) == ("payouts-run", SCHEDULE)
    assert cron_job.queue_name == jobs.queue(app).name
    # In the app's context, as every job: RQ calls `run_job`, which imports the task.
    assert cron_job.func_name == "marketplace.jobs.run_job"
    assert cron_job.args == ("marketplace.payouts.tasks.scheduled_run",)
    next_time = cron_job.get_next_enqueue_time()
    assert (next_time.weekday(), next_time.hour, next_time.minute) == (0, 5, 15)


def test_the_scheduled_job_run_by_a_worker_pays_an_eligible_artist(
    app, db, run_jobs, stripe_emulator
):
    ada, buyer = make_artist(db), make_buyer(db)
    account = onboard(db, ada, stripe_emulator)
    sell(db, buyer, ada, 1250, run_jobs)
    with app.app_context():
        [cron_job] = build_scheduler(app).get_jobs()
    cron_job.enqueue(jobs.redis_connection(app))  # what the scheduler does when it is time

    assert run_jobs() == 1  # a burst worker; a failed job fails the test
    db.rollback()
    [payout_run] = db.scalars(select(PayoutRun)).all()
    assert (payout_run.trigger, payout_run.status) == ("schedule", RunStatus.FINISHED)
    assert (payout_run.paid_count, payout_run.paid_minor) == (1, 1000)
    assert db.scalar(select(Payout)).status is PayoutStatus.PAID
    assert [t.amount_minor for t in transfers_to(db, account)] == [1000]


def test_the_scheduler_command_needs_redis(database_url, tmp_path):
    app = make_test_app(database_url, tmp_path, REDIS_URL=None)
    result = app.test_cli_runner().invoke(args=["scheduler"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output


@pytest.mark.parametrize("schedule", ["every morning", "61 6 * * *", "0 6 * *", ""])
def test_an_invalid_payout_schedule_is_refused_at_start_up(
    database_url, tmp_path, monkeypatch, schedule
):
    with pytest.raises(ConfigError, match="PAYOUT_SCHEDULE must be a cron expression"):
        make_test_app(database_url, tmp_path, PAYOUT_SCHEDULE=schedule)
    monkeypatch.setenv("PAYOUT_SCHEDULE", schedule)  # as a deployment sets it
    with pytest.raises(ConfigError, match="PAYOUT_SCHEDULE"):
        make_test_app(database_url, tmp_path)
