"""Asking for an order's package: the row and its queued build. Kept apart from `services`
so that fulfilment (buyers) can ask without importing the build, which reads buyers."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import jobs, storage
from marketplace.buyers.models import Order
from marketplace.db import after_commit
from marketplace.delivery.models import Package, PackageFile, PackageStatus

BUILD_JOB = "marketplace.delivery.tasks.build_package"


class DeliveryError(Exception):
    code = "delivery"


class PackageBusy(DeliveryError):
    code = "package_busy"


def find_package(session: Session, order_id: int) -> Package | None:
    return session.scalar(select(Package).where(Package.order_id == order_id))


def order_fulfilled(session: Session, order: Order) -> None:
    """Fulfilment's hook: queue the order's package, unless PACKAGE_AUTO_BUILD is off (then an
    administrator builds it from the package page)."""
    if current_app.config["PACKAGE_AUTO_BUILD"]:
        request_package(session, order)


def request_package(session: Session, order: Order, *, rebuild: bool = False) -> Package:
    """Queue the build of the order's package (once the caller commits). Without `rebuild` a
    package already queued, building or ready is left alone; a rebuild of one being built
    raises PackageBusy, unless its job is gone (a worker that died mid-build). The job id is
    the order's, so it is never queued twice."""
    package = find_package(session, order.id)
    if package is None:
        package = Package(
            order_id=order.id,
            status=PackageStatus.QUEUED,
            items_total=order.item_count,
            items_done=0,
            items_missing=0,
            bytes_total=0,
            missing_refunded_minor=0,
            error="",
            attempts=0,
        )
        session.add(package)
        session.flush()
    elif package.status in _UNDERWAY and (not rebuild or _job_alive(order.id)):
        if rebuild:
            raise PackageBusy("The package is being built; rebuild it when the build ends.")
        return package
    elif not rebuild and package.status is PackageStatus.READY:
        return package
    else:
        package.status = PackageStatus.QUEUED
        package.error = ""
    jobs.enqueue_after_commit(session, BUILD_JOB, order.id, job_id=job_id(order.id))
    return package


def job_id(order_id: int) -> str:
    return f"package-{order_id}"


_UNDERWAY = (PackageStatus.QUEUED, PackageStatus.BUILDING)
_ALIVE = {"queued", "started", "deferred", "scheduled"}


def _job_alive(order_id: int) -> bool:
    """RQ still has the build queued or running (never, without Redis: jobs ran inline)."""
    return jobs.job_status(job_id(order_id)) in _ALIVE


def order_refunded_in_full(session: Session, order: Order) -> None:
    """Refunds' hook: a revoked licence leaves nothing to download. The package's stored
    objects are deleted once the refund commits, so a link handed out before (local or S3)
    finds nothing; the file rows stay, as the record of what was delivered."""
    package = find_package(session, order.id)
    if package is None:
        return
    keys = sorted(
        session.scalars(select(PackageFile.storage_key).where(PackageFile.package_id == package.id))
    )
    if keys:
        after_commit(session, lambda: storage.delete_many(keys))
