"""Every image mode Pillow opens is either normalised for pHash and derivatives or refused
with a sentence; nothing a file's mode does may become a server error."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from marketplace import imaging
from marketplace.artists import consent
from tests import images

LIMIT = {"max_bytes": 10**8, "max_pixels": 10**8}


@pytest.mark.parametrize(("mode", "fmt"), images.MODES)
def test_every_mode_gives_a_hash_and_derivatives(mode: str, fmt: str) -> None:
    data = images.in_mode(mode, fmt)
    expected = mode.split("+")[0]
    assert Image.open(io.BytesIO(data)).mode in (expected, "I;16")  # the file really is in it
    inspected = imaging.inspect_image(data, **LIMIT)
    image, _ = imaging.open_image(data, max_pixels=LIMIT["max_pixels"])
    assert image.mode in ("RGB", "RGBA", "L", "LA")
    for picture in imaging.derivative_images(image, "PREVIEW").values():
        encoded = consent.encode_with_xmp(picture, "WEBP", b"<x:xmpmeta/>", quality=82)
        assert Image.open(io.BytesIO(encoded)).size[0] > 0
    # The picture survives the conversion: it hashes near the RGB original, not to a blank.
    reference = imaging.inspect_image(images.png(1), **LIMIT).phash
    assert imaging.hamming(inspected.phash, reference) <= 12, mode


def test_deep_greys_are_scaled_not_clipped() -> None:
    image, _ = imaging.open_image(images.in_mode("I;16", "PNG"), max_pixels=10**8)
    low, high = image.getextrema()
    assert high - low > 150  # clipping 16-bit values to 8 bits would leave a white page


def test_a_mode_that_cannot_be_converted_is_refused_with_a_reason(monkeypatch) -> None:
    def broken(*args: object) -> None:
        raise ImageCms.PyCMSError("no transform")

    lab = images.in_mode("LAB", "TIFF")
    monkeypatch.setattr(ImageCms, "buildTransform", broken)
    with pytest.raises(imaging.ImageRejected) as refused:
        imaging.inspect_image(lab, **LIMIT)
    assert imaging.rejection("scan.tif", refused.value) == (
        "scan.tif uses the LAB colour mode, which cannot be converted for previews; save it as "
        "8-bit RGB or greyscale."
    )


def test_the_rejection_names_only_the_file_never_a_path() -> None:
    exc = imaging.ImageRejected("is empty")
    assert imaging.rejection("../../etc/dusk.png", exc) == "dusk.png is empty."
    assert imaging.rejection("", exc) == "The file is empty."
