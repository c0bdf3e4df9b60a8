"""Consent signals in image files: XMP plus:DataMining and C2PA/CAWG training-and-mining.

The C2PA files are signed here, offline, with a throwaway certificate chain made per module.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from defusedxml.ElementTree import fromstring as parse_xml_safely
from PIL import Image

from marketplace.artists.consent import (
    ConsentSignals,
    DataMining,
    Problem,
    _entries,
    _normalise_data_mining,
    _parse_xmp,
    _training_mining_in_store,
    data_mining_for_terms,
    encode_with_xmp,
    read_consent_signals,
    xmp_packet,
)

VOCAB = "http://ns.useplus.org/ldf/vocab/"
PLUS = "http://ns.useplus.org/ldf/xmp/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff"}
TERMS_URL = "https://market.test/works/7/terms?v=2&lang=en"


def codes(problems: list[Problem]) -> list[str]:
    """What was found, as stable codes: the tests of reading assert these, not the wording."""
    return [problem.code for problem in problems]


# The published PLUS Data Mining vocabulary (IPTC Photo Metadata 2023.1 onwards).
OFFICIAL_CODES = {
    "DMI-UNSPECIFIED",
    "DMI-ALLOWED",
    "DMI-PROHIBITED-AIMLTRAINING",
    "DMI-PROHIBITED-GENAIMLTRAINING",
    "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING",
    "DMI-PROHIBITED",
    "DMI-PROHIBITED-SEECONSTRAINT",
    "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR",
    "DMI-PROHIBITED-SEELINKEDRIGHTSEXPR",
}
ALLOWING_CODES = {"DMI-UNSPECIFIED", "DMI-ALLOWED"}


def picture(mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (24, 16), "teal" if mode == "RGB" else None)


def hand_written_xmp(description: str, *, namespaces: str = "") -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">'
        f'<rdf:Description rdf:about="" xmlns:plus="{PLUS}" {namespaces}{description}'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def jpeg_with_xmp(xmp: bytes) -> bytes:
    return encode_with_xmp(picture(), "JPEG", xmp)


# --- The vocabulary and the verdict ---------------------------------------------------------


def test_the_enum_is_the_complete_official_vocabulary_as_full_uris() -> None:
    assert {value.code for value in DataMining} == OFFICIAL_CODES
    assert all(value == VOCAB + value.code for value in DataMining)


@pytest.mark.parametrize("code", sorted(OFFICIAL_CODES))
def test_every_value_but_unspecified_and_allowed_prohibits_training(code: str) -> None:
    signals = ConsentSignals(xmp_data_mining=VOCAB + code)
    assert signals.prohibits_training is (code not in ALLOWING_CODES)
    assert signals.reasons[0].startswith("The file's IPTC/XMP metadata says: data mining ")


def test_an_empty_file_says_nothing() -> None:
    signals = ConsentSignals()
    assert not signals.prohibits_training
    assert signals.reasons == []


# --- Writing and reading back ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "value",
    [
        DataMining.ALLOWED,
        DataMining.PROHIBITED_AIML_TRAINING,
        DataMining.PROHIBITED_GENAIML_TRAINING,
        DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR,
        DataMining.UNSPECIFIED,
    ],
)
def test_what_we_write_reads_back_in_every_format(fmt: str, value: DataMining) -> None:
    data = encode_with_xmp(picture(), fmt, xmp_packet(value, TERMS_URL, "© 2026 Ada"))

    signals = read_consent_signals(data, FORMATS[fmt])

    assert signals.xmp_data_mining == value.value
    assert signals.problems == []
    assert signals.prohibits_training is (value.code not in ALLOWING_CODES)
    assert Image.open(io.BytesIO(data)).format == fmt


def test_the_reason_is_a_sentence_an_artist_can_read() -> None:
    data = jpeg_with_xmp(xmp_packet(DataMining.PROHIBITED_AIML_TRAINING, TERMS_URL))
    assert read_consent_signals(data, "image/jpeg").reasons == [
        "The file's IPTC/XMP metadata says: data mining prohibited for AI/ML training."
    ]


def test_the_packet_sits_where_xmp_readers_look_for_it() -> None:
    xmp = xmp_packet(DataMining.PROHIBITED, TERMS_URL)
    jpeg = encode_with_xmp(picture(), "JPEG", xmp)
    png = encode_with_xmp(picture(), "PNG", xmp)
    webp = encode_with_xmp(picture(), "WEBP", xmp)
    tiff = encode_with_xmp(picture(), "TIFF", xmp)

    assert (
        b"\xff\xe1" + struct.pack(">H", len(xmp) + 31) + b"http://ns.adobe.com/xap/1.0/\x00" in jpeg
    )
    itxt = png.index(b"iTXtXML:com.adobe.xmp\x00\x00\x00\x00\x00")  # uncompressed, no language
    assert itxt < png.index(b"IDAT")
    assert webp[12:16] == b"VP8X"
    assert b"XMP " + struct.pack("<I", len(xmp)) in webp
    with Image.open(io.BytesIO(tiff)) as image:
        assert image.tag_v2[700] == xmp  # type: ignore[attr-defined]


def test_the_packet_is_valid_xml_with_every_value_escaped() -> None:
    rights = 'Ada & "Bob" <studio>\x07 ©'
    url = "https://market.test/t?a=1&b=<2>"

    root: Element = parse_xml_safely(
        xmp_packet(DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR, url, rights)
    )

    def text(path: str) -> str | None:
        return root.findtext(path, namespaces={"plus": PLUS, "rdf": RDF, **namespaces})

    namespaces = {
        "dc": "http://purl.org/dc/elements/1.1/",
        "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
        "iptcExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    }
    description = ".//rdf:Description/"
    assert text(description + "plus:DataMining") == DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR
    assert text(description + "xmpRights:WebStatement") == url
    # The BEL cannot be in XML 1.0 at all, escaped or not: it is dropped.
    assert text(description + "dc:rights/rdf:Alt/rdf:li") == 'Ada & "Bob" <studio> ©'
    assert text(description + "iptcExt:LinkedEncRightsExpr//iptcExt:LinkedRightsExpr") == url


def test_no_rights_text_means_no_dc_rights() -> None:
    assert b"dc:rights" not in xmp_packet(DataMining.ALLOWED, TERMS_URL)
    assert b"LinkedEncRightsExpr" not in xmp_packet(DataMining.ALLOWED, TERMS_URL)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encoding_drops_the_source_exif_and_gps(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}  # GPS IFD
    source = io.BytesIO()
    picture().save(source, "JPEG", exif=exif)
    with Image.open(io.BytesIO(source.getvalue())) as original:
        assert "exif" in original.info
        data = encode_with_xmp(original, fmt, xmp_packet(DataMining.ALLOWED, TERMS_URL))

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        tags = image.getexif()
        assert "exif" not in image.info
        assert 0x010F not in tags
        assert 0x8825 not in tags
        assert 0x8769 not in tags
    assert b"PhoneMaker" not in data
    assert b"Exif\x00\x00" not in data


@pytest.mark.parametrize("fmt", FORMATS)
def test_encoding_leaves_a_tiff_source_s_own_tags_behind(fmt: str) -> None:
    source = io.BytesIO()
    old_tags = {271: "PhoneMaker", 33723: b"IPTC-shot-in-Paris", 700: b"<x:xmpmeta>old</x:xmpmeta>"}
    picture().save(source, "TIFF", tiffinfo=old_tags)
    with Image.open(io.BytesIO(source.getvalue())) as original:
        data = encode_with_xmp(original, fmt, xmp_packet(DataMining.ALLOWED, TERMS_URL))

    assert b"PhoneMaker" not in data
    assert b"IPTC-shot-in-Paris" not in data
    assert b">old<" not in data
    assert read_consent_signals(data, FORMATS[fmt]).xmp_data_mining == DataMining.ALLOWED


def test_jpeg_gets_rgb_from_an_image_with_alpha() -> None:
    data = encode_with_xmp(picture("RGBA"), "jpg", xmp_packet(DataMining.ALLOWED, TERMS_URL))
    assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_encoding_refuses_other_formats_and_metadata_options() -> None:
    xmp = xmp_packet(DataMining.ALLOWED, TERMS_URL)
    with pytest.raises(ValueError, match="GIF"):
        encode_with_xmp(picture(), "GIF", xmp)
    with pytest.raises(ValueError, match="exif"):
        encode_with_xmp(picture(), "JPEG", xmp, exif=b"Exif\x00\x00")


# --- The forms other software writes --------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        # attribute form, the full URI (what exiftool writes)
        (
            f'plus:DataMining="{VOCAB}DMI-PROHIBITED-GENAIMLTRAINING"/>',
            DataMining.PROHIBITED_GENAIML_TRAINING,
        ),
        # element form with the URI as text
        (
            f">\n <plus:DataMining>\n  {VOCAB}DMI-ALLOWED\n </plus:DataMining></rdf:Description>",
            DataMining.ALLOWED,
        ),
        # element form with rdf:resource
        (
            f'><plus:DataMining rdf:resource="{VOCAB}DMI-PROHIBITED"/></rdf:Description>',
            DataMining.PROHIBITED,
        ),
        # a qualified value
        (
            '><plus:DataMining rdf:parseType="Resource"><rdf:value>'
            f"{VOCAB}DMI-PROHIBITED-SEECONSTRAINT</rdf:value></plus:DataMining></rdf:Description>",
            DataMining.PROHIBITED_SEE_CONSTRAINT,
        ),
        # the bare code, in lower case
        ('plus:DataMining="dmi-prohibited-aimltraining"/>', DataMining.PROHIBITED_AIML_TRAINING),
        # the official label, as some tools store it
        (
            'plus:DataMining="Prohibited except for search engine indexing"/>',
            DataMining.PROHIBITED_EXCEPT_SEARCH_ENGINE_INDEXING,
        ),
    ],
)
def test_hand_written_forms_are_read_and_normalised(description: str, expected: DataMining) -> None:
    signals = read_consent_signals(jpeg_with_xmp(hand_written_xmp(description)), "image/jpeg")

    assert signals.xmp_data_mining == expected.value
    assert signals.problems == []


def test_another_prefix_for_the_plus_namespace_still_counts() -> None:
    xmp = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}"><rdf:Description '
        f'xmlns:licence="{PLUS}" licence:DataMining="{VOCAB}DMI-PROHIBITED"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    assert read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg").prohibits_training


def test_the_same_name_in_another_namespace_does_not_count() -> None:
    xmp = hand_written_xmp(
        f'other:DataMining="{VOCAB}DMI-PROHIBITED"/>', namespaces='xmlns:other="urn:other" '
    )
    signals = read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg")
    assert signals == ConsentSignals()


def test_an_unknown_prohibited_code_still_prohibits_and_is_reported() -> None:
    xmp = hand_written_xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED-EVERYTHINGNEW"/>')
    signals = read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg")

    assert signals.xmp_data_mining == VOCAB + "DMI-PROHIBITED-EVERYTHINGNEW"
    assert signals.prohibits_training
    assert codes(signals.problems) == ["xmp_unknown_code"]


def test_free_text_is_recorded_but_not_interpreted() -> None:
    xmp = hand_written_xmp('plus:DataMining="ask me first"/>')
    signals = read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg")

    assert signals.xmp_data_mining == "ask me first"
    assert not signals.prohibits_training
    assert codes(signals.problems) == ["xmp_free_text"]


def test_conflicting_values_resolve_to_the_prohibition() -> None:
    xmp = hand_written_xmp(
        f'plus:DataMining="{VOCAB}DMI-ALLOWED"/><rdf:Description xmlns:plus="{PLUS}">'
        f"<plus:DataMining>{VOCAB}DMI-PROHIBITED</plus:DataMining></rdf:Description>"
    )
    signals = read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg")

    assert signals.xmp_data_mining == DataMining.PROHIBITED
    assert codes(signals.problems) == ["xmp_conflicting_values"]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_xmp_after_the_png_image_data_is_found_by_scanning() -> None:
    plain = io.BytesIO()
    picture().save(plain, "PNG")
    data = plain.getvalue()
    xmp = hand_written_xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED"/>')
    itxt = png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    iend = data.rindex(b"IEND") - 4
    late = data[:iend] + itxt + data[iend:]

    signals = read_consent_signals(late, "image/png")

    assert signals.xmp_data_mining == DataMining.PROHIBITED
    assert signals.problems == []


def test_xmp_without_a_data_mining_property_says_nothing() -> None:
    xmp = hand_written_xmp('xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/>')
    assert read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg") == ConsentSignals()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_without_metadata_gives_empty_signals_and_no_problems(fmt: str) -> None:
    out = io.BytesIO()
    Image.effect_noise((40, 30), 60).convert("RGB").save(out, fmt)
    assert read_consent_signals(out.getvalue(), FORMATS[fmt]) == ConsentSignals()


# --- Hostile and damaged files --------------------------------------------------------------


def with_dtd(dtd: str, xmp: bytes) -> bytes:
    """`xmp` with a document type declaration after its opening processing instruction."""
    head, rest = xmp.split(b"?>", 1)
    return head + b"?>" + dtd.encode() + rest


LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
BILLION_LAUGHS = with_dtd(
    f'<!DOCTYPE x:xmpmeta [<!ENTITY lol0 "lol">{LAUGHS}]>',
    hand_written_xmp('plus:DataMining="&lol9;"/>'),
)
EXTERNAL_ENTITY = with_dtd(
    '<!DOCTYPE x:xmpmeta [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
    hand_written_xmp(f'plus:DataMining="{VOCAB}DMI-ALLOWED&secret;"/>'),
)


def read_within(seconds: float, data: bytes, mime: str) -> ConsentSignals:
    """Read in a daemon thread so that a hang fails the test instead of the run."""
    result: list[ConsentSignals] = []
    worker = threading.Thread(
        target=lambda: result.append(read_consent_signals(data, mime)), daemon=True
    )
    worker.start()
    worker.join(seconds)
    assert result, f"reading did not finish within {seconds} s"
    return result[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["bomb", "xxe"])
def test_an_xml_attack_is_reported_not_processed(fmt: str, hostile: bytes) -> None:
    data = encode_with_xmp(picture(), fmt, hostile)

    signals = read_within(2.0, data, FORMATS[fmt])

    assert signals.xmp_data_mining is None
    assert codes(signals.problems) == ["xmp_dtd_refused"]
    assert "root:" not in json.dumps(signals.to_json())


def test_oversized_xmp_is_ignored() -> None:
    padding = "x" * (1 << 20)
    xmp = hand_written_xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED" plus:Pad="{padding}"/>')
    data = encode_with_xmp(picture(), "PNG", xmp)

    signals = read_within(2.0, data, "image/png")

    assert signals.xmp_data_mining is None
    assert codes(signals.problems) == ["xmp_too_large"]


def test_deeply_nested_xmp_is_harmless() -> None:
    depth = 20_000
    xmp = hand_written_xmp(">" + "<rdf:Bag>" * depth + "</rdf:Bag>" * depth + "</rdf:Description>")
    signals = read_within(2.0, encode_with_xmp(picture(), "PNG", xmp), "image/png")
    assert signals == ConsentSignals()


def test_malformed_xmp_is_reported() -> None:
    xmp = hand_written_xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED">')  # never closed
    signals = read_consent_signals(jpeg_with_xmp(xmp), "image/jpeg")

    assert signals.xmp_data_mining is None
    assert codes(signals.problems) == ["xmp_malformed"]


@pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow warns about what it skips
@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_and_corrupt_files_never_raise(fmt: str) -> None:
    good = encode_with_xmp(
        Image.effect_noise((48, 48), 80).convert("RGB"),
        fmt,
        xmp_packet(DataMining.PROHIBITED, TERMS_URL),
    )
    rng = random.Random(fmt)
    damaged = [good[:cut] for cut in (0, 1, 8, 30, len(good) // 3, len(good) // 2, len(good) - 3)]
    for _ in range(25):
        flipped = bytearray(good)
        for _ in range(8):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        damaged.append(bytes(flipped))
    damaged.append(bytes(rng.randrange(256) for _ in range(2048)))

    for data in damaged:
        assert isinstance(read_consent_signals(data, FORMATS[fmt]), ConsentSignals)


def test_a_file_that_is_not_what_its_type_says_is_scanned_directly() -> None:
    data = encode_with_xmp(picture(), "PNG", xmp_packet(DataMining.PROHIBITED, TERMS_URL))

    signals = read_consent_signals(data, "image/jpeg")

    assert signals.xmp_data_mining == DataMining.PROHIBITED
    assert codes(signals.problems) == ["not_openable"]


def test_other_types_are_only_scanned_for_xmp() -> None:
    svg = b"<svg>" + xmp_packet(DataMining.PROHIBITED, TERMS_URL) + b"</svg>"
    assert read_consent_signals(svg, "image/svg+xml").xmp_data_mining == DataMining.PROHIBITED


# --- C2PA / CAWG -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningChain:
    certificates_pem: bytes  # leaf first, then its issuer
    leaf_key_pem: bytes


@pytest.fixture(scope="module")
def signing_chain() -> SigningChain:
    """A throwaway root CA and ES256 leaf. c2pa-rs refuses a leaf without each of: X.509 v3, a
    digitalSignature key usage (and no keyCertSign), an allowed extended key usage
    (emailProtection here; documentSigning also works), an authority key identifier, and
    CA:false. The CA needs a subject key identifier and keyCertSign."""
    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marketplace Test Root")])
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Marketplace Test Signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Marketplace Tests"),
        ]
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(**{**usage, "key_cert_sign": True, "crl_sign": True}), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{**usage, "digital_signature": True}), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    return SigningChain(
        certificates_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root)),
        leaf_key_pem=leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def sign(
    chain: SigningChain,
    assertions: list[dict[str, Any]],
    *,
    source: bytes | None = None,
    mime: str = "image/jpeg",
    remote_url: str | None = None,
) -> bytes:
    """`source` (a small image by default) with a signed manifest holding `assertions`.

    No timestamp authority and no thumbnail: signing stays offline and fast."""
    if source is None:
        out = io.BytesIO()
        picture().save(out, {"image/jpeg": "JPEG", "image/png": "PNG"}[mime])
        source = out.getvalue()
    manifest = {
        "claim_generator_info": [{"name": "marketplace-tests", "version": "1"}],
        "assertions": assertions,
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, chain.certificates_pem, chain.leaf_key_pem, None
    )
    signed = io.BytesIO()
    with (
        c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}}) as context,
        c2pa.Builder(manifest, context=context) as builder,
        c2pa.Signer.from_info(info) as signer,
    ):
        builder.set_intent(
            c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CREATION
        )
        if remote_url is not None:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        builder.sign(signer, mime, io.BytesIO(source), signed)
    return signed.getvalue()


def training_mining(label: str, prefix: str, **uses: dict[str, str]) -> dict[str, Any]:
    return {
        "label": label,
        "data": {"entries": {f"{prefix}.{use}": entry for use, entry in uses.items()}},
    }


def test_a_cawg_assertion_forbidding_training_is_read(signing_chain: SigningChain) -> None:
    data = sign(
        signing_chain,
        [
            training_mining(
                "cawg.training-mining",
                "cawg",
                ai_training={"use": "notAllowed"},
                ai_generative_training={"use": "notAllowed"},
                data_mining={"use": "allowed"},
            )
        ],
    )

    signals = read_consent_signals(data, "image/jpeg")

    assert signals.c2pa_label == "cawg.training-mining"
    assert signals.c2pa_uses == {
        "ai_training": "notAllowed",
        "ai_generative_training": "notAllowed",
        "data_mining": "allowed",
    }
    assert signals.problems == []
    assert signals.xmp_data_mining is None
    assert signals.prohibits_training
    assert signals.reasons == [
        "The file's Content Credentials (C2PA cawg.training-mining) say: training "
        "non-generative AI/ML models not allowed; training generative AI/ML models not "
        "allowed; data mining allowed."
    ]


def test_the_older_c2pa_assertion_is_read_too(signing_chain: SigningChain) -> None:
    data = sign(
        signing_chain,
        [
            training_mining(
                "c2pa.training-mining",
                "c2pa",
                ai_training={"use": "allowed"},
                ai_generative_training={
                    "use": "constrained",
                    "constraint_info": "https://artist.test/licence",
                },
                ai_inference={"use": "notAllowed"},
            )
        ],
    )

    signals = read_consent_signals(data, "image/jpeg")

    assert signals.c2pa_label == "c2pa.training-mining"
    assert signals.c2pa_uses == {
        "ai_training": "allowed",
        "ai_generative_training": "constrained",
        "ai_inference": "notAllowed",
    }
    assert signals.c2pa_constraints == {"ai_generative_training": "https://artist.test/licence"}
    assert signals.prohibits_training  # constrained counts as notAllowed
    assert "(https://artist.test/licence)" in signals.reasons[0]  # the condition is shown


def test_mining_and_inference_refusals_alone_do_not_prohibit_training(
    signing_chain: SigningChain,
) -> None:
    data = sign(
        signing_chain,
        [
            training_mining(
                "cawg.training-mining",
                "cawg",
                ai_training={"use": "allowed"},
                ai_generative_training={"use": "allowed"},
                data_mining={"use": "notAllowed"},
                ai_inference={"use": "notAllowed"},
            )
        ],
        mime="image/png",
    )

    signals = read_consent_signals(data, "image/png")

    assert signals.c2pa_uses["data_mining"] == "notAllowed"
    assert not signals.prohibits_training


def test_c2pa_and_xmp_in_one_file_are_both_read(signing_chain: SigningChain) -> None:
    source = jpeg_with_xmp(xmp_packet(DataMining.ALLOWED, TERMS_URL))
    data = sign(
        signing_chain,
        [training_mining("cawg.training-mining", "cawg", ai_training={"use": "notAllowed"})],
        source=source,
    )

    signals = read_consent_signals(data, "image/jpeg")

    assert signals.xmp_data_mining == DataMining.ALLOWED
    assert signals.c2pa_uses == {"ai_training": "notAllowed"}
    assert signals.prohibits_training
    assert len(signals.reasons) == 2
    assert json.loads(json.dumps(signals.to_json()))["prohibits_training"] is True


def test_a_manifest_without_the_assertion_says_nothing(signing_chain: SigningChain) -> None:
    assert read_consent_signals(sign(signing_chain, []), "image/jpeg") == ConsentSignals()


def test_a_remote_manifest_is_not_fetched(signing_chain: SigningChain) -> None:
    data = sign(signing_chain, [], remote_url="http://127.0.0.1:9/manifest.c2pa")

    signals = read_within(5.0, data, "image/jpeg")

    assert signals.c2pa_label is None
    assert codes(signals.problems) == ["c2pa_unreadable"]
    assert "remote manifests" in signals.problems[0].message  # the reader's reason is passed on


@pytest.mark.parametrize("shift", [0, 40, 80, 160, 320])
def test_a_damaged_manifest_is_a_problem_not_an_error(
    signing_chain: SigningChain, shift: int
) -> None:
    data = bytearray(
        sign(
            signing_chain,
            [training_mining("cawg.training-mining", "cawg", ai_training={"use": "notAllowed"})],
        )
    )
    start = data.index(b"cawg.training-mining") + shift
    data[start : start + 8] = bytes(byte ^ 0xFF for byte in data[start : start + 8])

    signals = read_consent_signals(bytes(data), "image/jpeg")

    assert codes(signals.problems)[0].startswith("c2pa_")  # reported as a C2PA problem
    assert signals.c2pa_uses in ({}, {"ai_training": "notAllowed"})


def test_a_manifest_store_whose_active_manifest_failed_to_load_is_flagged() -> None:
    problems: list[Problem] = []
    broken = {"active_manifest": "urn:c2pa:gone", "manifests": {}, "validation_state": "Invalid"}
    assert _training_mining_in_store(broken, problems) == (None, {}, {})
    assert codes(problems) == ["c2pa_active_manifest_missing"]


def test_a_file_changed_after_signing_keeps_its_preferences_with_a_warning(
    signing_chain: SigningChain,
) -> None:
    data = sign(
        signing_chain,
        [training_mining("cawg.training-mining", "cawg", ai_training={"use": "notAllowed"})],
        source=encode_with_xmp(
            Image.effect_noise((64, 64), 90).convert("RGB"),
            "JPEG",
            xmp_packet(DataMining.UNSPECIFIED, TERMS_URL),
        ),
    )
    pixels = data.rindex(b"\xff\xda") + 40  # inside the entropy-coded image data
    tampered = data[:pixels] + bytes([data[pixels] ^ 0x55]) + data[pixels + 1 :]

    signals = read_consent_signals(tampered, "image/jpeg")

    assert signals.c2pa_uses == {"ai_training": "notAllowed"}
    assert signals.prohibits_training
    assert codes(signals.problems) == ["c2pa_invalid"]


# The shape of c2pa-python's Reader.json(), for the cases no signer here produces.


def store(*assertions: dict[str, Any], validation_state: str = "Valid") -> dict[str, Any]:
    return {
        "active_manifest": "urn:c2pa:active",
        "manifests": {
            "urn:c2pa:active": {"assertions": list(assertions)},
            "urn:c2pa:older": {
                "assertions": [
                    training_mining("cawg.training-mining", "cawg", ai_training={"use": "allowed"})
                ]
            },
        },
        "validation_state": validation_state,
    }


def test_versioned_labels_and_top_level_entries_are_accepted() -> None:
    problems: list[Problem] = []
    label, uses, _ = _training_mining_in_store(
        store(
            {
                "label": "c2pa.training-mining.v2",
                "data": {"c2pa.ai_generative_training": {"use": "notAllowed"}},  # no "entries"
            }
        ),
        problems,
    )
    assert (label, uses, problems) == (
        "c2pa.training-mining.v2",
        {"ai_generative_training": "notAllowed"},
        [],
    )


def test_when_assertions_disagree_the_most_restrictive_use_wins() -> None:
    problems: list[Problem] = []
    label, uses, constraints = _training_mining_in_store(
        store(
            training_mining("c2pa.training-mining", "c2pa", ai_training={"use": "notAllowed"}),
            training_mining(
                "cawg.training-mining",
                "cawg",
                ai_training={"use": "constrained", "constraint_info": "ask first"},
                data_mining={"use": "constrained", "constraint_info": "research only"},
            ),
        ),
        problems,
    )
    assert label == "cawg.training-mining"
    assert uses == {"ai_training": "notAllowed", "data_mining": "constrained"}
    assert constraints == {"data_mining": "research only"}  # none for the stricter notAllowed


def test_unknown_uses_and_custom_keys_are_left_out() -> None:
    problems: list[Problem] = []
    entries = {
        "cawg.ai_training": {"use": "maybe"},
        "cawg.ai_inference": {"use": "allowed"},
        "com.example.ocr": {"use": "notAllowed"},
    }
    _, uses, _ = _training_mining_in_store(
        store({"label": "cawg.training-mining", "data": {"entries": entries}}), problems
    )
    assert uses == {"ai_inference": "allowed"}
    assert codes(problems) == ["c2pa_unknown_use"]


def test_only_the_active_manifest_counts() -> None:
    problems: list[Problem] = []
    assert _training_mining_in_store(store(), problems) == (None, {}, {})


def test_an_invalid_store_is_still_respected_and_flagged() -> None:
    problems: list[Problem] = []
    _, uses, _ = _training_mining_in_store(
        store(
            training_mining("cawg.training-mining", "cawg", ai_training={"use": "notAllowed"}),
            validation_state="Invalid",
        ),
        problems,
    )
    assert uses == {"ai_training": "notAllowed"}
    assert codes(problems) == ["c2pa_invalid"]


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"manifests": [], "active_manifest": "x"},
        {"manifests": {"x": None}, "active_manifest": "x"},
        {"manifests": {"x": {"assertions": "no"}}, "active_manifest": "x"},
        {"manifests": {"x": {"assertions": [None, {"label": 3}]}}, "active_manifest": "x"},
    ],
)
def test_a_store_of_the_wrong_shape_gives_nothing(broken: dict[str, Any]) -> None:
    assert _training_mining_in_store(broken, []) == (None, {}, {})


# --- What we write for each kind of terms ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "generative", "non_generative", "licensed_copy", "expected"),
    [
        ("donate", False, False, False, DataMining.ALLOWED),
        ("donate", True, True, True, DataMining.ALLOWED),
        ("not_available", True, True, True, DataMining.PROHIBITED_AIML_TRAINING),
        ("license", True, True, False, DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR),
        ("license", False, False, False, DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR),
        ("license", True, True, True, DataMining.ALLOWED),
        ("license", True, False, True, DataMining.ALLOWED),
        ("license", False, True, True, DataMining.PROHIBITED_GENAIML_TRAINING),
        ("license", False, False, True, DataMining.PROHIBITED_AIML_TRAINING),
    ],
)
def test_data_mining_follows_the_terms(
    kind: str, generative: bool, non_generative: bool, licensed_copy: bool, expected: DataMining
) -> None:
    assert (
        data_mining_for_terms(
            kind,
            generative_training=generative,
            non_generative_training=non_generative,
            licensed_copy=licensed_copy,
        )
        is expected
    )


def test_an_unknown_terms_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="rent"):
        data_mining_for_terms(
            "rent", generative_training=True, non_generative_training=True, licensed_copy=True
        )


# --- Wording: one test per message an artist reads ------------------------------------------


def _problems_of(call: Any) -> list[Problem]:
    problems: list[Problem] = []
    call(problems)
    return problems


WORDING = {
    "xmp_malformed": (
        lambda problems: _parse_xmp(b"<x:xmpmeta", problems),
        "The file's XMP metadata is not well-formed XML and was not read.",
    ),
    "xmp_dtd_refused": (
        lambda problems: _parse_xmp(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', problems),
        "The file's XMP metadata declares a DTD or entities, which XMP never needs (it is how "
        "XML bombs work); it was not read.",
    ),
    "xmp_unknown_code": (
        lambda problems: _normalise_data_mining("DMI-SOMETIMES", problems),
        "The file's XMP Data Mining value 'DMI-SOMETIMES' is not in the PLUS vocabulary we know.",
    ),
    "xmp_free_text": (
        lambda problems: _normalise_data_mining("ask me first", problems),
        "The file's XMP Data Mining value 'ask me first' is not a PLUS vocabulary value; it was "
        "recorded but not interpreted.",
    ),
    "c2pa_active_manifest_missing": (
        lambda problems: _training_mining_in_store(
            {"active_manifest": "urn:gone", "manifests": {}}, problems
        ),
        "The file's C2PA Content Credentials are damaged (their active manifest could not be "
        "loaded); any training preference they hold was not seen.",
    ),
    "c2pa_invalid": (
        lambda problems: _training_mining_in_store(
            store(
                training_mining("cawg.training-mining", "cawg", ai_training={"use": "allowed"}),
                validation_state="Invalid",
            ),
            problems,
        ),
        "The file's C2PA Content Credentials did not validate (for example, the file changed "
        "after signing); their training preferences were still respected.",
    ),
    "c2pa_invalid_without_preference": (
        lambda problems: _training_mining_in_store(store(validation_state="Invalid"), problems),
        "The file's C2PA Content Credentials did not validate, and no training preference "
        "could be read from them.",
    ),
    "c2pa_no_entries": (
        lambda problems: _entries("cawg.training-mining", "nothing", problems),
        "The file's cawg.training-mining assertion has no readable entries.",
    ),
    "c2pa_unknown_use": (
        lambda problems: _entries(
            "cawg.training-mining", {"entries": {"cawg.ai_training": {"use": "maybe"}}}, problems
        ),
        "The file's cawg.training-mining assertion gives cawg.ai_training an unknown use "
        "('maybe'); that entry was ignored.",
    ),
}


@pytest.mark.parametrize("code", sorted(WORDING))
def test_each_problem_reads_as_a_sentence_an_artist_can_follow(code: str) -> None:
    call, sentence = WORDING[code]
    (problem,) = _problems_of(call)
    assert (problem.code, problem.message) == (code, sentence)


def test_problems_are_stored_with_their_codes() -> None:
    signals = ConsentSignals(problems=[Problem("xmp_malformed", "The file's XMP ...")])
    assert signals.to_json()["problem_codes"] == ["xmp_malformed"]
    assert signals.to_json()["problems"] == ["The file's XMP ..."]
