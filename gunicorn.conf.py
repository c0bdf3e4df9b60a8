"""Production server settings: `gunicorn -c gunicorn.conf.py wsgi:app` (see the README).

Limits are set here rather than left to gunicorn's defaults, and chosen so that the app, not the
server, answers bad requests in the API's JSON error shape.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
timeout = 60
graceful_timeout = 30
keepalive = 5

# Request line: 0 lets gunicorn read up to its hard cap (1 MiB) so that the app answers a long
# query string with a JSON 414 (MAX_QUERY_STRING, 8192 bytes by default) instead of gunicorn's
# HTML page. A proxy in front may set a lower line limit of its own.
limit_request_line = 0
limit_request_fields = 100
limit_request_field_size = 8190

# Access log without the query string; paths with tokens are redacted by the app's log filter
# (marketplace/logredact.py), which is installed on the "gunicorn.access" logger.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Load the opt-out registry copy (seconds at a million rules) in the background as each
    worker starts, so that the first bulk check does not wait for all of it."""
    import threading

    from marketplace.db import get_database
    from marketplace.optout import snapshot

    engine = get_database(worker.wsgi).engine
    threading.Thread(target=snapshot.warm, args=(engine,), daemon=True, name="optout").start()
