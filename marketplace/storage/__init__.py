"""The only package that writes objects: a local folder by default, S3 when configured.

`put` registers the object's removal with the surrounding transaction, so a rollback leaves no
orphan object behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app
from sqlalchemy.orm import Session

from marketplace.db import on_rollback
from marketplace.security import sign_token

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*$")


class ObjectNotFound(KeyError):
    pass


class Backend(Protocol):
    """What every storage backend does; keys are '/'-separated, objects are private."""

    def write(self, key: str, data: bytes, content_type: str) -> None: ...
    def write_file(self, key: str, path: Path, content_type: str) -> None: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def download_url(
        self, key: str, filename: str, max_age_seconds: int, content_type: str
    ) -> str: ...


DOWNLOAD_PURPOSE = "storage-download"


def attachment_header(filename: str) -> str:
    from urllib.parse import quote

    # The plain filename is an ASCII fallback: HTTP headers are Latin-1 at most, and a server
    # (werkzeug, gunicorn) drops the response on "夕焼け.png"; filename* carries the real name.
    safe = "".join(c for c in filename if c.isascii() and (c.isalnum() or c in "._- "))
    safe = safe[:120] or "download"
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename[:200], safe='')}"


def check_key(key: str) -> str:
    if len(key) > 512 or not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"not a valid object key: {key!r}")
    return key


class LocalBackend:
    """Objects as files under a folder; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_file(self, key: str, path: Path, content_type: str) -> None:
        """Copy a file in without holding it in memory (temp file, then rename)."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def local_path(self, key: str) -> Path:
        """Where the object lives on disk (the signed download route serves it from there)."""
        return self._path(key)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def download_url(self, key: str, filename: str, max_age_seconds: int, content_type: str) -> str:
        """A signed, expiring link to this app (see `storage.views`), not a file path."""
        from flask import url_for

        payload = {
            "key": check_key(key),
            "name": filename,
            "type": content_type,
            "max_age": max_age_seconds,
        }
        token = sign_token(DOWNLOAD_PURPOSE, payload)
        return url_for("storage.download", token=token, _external=True)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        found = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in found if k.startswith(prefix))


class S3Backend:
    """Objects in an S3 (or S3-compatible) bucket through boto3; the bucket stays private."""

    def __init__(self, bucket: str, region: str, endpoint_url: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        # SigV4 for presigned URLs too: botocore presigns with SigV2 in us-east-1 and other old
        # regions, and S3 refuses SigV2 on buckets created after June 24, 2020.
        self.client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4"),
        )

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def write_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload a file in parts (boto3's managed transfer: multipart above 8 MiB)."""
        self.client.upload_file(
            str(path), self.bucket, check_key(key), ExtraArgs={"ContentType": content_type}
        )

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(key) from exc
        body: bytes = response["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def download_url(self, key: str, filename: str, max_age_seconds: int, content_type: str) -> str:
        """An S3 presigned GET URL, valid for `max_age_seconds`."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ResponseContentDisposition": attachment_header(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=max_age_seconds,
        )
        return url

    def keys(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)


def init_app(app: Flask) -> None:
    store: Backend
    if app.config.get("S3_BUCKET"):
        store = S3Backend(
            str(app.config["S3_BUCKET"]),
            str(app.config["S3_REGION"]),
            app.config.get("S3_ENDPOINT_URL"),
        )
    else:
        store = LocalBackend(Path(str(app.config["STORAGE_DIR"])))
    app.extensions["marketplace.storage"] = store


def backend() -> Backend:
    store: Backend = current_app.extensions["marketplace.storage"]
    return store


def put(session: Session, key: str, data: bytes, *, content_type: str) -> None:
    """Store `data` under `key`; removed again if the session's transaction rolls back."""
    store = backend()
    store.write(check_key(key), data, content_type)
    on_rollback(session, lambda: store.delete(key))


def put_file(session: Session, key: str, path: Path, *, content_type: str) -> None:
    """Store the file at `path` under `key`, streaming it (never whole in memory); removed
    again if the session's transaction rolls back."""
    store = backend()
    store.write_file(check_key(key), path, content_type)
    on_rollback(session, lambda: store.delete(key))


def get(key: str) -> bytes:
    return backend().read(key)


def delete(key: str) -> None:
    backend().delete(key)


def delete_many(keys: list[str]) -> None:
    store = backend()
    for key in keys:
        store.delete(key)


def download_url(
    key: str, filename: str, *, content_type: str, max_age_seconds: int | None = None
) -> str:
    """A time-limited link for a private object (`max_age_seconds`, by default
    DOWNLOAD_URL_MAX_AGE), served as `content_type`: the type the caller knows from the bytes,
    never a guess from the name."""
    if max_age_seconds is None:
        max_age_seconds = int(current_app.config["DOWNLOAD_URL_MAX_AGE"])
    return backend().download_url(key, filename, max_age_seconds, content_type)


@contextmanager
def local_file(key: str) -> Iterator[Path]:
    """A local path holding the object, for readers that stream or seek (a manifest of
    gigabytes is never read into memory): the object's own file on the local backend, a
    temporary download (removed afterwards) from S3."""
    store = backend()
    if isinstance(store, LocalBackend):
        path = store.local_path(check_key(key))
        if not path.is_file():
            raise ObjectNotFound(key)
        yield path
        return
    if not isinstance(store, S3Backend):  # pragma: no cover - every backend is one of these
        raise TypeError(f"no local copy from {type(store).__name__}")
    from botocore.exceptions import ClientError

    with tempfile.TemporaryDirectory(prefix="object-") as folder:
        path = Path(folder) / "object"
        try:
            store.client.download_file(store.bucket, check_key(key), str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectNotFound(key) from exc
            raise
        yield path
