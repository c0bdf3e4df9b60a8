"""Small images made on the fly for tests (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import random

from PIL import Image


def noise(seed: int, size: tuple[int, int] = (320, 256)) -> Image.Image:
    """A picture with its own perceptual hash (flat colours would all hash alike)."""
    rng = random.Random(seed)
    small = Image.new("RGB", (16, 12))
    pixels = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(192)]
    small.putdata(pixels)
    return small.resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def png(seed: int = 1, size: tuple[int, int] = (320, 256)) -> bytes:
    return encode(noise(seed, size), "PNG")


def jpeg(seed: int = 1, size: tuple[int, int] = (320, 256), **kwargs: object) -> bytes:
    return encode(noise(seed, size), "JPEG", quality=90, **kwargs)


def jpeg_with_gps(seed: int = 1) -> bytes:
    """A JPEG whose EXIF names a camera and a GPS position (derivatives must drop both)."""
    image = noise(seed, (400, 300))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel 9"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    return encode(image, "JPEG", exif=exif.tobytes(), quality=90)


def bomb() -> bytes:
    """A small PNG that decodes to 150 megapixels."""
    return encode(Image.new("1", (15_000, 10_000)), "PNG", optimize=True)


# Every mode Pillow opens from our four formats, as (mode, format) pairs it can also write.
MODES = [
    ("1", "PNG"),
    ("1", "TIFF"),
    ("L", "PNG"),
    ("LA", "PNG"),
    ("LA", "TIFF"),
    ("P", "PNG"),
    ("P+transparency", "PNG"),
    ("P+transparency", "TIFF"),
    ("PA", "TIFF"),
    ("RGBA", "PNG"),
    ("CMYK", "JPEG"),
    ("CMYK", "TIFF"),
    ("YCbCr", "TIFF"),
    ("LAB", "TIFF"),
    ("I", "TIFF"),
    ("I;16", "PNG"),
    ("I;16", "TIFF"),
    ("I;16B", "TIFF"),
    ("F", "TIFF"),
]


def in_mode(mode: str, fmt: str, seed: int = 1, size: tuple[int, int] = (320, 256)) -> bytes:
    """The noise picture saved in `mode` (deep greys span their whole range, as scans do)."""
    from PIL import ImageCms

    picture = noise(seed, size)
    kwargs: dict[str, object] = {}
    if mode == "P+transparency":
        image = picture.convert("P")
        kwargs["transparency"] = 0
    elif mode == "LAB":
        to_lab = ImageCms.buildTransform(
            ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
        )
        image = ImageCms.applyTransform(picture, to_lab)
    elif mode in ("I", "I;16", "I;16B"):
        image = picture.convert("L").convert("I").point(lambda v: v * 257)
        image = image if mode == "I" else image.convert("I;16")
        if mode == "I;16B":
            image = Image.frombytes("I;16B", image.size, image.tobytes("raw", "I;16B"))
    elif mode == "F":
        image = picture.convert("L").convert("F").point(lambda v: v / 255)
    else:
        image = picture.convert(mode)
    return encode(image, fmt, **kwargs)
