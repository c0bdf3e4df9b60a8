"""Every setting with its embedded default. The README's configuration table mirrors this file.

One function reads the environment, once; nothing else in the package touches `os.environ`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

KNOWN_WEAK_SECRETS = frozenset(
    {"", "dev", "development", "secret", "changeme", "change-me", "password", "test", "key"}
)
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """The app cannot start safely with these settings."""


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_secret(instance: Path) -> str:
    """A random key made once and kept in instance/, so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def instance_path_from_env() -> str | None:
    """Where instance files (SQLite, keys, outbox, objects) live; default: ./instance."""
    return os.environ.get("MARKETPLACE_INSTANCE_PATH") or None


def load_config(instance_path: str) -> dict[str, object]:
    """Read settings from the environment, falling back to embedded defaults under instance/."""
    instance, env = Path(instance_path), os.environ.get
    production = env("MARKETPLACE_ENV", "development") == "production"
    redis_url = env("REDIS_URL") or None
    secret = env("SECRET_KEY")
    if secret is None and not production:
        secret = _instance_secret(instance)
    return {
        "ENV_NAME": "production" if production else env("MARKETPLACE_ENV", "development"),
        "SECRET_KEY": secret,
        "DATABASE_URL": env("DATABASE_URL") or f"sqlite:///{instance / 'marketplace.sqlite'}",
        "REDIS_URL": redis_url,  # unset: jobs run inline in the web process
        "RQ_QUEUE": env("RQ_QUEUE", "marketplace"),
        # Links in mail sent from jobs, where there is no request to take the host from.
        "PUBLIC_URL": env("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Object storage: a local folder unless an S3 bucket is configured.
        "STORAGE_DIR": env("STORAGE_DIR", str(instance / "objects")),
        "S3_BUCKET": env("S3_BUCKET") or None,
        # Search: tantivy's index beside the database (the source of truth), or the database's
        # own full-text search. Index updates run as jobs, or in-process right after the commit.
        "SEARCH_ENGINE": env("SEARCH_ENGINE", "tantivy"),
        "SEARCH_INDEX_DIR": env("SEARCH_INDEX_DIR", str(instance / "search-index")),
        "SEARCH_INDEX_UPDATES": env("SEARCH_INDEX_UPDATES", "job"),
        "S3_REGION": env("S3_REGION", "us-east-1"),
        "S3_ENDPOINT_URL": env("S3_ENDPOINT_URL") or None,
        "DOWNLOAD_URL_MAX_AGE": int(env("DOWNLOAD_URL_MAX_AGE", "900")),
        # Mail: SMTP when a host is set, otherwise .eml files in instance/outbox/.
        "SMTP_HOST": env("SMTP_HOST") or None,
        "SMTP_PORT": int(env("SMTP_PORT", "587")),
        "SMTP_USERNAME": env("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": env("SMTP_PASSWORD") or None,
        "SMTP_STARTTLS": _flag(env("SMTP_STARTTLS"), default=True),
        "MAIL_FROM": env("MAIL_FROM", "Marketplace <no-reply@localhost>"),
        "OUTBOX_DIR": env("OUTBOX_DIR", str(instance / "outbox")),
        # Stripe. No secret key: the embedded emulator (localstripe + our extensions) serves the
        # API and Stripe.js on STRIPE_EMULATOR_PORT, and every page says TEST MODE.
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY") or None,
        "STRIPE_PUBLISHABLE_KEY": env("STRIPE_PUBLISHABLE_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_CONNECT_WEBHOOK_SECRET": env("STRIPE_CONNECT_WEBHOOK_SECRET") or None,
        # Stripe's own defaults (not read from the environment; tests override them).
        "STRIPE_WEBHOOK_TOLERANCE": 300,  # seconds a signed webhook stays acceptable
        "STRIPE_MAX_NETWORK_RETRIES": 2,  # safe: every POST carries our idempotency key
        # Put in front of every idempotency key: set one per deployment sharing a Stripe account.
        "STRIPE_IDEMPOTENCY_PREFIX": env("STRIPE_IDEMPOTENCY_PREFIX", ""),
        "STRIPE_API_BASE": env("STRIPE_API_BASE") or None,  # unset: Stripe's, or the emulator's
        "STRIPE_JS_URL": env("STRIPE_JS_URL") or None,  # unset: Stripe's, or the emulator's
        "STRIPE_EMULATOR_PORT": int(env("STRIPE_EMULATOR_PORT", "8420")),
        # Works: upload limits, price bounds (minor units of DEFAULT_CURRENCY), near-duplicates.
        "MAX_UPLOAD_BYTES": int(env("MAX_UPLOAD_BYTES", str(50_000_000))),
        "MAX_IMAGE_PIXELS": int(env("MAX_IMAGE_PIXELS", str(100_000_000))),
        "PRICE_MIN_MINOR": int(env("PRICE_MIN_MINOR", "5")),
        "PRICE_MAX_MINOR": int(env("PRICE_MAX_MINOR", "100000")),
        "DEFAULT_CURRENCY": env("DEFAULT_CURRENCY", "usd"),
        # Works smaller than this on their short side are refused (too small to train on).
        "MIN_IMAGE_SIDE_PX": int(env("MIN_IMAGE_SIDE_PX", "256")),
        "DUPLICATE_PHASH_DISTANCE": int(env("DUPLICATE_PHASH_DISTANCE", "6")),
        "OPTOUT_PHASH_DISTANCE": int(env("OPTOUT_PHASH_DISTANCE", "6")),
        "OPTOUT_CHECK_RATE_LIMIT": env("OPTOUT_CHECK_RATE_LIMIT", "120 per minute"),
        # Dataset compliance: the largest manifest one upload may carry (its own request limit).
        "COMPLIANCE_UPLOAD_MAX_BYTES": int(env("COMPLIANCE_UPLOAD_MAX_BYTES", str(2 * 1024**3))),
        "WATERMARK_TEXT": env("WATERMARK_TEXT", "PREVIEW · Consent Marketplace"),
        # Catalog: mirroring stock images, and adding whole searches to collections.
        "MIRROR_HOST_CONCURRENCY": int(env("MIRROR_HOST_CONCURRENCY", "2")),
        "MIRROR_RETRIES": int(env("MIRROR_RETRIES", "4")),
        "MIRROR_BACKOFF_SECONDS": float(env("MIRROR_BACKOFF_SECONDS", "1.0")),
        "MIRROR_TIMEOUT_SECONDS": float(env("MIRROR_TIMEOUT_SECONDS", "30")),
        # Reservations (TDMRep, ai.txt, robots.txt): largest file read, and live fetching from
        # sites (off by default: the app never needs the internet), its timeout and scheme.
        "RESERVATIONS_MAX_FILE_BYTES": int(env("RESERVATIONS_MAX_FILE_BYTES", str(512 * 1024))),
        "RESERVATIONS_LIVE_FETCH": _flag(env("RESERVATIONS_LIVE_FETCH"), default=False),
        "RESERVATIONS_FETCH_TIMEOUT_SECONDS": float(
            env("RESERVATIONS_FETCH_TIMEOUT_SECONDS", "10")
        ),
        "RESERVATIONS_FETCH_SCHEME": env("RESERVATIONS_FETCH_SCHEME", "https"),
        "COLLECTION_QUERY_CAP": int(env("COLLECTION_QUERY_CAP", "100000")),
        # Buyers: bundle size, the platform's commission, fees, quote lifetime, card minimum.
        "BUNDLE_MAX_ITEMS": int(env("BUNDLE_MAX_ITEMS", "1000000")),
        "PLATFORM_COMMISSION_BPS": int(env("PLATFORM_COMMISSION_BPS", "2000")),
        "HANDLING_FEE_MINOR": int(env("HANDLING_FEE_MINOR", "0")),
        "QUOTE_TTL_SECONDS": int(env("QUOTE_TTL_SECONDS", "1800")),
        "MINIMUM_CHARGE_MINOR": int(env("MINIMUM_CHARGE_MINOR", "50")),
        "FULFILMENT_CHUNK": int(env("FULFILMENT_CHUNK", "10000")),
        # Delivery: how long package download links live, and when a WebDataset shard closes.
        "PACKAGE_URL_MAX_AGE": int(env("PACKAGE_URL_MAX_AGE", "86400")),
        "PACKAGE_AUTO_BUILD": _flag(env("PACKAGE_AUTO_BUILD"), default=True),
        "PACKAGE_SHARD_MAX_BYTES": int(env("PACKAGE_SHARD_MAX_BYTES", str(1 << 30))),
        "PACKAGE_SHARD_MAX_ITEMS": int(env("PACKAGE_SHARD_MAX_ITEMS", "10000")),
        # Payouts: days earnings wait before they can be paid (refunds come in that time), the
        # smallest payout, when the scheduler starts a run (cron, UTC), and the country of a
        # new connected account when the artist's profile names none.
        "PAYOUT_HOLD_DAYS": int(env("PAYOUT_HOLD_DAYS", "14")),
        "PAYOUT_MINIMUM_MINOR": int(env("PAYOUT_MINIMUM_MINOR", "1000")),
        "PAYOUT_SCHEDULE": env("PAYOUT_SCHEDULE", "0 6 * * *"),
        "PAYOUT_DEFAULT_COUNTRY": env("PAYOUT_DEFAULT_COUNTRY", "US").upper(),
        # Crash tests only: kill the process at this named point (refused in production).
        "FAULT_POINT": env("MARKETPLACE_FAULT_POINT") or None,
        # Ledger: the checkpoint origin line and the Ed25519 key that signs checkpoints.
        "LEDGER_ORIGIN": env("LEDGER_ORIGIN", "localhost/marketplace/ledger"),
        # Unset: a key is generated on first run into instance/; set: the file must exist.
        "LEDGER_KEY_PATH": env("LEDGER_KEY_PATH") or None,
        "LEDGER_DEFAULT_KEY_PATH": str(instance / "ledger-signing-key.pem"),
        # Certificates: the Ed25519 key that signs them (unset: generated into instance/), the
        # largest order whose certificate carries every item's entry and inclusion proof, the
        # largest whose PDF lists every item, and the largest certificate /verify accepts.
        "CERTIFICATE_KEY_PATH": env("CERTIFICATE_KEY_PATH") or None,
        "CERTIFICATE_DEFAULT_KEY_PATH": str(instance / "certificate-signing-key.pem"),
        "CERTIFICATE_ITEM_PROOFS_MAX": int(env("CERTIFICATE_ITEM_PROOFS_MAX", "10000")),
        "CERTIFICATE_PDF_ITEMS_MAX": int(env("CERTIFICATE_PDF_ITEMS_MAX", "2000")),
        "VERIFY_UPLOAD_MAX_BYTES": int(env("VERIFY_UPLOAD_MAX_BYTES", str(64 * 1024 * 1024))),
        # Security. RATELIMIT_ENABLED is explicit because the limiter object outlives an app.
        "RATELIMIT_ENABLED": _flag(env("RATELIMIT_ENABLED"), default=True),
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or redis_url or "memory://",
        "LOGIN_RATE_LIMIT": env("LOGIN_RATE_LIMIT", "10 per minute;100 per hour"),
        "EMAIL_TOKEN_MAX_AGE": int(env("EMAIL_TOKEN_MAX_AGE", str(3 * 24 * 3600))),
        "PASSWORD_RESET_MAX_AGE": int(env("PASSWORD_RESET_MAX_AGE", "3600")),
        # How long a claimant's link to follow their claim works (default: two years).
        "CLAIM_LINK_MAX_AGE": int(env("CLAIM_LINK_MAX_AGE", str(2 * 365 * 24 * 3600))),
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Fixed settings (not read from the environment; tests and extensions may override):
        # Content-Security-Policy: extra origins per directive (space-separated); extensions
        # such as payments add theirs with marketplace.csp.allow() instead.
        "CSP_SCRIPT_SRC": "",
        "CSP_FRAME_SRC": "",
        "CSP_CONNECT_SRC": "",
        # Longest query string (bytes) the app reads; longer ones answer 414 in the API's shape.
        "MAX_QUERY_STRING": 8192,
        # Rate limits keep working (per process, in memory) while their Redis is unreachable.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Jobs recorded this long ago and still not handed to RQ are sent by the outbox sweep.
        "JOBS_OUTBOX_GRACE_SECONDS": 30.0,
        "MAX_CONTENT_LENGTH": int(env("MAX_CONTENT_LENGTH", str(512 * 1024 * 1024))),
    }


# Settings that must lie within bounds for the money rules to hold: (name, lowest, highest).
_BOUNDS = (
    ("BUNDLE_MAX_ITEMS", 1, 10_000_000),
    ("PLATFORM_COMMISSION_BPS", 0, 10_000),
    ("HANDLING_FEE_MINOR", 0, 100_000),
    ("QUOTE_TTL_SECONDS", 60, 7 * 24 * 3600),
    ("MINIMUM_CHARGE_MINOR", 0, 100_000),
    ("FULFILMENT_CHUNK", 100, 100_000),
    ("PACKAGE_URL_MAX_AGE", 60, 7 * 24 * 3600),  # S3 presigns for at most seven days
    ("PACKAGE_SHARD_MAX_BYTES", 1 << 20, 1 << 40),
    ("PACKAGE_SHARD_MAX_ITEMS", 1, 1_000_000),
    ("CERTIFICATE_ITEM_PROOFS_MAX", 0, 10_000_000),
    ("CERTIFICATE_PDF_ITEMS_MAX", 0, 100_000),
    ("VERIFY_UPLOAD_MAX_BYTES", 1024, 2**31),
    ("PAYOUT_HOLD_DAYS", 0, 365),
    ("PAYOUT_MINIMUM_MINOR", 1, 100_000_000),
    ("CLAIM_LINK_MAX_AGE", 3600, 10 * 365 * 24 * 3600),
    ("RESERVATIONS_MAX_FILE_BYTES", 1024, 16 * 1024 * 1024),
)


def check_config(config: Mapping[str, object]) -> None:
    """Refuse to run with settings that are out of bounds, inconsistent, or unsafe in production."""
    for name, low, high in _BOUNDS:
        value = config.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            raise ConfigError(f"{name} must be a whole number from {low} to {high}.")
    _check_stripe(config)
    _check_payouts(config)
    if config.get("SEARCH_ENGINE", "tantivy") not in ("tantivy", "database"):
        raise ConfigError("SEARCH_ENGINE must be tantivy or database.")
    if config.get("SEARCH_INDEX_UPDATES", "job") not in ("job", "inline"):
        raise ConfigError("SEARCH_INDEX_UPDATES must be job or inline.")
    if config.get("RESERVATIONS_FETCH_SCHEME", "https") not in ("https", "http"):
        raise ConfigError("RESERVATIONS_FETCH_SCHEME must be https or http.")
    if config.get("ENV_NAME") != "production":
        return
    if config.get("FAULT_POINT"):
        raise ConfigError("MARKETPLACE_FAULT_POINT is for crash tests; unset it in production.")
    secret = config.get("SECRET_KEY")
    if not isinstance(secret, str) or secret.lower() in KNOWN_WEAK_SECRETS:
        raise ConfigError("SECRET_KEY must be set to a random value in production.")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is too short for production (at least {MIN_SECRET_LENGTH} characters)."
        )


def _check_payouts(config: Mapping[str, object]) -> None:
    from croniter import croniter  # RQ's own cron parser (rq depends on it)

    schedule = config.get("PAYOUT_SCHEDULE")
    if schedule is not None and not (isinstance(schedule, str) and croniter.is_valid(schedule)):
        raise ConfigError("PAYOUT_SCHEDULE must be a cron expression such as '0 6 * * *'.")
    country = config.get("PAYOUT_DEFAULT_COUNTRY")
    if country is not None and not (
        isinstance(country, str) and len(country) == 2 and country.isascii() and country.isalpha()
    ):
        raise ConfigError("PAYOUT_DEFAULT_COUNTRY must be a two-letter country code.")


def _check_stripe(config: Mapping[str, object]) -> None:
    """Stripe keys must be of the right kind and the same mode; the messages never echo a key."""
    secret = config.get("STRIPE_SECRET_KEY")
    publishable = config.get("STRIPE_PUBLISHABLE_KEY")
    webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        if publishable:
            raise ConfigError(
                "STRIPE_PUBLISHABLE_KEY is set without STRIPE_SECRET_KEY: set both, or neither "
                "to use the embedded Stripe emulator."
            )
        return
    if not isinstance(secret, str) or not secret.startswith(("sk_test_", "sk_live_", "rk_")):
        raise ConfigError(
            "STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_... or sk_live_...)."
        )
    mode = "live" if "_live_" in secret else "test"
    if not isinstance(publishable, str) or not publishable.startswith(f"pk_{mode}_"):
        raise ConfigError(
            f"STRIPE_PUBLISHABLE_KEY must be set to a {mode}-mode publishable key (pk_{mode}_...) "
            "matching STRIPE_SECRET_KEY."
        )
    if webhook_secret is not None and not str(webhook_secret).startswith("whsec_"):
        raise ConfigError("STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_...).")
    connect_secret = config.get("STRIPE_CONNECT_WEBHOOK_SECRET")
    if connect_secret is not None and not str(connect_secret).startswith("whsec_"):
        raise ConfigError(
            "STRIPE_CONNECT_WEBHOOK_SECRET must be a webhook signing secret (whsec_...)."
        )
    if mode == "live" and not webhook_secret:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is required with a live Stripe key.")
