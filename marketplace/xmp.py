"""The XMP packet we write into every image we publish (artists' works and museum stock alike),
and the PLUS Data Mining vocabulary it speaks. Pure: Pillow and the standard library.

Reading what a file says about consent is `marketplace.artists.consent`'s job; both use the
vocabulary defined here.
"""

from __future__ import annotations

import enum
import io
import re
from collections.abc import Mapping
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


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all (escaping cannot save them)."""
    return _XML_INVALID.sub("", text)
