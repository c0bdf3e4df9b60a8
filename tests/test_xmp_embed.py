"""embed_xmp: the consent packet goes into the original file, pixels untouched, old XMP gone."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from marketplace.xmp import DataMining, embed_xmp, xmp_packet
from tests import images
from tests.conftest import shared_path

PACKET = xmp_packet(DataMining.PROHIBITED_AIML_TRAINING, "https://example.test/terms/7")
SAMPLES_CACHE: dict[str, bytes] = {}
REFUSED = "truncated|malformed|corrupt|not a"
OTHER = xmp_packet(DataMining.ALLOWED, "https://example.test/terms/1", "© Someone")


def rgba(seed: int = 1) -> Image.Image:
    picture = images.noise(seed, (96, 64)).convert("RGBA")
    picture.putalpha(images.noise(seed + 1, (96, 64)).convert("L"))
    return picture


SAMPLES = {
    "jpeg": (lambda: images.jpeg(2), "jpg"),
    "jpeg-exif": (images.jpeg_with_gps, "jpg"),
    "jpeg-no-jfif": (lambda: images.encode(images.noise(3), "JPEG", quality=80), "jpg"),
    "jpeg-progressive": (
        lambda: images.encode(images.noise(4), "JPEG", progressive=True, quality=85),
        "jpg",
    ),
    "png": (lambda: images.png(5), "png"),
    "png-rgba": (lambda: images.encode(rgba(6), "PNG"), "png"),
    "png-palette": (lambda: images.encode(images.noise(7).quantize(16), "PNG"), "png"),
    "webp-lossy": (lambda: images.encode(images.noise(8), "WEBP", quality=80), "webp"),
    "webp-lossless": (lambda: images.encode(images.noise(9), "WEBP", lossless=True), "webp"),
    "webp-lossless-alpha": (lambda: images.encode(rgba(10), "WEBP", lossless=True), "webp"),
    "webp-lossy-alpha": (lambda: images.encode(rgba(11), "WEBP", quality=70), "webp"),
    "tiff": (lambda: images.encode(images.noise(12), "TIFF"), "png"),
    "gif": (lambda: images.encode(images.noise(13).quantize(64), "GIF"), "png"),
}


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.mode, picture.size, picture.tobytes()


def xmp_of(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.info["xmp"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_packet_embedded_and_pixels_unchanged(name: str) -> None:
    make, extension = SAMPLES[name]
    original = make()
    out, ext = embed_xmp(original, PACKET)
    assert ext == extension
    assert xmp_of(out) == PACKET
    with Image.open(io.BytesIO(out)) as picture:
        assert picture.getxmp()["xmpmeta"]["RDF"]["Description"]["DataMining"] == (
            DataMining.PROHIBITED_AIML_TRAINING.value
        )
    assert decoded(out) == decoded(original)
    assert embed_xmp(original, PACKET) == (out, ext)  # deterministic


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_existing_xmp_is_replaced_not_duplicated(name: str) -> None:
    original = SAMPLES[name][0]()
    first, _ = embed_xmp(original, OTHER)
    second, _ = embed_xmp(first, PACKET)
    assert xmp_of(second) == PACKET
    assert second.count(b"<x:xmpmeta") == 1
    assert decoded(second) == decoded(original)
    # Rewriting with the same packet is a fixed point: the file does not grow.
    assert embed_xmp(second, PACKET)[0] == second


def test_jpeg_segments_keep_jfif_first_and_exif() -> None:
    out, _ = embed_xmp(images.jpeg_with_gps(), PACKET)
    assert out[2:4] == b"\xff\xe0"
    assert out[6:11] == b"JFIF\x00"
    app0_end = 4 + struct.unpack(">H", out[4:6])[0]
    assert out[app0_end : app0_end + 2] == b"\xff\xe1"
    assert out[app0_end + 4 :].startswith(b"http://ns.adobe.com/xap/1.0/\x00")
    with Image.open(io.BytesIO(out)) as picture:
        assert picture.getexif()[0x010F] == "PhoneMaker"  # other segments ride along


def test_png_itxt_sits_before_idat_uncompressed_with_valid_crc() -> None:
    out, _ = embed_xmp(images.png(1), PACKET)
    pos, kinds = 8, []
    while pos < len(out):
        length, kind = struct.unpack_from(">I4s", out, pos)
        payload = out[pos + 8 : pos + 8 + length]
        assert struct.unpack_from(">I", out, pos + 8 + length)[0] == zlib.crc32(kind + payload)
        if kind == b"iTXt":
            assert payload.startswith(b"XML:com.adobe.xmp\x00\x00\x00")
        kinds.append(kind)
        pos += 12 + length
    assert kinds.index(b"iTXt") < kinds.index(b"IDAT")


@pytest.mark.parametrize(
    ("name", "alpha"),
    [("webp-lossy", False), ("webp-lossless", False), ("webp-lossless-alpha", True)],
)
def test_simple_webp_becomes_extended_with_canvas_and_flags(name: str, alpha: bool) -> None:
    out, _ = embed_xmp(SAMPLES[name][0](), PACKET)
    assert out[12:16] == b"VP8X"
    flags = out[20]
    assert flags & 0x04  # XMP
    assert bool(flags & 0x10) is alpha
    width = int.from_bytes(out[24:27], "little") + 1
    height = int.from_bytes(out[27:30], "little") + 1
    assert (width, height) == (96, 64) if "alpha" in name else (320, 256)
    assert struct.unpack_from("<I", out, 4)[0] == len(out) - 8


def test_odd_sized_packet_is_padded_in_webp() -> None:
    odd = PACKET + (b" " if len(PACKET) % 2 == 0 else b"")
    out, _ = embed_xmp(SAMPLES["webp-lossy"][0](), odd)
    assert len(out) % 2 == 0
    assert xmp_of(out) == odd


@pytest.mark.parametrize("path", ["images/rocket.jpg", "images/coffee.png"])
def test_museum_images_from_shared_data(path: str) -> None:
    original = shared_path(f"data/{path}").read_bytes()
    out, ext = embed_xmp(original, PACKET)
    assert ext == path.rsplit(".", 1)[1]
    assert xmp_of(out) == PACKET
    assert decoded(out) == decoded(original)


def test_oversized_packet_for_jpeg_is_refused() -> None:
    with pytest.raises(ValueError, match="segment"):
        embed_xmp(images.jpeg(1), b" " * 70_000)


@pytest.mark.parametrize("name", ["jpeg", "png", "webp-lossy", "webp-lossless-alpha"])
def test_truncated_files_are_refused(name: str) -> None:
    original = SAMPLES[name][0]()
    for cut in (3, 12, 20, 40, len(original) // 2, len(original) - 3):
        with pytest.raises(ValueError, match=REFUSED):
            embed_xmp(original[:cut], PACKET)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"hello, world",
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x04\x00\x00\x00WEBP",
        b"RIFF\xff\xff\xff\xffWEBPVP8 ",
        b"\xff\xd8\xff\xda\x00\x02\xff\xd9",  # scan before any frame header
    ],
)
def test_garbage_is_refused_with_value_error(garbage: bytes) -> None:
    with pytest.raises(ValueError, match=REFUSED):
        embed_xmp(garbage, PACKET)


def test_packet_must_be_utf8() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        embed_xmp(images.png(1), b"\xff\xfe")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["jpeg", "png", "webp-lossy", "webp-lossless-alpha"]),
    position=st.floats(0, 1, exclude_max=True),
    byte=st.integers(0, 255),
)
def test_mutated_files_give_a_valid_image_or_value_error(
    name: str, position: float, byte: int
) -> None:
    original = SAMPLES_CACHE.setdefault(name, SAMPLES[name][0]())
    index = int(position * len(original))
    mutated = original[:index] + bytes([byte]) + original[index + 1 :]
    try:
        out, _ = embed_xmp(mutated, PACKET)
    except ValueError:
        return
    assert out.count(b"<x:xmpmeta") == 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=REFUSED):
        embed_xmp(data, PACKET)


def _tiff(mode: str, values: list[float]) -> bytes:
    image = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    return images.encode(image, "TIFF")


@pytest.mark.parametrize(
    ("mode", "values", "expected_mode", "expected"),
    [
        ("I", [0, 300, 65535], "I;16", [0, 300, 65535]),  # fits 16 bits: kept exactly
        ("I", [0, 250_000, 1_000_000], "I;16", [0, 16384, 65535]),  # wider: scaled
        ("I", [-10, 0, 10], "I;16", [0, 32768, 65535]),
        ("F", [0.0, 0.5, 1.0], "I;16", [0, 32768, 65535]),
        ("F", [2.0, 2.0], "I;16", [0, 0]),
        ("I;16B", [0, 4097, 65535], "I;16", [0, 4097, 65535]),
    ],
)
def test_wide_greyscale_tiffs_become_16_bit_pngs(mode, values, expected_mode, expected) -> None:
    out, ext = embed_xmp(_tiff(mode, values), PACKET)
    assert ext == "png"
    with Image.open(io.BytesIO(out)) as picture:
        assert picture.mode == expected_mode
        assert [picture.getpixel((x, 0)) for x in range(len(values))] == expected


@pytest.mark.parametrize(
    ("mode", "expected_mode"),
    [("LAB", "RGB"), ("CMYK", "RGB"), ("YCbCr", "RGB"), ("RGBX", "RGB"), ("PA", "RGBA")],
)
def test_other_modes_keep_alpha_only_where_the_source_had_it(mode, expected_mode) -> None:
    out, _ext = embed_xmp(images.encode(Image.new(mode, (4, 4)), "TIFF"), PACKET)
    with Image.open(io.BytesIO(out)) as picture:
        assert picture.mode == expected_mode
        assert xmp_of(out) == PACKET
