"""C2SP signed notes and checkpoints: notes other software signed, our own, and broken ones."""

from __future__ import annotations

import base64
import hashlib
import string
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.ledger.note import (
    Checkpoint,
    NoteError,
    Signature,
    Signer,
    UnverifiedNote,
    Verifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
)

EM_DASH = "\u2014"


@pytest.fixture(scope="module")
def published(ledger_vectors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    notes = ledger_vectors["signed_notes"]["notes"]
    return {note["id"]: note for note in notes}


@pytest.fixture(scope="module")
def peter(published: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return published["go-sumdb-PeterNeumann"]


@pytest.fixture(scope="module")
def sumdb(published: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return published["sum.golang.org-checkpoint-6476701"]


def _vkeys(note: dict[str, Any]) -> list[str]:
    return note.get("vkeys") or [note["vkey"]]


def _resign_line(line: str, mutate: Any) -> str:
    """A signature line with its decoded bytes passed through ``mutate``."""
    name, encoded = line.removeprefix(f"{EM_DASH} ").split(" ")
    raw = mutate(base64.b64decode(encoded))
    return f"{EM_DASH} {name} {base64.b64encode(raw).decode()}"


def _flip(raw: bytes, bit: int) -> bytes:
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# --- Notes signed by other software ---------------------------------------------------------


def test_every_published_note_opens_with_its_published_keys(
    published: dict[str, dict[str, Any]],
) -> None:
    assert len(published) >= 4
    for note_id, vector in published.items():
        verifiers = [Verifier.from_string(vkey) for vkey in _vkeys(vector)]
        opened = open_note(vector["note"], verifiers)
        assert [s.name for s in opened.verified] == [v.name for v in verifiers], note_id
        assert opened.signatures == opened.verified, note_id
        if "body" in vector:
            assert opened.text == vector["body"], note_id


def test_published_signer_key_reproduces_the_published_note_exactly(peter: dict[str, Any]) -> None:
    signer = Signer.from_signer_key_string(peter["skey"])
    assert signer.sign(peter["body"]) == peter["note"]  # Ed25519 is deterministic
    assert signer.signer_key_string() == peter["skey"]
    assert signer.verifier().to_string() == peter["vkey"]


def test_key_ids_are_computed_as_the_published_keys_state(
    published: dict[str, dict[str, Any]], sumdb: dict[str, Any]
) -> None:
    vkeys = [vkey for vector in published.values() for vkey in _vkeys(vector)]
    vkeys += list(sumdb["extra_signature_lines"])
    for vkey in vkeys:
        name, key_id_hex, key_b64 = vkey.split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 1
        expected = hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
        verifier = Verifier.from_string(vkey)
        assert verifier.key_id == expected == bytes.fromhex(key_id_hex), vkey
        assert verifier.to_string() == vkey


def test_real_sum_golang_org_checkpoint_opens_and_parses(sumdb: dict[str, Any]) -> None:
    opened = open_note(sumdb["note"], [Verifier.from_string(sumdb["vkey"])])
    checkpoint = parse_checkpoint(opened.text)
    published = sumdb["checkpoint"]
    assert checkpoint == Checkpoint(
        origin=published["origin"],
        size=published["size"],
        root_hash=base64.b64decode(published["root_b64"]),
        extensions=tuple(published["extensions"]),
    )
    assert format_checkpoint(checkpoint) == opened.text


def test_cosignatures_verify_and_unknown_ones_are_kept_but_ignored(sumdb: dict[str, Any]) -> None:
    extra = sumdb["extra_signature_lines"]
    cosigned = sumdb["note"] + "".join(f"{line}\n" for line in extra.values())
    everyone = [Verifier.from_string(v) for v in [sumdb["vkey"], *extra]]

    opened = open_note(cosigned, everyone)
    assert {s.name for s in opened.verified} == {"sum.golang.org", "monkeys", "bananas", "witness"}

    log_only = open_note(cosigned, [Verifier.from_string(sumdb["vkey"])])
    assert [s.name for s in log_only.verified] == ["sum.golang.org"]
    assert [s.name for s in log_only.signatures] == [
        "sum.golang.org",
        *(k.split("+")[0] for k in extra),
    ]


def test_note_signed_only_by_unknown_keys_is_unverified(
    published: dict[str, dict[str, Any]],
) -> None:
    both = published["go-sumdb-Peter+Enoch"]
    enoch_only = open_note(both["note"], [Verifier.from_string(both["vkeys"][1])])
    assert [s.name for s in enoch_only.verified] == ["EnochRoot"]
    with pytest.raises(UnverifiedNote, match="no signature by a trusted key"):
        open_note(
            published["c2sp-signed-note-example"]["note"], [Verifier.from_string(both["vkeys"][0])]
        )
    with pytest.raises(UnverifiedNote):
        open_note(both["note"], [])


def test_a_bad_signature_by_a_known_key_rejects_the_whole_note(
    published: dict[str, dict[str, Any]],
) -> None:
    both = published["go-sumdb-Peter+Enoch"]
    text, peter_line, enoch_line = both["note"].rstrip("\n").rsplit("\n", 2)
    broken_enoch = _resign_line(enoch_line, lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]))
    note = f"{text}\n{peter_line}\n{broken_enoch}\n"
    verifiers = [Verifier.from_string(v) for v in both["vkeys"]]
    with pytest.raises(UnverifiedNote, match="invalid signature by EnochRoot"):
        open_note(note, verifiers)
    # Without Enoch's key the broken signature is just an unknown one.
    assert len(open_note(note, verifiers[:1]).verified) == 1


def test_same_name_other_key_is_an_unknown_key_not_a_forgery(peter: dict[str, Any]) -> None:
    impostor = Signer.generate("PeterNeumann")
    note = impostor.sign(peter["body"])
    real = Verifier.from_string(peter["vkey"])
    assert impostor.key_id != real.key_id
    with pytest.raises(UnverifiedNote, match="no signature by a trusted key"):
        open_note(note, [real])


def test_wrong_key_id_in_a_signature_line_is_not_accepted(peter: dict[str, Any]) -> None:
    text, line = peter["note"].rstrip("\n").rsplit("\n", 1)
    relabelled = _resign_line(line, lambda raw: bytes([raw[0] ^ 0x80]) + raw[1:])
    with pytest.raises(UnverifiedNote):
        open_note(f"{text}\n{relabelled}\n", [Verifier.from_string(peter["vkey"])])


def test_two_different_trusted_keys_with_one_name_and_id_are_refused(peter: dict[str, Any]) -> None:
    # A 32-bit key ID collision under one name. Finding a real one takes some 2**16 key pairs,
    # so this one is forged past the constructor's check.
    real = Verifier.from_string(peter["vkey"])
    other = Signer.generate("PeterNeumann").verifier()
    clash = Verifier.__new__(Verifier)
    object.__setattr__(clash, "name", real.name)
    object.__setattr__(clash, "key_id", real.key_id)
    object.__setattr__(clash, "public_key", other.public_key)
    with pytest.raises(NoteError, match="share name and ID"):
        open_note(peter["note"], [real, clash])
    assert open_note(peter["note"], [real, Verifier.from_string(peter["vkey"])]).verified


# --- Our own notes --------------------------------------------------------------------------


def test_signed_note_round_trips_with_its_verifier() -> None:
    signer = Signer.generate("ledger.example/log")
    text = "ledger.example/log\n42\n\nline after a blank line\n"
    note = signer.sign(text)
    assert note.startswith(text + "\n" + f"{EM_DASH} ledger.example/log ")
    assert note.endswith("\n")

    opened = open_note(note, [Verifier.from_string(signer.verifier().to_string())])
    assert opened.text == text
    [signature] = opened.verified
    assert (signature.name, signature.key_id) == (signer.name, signer.key_id)
    assert signer.verifier().verify(text.encode(), signature.signature)
    assert open_note(note.encode(), [signer.verifier()]).text == text

    restored = Signer.from_signer_key_string(signer.signer_key_string())
    assert restored.sign(text) == note


def test_parse_note_reads_signatures_without_trusting_them() -> None:
    signer = Signer.generate("a")
    note = signer.sign("hello\n")
    parsed = parse_note(note)
    assert parsed.text == "hello\n"
    assert parsed.verified == []
    [signature] = parsed.signatures
    assert signature == Signature("a", signer.key_id, signature.signature)
    assert len(signature.signature) == 64


def test_a_repeated_signature_counts_once() -> None:
    signer = Signer.generate("a")
    note = signer.sign("hello\n")
    line = note.split("\n\n", 1)[1]
    opened = open_note(note + line, [signer.verifier()])
    assert len(opened.signatures) == 2
    assert len(opened.verified) == 1


_line_chars = st.characters(min_codepoint=32, blacklist_categories=("Cs",))
_name_chars = st.characters(min_codepoint=33, max_codepoint=0x2FF).filter(
    lambda c: c != "+" and not c.isspace()
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(_line_chars, max_size=20), min_size=1, max_size=4).map("\n".join),
    st.lists(st.text(_name_chars, min_size=1, max_size=5), min_size=1, max_size=3),
)
def test_any_valid_text_round_trips_under_several_signers(body: str, names: list[str]) -> None:
    text = body + "\n"
    signers = [Signer.generate(name) for name in names]
    note = signers[0].sign(text) + "".join(_signature_line(s, text) for s in signers[1:])
    opened = open_note(note, [s.verifier() for s in signers])
    assert opened.text == text
    assert len(opened.verified) == len(signers)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 64 * 8 - 1))
def test_flipping_any_signature_bit_fails(bit: int) -> None:
    signer = _fixed_signer()
    note = signer.sign("checkpoint text\n")
    text, line = note.rstrip("\n").rsplit("\n", 1)
    broken = _resign_line(line, lambda raw: raw[:4] + _flip(raw[4:], bit))
    with pytest.raises(UnverifiedNote, match="invalid signature"):
        open_note(f"{text}\n{broken}\n", [signer.verifier()])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_flipping_any_text_bit_fails(data: st.DataObject) -> None:
    signer = _fixed_signer()
    text = "example.com/log\n1234\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    note = signer.sign(text).encode()
    bit = data.draw(st.integers(0, len(text.encode()) * 8 - 1), label="bit")
    mutated = _flip(note, bit)
    with pytest.raises(NoteError):
        open_note(mutated, [signer.verifier()])
    try:
        still_a_note = parse_note(mutated)
    except NoteError:
        return  # the flip made it malformed (a control character, a lost newline...)
    assert still_a_note.text != text
    with pytest.raises(UnverifiedNote):
        open_note(mutated, [signer.verifier()])


def _fixed_signer() -> Signer:
    seed = hashlib.sha256(b"test signer").digest()
    return Signer.from_private_key("test.example/log", Ed25519PrivateKey.from_private_bytes(seed))


def _signature_line(signer: Signer, text: str) -> str:
    """The line ``signer`` adds to a note of ``text``: how a witness cosigns."""
    return signer.sign(text)[len(text) + 1 :]


# --- Malformed notes and keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("text\n\u2014 a AAAAAAA=\n", "blank line"),
        ("text\n", "blank line"),
        ("text\n\n", "signature lines"),
        ("text\n\n\u2014 a AAAAAAA=", "signature lines"),
        ("text\n\n\u2014 a AAAAAAA=\n\n", "signature lines"),
        ("text\n\n- a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 a AAAAAAA\n", "base64"),
        ("text\n\n\u2014 a AAAA AAA=\n", "base64"),
        ("text\n\n\u2014 a AAAAAAB=\n", "base64"),  # non-canonical: stray bits
        ("text\n\n\u2014 a \n", "too short"),
        ("text\n\n\u2014 a AAAA\n", "too short"),
        ("text\n\n\u2014 a AAAAAA==\n", "too short"),  # a key ID and no signature
        ("text\n\n\u2014 a+b AAAAAAA=\n", "key name"),
        ("text\n\n\u2014  AAAAAAA=\n", "key name"),
        ("text\n\n\u2014 a\u00a0b AAAAAAA=\n", "key name"),
        ("te\txt\n\n\u2014 a AAAAAAA=\n", "control characters"),
        ("text\r\n\n\u2014 a AAAAAAA=\n", "control characters"),
        ("text\x00\n\n\u2014 a AAAAAAA=\n", "control characters"),
        ("te\ud800xt\n\n\u2014 a AAAAAAA=\n", "UTF-8"),
        ("text\n\n" + "\u2014 a AAAAAAA=\n" * 101, "at most 100"),
    ],
)
def test_malformed_notes_are_rejected(note: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_note(note)
    with pytest.raises(NoteError, match=reason):
        open_note(note, [])


def test_invalid_utf8_bytes_are_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note(b"caf\xe9\n\n\xe2\x80\x94 a AAAAAAA=\n")


def test_sixteen_cosignatures_are_accepted() -> None:
    signers = [Signer.generate(f"w{i}") for i in range(16)]
    note = signers[0].sign("t\n") + "".join(_signature_line(s, "t\n") for s in signers[1:])
    assert len(open_note(note, [s.verifier() for s in signers]).verified) == 16


_PETER_KEY = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
_PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        (f"PeterNeumann+c74f20a4+{_b64(_PETER_KEY)}", "does not match its name and key"),
        (f"PeterNeumannX+c74f20a3+{_b64(_PETER_KEY)}", "does not match its name and key"),
        (f"PeterNeumann+c74f20a+{_b64(_PETER_KEY)}", "reads <name>"),
        (f"PeterNeumann+c74f20ag+{_b64(_PETER_KEY)}", "reads <name>"),
        ("PeterNeumann+c74f20a3", "reads <name>"),
        (f"PeterNeumann+c74f20a3+{_b64(bytes([2]) + _PETER_KEY[1:])}", "only Ed25519"),
        (f"PeterNeumann+c74f20a3+{_b64(_PETER_KEY[:-1])}", "only Ed25519"),
        (f"PeterNeumann+c74f20a3+{_b64(_PETER_KEY)[:-1]}@", "base64"),
        (f"Peter Neumann+c74f20a3+{_b64(_PETER_KEY)}", "key name"),
        (f"+c74f20a3+{_b64(_PETER_KEY)}", "key name"),
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        Verifier.from_string(vkey)


@pytest.mark.parametrize(
    ("skey", "reason"),
    [
        (f"PRIVATE+KEY+PeterNeumann+c74f20a4+{_b64(_PETER_SEED)}", "does not match"),
        (f"PRIVATE+KEY+Peter+c74f20a3+{_b64(_PETER_SEED)}", "does not match"),
        (f"PUBLIC+KEY+PeterNeumann+c74f20a3+{_b64(_PETER_SEED)}", "reads PRIVATE"),
        (f"PRIVATE+KEY+PeterNeumann+c74f20a3+{_b64(bytes([2]) + _PETER_SEED[1:])}", "only Ed25519"),
        (f"PRIVATE+KEY+PeterNeumann+c74f20a3+{_b64(_PETER_SEED + b'x')}", "only Ed25519"),
        (f"PRIVATE+KEY+PeterNeumann+c74f20+{_b64(_PETER_SEED)}", "8 hex digits"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "reads PRIVATE"),
        (f"PeterNeumann+c74f20a3+{_b64(_PETER_KEY)}", "reads PRIVATE"),
    ],
)
def test_malformed_signer_keys_are_rejected(skey: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        Signer.from_signer_key_string(skey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        Signer.generate(name)


@pytest.mark.parametrize("text", ["no newline", "", "bell\x07\n", "cr\r\n"])
def test_signing_refuses_text_that_would_not_be_a_note(text: str) -> None:
    with pytest.raises(NoteError):
        Signer.generate("a").sign(text)


def test_verifier_answers_false_for_signatures_of_the_wrong_length() -> None:
    signer = Signer.generate("a")
    signature = signer.private_key.sign(b"x\n")
    verifier = signer.verifier()
    assert verifier.verify(b"x\n", signature)
    assert not verifier.verify(b"x\n", signature[:-1])
    assert not verifier.verify(b"x\n", signature + b"\0")
    assert not verifier.verify(b"y\n", signature)


def test_signer_key_is_not_in_its_repr() -> None:
    signer = Signer.generate("a")
    assert "private_key" not in repr(signer)


# --- Checkpoints ----------------------------------------------------------------------------

ROOT = bytes(range(32))


@settings(max_examples=100, deadline=None)
@given(
    st.text(st.characters(min_codepoint=32, blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(
            st.characters(min_codepoint=32, blacklist_categories=("Cs",)), min_size=1, max_size=20
        ),
        max_size=3,
    ),
)
def test_checkpoint_round_trips(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    text = format_checkpoint(checkpoint)
    assert text == "".join(
        f"{line}\n" for line in [origin, str(size), base64.b64encode(root).decode(), *extensions]
    )
    assert parse_checkpoint(text) == checkpoint


def test_checkpoint_text_is_signed_and_opened_as_a_note() -> None:
    signer = Signer.generate("example.com/log")
    checkpoint = Checkpoint("example.com/log", 0, hashlib.sha256(b"").digest())
    opened = open_note(signer.sign(format_checkpoint(checkpoint)), [signer.verifier()])
    assert parse_checkpoint(opened.text) == checkpoint
    assert opened.text == "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


_ROOT_B64 = base64.b64encode(ROOT).decode()
_B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def _with_stray_bits(encoded: str) -> str:
    """The same bytes, spelt with the unused low bits of the last character set: not canonical."""
    last = _B64_ALPHABET.index(encoded[-2])
    return f"{encoded[:-2]}{_B64_ALPHABET[last | 1]}="


@pytest.mark.parametrize(
    "text",
    [
        f"log\n007\n{_ROOT_B64}\n",
        f"log\n00\n{_ROOT_B64}\n",
        f"log\n+7\n{_ROOT_B64}\n",
        f"log\n-1\n{_ROOT_B64}\n",
        f"log\n 7\n{_ROOT_B64}\n",
        f"log\n7 \n{_ROOT_B64}\n",
        f"log\n1_000\n{_ROOT_B64}\n",
        f"log\n\u0663\n{_ROOT_B64}\n",  # ARABIC-INDIC DIGIT THREE: int() would take it
        f"log\n0x10\n{_ROOT_B64}\n",
        f"log\n\n{_ROOT_B64}\n",
        f"log\n{2**64}\n{_ROOT_B64}\n",
        f"log\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"log\n7\n{base64.b64encode(ROOT + b'x').decode()}\n",
        f"log\n7\n{_ROOT_B64.rstrip('=')}\n",
        f"log\n7\n{_with_stray_bits(_ROOT_B64)}\n",
        f"log\n7\n{_ROOT_B64}",
        f"log\n7\n{_ROOT_B64}\n\n",
        f"log\n7\n{_ROOT_B64}\next\n\n",
        f"\n7\n{_ROOT_B64}\n",
        "log\n7\n",
        "",
        f"log\t\n7\n{_ROOT_B64}\n",
    ],
)
def test_checkpoint_parsing_is_strict(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("log", -1, ROOT, ()),
        ("log", 2**64, ROOT, ()),
        ("log", True, ROOT, ()),
        ("log", 1, ROOT[:31], ()),
        ("log", 1, ROOT, ("",)),
        ("log", 1, ROOT, ("two\nlines",)),
    ],
)
def test_invalid_checkpoints_cannot_be_built(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        Checkpoint(origin, size, root, extensions)
