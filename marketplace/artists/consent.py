"""Training consent embedded in image files: reading what a file says (writing what we say is
`marketplace.xmp`, shared with the catalog).

Two standards carry it. The IPTC Photo Metadata "Data Mining" property (XMP `plus:DataMining`,
values from the PLUS vocabulary), and the C2PA/CAWG training-and-data-mining assertion in a
signed manifest store (`cawg.training-mining`, formerly `c2pa.training-mining`). Reading never
raises for anything a file contains; it records problems instead. Writing embeds our own XMP
packet and no EXIF. Pure: Pillow, defusedxml, c2pa-python and the standard library.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import c2pa
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely
from PIL import Image

from marketplace.xmp import (  # re-exported: the vocabulary and writer, in one place
    IPTC_EXT_NS,
    MIME_FOR_FORMAT,
    PLUS_NS,
    PLUS_VOCAB,
    RDF_NS,
    DataMining,
    encode_with_xmp,
    xmp_packet,
)

__all__ = [
    "IPTC_EXT_NS",
    "PLUS_NS",
    "PLUS_VOCAB",
    "RDF_NS",
    "DataMining",
    "encode_with_xmp",
    "xmp_packet",
]

log = logging.getLogger(__name__)

MAX_XMP_BYTES = 1 << 20  # real packets are a few KB; anything past 1 MiB is not worth parsing
MAX_TEXT_CHARS = 300  # longest value from a file that we repeat back in a reason or problem

_DATA_MINING_TAG = f"{{{PLUS_NS}}}DataMining"
_RDF_RESOURCE = f"{{{RDF_NS}}}resource"
_RDF_VALUE = f"{{{RDF_NS}}}value"

# Our four formats: the MIME type (and common aliases) to Pillow's format name.
_PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/tif": "TIFF",
}


# The official label of each value (what exiftool shows and accepts), and how we say it.
DATA_MINING_LABELS: dict[DataMining, str] = {
    DataMining.UNSPECIFIED: "Unspecified - no prohibition defined",
    DataMining.ALLOWED: "Allowed",
    DataMining.PROHIBITED_AIML_TRAINING: "Prohibited for AI/ML training",
    DataMining.PROHIBITED_GENAIML_TRAINING: "Prohibited for Generative AI/ML training",
    DataMining.PROHIBITED_EXCEPT_SEARCH_ENGINE_INDEXING: (
        "Prohibited except for search engine indexing"
    ),
    DataMining.PROHIBITED: "Prohibited",
    DataMining.PROHIBITED_SEE_CONSTRAINT: "Prohibited, see plus:OtherConstraints",
    DataMining.PROHIBITED_SEE_EMBEDDED_RIGHTS_EXPR: "Prohibited, see iptcExt:EmbdEncRightsExpr",
    DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR: "Prohibited, see iptcExt:LinkedEncRightsExpr",
}
_DATA_MINING_PHRASES: dict[DataMining, str] = {
    DataMining.UNSPECIFIED: "unspecified (no prohibition defined)",
    DataMining.ALLOWED: "allowed",
    DataMining.PROHIBITED_AIML_TRAINING: "prohibited for AI/ML training",
    DataMining.PROHIBITED_GENAIML_TRAINING: "prohibited for generative AI/ML training",
    DataMining.PROHIBITED_EXCEPT_SEARCH_ENGINE_INDEXING: (
        "prohibited except for search engine indexing"
    ),
    DataMining.PROHIBITED: "prohibited",
    DataMining.PROHIBITED_SEE_CONSTRAINT: (
        "prohibited, except as the file's Other Constraints text allows"
    ),
    DataMining.PROHIBITED_SEE_EMBEDDED_RIGHTS_EXPR: (
        "prohibited, except as the rights expression embedded in the file allows"
    ),
    DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR: (
        "prohibited, except as the rights expression the file links to allows"
    ),
}
# Every value but UNSPECIFIED and ALLOWED rules out training. The three "see ..." values point
# at terms a machine cannot weigh for us, so, like CAWG's "constrained", they count as "no".
PROHIBITING_DATA_MINING = frozenset(DataMining) - {DataMining.UNSPECIFIED, DataMining.ALLOWED}
_DATA_MINING_BY_URI = {value.value: value for value in DataMining}
_DATA_MINING_BY_LABEL = {label.casefold(): value for value, label in DATA_MINING_LABELS.items()}

# The CAWG 1.1 / C2PA 1.x training-and-data-mining assertion. Labels may carry a version
# (".v2") or an instance suffix ("__1"); entry keys are "cawg.<use>" or, in C2PA 1.x, "c2pa.<use>".
_TRAINING_MINING_LABEL = re.compile(r"(cawg|c2pa)\.training-mining(\.v\d+)?(__\d+)?")
C2PA_USE_NAMES = ("ai_training", "ai_generative_training", "data_mining", "ai_inference")
TRAINING_USES = frozenset({"ai_training", "ai_generative_training"})
_C2PA_CHOICES = ("allowed", "constrained", "notAllowed")  # least to most restrictive
_C2PA_USE_PHRASES = {
    "ai_training": "training non-generative AI/ML models",
    "ai_generative_training": "training generative AI/ML models",
    "data_mining": "data mining",
    "ai_inference": "use as input to AI/ML models (inference)",
}
# Reading only: no remote manifests (a file must not make us fetch a URL) and no OCSP calls.
_C2PA_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


@dataclass(frozen=True)
class Problem:
    """Something in a file that could not be read or trusted: a stable code for programs and
    tests, and a sentence for the artist."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def _report(problems: list[Problem], code: str, message: str) -> None:
    problems.append(Problem(code, message))


@dataclass(frozen=True)
class ConsentSignals:
    """What a file says about AI training, normalised; empty when it says nothing.

    `xmp_data_mining` is the PLUS URI found (short codes and official labels are expanded to
    it). `c2pa_label` names the assertion found in the active manifest; `c2pa_uses` maps
    ai_training, ai_generative_training, data_mining and ai_inference to allowed, notAllowed
    or constrained, and `c2pa_constraints` keeps any `constraint_info` text. `problems` says,
    in words an artist can follow, what could not be read or trusted.
    """

    xmp_data_mining: str | None = None
    c2pa_label: str | None = None
    c2pa_uses: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    c2pa_constraints: dict[str, str] = field(default_factory=dict)

    @property
    def prohibits_training(self) -> bool:
        """True when the file rules out AI/ML training, generative or not.

        XMP: every Data Mining value except UNSPECIFIED and ALLOWED, including
        PROHIBITED-GENAIMLTRAINING and the three "prohibited, see ..." values (their exceptions
        live in terms we cannot evaluate), and an unknown code that starts DMI-PROHIBITED.
        C2PA/CAWG: ai_training or ai_generative_training is notAllowed or constrained; CAWG
        says constrained "shall be treated as equivalent to notAllowed" without more
        information, and we do not interpret constraint_info. data_mining and ai_inference
        alone do not count: they are other uses.
        """
        if self.xmp_data_mining is not None and _data_mining_prohibits(self.xmp_data_mining):
            return True
        return any(
            self.c2pa_uses.get(use) in ("notAllowed", "constrained") for use in TRAINING_USES
        )

    @property
    def reasons(self) -> list[str]:
        """One sentence per signal found, prohibitions or not, for the artist to read."""
        sentences = []
        if self.xmp_data_mining is not None:
            sentences.append(_xmp_reason(self.xmp_data_mining))
        if self.c2pa_label is not None and self.c2pa_uses:
            statements = [
                _c2pa_statement(use, self.c2pa_uses[use], self.c2pa_constraints.get(use))
                for use in C2PA_USE_NAMES
                if use in self.c2pa_uses
            ]
            sentences.append(
                f"The file's Content Credentials (C2PA {self.c2pa_label}) say: "
                + "; ".join(statements)
                + "."
            )
        return sentences

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe copy for a JSON column, with the derived verdict and reasons included."""
        return {
            "xmp_data_mining": self.xmp_data_mining,
            "c2pa_label": self.c2pa_label,
            "c2pa_uses": dict(self.c2pa_uses),
            "c2pa_constraints": dict(self.c2pa_constraints),
            "problems": [problem.message for problem in self.problems],
            "problem_codes": [problem.code for problem in self.problems],
            "prohibits_training": self.prohibits_training,
            "reasons": self.reasons,
        }


def read_consent_signals(data: bytes, mime: str) -> ConsentSignals:
    """The consent signals in an uploaded file. Never raises for the file's content.

    `mime` is the type the bytes were inspected as (JPEG, PNG, WebP or TIFF); other types are
    only scanned for an XMP packet. A file without metadata gives empty signals, no problems.
    """
    problems: list[Problem] = []
    pillow_format = _PILLOW_FORMATS.get(mime.split(";")[0].strip().lower())
    packet = _xmp_packet_in(data, pillow_format, problems)
    xmp_value = _data_mining_in(packet, problems) if packet is not None else None
    label: str | None = None
    uses: dict[str, str] = {}
    constraints: dict[str, str] = {}
    if pillow_format is not None and _may_hold_c2pa(data):
        label, uses, constraints = _read_c2pa(data, MIME_FOR_FORMAT[pillow_format], problems)
    return ConsentSignals(
        xmp_data_mining=xmp_value,
        c2pa_label=label,
        c2pa_uses=uses,
        problems=problems,
        c2pa_constraints=constraints,
    )


def data_mining_for_terms(
    kind: str, *, generative_training: bool, non_generative_training: bool, licensed_copy: bool
) -> DataMining:
    """The Data Mining value for a file we serve under the artist's current terms.

    kind is "donate", "license" or "not_available" (TermsKind values). A licence's public
    previews point at its terms ("prohibited unless the linked rights expression allows");
    the copy delivered to a buyer says what that licence granted. Raises ValueError otherwise.
    """
    if kind == "donate":
        return DataMining.ALLOWED
    if kind == "not_available":
        return DataMining.PROHIBITED_AIML_TRAINING
    if kind != "license":
        raise ValueError(f"unknown terms kind {kind!r}")
    if not licensed_copy:
        return DataMining.PROHIBITED_SEE_LINKED_RIGHTS_EXPR
    if generative_training:
        return DataMining.ALLOWED
    if non_generative_training:
        return DataMining.PROHIBITED_GENAIML_TRAINING
    return DataMining.PROHIBITED_AIML_TRAINING


# --- Reading XMP ---------------------------------------------------------------------------


def _xmp_packet_in(data: bytes, pillow_format: str | None, problems: list[Problem]) -> bytes | None:
    """The file's XMP packet: Pillow's reading of the container first, else a byte scan."""
    packet = _xmp_via_pillow(data, pillow_format, problems) if pillow_format else None
    if packet is None:
        packet = _scan_for_xmp(data)
    if packet is not None and len(packet) > MAX_XMP_BYTES:
        _report(
            problems,
            "xmp_too_large",
            f"The file's XMP metadata is larger than {MAX_XMP_BYTES // (1 << 20)} MB and was "
            "not read.",
        )
        return None
    return packet


def _xmp_via_pillow(data: bytes, pillow_format: str, problems: list[Problem]) -> bytes | None:
    """info["xmp"] as Pillow 13 fills it on open (JPEG APP1, PNG iTXt before the image data,
    WebP "XMP " chunk, TIFF tag 700), without decoding any pixels."""
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            value = image.info.get("xmp")
    except Exception as exc:  # hostile bytes reach many plugin code paths; the contract is no raise
        log.info("Pillow could not open a %s for XMP: %s", pillow_format, type(exc).__name__)
        _report(
            problems,
            "not_openable",
            f"The file could not be opened as a {pillow_format} image, so its XMP metadata was "
            "searched for directly.",
        )
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    return value if isinstance(value, bytes) and value.strip() else None


_PACKET_BOUNDS = (
    (b"<x:xmpmeta", b"</x:xmpmeta>"),
    (b"<x:xapmeta", b"</x:xapmeta>"),  # before XMP's final name
    (b"<rdf:RDF", b"</rdf:RDF>"),  # some writers leave out the wrapper
)


def _scan_for_xmp(data: bytes) -> bytes | None:
    """The first XMP-looking span in the raw bytes: covers PNG text after the image data,
    files Pillow refuses and containers it does not read."""
    for start_tag, end_tag in _PACKET_BOUNDS:
        start = data.find(start_tag)
        if start == -1:
            continue
        end = data.find(end_tag, start)
        if end == -1:  # cut short: the parser or the size limit will say so
            return data[start : start + MAX_XMP_BYTES + 1]
        return data[start : end + len(end_tag)]
    return None


def _data_mining_in(packet: bytes, problems: list[Problem]) -> str | None:
    """The normalised plus:DataMining value of a packet, parsed with DTDs and entities refused."""
    root = _parse_xmp(packet, problems)
    if root is None:
        return None
    found: list[str] = []
    for element in root.iter():
        attribute = element.get(_DATA_MINING_TAG)
        if attribute is not None:
            found.append(attribute)
        if element.tag == _DATA_MINING_TAG:
            value = _property_value(element)
            if value is not None:
                found.append(value)
    values = list(dict.fromkeys(_normalise_data_mining(raw, problems) for raw in found))
    if not values:
        return None
    if len(values) > 1:
        _report(
            problems,
            "xmp_conflicting_values",
            "The file's XMP metadata gives more than one Data Mining value; the most "
            "restrictive one was used.",
        )
        return next((value for value in values if _data_mining_prohibits(value)), values[0])
    return values[0]


def _parse_xmp(packet: bytes, problems: list[Problem]) -> Element | None:
    body = packet.strip(b"\x00 \t\r\n")
    end = body.find(b"<?xpacket end")
    if end != -1:  # drop padding or junk after the closing processing instruction
        close = body.find(b"?>", end)
        body = body[: close + 2] if close != -1 else body
    try:
        root: Element = parse_xml_safely(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        _report(
            problems,
            "xmp_dtd_refused",
            "The file's XMP metadata declares a DTD or entities, which XMP never needs (it is "
            "how XML bombs work); it was not read.",
        )
        return None
    except (ParseError, ValueError, UnicodeError):
        _report(
            problems,
            "xmp_malformed",
            "The file's XMP metadata is not well-formed XML and was not read.",
        )
        return None
    return root


def _property_value(element: Element) -> str | None:
    """A simple property in element form: text, rdf:resource, or a qualified rdf:value."""
    resource = element.get(_RDF_RESOURCE)
    if resource is not None and resource.strip():
        return resource
    if element.text is not None and element.text.strip():
        return element.text
    for inner in element.iter(_RDF_VALUE):
        return _property_value(inner)
    return None


def _normalise_data_mining(raw: str, problems: list[Problem]) -> str:
    """The full vocabulary URI for a URI, a bare code or an official label, in any case.

    Anything else is kept (shortened) and reported; a code outside the vocabulary is kept as a
    URI under it, so a future DMI-PROHIBITED-... value still reads as a prohibition.
    """
    text = " ".join(raw.split())
    code = text.rsplit("/", 1)[-1] if "useplus.org/" in text.casefold() else text
    if code.upper().startswith("DMI-"):
        uri = PLUS_VOCAB + code.upper()
        if uri not in _DATA_MINING_BY_URI:
            _report(
                problems,
                "xmp_unknown_code",
                f"The file's XMP Data Mining value {_shorten(code)!r} is not in the PLUS "
                "vocabulary we know.",
            )
        return uri
    labelled = _DATA_MINING_BY_LABEL.get(text.casefold())
    if labelled is not None:
        return labelled.value
    _report(
        problems,
        "xmp_free_text",
        f"The file's XMP Data Mining value {_shorten(text)!r} is not a PLUS vocabulary value; "
        "it was recorded but not interpreted.",
    )
    return _shorten(text)


def _data_mining_prohibits(value: str) -> bool:
    known = _DATA_MINING_BY_URI.get(value)
    if known is not None:
        return known in PROHIBITING_DATA_MINING
    return value.startswith(PLUS_VOCAB + "DMI-PROHIBITED")


def _xmp_reason(value: str) -> str:
    known = _DATA_MINING_BY_URI.get(value)
    if known is not None:
        return f"The file's IPTC/XMP metadata says: data mining {_DATA_MINING_PHRASES[known]}."
    if _data_mining_prohibits(value):
        return (
            "The file's IPTC/XMP metadata gives a Data Mining value we do not know "
            f"({value.removeprefix(PLUS_VOCAB)}); it says prohibited, so we treat it as a "
            "prohibition."
        )
    return f"The file's IPTC/XMP metadata gives a Data Mining value we do not know ({value})."


# --- Reading C2PA --------------------------------------------------------------------------


def _may_hold_c2pa(data: bytes) -> bool:
    """Embedded manifest stores are JUMBF boxes ("jumb"); a remote one is announced in XMP
    (dcterms:provenance). Without either, the native reader would only complain about
    damage that has nothing to do with consent."""
    return b"jumb" in data or b"provenance" in data


def _read_c2pa(
    data: bytes, mime: str, problems: list[Problem]
) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """The training-and-mining statement of the active manifest, if the file has a store."""
    try:
        with c2pa.Context.from_dict(_C2PA_READ_SETTINGS) as context:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
            if reader is None:
                return None, {}, {}
            with reader:
                store = json.loads(reader.json())
    except Exception as exc:  # the native parser sees hostile bytes; the contract is no raise
        log.info("C2PA manifest store unreadable: %s", type(exc).__name__)
        detail = _shorten(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        _report(
            problems,
            "c2pa_unreadable",
            f"The file's C2PA Content Credentials could not be read ({detail}); any training "
            "preference they hold was not seen.",
        )
        return None, {}, {}
    if not isinstance(store, Mapping):
        _report(
            problems,
            "c2pa_wrong_shape",
            "The file's C2PA Content Credentials are not in the expected shape.",
        )
        return None, {}, {}
    return _training_mining_in_store(store, problems)


def _training_mining_in_store(
    store: Mapping[str, Any], problems: list[Problem]
) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """Label, uses and constraint texts from a manifest store shaped like Reader.json().

    Both assertion labels count (CAWG's first in naming); when several say different things
    about one use, the most restrictive wins. Entries may sit under "entries" (as specified)
    or at the top level (CAWG 1.0's schema omitted the map).
    """
    manifests = store.get("manifests")
    active = store.get("active_manifest")
    if not isinstance(manifests, Mapping) or not isinstance(active, str):
        return None, {}, {}
    if active not in manifests:
        _report(
            problems,
            "c2pa_active_manifest_missing",
            "The file's C2PA Content Credentials are damaged (their active manifest could not "
            "be loaded); any training preference they hold was not seen.",
        )
        return None, {}, {}
    manifest = manifests[active]
    assertions = manifest.get("assertions") if isinstance(manifest, Mapping) else None
    if not isinstance(assertions, list):
        return None, {}, {}
    statements = [
        (str(assertion["label"]), assertion.get("data"))
        for assertion in assertions
        if isinstance(assertion, Mapping)
        and isinstance(assertion.get("label"), str)
        and _TRAINING_MINING_LABEL.fullmatch(assertion["label"])
    ]
    invalid = store.get("validation_state") == "Invalid"
    if not statements:
        if invalid:
            _report(
                problems,
                "c2pa_invalid_without_preference",
                "The file's C2PA Content Credentials did not validate, and no training "
                "preference could be read from them.",
            )
        return None, {}, {}
    statements.sort(key=lambda statement: not statement[0].startswith("cawg."))
    uses: dict[str, str] = {}
    constraints: dict[str, str] = {}
    for label, payload in statements:
        for name, use, constraint in _entries(label, payload, problems):
            if name in uses and _C2PA_CHOICES.index(use) <= _C2PA_CHOICES.index(uses[name]):
                continue  # an earlier statement is as strict or stricter
            uses[name] = use
            constraints.pop(name, None)
            if constraint:
                constraints[name] = constraint
    if invalid:
        _report(
            problems,
            "c2pa_invalid",
            "The file's C2PA Content Credentials did not validate (for example, the file "
            "changed after signing); their training preferences were still respected.",
        )
    return statements[0][0], uses, constraints


def _entries(label: str, payload: object, problems: list[Problem]) -> list[tuple[str, str, str]]:
    """(use name, choice, constraint text) for the four known uses; custom keys are skipped."""
    if not isinstance(payload, Mapping):
        _report(
            problems, "c2pa_no_entries", f"The file's {label} assertion has no readable entries."
        )
        return []
    entries = payload.get("entries", payload)
    if not isinstance(entries, Mapping):
        _report(
            problems, "c2pa_no_entries", f"The file's {label} assertion has no readable entries."
        )
        return []
    found = []
    for key, entry in entries.items():
        prefix, _, name = str(key).partition(".")
        if prefix not in ("cawg", "c2pa") or name not in C2PA_USE_NAMES:
            continue
        use = entry.get("use") if isinstance(entry, Mapping) else None
        if use not in _C2PA_CHOICES:
            _report(
                problems,
                "c2pa_unknown_use",
                f"The file's {label} assertion gives {key} an unknown use "
                f"({_shorten(str(use))!r}); that entry was ignored.",
            )
            continue
        constraint = entry.get("constraint_info", entry.get("constraints_info"))
        found.append((name, str(use), _shorten(constraint) if isinstance(constraint, str) else ""))
    return found


def _c2pa_statement(use: str, choice: str, constraint: str | None) -> str:
    phrase = _C2PA_USE_PHRASES[use]
    if choice == "allowed":
        return f"{phrase} allowed"
    if choice == "notAllowed":
        return f"{phrase} not allowed"
    return f"{phrase} only under conditions" + (f" ({constraint})" if constraint else "")


# --- Helpers -------------------------------------------------------------------------------


def _shorten(text: str) -> str:
    """A value from a file, fit to repeat back: printable and at most MAX_TEXT_CHARS long."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if len(printable) > MAX_TEXT_CHARS:
        return printable[: MAX_TEXT_CHARS - 1] + "…"
    return printable
