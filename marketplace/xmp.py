"""The XMP packet we write into every image we publish (artists' works and museum stock alike),
and the PLUS Data Mining vocabulary it speaks. Pure: Pillow and the standard library.

Reading what a file says about consent is `marketplace.artists.consent`'s job; both use the
vocabulary defined here.
"""

from __future__ import annotations

import enum
import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, PngImagePlugin

PLUS_NS = "http://ns.useplus.org/ldf/xmp/1.0/"
PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"

# Our four formats, by Pillow's name, and their MIME types.
MIME_FOR_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
}


class DataMining(enum.StrEnum):
    """The PLUS Data Mining vocabulary (IPTC Photo Metadata 2023.1 onwards), as full URIs."""

    UNSPECIFIED = "http://ns.useplus.org/ldf/vocab/DMI-UNSPECIFIED"
    ALLOWED = "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"
    PROHIBITED_AIML_TRAINING = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
    PROHIBITED_GENAIML_TRAINING = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-GENAIMLTRAINING"
    PROHIBITED_EXCEPT_SEARCH_ENGINE_INDEXING = (
        "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    )
    PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"
    PROHIBITED_SEE_CONSTRAINT = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-SEECONSTRAINT"
    PROHIBITED_SEE_EMBEDDED_RIGHTS_EXPR = (
        "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR"
    )
    PROHIBITED_SEE_LINKED_RIGHTS_EXPR = (
        "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-SEELINKEDRIGHTSEXPR"
    )

    @property
    def code(self) -> str:
        """The vocabulary code, e.g. DMI-PROHIBITED-AIMLTRAINING."""
        return self.value.removeprefix(PLUS_VOCAB)


def xmp_packet(data_mining: DataMining, terms_url: str, rights_text: str | None = None) -> bytes:
    """A complete UTF-8 XMP packet: plus:DataMining, xmpRights:WebStatement and dc:rights.

    For PROHIBITED-SEELINKEDRIGHTSEXPR the terms URL is also written as the IPTC Linked
    Encoded Rights Expression, so the "see" in that value leads somewhere.
    """
    value = DataMining(data_mining)
    terms = escape(_xml_safe(terms_url))
    properties = [
        f"   <plus:DataMining>{value.value}</plus:DataMining>",
        f"   <xmpRights:WebStatement>{terms}</xmpRights:WebStatement>",
    ]
    if rights_text is not None:
        properties.append(
            '   <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(_xml_safe(rights_text))}</rdf:li></rdf:Alt></dc:rights>"
        )
    if value is DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR:
        properties.append(
            '   <Iptc4xmpExt:LinkedEncRightsExpr><rdf:Bag><rdf:li rdf:parseType="Resource">'
            f"<Iptc4xmpExt:LinkedRightsExpr>{terms}</Iptc4xmpExt:LinkedRightsExpr>"
            "<Iptc4xmpExt:RightsExprEncType>text/html</Iptc4xmpExt:RightsExprEncType>"
            "</rdf:li></rdf:Bag></Iptc4xmpExt:LinkedEncRightsExpr>"
        )
    body = "\n".join(properties)
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:plus="{PLUS_NS}"\n'
        '    xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}">\n'
        f"{body}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def encode_with_xmp(image: Image.Image, fmt: str, xmp: bytes, **save_kwargs: Any) -> bytes:
    """`image` saved as JPEG, PNG, WEBP or TIFF with `xmp` where XMP readers look, and no EXIF.

    JPEG: an APP1 "http://ns.adobe.com/xap/1.0/" segment; PNG: an uncompressed iTXt chunk
    "XML:com.adobe.xmp" before the image data; WebP: the "XMP " chunk; TIFF: tag 700. Nothing
    of the source file's metadata is carried over but its ICC profile, transparency and DPI.
    Raises ValueError for another format, for save options that would write metadata, and
    (from Pillow) for an XMP packet too long for one JPEG segment (about 64 KB).
    """
    pillow_format = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt.upper(), fmt.upper())
    if pillow_format not in MIME_FOR_FORMAT:
        raise ValueError(f"cannot embed XMP in {fmt!r}: only JPEG, PNG, WEBP and TIFF")
    owned = {"exif", "xmp", "pnginfo", "tiffinfo"} & save_kwargs.keys()
    if owned:
        raise ValueError(f"encode_with_xmp writes the metadata itself; drop {sorted(owned)}")
    clean = image.copy()  # a plain Image: no TIFF tags or JPEG segments of the source ride along
    clean.info = {
        key: image.info[key] for key in ("icc_profile", "transparency", "dpi") if key in image.info
    }
    if pillow_format == "JPEG" and clean.mode not in ("RGB", "L", "CMYK"):
        clean = clean.convert("RGB")  # JPEG has no alpha or palette
    out = io.BytesIO()
    if pillow_format == "PNG":
        text_chunks = PngImagePlugin.PngInfo()
        text_chunks.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"), zip=False)
        clean.save(out, "PNG", pnginfo=text_chunks, **save_kwargs)
    elif pillow_format == "TIFF":
        clean.save(out, "TIFF", tiffinfo={700: xmp}, **save_kwargs)
    else:
        clean.save(out, pillow_format, xmp=xmp, exif=b"", **save_kwargs)
    return out.getvalue()


DERIVATIVE_FORMAT = "WEBP"
DERIVATIVE_QUALITY = 82


def encode_derivatives(pictures: Mapping[str, Image.Image], xmp: bytes) -> dict[str, bytes]:
    """Each derivative (thumbnail, preview) as WebP carrying `xmp`: what we publish."""
    return {
        name: encode_with_xmp(picture, DERIVATIVE_FORMAT, xmp, quality=DERIVATIVE_QUALITY)
        for name, picture in pictures.items()
    }


JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
# The JPEG segment length field counts itself (2) and the namespace header.
_JPEG_MAX_XMP = 0xFFFF - 2 - len(JPEG_XMP_HEADER)
# VP8X flag bits (WebP container specification, "Extended File Format").
_VP8X_ICC, _VP8X_ALPHA, _VP8X_EXIF, _VP8X_XMP, _VP8X_ANIMATION = 0x20, 0x10, 0x08, 0x04, 0x02


def embed_xmp(data: bytes, packet: bytes) -> tuple[bytes, str]:
    """`data` carrying `packet` as its only XMP, and the file extension ("jpg", "png", "webp").

    JPEG, PNG and WebP are spliced at the container level, so every pixel byte is the
    original's: JPEG gets an APP1 XMP segment after SOI (after a JFIF APP0), PNG an
    uncompressed iTXt chunk "XML:com.adobe.xmp" before the first IDAT, WebP an "XMP " chunk
    (a simple VP8/VP8L file becomes the extended format, its VP8X canvas read from the
    bitstream). Any XMP already there is removed first, so the result never carries two.
    Any other format Pillow reads (TIFF, GIF, BMP, ...) is decoded and re-encoded losslessly
    as PNG through `encode_with_xmp` (the only case that re-encodes; modes PNG cannot hold
    become the nearest it can, see `_png_writable`). Deterministic: the same
    input gives the same bytes. Raises ValueError for truncated or malformed input.
    """
    try:
        packet.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("the XMP packet is not UTF-8") from exc
    if data.startswith(b"\xff\xd8"):
        return _jpeg_with_xmp(data, packet), "jpg"
    if data.startswith(PNG_SIGNATURE):
        return _png_with_xmp(data, packet), "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_with_xmp(data, packet), "webp"
    return _reencoded_png_with_xmp(data, packet), "png"


def _jpeg_with_xmp(data: bytes, packet: bytes) -> bytes:
    """Segments up to SOS are walked (T.81 B.1.1); the entropy-coded rest is copied as is."""
    if len(packet) > _JPEG_MAX_XMP:
        raise ValueError(f"XMP packet of {len(packet)} bytes is over one JPEG segment's limit")
    pos, kept, insert_at, saw_frame = 2, [], 0, False
    while True:
        if pos >= len(data) or data[pos] != 0xFF:
            raise ValueError("not a JPEG: no marker where one should start")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data):
            raise ValueError("truncated JPEG: ends inside its headers")
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x00) or 0xD0 <= marker <= 0xD7 or marker == 0xD9:
            raise ValueError(f"malformed JPEG: marker {marker:02X} before the image data")
        if marker == 0x01:  # TEM: no length
            kept.append(data[pos - 2 : pos])
            continue
        if pos + 2 > len(data):
            raise ValueError("truncated JPEG: ends inside a segment header")
        (length,) = struct.unpack_from(">H", data, pos)
        end = pos + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG: a segment runs past the end of the file")
        segment = b"\xff" + bytes([marker]) + data[pos:end]
        body = data[pos + 2 : end]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            saw_frame = True
        if marker == 0xDA:  # SOS: the scan data and everything after it stays as it is
            if not saw_frame:
                raise ValueError("malformed JPEG: image data before any frame header")
            if data.rfind(b"\xff\xd9", end) < 0:
                raise ValueError("truncated JPEG: no end-of-image marker")
            head = b"".join(kept[:insert_at])
            tail = b"".join(kept[insert_at:])
            xmp = struct.pack(">H", 2 + len(JPEG_XMP_HEADER) + len(packet))
            xmp_segment = b"\xff\xe1" + xmp + JPEG_XMP_HEADER + packet
            rest = memoryview(data)[end:]  # one copy of the scan data, not one per "+"
            return b"".join((b"\xff\xd8", head, xmp_segment, tail, segment, rest))
        pos = end
        is_xmp = marker == 0xE1 and (
            body.startswith(JPEG_XMP_HEADER) or body.startswith(JPEG_EXTENDED_XMP_HEADER)
        )
        if is_xmp:
            continue
        kept.append(segment)
        if len(kept) == 1 and marker == 0xE0 and body.startswith((b"JFIF\x00", b"JFXX\x00")):
            insert_at = 1  # JFIF wants its APP0 first


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(type, payload, whole chunk) for each chunk, CRCs checked, up to and including IEND."""
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ValueError("truncated PNG: no IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise ValueError("truncated PNG: a chunk runs past the end of the file")
        payload = data[pos + 8 : end - 4]
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(kind + payload) != crc:
            raise ValueError(f"corrupt PNG: bad CRC on a {kind!r} chunk")
        yield kind, payload, data[pos:end]
        if kind == b"IEND":
            return
        pos = end


def _png_with_xmp(data: bytes, packet: bytes) -> bytes:
    """Chunk order per PNG (third edition) 5.6: iTXt anywhere before IEND; we put it before
    IDAT so streaming readers see it first. Bytes after IEND are dropped."""
    out, inserted, first = [PNG_SIGNATURE], False, True
    for kind, payload, chunk in _png_chunks(data):
        if first and kind != b"IHDR":
            raise ValueError("malformed PNG: the first chunk is not IHDR")
        first = False
        if kind in (b"iTXt", b"tEXt", b"zTXt") and payload.split(b"\x00", 1)[0] == PNG_XMP_KEYWORD:
            continue
        if kind == b"IDAT" and not inserted:
            out.append(_png_chunk(b"iTXt", PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet))
            inserted = True
        out.append(chunk)
    if not inserted:
        raise ValueError("malformed PNG: no IDAT chunk")
    return b"".join(out)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", crc)


def _webp_with_xmp(data: bytes, packet: bytes) -> bytes:
    """RIFF chunks per the WebP container specification; XMP is the last chunk."""
    if len(data) < 12:
        raise ValueError("truncated WebP")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size < 4 or riff_size + 8 > len(data):
        raise ValueError("truncated WebP: shorter than its RIFF header says")
    chunks: list[tuple[bytes, bytes]] = []
    pos, end = 12, 8 + riff_size
    while pos < end:
        if pos + 8 > end:
            raise ValueError("truncated WebP: a chunk header runs past the RIFF size")
        kind, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > end:
            raise ValueError("truncated WebP: a chunk runs past the RIFF size")
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    if not chunks:
        raise ValueError("malformed WebP: no chunks")
    first_kind, first_payload = chunks[0]
    if first_kind in (b"VP8 ", b"VP8L"):
        if len(chunks) > 1 and any(kind in (b"VP8 ", b"VP8L") for kind, _ in chunks[1:]):
            raise ValueError("malformed WebP: more than one image chunk in a simple file")
        width, height, alpha = _webp_bitstream_size(first_kind, first_payload)
        flags = _VP8X_ALPHA if alpha else 0
        header = struct.pack("<B3x", flags) + _u24(width - 1) + _u24(height - 1)
        chunks.insert(0, (b"VP8X", header))
    elif first_kind == b"VP8X":
        if len(first_payload) != 10:
            raise ValueError("malformed WebP: VP8X chunk of the wrong size")
        if not any(kind in (b"VP8 ", b"VP8L", b"ANMF") for kind, _ in chunks[1:]):
            raise ValueError("malformed WebP: no image data")
        for kind, payload in chunks[1:]:
            if kind in (b"VP8 ", b"VP8L"):
                _webp_bitstream_size(kind, payload)
    else:
        raise ValueError(f"malformed WebP: first chunk is {first_kind!r}")
    vp8x = chunks[0][1]
    chunks[0] = (b"VP8X", bytes([vp8x[0] | _VP8X_XMP]) + vp8x[1:])
    chunks = [(kind, payload) for kind, payload in chunks if kind != b"XMP "]
    chunks.append((b"XMP ", packet))
    body = b"".join(
        struct.pack("<4sI", kind, len(payload)) + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _webp_bitstream_size(kind: bytes, payload: bytes) -> tuple[int, int, bool]:
    """(width, height, has alpha) from a VP8 key frame header (RFC 6386 9.1) or a VP8L
    header (WebP lossless bitstream specification, section 3)."""
    if kind == b"VP8 ":
        if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a" or payload[0] & 1:
            raise ValueError("malformed WebP: VP8 data is not a key frame")
        width, height = struct.unpack_from("<HH", payload, 6)
        width, height, alpha = width & 0x3FFF, height & 0x3FFF, False
    else:
        if len(payload) < 5 or payload[0] != 0x2F:
            raise ValueError("malformed WebP: VP8L data has no signature")
        (bits,) = struct.unpack_from("<I", payload, 1)
        if bits >> 29:
            raise ValueError("malformed WebP: unknown VP8L version")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        alpha = bool((bits >> 28) & 1)
    if not width or not height:
        raise ValueError("malformed WebP: zero-sized image")
    return width, height, alpha


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "little")


_PNG_MODES = frozenset(("1", "L", "LA", "P", "RGB", "RGBA", "I;16"))
_ALPHA_MODES = frozenset(("LA", "La", "PA", "RGBA", "RGBa"))


def _png_writable(image: Image.Image) -> Image.Image:
    """The image in a mode PNG can hold, keeping what it can: 16-bit and wider greyscale
    (32-bit integer, float) as 16-bit, scaled only when the values do not fit; alpha only
    where the source had it (LAB's "A" is a colour axis, not alpha); the rest as RGB."""
    if image.mode in _PNG_MODES:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        wide = image if image.mode in ("I", "F") else image.convert("I")
        extrema = wide.getextrema()  # one band: (low, high)
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        if wide.mode == "I" and low >= 0 and high <= 0xFFFF:
            return wide.convert("I;16")
        scale = 0xFFFF / (high - low) if high > low else 0.0
        return wide.point(lambda v: (v - low) * scale + 0.5).convert("I").convert("I;16")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _reencoded_png_with_xmp(data: bytes, packet: bytes) -> bytes:
    """The one lossy-container path: decode whatever Pillow reads, keep every pixel (PNG is
    lossless), drop the source's own metadata but ICC profile, transparency and DPI."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                image: Image.Image = opened
                return encode_with_xmp(_png_writable(image), "PNG", packet)
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc
    except (Image.DecompressionBombWarning, struct.error, IndexError, KeyError) as exc:
        raise ValueError(f"not a readable image: {exc!r}") from exc


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all (escaping cannot save them)."""
    return _XML_INVALID.sub("", text)
