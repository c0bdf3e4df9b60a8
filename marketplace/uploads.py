"""Images sent only to be compared (similar works, opt-out checks), bounded before they are read.

Such an image is hashed and dropped. A pHash needs 32x32 pixels, while a 200 KB PNG can decode to
a gigabyte, so these routes cap the request body before parsing it and the decoded size far below
what an artist's upload may have.
"""

from __future__ import annotations

from flask import current_app, request

from marketplace import imaging

QUERY_MAX_PIXELS = 16_000_000  # 16 MP: any photo a person compares, at a bounded decode cost
MULTIPART_SLACK = 64 * 1024  # the form's own bytes around the file


def limit_request_to_one_image() -> None:
    """Refuse (413) a body larger than one image of MAX_UPLOAD_BYTES, chunked or not, before
    the form is parsed: call first thing in the view."""
    request.max_content_length = int(current_app.config["MAX_UPLOAD_BYTES"]) + MULTIPART_SLACK


def inspect_query_image(data: bytes) -> imaging.InspectedImage:
    """The hashes of an image sent for comparison; ImageRejected past the byte or pixel caps."""
    max_pixels = min(QUERY_MAX_PIXELS, int(current_app.config["MAX_IMAGE_PIXELS"]))
    return imaging.inspect_image(
        data, max_bytes=int(current_app.config["MAX_UPLOAD_BYTES"]), max_pixels=max_pixels
    )
