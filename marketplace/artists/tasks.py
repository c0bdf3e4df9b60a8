"""Jobs of the artists feature: ids in, safe to rerun."""

from __future__ import annotations

import logging

from flask import current_app

from marketplace import imaging, storage, xmp
from marketplace.artists import consent
from marketplace.artists.models import TermsKind, Work
from marketplace.catalog import services as catalog
from marketplace.db import after_commit, transaction
from marketplace.storage import keys
from marketplace.urls import external_url

log = logging.getLogger(__name__)


def make_derivatives(work_id: int) -> None:
    """Thumbnail and preview for the work's current terms: EXIF/GPS stripped, XMP consent
    written in, the preview watermarked when the work is priced. Each run writes a new version
    of the objects and removes the old ones after commit, so a failed run leaves the last good
    pair in place and a rerun is harmless."""
    with transaction() as session:
        work = session.get(Work, work_id)
        if work is None or work.current_terms is None:
            return
        terms = work.current_terms
        original = storage.get(keys.work_original(work.id))
        image, _fmt = imaging.open_image(
            original, max_pixels=int(current_app.config["MAX_IMAGE_PIXELS"])
        )
        data_mining = consent.data_mining_for_terms(
            terms.kind.value,
            generative_training=terms.generative_training,
            non_generative_training=terms.non_generative_training,
            licensed_copy=False,
        )
        terms_url = external_url("artists.show_terms", terms_id=terms.id)
        packet = xmp.xmp_packet(data_mining, terms_url, rights_text=f"© {work.artist.display_name}")
        watermark = (
            str(current_app.config["WATERMARK_TEXT"]) if terms.kind is TermsKind.LICENSE else None
        )
        old_version = work.derivatives_version
        version = old_version + 1
        pictures = imaging.derivative_images(image, watermark)
        for name, data in xmp.encode_derivatives(pictures, packet).items():
            storage.put(
                session,
                keys.work_derivative(work.id, version, name),
                data,
                content_type="image/webp",
            )
        work.derivatives_version = version
        work.derivatives_ready = True
        catalog.index_work(session, work)
        if old_version:
            stale = [keys.work_derivative(work.id, old_version, n) for n in keys.DERIVATIVE_NAMES]
            after_commit(session, lambda: storage.delete_many(stale))
    log.info("derivatives v%s made for work %s", version, work_id)
