"""`marketplace stripe-emulator`, and the `run` that starts the emulator beside the app.

With no STRIPE_SECRET_KEY (and no STRIPE_API_BASE naming an emulator run elsewhere), `marketplace
run` starts the emulator on STRIPE_EMULATOR_PORT in a child process, registers the app's webhook
endpoint with it, and stops it when the server stops.
"""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, run_command, with_appcontext
from werkzeug.serving import is_running_from_reloader

from marketplace.payments import gateway

logger = logging.getLogger(__name__)


@click.command("stripe-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: STRIPE_EMULATOR_PORT.")
@click.option("--state-file", default=None, help="Keep the emulator's data in this file.")
@with_appcontext
def stripe_emulator_command(host: str, port: int | None, state_file: str | None) -> None:
    """Run the Stripe emulator (localstripe + our extensions) in the foreground."""
    from marketplace.payments import emulator

    emulator.serve(
        host,
        port if port is not None else int(current_app.config["STRIPE_EMULATOR_PORT"]),
        state_file=state_file,
        announce=True,
    )


def embedded_emulator_wanted(app: Flask) -> bool:
    """No Stripe key and no emulator named elsewhere: this process must provide one."""
    return not app.config.get("STRIPE_SECRET_KEY") and not app.config.get("STRIPE_API_BASE")


def start_embedded_emulator(app: Flask, app_url: str | None = None) -> subprocess.Popen[str]:
    """Start the emulator beside the app, wait until it listens, point its webhooks at the app
    (at `app_url`, default PUBLIC_URL)."""
    port = int(app.config["STRIPE_EMULATOR_PORT"])
    state_file = Path(app.instance_path) / "stripe-emulator.pickle"
    command = [
        sys.executable,
        "-m",
        "marketplace.payments.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--state-file",
        str(state_file),
        "--exit-with-parent",  # also when this process is killed outright
    ]
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        command, stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if "listening on" not in line:
            raise click.ClickException(
                f"The Stripe emulator could not start on port {port} (is it taken?). Set "
                "STRIPE_EMULATOR_PORT to a free port, or STRIPE_API_BASE to a running emulator."
            )
        base = gateway.emulator_url(app.config)
        app_url = app_url or str(app.config.get("PUBLIC_URL", ""))
        webhook_url = app_url.rstrip("/") + gateway.WEBHOOK_PATH
        register_webhook_endpoint(base, webhook_url, gateway.emulator_webhook_secret(app.config))
    except BaseException:
        _stop(process)
        raise
    click.echo(f" * Stripe emulator (TEST MODE, no real money) on {base}")
    return process


def register_webhook_endpoint(
    api_base: str, url: str, secret: str, *, endpoint_id: str = "marketplace"
) -> None:
    """Ask a running emulator to deliver events to `url`, signed with `secret` (stdlib only)."""
    from urllib.parse import urlencode
    from urllib.request import Request, urlopen

    body = urlencode({"url": url, "secret": secret}).encode()
    request = Request(  # noqa: S310 - a loopback http URL we configured
        f"{api_base.rstrip('/')}/_config/webhooks/{endpoint_id}", data=body, method="POST"
    )
    with urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@click.pass_context
def _run_with_emulator(ctx: click.Context, /, **options: Any) -> None:
    info = ctx.ensure_object(ScriptInfo)
    process = None
    if not is_running_from_reloader():  # the reloader's child reuses the parent's emulator
        app = info.load_app()
        if embedded_emulator_wanted(app):
            host = str(options.get("host") or "127.0.0.1")
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host  # noqa: S104
            process = start_embedded_emulator(app, f"http://{host}:{options.get('port') or 5000}")
            atexit.register(_stop, process)
            # SIGTERM ends the server like Ctrl-C, so the emulator is stopped with it.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        ctx.invoke(run_command, **options)
    finally:
        if process is not None:
            _stop(process)


run_with_emulator_command = click.Command(
    "run",
    callback=_run_with_emulator,
    params=list(run_command.params),
    help=(run_command.help or "")
    + "\n\nWithout STRIPE_SECRET_KEY, the Stripe emulator is started beside the app.",
    short_help="Run a development server (and the Stripe emulator).",
)
