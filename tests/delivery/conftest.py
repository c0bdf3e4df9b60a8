"""S3 fixtures of the storage tests (moto's server, a fresh bucket), shared with delivery's."""

from tests.storage.test_storage import bucket, moto_endpoint

__all__ = ["bucket", "moto_endpoint"]
