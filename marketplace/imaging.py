"""Image inspection and derivatives, shared by artists' works, the opt-out registry and stock.

Pure functions over bytes (Pillow and imagehash): the real format comes from the bytes, never
the file name; the decompression-bomb guard is on; derivatives carry no EXIF.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath

import imagehash
from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif"}
PHASH_BITS = 64
PHASH_BANDS = 4  # 16-bit bands: a match within distance 7 agrees with us on a band to 1 bit
BAND_BITS = PHASH_BITS // PHASH_BANDS


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message is safe to show, and reads after the
    file's name ("dusk.tif is not a readable TIFF image"): see `rejection`."""


def rejection(filename: str | None, exc: ImageRejected) -> str:
    """The sentence for one refused file, naming it, so a batch or a form says which one."""
    name = PurePath(filename or "").name
    return f"{name or 'The file'} {exc}."


def check_min_side(image: InspectedImage, min_side_px: int) -> None:
    """ImageRejected when the short side is under `min_side_px`: too small to train on or to
    make a thumbnail of (and a 1x1 "work" is a probe, not art)."""
    if min(image.width, image.height) < min_side_px:
        raise ImageRejected(
            f"is {image.width} x {image.height} px; works need at least {min_side_px} px on "
            "the short side, so that buyers can train on them and previews can show them"
        )


def sniff_format(data: bytes) -> str | None:
    """JPEG, PNG, WEBP or TIFF from the magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


@dataclass(frozen=True)
class InspectedImage:
    format: str
    mime: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    phash: int  # unsigned 64-bit perceptual hash

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000


def open_image(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str]:
    """Open and fully decode `data`; ImageRejected for anything but a sound, bounded image."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("is not a PNG, JPEG, WebP or TIFF image")
    try:
        # Pillow's own guard at our limit: a warning above it (made an error here), an error at 2x.
        Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=[fmt])
            if opened.width * opened.height > max_pixels:
                raise ImageRejected(
                    f"has {opened.width * opened.height / 1e6:.0f} megapixels; "
                    f"the limit is {max_pixels / 1e6:.0f}"
                )
            opened.load()
            image = normalized(opened)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            f"has more than {max_pixels / 1e6:.0f} megapixels, the limit (decompression bomb guard)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"is not a readable {fmt} image (damaged or truncated)") from exc
    return image, fmt


# Modes kept as they are: every step after opening (pHash, derivatives, XMP encoding) reads them.
_READY_MODES = frozenset({"RGB", "RGBA", "L", "LA"})
_ALPHA_MODES = frozenset({"PA", "La", "RGBa", "LA", "RGBA"})


def normalized(image: Image.Image) -> Image.Image:
    """`image` in a mode every later step reads (RGB, RGBA, L or LA), its look kept.

    Pillow opens many more: bilevel, palettes (with or without transparency), CMYK, YCbCr,
    CIELAB, 16- and 32-bit integer and floating-point greys. Deep greys are scaled to 8 bits
    over their range rather than clipped (a 16-bit scan would otherwise come out white), CIELAB
    goes through an ICC transform to sRGB (Pillow has no direct conversion), and the EXIF
    orientation is applied first, since a converted copy no longer carries TIFF tags.
    ImageRejected, safe to show, for a mode that cannot be converted.
    """
    if image.mode in _READY_MODES:
        return image
    mode = image.mode
    try:
        upright = ImageOps.exif_transpose(image) or image
        if mode in ("I", "F") or mode.startswith("I;16"):
            return _deep_grey_to_l(upright)
        if mode == "LAB":
            return _lab_to_rgb(upright)
        has_alpha = mode in _ALPHA_MODES or "transparency" in upright.info
        return upright.convert("RGBA" if has_alpha else "RGB")
    except (ValueError, OSError, TypeError, ImageCms.PyCMSError) as exc:
        raise ImageRejected(
            f"uses the {mode} colour mode, which cannot be converted for previews; save it "
            "as 8-bit RGB or greyscale"
        ) from exc


def _deep_grey_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greys to 8 bits: by the format's full range when the values
    fit it (0-65535, or 0-1 for floats), else stretched between the darkest and lightest."""
    wide = image.convert("F")
    low, high = wide.getextrema()
    if not (isinstance(low, int | float) and isinstance(high, int | float)):
        raise ValueError("no grey range")
    if image.mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    elif image.mode != "F" and low >= 0 and high <= 65535 and high > 255:
        low, high = 0.0, 65535.0
    elif low >= 0 and high <= 255:
        low, high = 0.0, 255.0
    span = (high - low) or 1.0
    return wide.point(lambda value: (value - low) * 255.0 / span).convert("L")


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    transform = ImageCms.buildTransform(
        ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
    )
    converted = ImageCms.applyTransform(image, transform)
    if converted is None:
        raise ValueError("CIELAB transform gave no image")
    return converted


def perceptual_hash(image: Image.Image) -> int:
    """The 64-bit DCT pHash (imagehash) as an unsigned integer."""
    bits = imagehash.phash(image).hash.flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> InspectedImage:
    """Everything we record about an upload, checked before anything is written."""
    if len(data) == 0:
        raise ImageRejected("is empty")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"is {human_size(len(data))}; the limit is {human_size(max_bytes)} per file"
        )
    image, fmt = open_image(data, max_pixels=max_pixels)
    return InspectedImage(
        format=fmt,
        mime=FORMATS[fmt],
        width=image.width,
        height=image.height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=perceptual_hash(image),
    )


def human_size(size_bytes: int) -> str:
    """Sizes as people read them: 50 KB, 1.5 MB (decimal units, as file managers show)."""
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1000:.0f} KB"
    megabytes = size_bytes / 1_000_000
    return f"{megabytes:.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def phash_bands(phash: int) -> list[int]:
    """The 16-bit bands, most significant first (indexed columns for near-duplicate search)."""
    mask = (1 << BAND_BITS) - 1
    return [(phash >> (BAND_BITS * (PHASH_BANDS - 1 - i))) & mask for i in range(PHASH_BANDS)]


def band_neighbours(band: int) -> list[int]:
    """The band and every value one bit away: with 4 bands, any hash within distance 7 has a
    band among these (pigeonhole), so candidates come from indexed equality lookups."""
    return [band, *(band ^ (1 << bit) for bit in range(BAND_BITS))]


def to_signed64(value: int) -> int:
    """Store an unsigned 64-bit hash in a signed BIGINT column."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def parse_phash(text: str) -> int:
    """A pHash given as 16 hex digits (imagehash's str()); ValueError otherwise."""
    cleaned = text.strip().lower()
    if len(cleaned) != 16 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ValueError("a pHash is 16 hexadecimal digits")
    return int(cleaned, 16)


def format_phash(value: int) -> str:
    return f"{value:016x}"


# --- Derivatives ---------------------------------------------------------------------------


def _prepared(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied), RGB, and with no metadata carried over."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode not in ("RGB", "L"):
        background = Image.new("RGB", upright.size, (255, 255, 255))
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    return clean.convert("RGB")


def resized(image: Image.Image, long_side: int) -> Image.Image:
    copy = _prepared(image)
    copy.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return copy


def watermarked(image: Image.Image, text: str) -> Image.Image:
    """A diagonal, repeated, semi-transparent mark: previews of priced works are not the work."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(14, base.width // 18)
    font = ImageFont.load_default(size=size)
    step_x, step_y = size * len(text) * 0.7, size * 4
    y = -base.height
    row = 0
    while y < base.height * 2:
        x = -base.width + (row % 2) * step_x / 2
        while x < base.width * 2:
            draw.text((x, y), text, font=font, fill=(255, 255, 255, 90))
            draw.text((x + 2, y + 2), text, font=font, fill=(0, 0, 0, 60))
            x += step_x
        y += step_y
        row += 1
    layer = layer.rotate(30, resample=Image.Resampling.BICUBIC)
    return Image.alpha_composite(base, layer).convert("RGB")


THUMB_PX = 256
PREVIEW_PX = 1024


def derivative_images(image: Image.Image, watermark: str | None = None) -> dict[str, Image.Image]:
    """The thumbnail (256 px) and the preview (1024 px, marked when `watermark` is given)."""
    preview = resized(image, PREVIEW_PX)
    if watermark:
        preview = watermarked(preview, watermark)
    return {"thumb": resized(image, THUMB_PX), "preview": preview}
