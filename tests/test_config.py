from __future__ import annotations

import pytest

from marketplace import create_app
from marketplace.config import ConfigError, load_config


def test_secret_key_is_generated_once_and_kept_in_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("MARKETPLACE_ENV", raising=False)
    first = load_config(str(tmp_path))["SECRET_KEY"]
    second = load_config(str(tmp_path))["SECRET_KEY"]
    assert first == second
    assert len(str(first)) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("secret", [None, "dev", "changeme", "short-but-random"])
def test_production_refuses_missing_or_weak_secret_key(tmp_path, monkeypatch, secret):
    monkeypatch.setenv("MARKETPLACE_ENV", "production")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(instance_path=str(tmp_path))
    assert not (tmp_path / "secret_key").exists()


def test_defaults_are_embedded(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "SMTP_HOST", "STORAGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(str(tmp_path))
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'marketplace.sqlite'}"
    assert config["REDIS_URL"] is None
    assert config["STORAGE_DIR"] == str(tmp_path / "objects")
    assert config["OUTBOX_DIR"] == str(tmp_path / "outbox")
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
