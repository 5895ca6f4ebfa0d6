"""The images body read as it arrives (``_imagebody``) and ``save_to=`` (issue 7).

The reference everywhere is the old path: ``json.loads(body)``, the schema,
``ImageResponse.from_body(parsed)`` and each image's ``.data``. The new path
(``ImageBodyScanner`` fed the body in chunks, the skeleton parsed, the images
handed over with ``inline=``) must give exactly the same images, errors and
``raw``, whatever the chunking, for bodies the scanner follows and for bodies it
must leave to the parser.

The last section keeps the edge cases the first version of the scanner got
wrong (escaped or duplicate keys, invalid JSON inside an image string, UTF-16
bodies, a failing URL download with ``save_to``).
"""

import base64
import binascii
import codecs
import errno
import gzip
import itertools
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

import pytest
import requests
import responses
from helpers import (
    API_KEY,
    BEFORE_SHUTDOWNS,
    GENERATIONS_URL,
    PNG,
    folder_snapshot,
    make_jpeg,
    make_png,
    make_webp,
    record_parts,
)
from scripted_server import Reply, ScriptedServer

from imageprovider import (
    APIConnectionError,
    ImageExpiredError,
    ImageResponse,
    OpenAIImageProvider,
    ResponseValidationError,
    _errors,
    _response,
    _schemas,
)
from imageprovider._files import PartFile
from imageprovider._imagebody import Extracted, ImageBodyScanner, MemorySink
from imageprovider._saving import FolderSaver
from imageprovider.results import Base64Text, ImageSource, InlineBytes
from imageprovider.testing import FakeImagesServer, Fault

HEADERS = {"x-request-id": "req_imagebody"}
REQUEST = {"prompt": "A koi pond", "model": "gpt-image-2"}
USAGE = {
    "total_tokens": 100,
    "input_tokens": 50,
    "output_tokens": 50,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
    "output_tokens_details": {"text_tokens": 0, "image_tokens": 50},
}


def KNOWN_BUG(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason="library bug: " + reason)


# -- writing JSON bodies by hand (duplicate keys, chosen escapes, odd whitespace) ------------


class Obj:
    """A JSON object as ordered (key, value) pairs: duplicate keys allowed; a key may be a :class:`Lit`."""

    def __init__(self, *pairs: Tuple[Any, Any]) -> None:
        self.pairs = list(pairs)


class Lit:
    """JSON text inserted as is (a string literal with chosen escapes, an escaped key...)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Style:
    """How a body is written: compact, or with whitespace (any of the four JSON ones) between tokens."""

    def __init__(self, rng: Optional[random.Random] = None, ensure_ascii: bool = True) -> None:
        self.rng = rng
        self.ensure_ascii = ensure_ascii

    def ws(self) -> str:
        if self.rng is None:
            return ""
        return "".join(self.rng.choice([" ", "\n", "\t", "\r\n", "  ", ""]) for _ in range(self.rng.randint(0, 3)))


def dump(value: Any, style: Style) -> str:
    w = style.ws
    if isinstance(value, Lit):
        return value.text
    if isinstance(value, Obj):
        members = [w() + dump(key, style) + w() + ":" + w() + dump(item, style) + w() for key, item in value.pairs]
        return "{" + ",".join(members) + w() + "}"
    if isinstance(value, dict):
        return dump(Obj(*value.items()), style)
    if isinstance(value, list):
        return "[" + ",".join(w() + dump(item, style) + w() for item in value) + w() + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=style.ensure_ascii)
    return json.dumps(value)


def b64_literal(data: bytes, rng: Optional[random.Random] = None, slashes: bool = False, letters: bool = False) -> Lit:
    """``data`` as a JSON string of base64, optionally with ``\\/`` and ``\\u0041``-style escapes."""
    out = []
    for char in base64.b64encode(data).decode("ascii"):
        if char == "/" and slashes:
            out.append("\\/")
        elif letters and rng is not None and rng.random() < 0.3:
            escape = f"\\u{ord(char):04x}"
            out.append(escape.upper().replace("\\U", "\\u") if rng.random() < 0.5 else escape)
        else:
            out.append(char)
    return Lit('"' + "".join(out) + '"')


def image_bytes(rng: random.Random, length: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(length))


# Base64 strings both paths reject (whatever the Python version), as JSON string literals.
INVALID_B64 = {
    "bad-padding": '"QQ=A"',
    "missing-padding": '"QUJ"',
    "too-much-padding": '"QQ==="',
    "data-after-padding": '"QQ==QUJD"',
    "lone-char": '"Q"',
    "escaped-newline": '"QUJD\\nQUJD"',
    "escaped-tab": '"QUJD\\tQUJD"',
    "escaped-cr": '"QUJD\\r\\nQUJD"',
    # Escapes whose letter is itself base64: taken as the letter, these would decode.
    "escaped-n-as-letter": '"QUJ\\n"',
    "escaped-b-f-as-letters": '"QU\\b\\f"',
    "escaped-r-t-as-letters": '"Q\\r\\tA"',
    "space": '"QU JD"',
    "escaped-e-acute": '"\\u00e9QUJD"',
    "raw-e-acute": '"QUJ\u00e9"',
    "escaped-nul": '"QUJD\\u0000"',
    "escaped-quote": '"QUJD\\"QUJD"',
    "escaped-backslash": '"QUJD\\\\QUJD"',
    "escaped-surrogate": '"QUJD\\ud83e\\udd8a"',
    "minus-url-safe": '"QU-D"',
}

TRICKY_PROMPTS = [
    '"b64_json": "QUJD"',
    '{"data":[{"b64_json":"QUJD"}]}',
    'she said \\"b64_json\\":\\" and left',
    "ends in a backslash \\",
    'two backslashes before a quote \\\\"',
    '\\\\\\"',
    "unicode: caf\u00e9 \u2014 \u753b\u50cf \U0001f98a",
    "[]{},:\"'",
    "",
]


def fixed_bodies() -> Dict[str, bytes]:
    """Named bodies the scanner follows, each probing one thing."""
    rng = random.Random(7)
    one, two, three = image_bytes(rng, 40), image_bytes(rng, 41), image_bytes(rng, 42)
    slashy = bytes([0xFF, 0xFF, 0xFF]) * 7 + bytes([0xFC, 0x3F]) * 5  # base64 full of '/'
    bodies: Dict[str, Any] = {
        "one-image": Obj(("created", 1), ("data", [Obj(("b64_json", b64_literal(one)))])),
        "empty-image": Obj(("created", 1), ("data", [Obj(("b64_json", Lit('""')))])),
        "lengths-0-1-2-3-mod-3": Obj(
            ("created", 1),
            ("data", [Obj(("b64_json", b64_literal(image_bytes(rng, n)))) for n in (3, 4, 5, 9)]),
        ),
        "escaped-slashes": Obj(("created", 1), ("data", [Obj(("b64_json", b64_literal(slashy, slashes=True)))])),
        "escaped-letters": Obj(
            ("created", 1), ("data", [Obj(("b64_json", b64_literal(one, random.Random(1), letters=True)))])
        ),
        "escaped-padding": Obj(("created", 1), ("data", [Obj(("b64_json", Lit('"QUI\\u003d"')))])),
        "all-escaped": Obj(("created", 1), ("data", [Obj(("b64_json", Lit('"\\u0051\\u0055\\u004a\\u0044"')))])),
        "duplicate-b64-later-wins": Obj(
            ("created", 1),
            ("data", [Obj(("b64_json", b64_literal(one)), ("revised_prompt", "x"), ("b64_json", b64_literal(two)))]),
        ),
        "duplicate-b64-invalid-then-valid": Obj(
            ("created", 1), ("data", [Obj(("b64_json", Lit('"QQ=A"')), ("b64_json", b64_literal(two)))])
        ),
        "duplicate-b64-valid-then-invalid": Obj(
            ("created", 1), ("data", [Obj(("b64_json", b64_literal(two)), ("b64_json", Lit('"QUJ"')))])
        ),
        "url-between-images": Obj(
            ("created", 1),
            (
                "data",
                [
                    Obj(("b64_json", b64_literal(one))),
                    Obj(("url", "https://files.example/a/b.png?sig=x%2Fy"), ("revised_prompt", "a url")),
                    Obj(("b64_json", b64_literal(three))),
                ],
            ),
        ),
        "url-with-escaped-slashes": Obj(
            ("created", 1), ("data", [Obj(("url", Lit('"https:\\/\\/files.example\\/a.png"')))])
        ),
        "decoys": Obj(
            ("b64_json", "QUJD"),
            ("meta", Obj(("b64_json", "REVG"), ("data", [Obj(("b64_json", "R0hJ"))]))),
            ("datas", [Obj(("b64_json", "SktM"))]),
            ("list", ["b64_json", ":", '"b64_json":"', Obj(("b64_json", "TU5P"))]),
            ("created", 1),
            (
                "data",
                [
                    Obj(
                        ("extra", Obj(("b64_json", "UFFS"))),
                        ("nested", [["b64_json"], Obj(("b64_json", "U1RV"))]),
                        ("b64_jsonx", "VldY"),
                        ("B64_JSON", "WVph"),
                        ("revised_prompt", '"b64_json":"'),
                        ("b64_json", b64_literal(one)),
                        ("flags", [True, False, None, -1.5e3]),
                    )
                ],
            ),
            ("usage", USAGE),
            ("trailer", Obj(("data", [Obj(("b64_json", "Y2Rl"))]))),
        ),
        "data-first-created-last": Obj(
            ("data", [Obj(("b64_json", b64_literal(one))), Obj(("b64_json", b64_literal(two)))]),
            ("size", "1024x1024"),
            ("quality", "high"),
            ("output_format", "png"),
            ("background", "opaque"),
            ("usage", USAGE),
            ("created", 1713833628),
        ),
    }
    for number, prompt in enumerate(TRICKY_PROMPTS):
        bodies[f"tricky-prompt-{number}"] = Obj(
            ("created", 1),
            ("data", [Obj(("revised_prompt", prompt), ("b64_json", b64_literal(one)), ("revised_prompt", prompt))]),
        )
    for name, literal in INVALID_B64.items():
        bodies["invalid-" + name] = Obj(
            ("created", 1),
            ("data", [Obj(("b64_json", b64_literal(one))), Obj(("b64_json", Lit(literal)))]),
        )
    written = {
        "standard-pretty": json.dumps(
            {"created": 1, "data": [{"b64_json": base64.b64encode(one).decode(), "revised_prompt": "x"}]}, indent=2
        ).encode()
    }
    for name, tree in bodies.items():
        written[name] = dump(tree, Style()).encode("utf-8")
        written[name + "~pretty"] = dump(tree, Style(random.Random(name), ensure_ascii=False)).encode("utf-8")
    return written


def random_body(seed: int) -> bytes:
    """1-4 items (images of random lengths, URLs, invalid base64, duplicate keys), extras, either style."""
    rng = random.Random(seed)
    items = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["image", "image", "image", "url", "invalid", "duplicate"])
        length = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, rng.randint(9, 80)])
        image = b64_literal(image_bytes(rng, length), rng, slashes=rng.random() < 0.5, letters=rng.random() < 0.3)
        pairs: List[Tuple[Any, Any]] = []
        if kind == "url":
            pairs.append(("url", f"https://files.example/{rng.randint(0, 99)}.png"))
        elif kind == "invalid":
            pairs.append(("b64_json", Lit(rng.choice(sorted(INVALID_B64.values())))))
        elif kind == "duplicate":
            first = rng.choice([b64_literal(image_bytes(rng, 5)), Lit(rng.choice(sorted(INVALID_B64.values())))])
            pairs += [("b64_json", first), ("revised_prompt", rng.choice(TRICKY_PROMPTS)), ("b64_json", image)]
        else:
            pairs.append(("b64_json", image))
        if rng.random() < 0.5:
            pairs.insert(rng.randint(0, len(pairs)), ("revised_prompt", rng.choice(TRICKY_PROMPTS)))
        if rng.random() < 0.3:
            pairs.insert(rng.randint(0, len(pairs)), ("extra", Obj(("b64_json", "QUJD"), ("n", [1, 2]))))
        rng.shuffle(pairs)  # duplicates keep their relative order only by chance: both paths agree anyway
        items.append(Obj(*pairs))
    top: List[Tuple[Any, Any]] = [("created", rng.randint(0, 2**31)), ("data", items)]
    extras = [
        ("usage", USAGE),
        ("size", "1536x1024"),
        ("quality", "low"),
        ("b64_json", "QUJD"),
        ("meta", Obj(("b64_json", "QUJD"), ("data", [Obj(("b64_json", "QUJD"))]))),
        ("note", rng.choice(TRICKY_PROMPTS)),
    ]
    top += rng.sample(extras, rng.randint(0, len(extras)))
    rng.shuffle(top)
    style = Style(rng if rng.random() < 0.5 else None, ensure_ascii=rng.random() < 0.5)
    return (style.ws() + dump(Obj(*top), style) + style.ws()).encode("utf-8")


BODIES = fixed_bodies()
BODIES.update({f"random-{seed}": random_body(seed) for seed in range(40)})


# -- the two paths -------------------------------------------------------------------------


Outcome = Tuple[Any, ...]


def outcome(image: Any) -> Outcome:
    """An image's bytes, or the class and path of the error using it raises."""
    try:
        data = image.data
    except ResponseValidationError as exc:
        return ("invalid", type(exc), exc.path)
    return ("data", data)


def summary(response: ImageResponse) -> Dict[str, Any]:
    return {
        "created": response.created,
        "size": response.size,
        "quality": response.quality,
        "output_format": response.output_format,
        "background": response.background,
        "usage": response.usage,
        "images": [(image.index, image.url, image.revised_prompt, outcome(image)) for image in response.images],
    }


def old_path(body: bytes) -> ImageResponse:
    """What the library did before issue 7: the whole body parsed, base64 decoded on access."""
    parsed = json.loads(body)
    assert _schemas.find_violation("images_response", parsed) is None
    return ImageResponse.from_body(parsed, HEADERS, request=REQUEST)


def _in_memory(item: Extracted) -> ImageSource:
    """What a scanned image becomes in a result: its bytes, or (at this level) the text found invalid at its end."""
    if item.text is not None:
        return Base64Text(item.text)
    return InlineBytes(cast(MemorySink, item.sink).data or b"")


def scan(chunks: Sequence[bytes]) -> Tuple[ImageBodyScanner, bytes, ImageResponse]:
    """The new path at the unit level, as ``provider._read_images`` does it (bytes mode)."""
    scanner = ImageBodyScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    skeleton = scanner.finish()
    parsed = json.loads(skeleton)
    assert _schemas.find_violation("images_response", parsed) is None
    inline = {index: _in_memory(item) for index, item in scanner.images_in(parsed).items()}
    return scanner, skeleton, ImageResponse.from_body(parsed, HEADERS, request=REQUEST, inline=inline)


def chunked(body: bytes, size: int) -> List[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


def random_chunks(body: bytes, rng: random.Random) -> List[bytes]:
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 24))))
    return [body[start:stop] for start, stop in zip([0, *cuts], [*cuts, len(body)])]


def all_valid(response: ImageResponse) -> bool:
    return all(outcome(image)[0] == "data" for image in response.images)


def assert_same_as_old_path(body: bytes, chunks: Sequence[bytes], old: ImageResponse) -> None:
    scanner, skeleton, new = scan(chunks)
    assert summary(new) == summary(old), f"chunks of {[len(chunk) for chunk in chunks][:5]}..."
    if all_valid(old):
        assert new.raw == old.raw
    expected = json.loads(body)
    # Strings at data[i].b64_json were extracted, and only those; the skeleton has "" there. Text
    # found not to be base64 while arriving went back to the parser, and reads as received.
    extracted = scanner.images_in(json.loads(skeleton))
    assert set(extracted) <= {i for i, item in enumerate(expected["data"]) if "b64_json" in item}
    assert all(outcome(new.images[index])[0] == "data" or extracted[index].text for index in extracted)
    for index in extracted:
        expected["data"][index]["b64_json"] = ""
    assert json.loads(skeleton) == expected


# -- 1. the scanner gives what the old path gives, at every chunking --------------------------


def test_the_bodies_cover_what_they_claim() -> None:
    """A guard on the generator: the cases below really contain what their names say."""
    every = b"\n".join(BODIES.values())
    for needle in (b"\\/", b"\\u00", b'\\\\\\"', b'\\"', b"\n", b'"b64_json": "', b'"url"', b"usage"):
        assert needle in every, needle
    results = [old_path(body) for body in BODIES.values()]
    outcomes = [outcome(image) for result in results for image in result.images]
    assert {kind for kind, *_ in outcomes} == {"data", "invalid"}
    lengths = {len(data) % 3 for kind, data, *_ in outcomes if kind == "data" and data is not None}
    assert lengths == {0, 1, 2} and ("data", b"") in outcomes
    assert any(image.url for result in results for image in result.images)
    assert max(len(result.images) for result in results) == 4


#: Chunk sizes: a few that split every kind of token in the fast lane, every size up to 70 in the full run.
CHUNKINGS = [
    pytest.param((1, 2, 3, 4, 7, 13, 64), 3, id="some-sizes"),
    pytest.param(tuple(range(1, 71)), 15, id="every-size", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("sizes", "random_runs"), CHUNKINGS)
@pytest.mark.parametrize("name", sorted(BODIES))
def test_scanner_matches_the_old_path_at_every_chunk_size(name: str, sizes: Tuple[int, ...], random_runs: int) -> None:
    body = BODIES[name]
    old = old_path(body)
    for size in sizes:
        assert_same_as_old_path(body, chunked(body, size), old)
    rng = random.Random(name)
    for _ in range(random_runs):
        assert_same_as_old_path(body, random_chunks(body, rng), old)


def test_invalid_base64_is_the_same_error_as_before() -> None:
    body = BODIES["invalid-bad-padding"]
    old, (_, _, new) = old_path(body), scan([body])
    with pytest.raises(ResponseValidationError) as before:
        old.images[1].data  # noqa: B018 (the access itself is what raises)
    with pytest.raises(ResponseValidationError) as after:
        new.images[1].data  # noqa: B018 (the access itself is what raises)
    assert after.value.path == before.value.path == ("data", 1, "b64_json")
    assert str(after.value) == str(before.value)
    assert new.images[0].data == old.images[0].data
    with pytest.raises(ResponseValidationError):
        new.images[1].mime_type  # noqa: B018 (the access itself is what raises)


def strict_b64decode(text: bytes) -> Union[bytes, str]:
    """RFC 4648 base64: whole quartets, padding only at the very end."""
    if len(text) % 4 or not re.fullmatch(rb"[A-Za-z0-9+/]*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", text):
        return "invalid"
    return base64.b64decode(text)


def old_b64decode(text: bytes) -> Union[bytes, str]:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "invalid"


def decode_like_the_scanner(text: bytes, size: int) -> Union[bytes, str]:
    extracted = Extracted(0, MemorySink())
    for piece in chunked(text, size):
        extracted.feed(piece)
    extracted.finish()
    sink = extracted.sink
    assert isinstance(sink, MemorySink)
    return "invalid" if extracted.error is not None else sink.data  # type: ignore[return-value]  # closed: data is set


#: Whole quartets, then a quartet of padding alone (``QUJD=``, ``=``): see the known bug below.
LONE_PADDING = re.compile(rb"(?:[A-Za-z0-9+/]{4})*={1,2}")


@pytest.mark.slow
def test_base64_decoding_exhaustively_on_short_strings() -> None:
    """Every string over ``Aw=`` up to 8 characters, fed in pieces of 1, 2 and 3: the scanner decodes
    exactly what strict RFC 4648 decodes and rejects the rest (lone padding quartets aside).

    The old path (``b64decode(validate=True)``) agrees on every valid string and rejects all but a
    few over-padded ones, which depend on the CPython version (``AAAA=`` on 3.11, ``AAA==`` on 3.8).
    """
    lenient = set()
    for length in range(9):
        for letters in itertools.product(b"Aw=", repeat=length):
            text = bytes(letters)
            expected = strict_b64decode(text)
            if not LONE_PADDING.fullmatch(text):
                for size in (1, 2, 3):
                    assert decode_like_the_scanner(text, size) == expected, (text, size)
            old = old_b64decode(text)
            if old != expected:
                assert expected == "invalid" and text.rstrip(b"=") != text, text
                lenient.add(text)
    assert b"AAAw" not in lenient and b"ww==" not in lenient and b"AAw=" not in lenient


def test_the_scanner_rejects_over_padding() -> None:
    for text in ("QUI==", "QUJDQQ===", "QUJD===", "QQ===", "Q==="):
        body = b'{"created":1,"data":[{"b64_json":"%s"}]}' % text.encode()
        _, _, new = scan(chunked(body, 3))
        with pytest.raises(ResponseValidationError) as caught:
            new.images[0].data  # noqa: B018 (the access itself is what raises)
        assert caught.value.path == ("data", 0, "b64_json")


#: Whether this CPython's ``b64decode(validate=True)`` takes a lone padding quartet (3.8 does; 3.11 does not).
PADDING_ALONE_DECODES = old_b64decode(b"=") == b""


@pytest.mark.parametrize("text", [b"=", b"==", b"QUJD=", b"QUJD==", b"QUJDQUJD="])
def test_a_lone_padding_quartet_is_rejected_on_every_python(text: bytes) -> None:
    assert strict_b64decode(text) == "invalid"
    for size in (1, 2, 3, 100):
        assert decode_like_the_scanner(text, size) == "invalid"


@pytest.mark.parametrize("name", ["decoys", "tricky-prompt-3~pretty", "invalid-escaped-quote", "random-3"])
@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 64, 65536])
def test_generate_image_reads_the_body_like_the_old_path(
    name: str, chunk_bytes: int, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the provider, with ``responses`` streaming the body to ``iter_content`` in pieces."""
    body = BODIES[name]
    fed = record_feeds(monkeypatch)
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", chunk_bytes)
    mocked.add(responses.POST, GENERATIONS_URL, body=body, content_type="application/json", headers=HEADERS)
    old = old_path(body)
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as provider:
        result = provider_outcome(provider, old)
    assert b"".join(fed) == body
    assert max(len(chunk) for chunk in fed) <= chunk_bytes
    assert len(fed) == -(-len(body) // chunk_bytes)  # really read piece by piece
    if result is not None:
        assert summary(result) == summary(old)
        assert result.request_id == "req_imagebody"
        assert result.raw == old.raw


@pytest.mark.parametrize("name", sorted(name for name in BODIES if "~" not in name))
def test_generate_image_matches_the_old_path_for_every_body(
    name: str, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = BODIES[name]
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", 7)
    mocked.add(responses.POST, GENERATIONS_URL, body=body, content_type="application/json")
    old = old_path(body)
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as provider:
        result = provider_outcome(provider, old)
    if result is not None:
        assert summary(result) == summary(old)


def provider_outcome(provider: OpenAIImageProvider, old: ImageResponse) -> Optional[ImageResponse]:
    """generate_image's result, which must be the old path's when every image is valid base64; when one
    is not, the call fails with a ResponseValidationError naming the first such image (issue 13, bug 10)."""
    invalid = [image.index for image in old.images if outcome(image)[0] == "invalid"]
    # As many images as the body holds are asked for: more than asked would be refused (issue 14).
    n = len(old.images)
    if not invalid:
        return provider.generate_image("A koi pond", model="gpt-image-2", n=n)
    with pytest.raises(ResponseValidationError) as caught:
        provider.generate_image("A koi pond", model="gpt-image-2", n=n)
    assert caught.value.path == ("data", invalid[0], "b64_json")
    assert caught.value.status_code == 200
    return None


def record_feeds(monkeypatch: pytest.MonkeyPatch) -> List[bytes]:
    """Record every chunk handed to a scanner."""
    fed: List[bytes] = []
    feed = ImageBodyScanner.feed

    def recording(self: ImageBodyScanner, chunk: bytes) -> None:
        fed.append(chunk)
        feed(self, chunk)

    monkeypatch.setattr(ImageBodyScanner, "feed", recording)
    return fed


# -- 2. bodies the scanner cannot follow are left to the parser ------------------------------

PLAIN_IMAGE = make_png(3, 3)
PLAIN = {
    "created": 1,
    "data": [{"b64_json": base64.b64encode(PLAIN_IMAGE).decode(), "revised_prompt": "caf\u00e9 \U0001f98a"}],
    "usage": USAGE,
}
PLAIN_TEXT = json.dumps(PLAIN, ensure_ascii=False)

ENCODED = {
    "utf-16-le": PLAIN_TEXT.encode("utf-16-le"),
    "utf-16-be": PLAIN_TEXT.encode("utf-16-be"),
    "utf-16-le-bom": codecs.BOM_UTF16_LE + PLAIN_TEXT.encode("utf-16-le"),
    "utf-16-be-bom": codecs.BOM_UTF16_BE + PLAIN_TEXT.encode("utf-16-be"),
    "utf-32-le": PLAIN_TEXT.encode("utf-32-le"),
    "utf-32-be": PLAIN_TEXT.encode("utf-32-be"),
    "utf-32-le-bom": codecs.BOM_UTF32_LE + PLAIN_TEXT.encode("utf-32-le"),
    "utf-32-be-bom": codecs.BOM_UTF32_BE + PLAIN_TEXT.encode("utf-32-be"),
    "utf-16-leading-space": (" \n" + PLAIN_TEXT).encode("utf-16-le"),
}
#: Bodies the scanner reads only partly or not at all: each must come out as before.
UNFOLLOWED = {**ENCODED}
#: Bodies the scanner follows although they look odd (escaped keys are read as ``json`` reads them).
ODD_BUT_FOLLOWED = {
    "escaped-data-key": PLAIN_TEXT.replace('"data"', '"d\\u0061ta"').encode(),
    "escaped-b64-key": PLAIN_TEXT.replace('"b64_json"', '"b64\\u005fjson"').encode(),
    "fully-escaped-b64-key": PLAIN_TEXT.replace(
        '"b64_json"', '"' + "".join(f"\\u{ord(c):04x}" for c in "b64_json") + '"'
    ).encode(),
    "utf-8-bom": codecs.BOM_UTF8 + PLAIN_TEXT.encode(),
    "whitespace-everywhere": dump(PLAIN, Style(random.Random(3))).encode(),
    "whitespace-runs": (
        "\r\n\t " + json.dumps(PLAIN, indent="\t\r\n ", separators=(" \n,\t", "\r : \n")) + " \t\r\n"
    ).encode(),
}


def test_json_accepts_every_encoding_used_here() -> None:
    """The premise: ``json.loads`` takes bytes in UTF-8 (with or without BOM), UTF-16 and UTF-32."""
    for body in [*UNFOLLOWED.values(), *ODD_BUT_FOLLOWED.values()]:
        assert json.loads(body) == PLAIN
    with pytest.raises(ValueError):
        json.loads(b"\xa0" + PLAIN_TEXT.encode())  # no-break space is not JSON whitespace


@pytest.mark.parametrize("name", sorted(UNFOLLOWED))
def test_unfollowed_bodies_are_left_whole_to_the_parser(name: str) -> None:
    body = UNFOLLOWED[name]
    old = old_path(body)
    assert outcome(old.images[0]) == ("data", PLAIN_IMAGE)
    for size in (1, 2, 3, 4, 5, 7, 64, len(body)):
        scanner, skeleton, new = scan(chunked(body, size))
        assert scanner.extracted == {}
        assert skeleton == body
        assert summary(new) == summary(old)
        assert new.raw == old.raw == PLAIN


@pytest.mark.parametrize("name", sorted(ODD_BUT_FOLLOWED))
def test_odd_but_valid_utf8_bodies_are_followed(name: str) -> None:
    body = ODD_BUT_FOLLOWED[name]
    old = old_path(body)
    for size in (1, 2, 3, 5, 64, len(body)):
        scanner, skeleton, new = scan(chunked(body, size))
        assert set(scanner.extracted) == {0}
        assert len(skeleton) == len(body) - len(PLAIN["data"][0]["b64_json"])
        assert summary(new) == summary(old)
        assert new.raw == old.raw == PLAIN


@pytest.mark.parametrize("name", sorted([*UNFOLLOWED, *ODD_BUT_FOLLOWED]))
def test_generate_image_reads_odd_bodies_like_the_old_path(
    name: str, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**UNFOLLOWED, **ODD_BUT_FOLLOWED}[name]
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", 5)
    mocked.add(responses.POST, GENERATIONS_URL, body=body, content_type="application/json")
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as provider:
        result = provider.generate_image("A koi pond", model="gpt-image-2")
    assert summary(result) == summary(old_path(body))
    assert result.images[0].data == PLAIN_IMAGE
    assert result.raw == PLAIN


BIG_B64 = base64.b64encode(bytes(range(256)) * 9000).decode()  # ~3 MB of base64
assert len(BIG_B64) > 3_000_000
BIG_ITEM = '{"b64_json":"' + BIG_B64 + '"}'
BROKEN_BODIES = {
    "truncated-in-base64": '{"created":1,"data":[' + BIG_ITEM[: len(BIG_ITEM) // 2],
    "truncated-after-image": '{"created":1,"data":[' + BIG_ITEM,
    "truncated-in-second-image": '{"created":1,"data":[' + BIG_ITEM + "," + BIG_ITEM[:-9],
    "garbage-before": 'HTTP/1.1 200 OK\r\n\r\n{"created":1,"data":[' + BIG_ITEM + "]}",
    "garbage-after": '{"created":1,"data":[' + BIG_ITEM + "]} trailing",
    "structure-broken-first": '{"created":1]"data":[' + BIG_ITEM + "]}",
    "unquoted-key-first": '{created:1,"data":[' + BIG_ITEM + "]}",
    "off-schema-created": '{"created":"yesterday","data":[' + BIG_ITEM + "]}",
    "off-schema-data": '{"created":1,"data":[' + BIG_ITEM + ',{"b64_json":42}]}',
    "null": "null",
    "empty": "",
    "html": "<html>" + BIG_B64 + "</html>",
}


@pytest.mark.parametrize("name", sorted(BROKEN_BODIES))
def test_broken_bodies_give_a_short_error(name: str, mocked: Any) -> None:
    body = BROKEN_BODIES[name].encode()
    try:
        parsed = json.loads(body)
    except ValueError:
        pass  # the old path failed too: not JSON
    else:
        assert parsed is None or _schemas.find_violation("images_response", parsed) is not None
    mocked.add(responses.POST, GENERATIONS_URL, body=body, content_type="application/json")
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as provider:
        with pytest.raises(ResponseValidationError) as caught:
            # n=2: every body here holds at most two images, so what fails is the break, not the count.
            provider.generate_image("A koi pond", model="gpt-image-2", n=2)
    error = caught.value
    assert error.status_code == 200
    assert error.body is not None and len(error.body) <= _errors.BODY_EXCERPT_CHARS + 40
    assert len(str(error)) < 400
    if name.startswith("off-schema"):
        assert error.path
        # The scanner followed these bodies: the excerpt holds the skeleton, no base64 at all.
        assert BIG_B64[:40] not in error.body
        assert '"b64_json":""' in error.body


# -- 3. over real sockets: the stand-in's images, read as they arrive -------------------------


@pytest.mark.slow
def test_large_images_over_sockets_equal_a_plain_requests_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"prompt": "A lighthouse at dusk, oil painting", "model": "gpt-image-2", "n": 4, "size": "1536x1024"}
    fed = record_feeds(monkeypatch)
    with FakeImagesServer() as server:
        headers = {"Authorization": "Bearer " + server.api_key}
        plain = []
        for _ in range(2):
            answer = requests.post(server.base_url + "/images/generations", json=params, headers=headers, timeout=60)
            assert answer.status_code == 200
            plain.append([base64.b64decode(item["b64_json"], validate=True) for item in answer.json()["data"]])
        assert plain[0] == plain[1]  # the stand-in is deterministic for the same prompt and parameters
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url, max_retries=0) as provider:
            result = provider.generate_image(
                params["prompt"], model=params["model"], n=params["n"], size=params["size"]
            )
        sent = [request.body for request in server.requests]
    assert sent == [params, params, params]
    assert [image.data for image in result.images] == plain[0]
    assert len(plain[0]) == 4 and len(set(plain[0])) == 4
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1_000_000 for data in plain[0])
    assert [image.mime_type for image in result.images] == ["image/png"] * 4
    assert len(fed) > 100  # read in 64 KiB pieces, never whole
    assert max(len(chunk) for chunk in fed) <= _response.BODY_CHUNK_BYTES
    assert [item["b64_json"] for item in result.raw["data"]] == [base64.b64encode(data).decode() for data in plain[0]]


# -- 4. save_to ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeImagesServer]:
    # Before the shutdowns: dall-e-2, the model of URL results and variations, is still served.
    with FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS) as running:
        yield running


@pytest.fixture
def client(server: FakeImagesServer) -> Iterator[OpenAIImageProvider]:
    with OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url, max_retries=0, clock=BEFORE_SHUTDOWNS
    ) as provider:
        yield provider


def test_save_to_writes_the_bytes_mode_images_byte_for_byte(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = record_parts(monkeypatch)
    prompt = "A red fox in the snow!"
    in_memory = client.generate_image(prompt, n=3)
    folder = tmp_path / "new" / "foxes"  # created on demand
    saved = client.generate_image(prompt, n=3, save_to=folder)
    names = ["a-red-fox-in-the-snow-1.png", "a-red-fox-in-the-snow-2.png", "a-red-fox-in-the-snow-3.png"]
    files = folder_snapshot(folder)
    assert sorted(files) == names  # nothing else: no .part, no sidecar
    assert len(opened) == 3 and not any(os.path.exists(part) for part in opened)
    expected = [image.data for image in in_memory.images]
    assert len(set(expected)) == 3
    assert [files[name] for name in names] == expected
    for image, name, data in zip(saved.images, names, expected):
        assert image.path == folder / name
        assert image.data == data
        assert image.mime_type == "image/png"
        assert image.b64_json == base64.b64encode(data).decode() == in_memory.images[image.index].b64_json
        assert image.url is None
    assert saved.raw["data"] == in_memory.raw["data"]
    assert saved.usage == in_memory.usage and saved.size == in_memory.size
    # Named as save_all names them.
    assert sorted(path.name for path in in_memory.save_all(tmp_path / "save_all")) == names
    # A single image takes the bare stem.
    single = client.generate_image(prompt, save_to=tmp_path / "single")
    assert sorted(folder_snapshot(tmp_path / "single")) == ["a-red-fox-in-the-snow.png"]
    assert single.images[0].path == tmp_path / "single" / "a-red-fox-in-the-snow.png"


@pytest.mark.parametrize(
    ("output_format", "extension", "magic"),
    [("png", ".png", b"\x89PNG"), ("jpeg", ".jpg", b"\xff\xd8"), ("webp", ".webp", b"RIFF")],
)
def test_save_to_takes_the_extension_from_the_bytes(
    client: OpenAIImageProvider, tmp_path: Path, output_format: str, extension: str, magic: bytes
) -> None:
    in_memory = client.generate_image("Koi", n=2, output_format=output_format)
    saved = client.generate_image("Koi", n=2, output_format=output_format, save_to=tmp_path)
    assert sorted(folder_snapshot(tmp_path)) == ["koi-1" + extension, "koi-2" + extension]
    for image, reference in zip(saved.images, in_memory.images):
        assert image.path is not None and image.path.read_bytes()[: len(magic)] == magic
        assert image.data == reference.data
        assert image.mime_type == reference.mime_type


def test_save_to_with_metadata_writes_sidecars(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path
) -> None:
    saved = client.generate_image("Owl at night", n=2, quality="low", save_to=tmp_path, metadata=True)
    files = folder_snapshot(tmp_path)
    assert sorted(files) == ["owl-at-night-1.json", "owl-at-night-1.png", "owl-at-night-2.json", "owl-at-night-2.png"]
    sent = server.requests[-1].body
    for image in saved.images:
        sidecar = json.loads(files[f"owl-at-night-{image.index + 1}.json"])
        assert sidecar["file"] == f"owl-at-night-{image.index + 1}.png"
        assert sidecar["index"] == image.index
        assert sidecar["prompt"] == "Owl at night"
        assert sidecar["model"] == "gpt-image-2"
        assert sidecar["parameters"] == sent
        assert sidecar["request_id"] == saved.request_id
        assert sidecar["created"] == saved.created
        assert sidecar["usage"]["total_tokens"] == saved.usage.total_tokens  # type: ignore[union-attr]  # the stand-in reports usage


@pytest.mark.parametrize(
    ("existing", "metadata"),
    [("koi-2.png", False), ("koi-1.webp", False), ("koi-1.jpg", False), ("koi-2.json", True)],
)
def test_an_existing_target_is_refused_before_anything_is_sent(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path, existing: str, metadata: bool
) -> None:
    (tmp_path / existing).write_bytes(b"keep me")
    before = folder_snapshot(tmp_path)
    with pytest.raises(FileExistsError) as caught:
        client.generate_image("Koi", n=2, save_to=tmp_path, metadata=metadata)
    assert existing in str(caught.value)
    assert server.requests == []
    assert server.connections_accepted == 0
    assert folder_snapshot(tmp_path) == before


def test_an_existing_sidecar_does_not_block_without_metadata(client: OpenAIImageProvider, tmp_path: Path) -> None:
    (tmp_path / "koi.json").write_bytes(b"{}")
    client.generate_image("Koi", save_to=tmp_path)
    assert sorted(folder_snapshot(tmp_path)) == ["koi.json", "koi.png"]


def test_overwrite_replaces_existing_files(client: OpenAIImageProvider, tmp_path: Path) -> None:
    reference = client.generate_image("Koi", n=2, output_format="webp")
    for name in ("koi-1.webp", "koi-2.webp", "koi-1.json"):
        (tmp_path / name).write_bytes(b"old")
    saved = client.generate_image("Koi", n=2, output_format="webp", save_to=tmp_path, overwrite=True, metadata=True)
    files = folder_snapshot(tmp_path)
    assert sorted(files) == ["koi-1.json", "koi-1.webp", "koi-2.json", "koi-2.webp"]
    assert [files["koi-1.webp"], files["koi-2.webp"]] == [image.data for image in reference.images]
    assert json.loads(files["koi-1.json"])["file"] == "koi-1.webp"
    assert saved.images[1].path == tmp_path / "koi-2.webp"


def scripted_body(*items: str) -> bytes:
    return ('{"created":1713833628,"data":[' + ",".join(items) + '],"usage":' + json.dumps(USAGE) + "}").encode()


def image_item(data: bytes) -> str:
    return '{"b64_json":"' + base64.b64encode(data).decode() + '"}'


@pytest.mark.parametrize(
    ("items", "path"),
    [
        ([image_item(PNG), '{"b64_json":"QQ=A"}'], ("data", 1, "b64_json")),
        (['{"b64_json":"QUJ"}', image_item(PNG)], ("data", 0, "b64_json")),
        ([image_item(PNG), '{"b64_json":"' + base64.b64encode(PNG).decode() + '\\n"}'], ("data", 1, "b64_json")),
        ([image_item(PNG), image_item(b"BM a bitmap, not a format we save")], None),
        ([image_item(PNG), image_item(PNG)[:-5]], ()),  # not JSON
        ([image_item(PNG), '{"b64_json":42}'], ("data", 1, "b64_json")),  # off-schema
    ],
    ids=["invalid-second", "invalid-first", "newline-inside", "not-an-image", "truncated-json", "off-schema"],
)
def test_an_unusable_body_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, items: List[str], path: Optional[Tuple[Any, ...]]
) -> None:
    opened = record_parts(monkeypatch)
    (tmp_path / "unrelated.txt").write_bytes(b"untouched")
    before = folder_snapshot(tmp_path)
    body = scripted_body(*items)
    with ScriptedServer([Reply(200, body)]) as scripted:
        with OpenAIImageProvider(api_key=API_KEY, base_url=scripted.base_url, max_retries=0) as provider:
            with pytest.raises(ResponseValidationError) as caught:
                provider.generate_image("Koi", n=2, save_to=tmp_path)
        assert len(scripted.received) == 1
    if path is not None:
        assert caught.value.path == path
    assert opened, "the first image was being written before the body turned out unusable"
    assert not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == before


def test_a_target_that_appears_while_the_body_arrives_is_not_replaced(
    client: OpenAIImageProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are checked again before publishing: nothing is published if one is taken meanwhile."""
    opened: List[str] = []
    open_sink = FolderSaver.open_sink

    def racing(self: FolderSaver, index: int) -> PartFile:
        if not opened:
            (tmp_path / "koi-2.png").write_bytes(b"someone else's")
        part = open_sink(self, index)
        opened.append(part.temporary)
        return part

    monkeypatch.setattr(FolderSaver, "open_sink", racing)
    with pytest.raises(FileExistsError) as caught:
        client.generate_image("Koi", n=2, save_to=tmp_path)
    assert "koi-2.png" in str(caught.value)
    assert len(opened) == 2 and not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == {"koi-2.png": b"someone else's"}


def test_a_connection_dropped_mid_body_leaves_the_folder_as_it_was(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = record_parts(monkeypatch)
    (tmp_path / "unrelated.txt").write_bytes(b"untouched")
    before = folder_snapshot(tmp_path)
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", 4096)  # so the images before the cut reach the scanner
    server.add_fault(Fault.drop_mid_body())
    with pytest.raises(APIConnectionError):
        client.generate_image("Koi", n=4, save_to=tmp_path)
    assert len(opened) >= 2  # half the body: two images complete, so written to .part files
    assert not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == before
    # The provider is still usable, and the same call now succeeds.
    client.generate_image("Koi", n=4, save_to=tmp_path)
    assert sorted(folder_snapshot(tmp_path)) == ["koi-1.png", "koi-2.png", "koi-3.png", "koi-4.png", "unrelated.txt"]


def test_a_reset_mid_body_leaves_the_folder_as_it_was(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path
) -> None:
    server.add_fault(Fault.reset_mid_body())
    with pytest.raises(APIConnectionError):
        client.generate_image("Koi", n=4, save_to=tmp_path)
    assert folder_snapshot(tmp_path) == {}


def test_a_body_shorter_than_its_content_length_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw socket server declares more bytes than it sends, then closes (urllib3 1.26 and 2 differ here)."""
    opened = record_parts(monkeypatch)
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", 16)  # so the images before the cut reach the scanner
    body = scripted_body(image_item(PNG), image_item(make_png(5, 5)))
    cut = body[: len(body) - 20]
    reply = Reply(200, cut, {"Content-Length": str(len(body))})
    with ScriptedServer([reply]) as scripted:
        with OpenAIImageProvider(api_key=API_KEY, base_url=scripted.base_url, max_retries=2) as provider:
            with pytest.raises(APIConnectionError) as caught:
                provider.generate_image("Koi", n=2, save_to=tmp_path)
            # Bytes mode too: the cut is a connection error, not a JSON one.
            with pytest.raises(APIConnectionError):
                provider.generate_image("Koi", n=2)
        assert len(scripted.received) == 2  # never retried: the request had been processed
    assert "cut short" in str(caught.value)
    assert len(opened) == 2 and not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == {}


def test_a_gzip_body_is_read_as_it_arrives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed body (the client accepts gzip) is decoded beneath the scanner; its cut is still caught."""
    fed = record_feeds(monkeypatch)
    monkeypatch.setattr(_response, "BODY_CHUNK_BYTES", 64)
    images = [PNG, make_png(7, 5)]
    compressed = gzip.compress(scripted_body(*(image_item(data) for data in images)))
    replies = [
        Reply(200, compressed, {"Content-Encoding": "gzip"}),
        Reply(200, compressed[:-10], {"Content-Encoding": "gzip", "Content-Length": str(len(compressed))}),
    ]
    with ScriptedServer(replies) as scripted:
        with OpenAIImageProvider(api_key=API_KEY, base_url=scripted.base_url, max_retries=0) as provider:
            saved = provider.generate_image("Koi", n=2, save_to=tmp_path / "ok")
            with pytest.raises(APIConnectionError):
                provider.generate_image("Koi", n=2, save_to=tmp_path / "cut")
        assert "gzip" in scripted.received[0].headers["Accept-Encoding"]
    assert folder_snapshot(tmp_path / "ok") == {"koi-1.png": images[0], "koi-2.png": images[1]}
    assert [image.data for image in saved.images] == images
    assert folder_snapshot(tmp_path / "cut") == {}
    assert len(fed) > 2 and fed[0].startswith(b"{")  # decompressed, in pieces


def test_a_disk_error_while_saving_is_an_oserror_and_leaves_no_part(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = record_parts(monkeypatch)
    writes: List[int] = []
    write = PartFile.write

    def failing(self: PartFile, data: bytes) -> None:
        writes.append(len(data))
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)

    monkeypatch.setattr(PartFile, "write", failing)
    with pytest.raises(OSError) as caught:
        client.generate_image("Koi", n=2, save_to=tmp_path)
    assert type(caught.value) is OSError and caught.value.errno == errno.ENOSPC
    assert not isinstance(caught.value, APIConnectionError)
    assert len(writes) == 2 and opened
    assert not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == {}
    monkeypatch.setattr(PartFile, "write", write)
    client.generate_image("Koi", n=2, save_to=tmp_path)
    assert sorted(folder_snapshot(tmp_path)) == ["koi-1.png", "koi-2.png"]


def test_url_results_are_downloaded_into_the_folder(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path
) -> None:
    saved = client.generate_image(
        "Owls", model="dall-e-2", response_format="url", n=2, size="256x256", save_to=tmp_path
    )
    files = folder_snapshot(tmp_path)
    assert sorted(files) == ["owls-1.png", "owls-2.png"]
    assert [(request.method, request.path.split("/")[1]) for request in server.requests] == [
        ("POST", "v1"),
        ("GET", "fake-files"),
        ("GET", "fake-files"),
    ]
    for image in saved.images:
        assert image.url is not None and image.path == tmp_path / f"owls-{image.index + 1}.png"
        served = requests.get(image.url, timeout=30).content
        assert served[:4] == b"\x89PNG" and served == files[image.path.name] == image.data
        assert image.mime_type == "image/png"
    assert [item["url"] for item in saved.raw["data"]] == [image.url for image in saved.images]


def test_edit_image_with_save_to(client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path) -> None:
    source = make_png(16, 16)
    in_memory = client.edit_image("Put the cat in a space suit", [source, make_jpeg(16, 16)], n=2)
    saved = client.edit_image(
        "Put the cat in a space suit", [source, make_jpeg(16, 16)], n=2, save_to=tmp_path, metadata=True
    )
    files = folder_snapshot(tmp_path)
    stem = "put-the-cat-in-a-space-suit"
    assert sorted(files) == [f"{stem}-1.json", f"{stem}-1.png", f"{stem}-2.json", f"{stem}-2.png"]
    assert [files[f"{stem}-1.png"], files[f"{stem}-2.png"]] == [image.data for image in in_memory.images]
    assert [image.path for image in saved.images] == [tmp_path / f"{stem}-1.png", tmp_path / f"{stem}-2.png"]
    assert [request.path for request in server.requests] == ["/v1/images/edits"] * 2


def test_edit_image_from_refs_with_save_to(client: OpenAIImageProvider, tmp_path: Path) -> None:
    data_url = "data:image/webp;base64," + base64.b64encode(make_webp(16, 16)).decode()
    in_memory = client.edit_image_from_refs("Watercolour", images=[{"image_url": data_url}])
    saved = client.edit_image_from_refs("Watercolour", images=[{"image_url": data_url}], save_to=tmp_path)
    assert folder_snapshot(tmp_path) == {"watercolour.png": in_memory.images[0].data}
    assert saved.images[0].path == tmp_path / "watercolour.png"


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_create_variation_with_save_to(
    client: OpenAIImageProvider, server: FakeImagesServer, tmp_path: Path, response_format: str
) -> None:
    square = make_png(32, 32)
    saved = client.create_variation(square, n=2, size="256x256", response_format=response_format, save_to=tmp_path)
    files = folder_snapshot(tmp_path)
    assert sorted(files) == ["image-1.png", "image-2.png"]
    reference = client.create_variation(square, n=2, size="256x256", response_format="b64_json")
    assert [files["image-1.png"], files["image-2.png"]] == [image.data for image in reference.images]
    assert [image.path for image in saved.images] == [tmp_path / "image-1.png", tmp_path / "image-2.png"]
    assert all(image.mime_type == "image/png" for image in saved.images)
    assert (saved.images[0].url is not None) == (response_format == "url")


# -- edge cases that were bugs of the first version of the scanner --------------------------------


def provider_result(body: bytes, mocked: Any, **params: Any) -> ImageResponse:
    mocked.add(responses.POST, GENERATIONS_URL, body=body, content_type="application/json")
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as provider:
        return provider.generate_image("A koi pond", model="gpt-image-2", **params)


A, B = base64.b64encode(b"first image").decode(), base64.b64encode(b"later image").decode()


def fill(template: str, *values: str) -> str:
    """``template`` with each ``@`` replaced by the next value (JSON is full of braces and percent signs)."""
    pieces = template.split("@")
    assert len(pieces) == len(values) + 1
    return "".join(piece + value for piece, value in zip(pieces, values)) + pieces[-1]


@pytest.mark.parametrize(
    "body",
    [
        fill('{"created":1,"data":[{"b64_json":"@","b64_js\\u006fn":"@"}]}', A, B),
        fill('{"created":1,"data":[{"b64_json":"@"}],"d\\u0061ta":[{"b64_json":"@"}]}', A, B),
    ],
    ids=["item-key", "data-key"],
)
def test_a_later_escaped_duplicate_key_wins(body: str, mocked: Any) -> None:
    result = provider_result(body.encode(), mocked)
    assert result.images[0].data == b"later image" == old_path(body.encode()).images[0].data


def test_a_later_duplicate_data_array_replaces_the_earlier_images(mocked: Any) -> None:
    body = fill('{"created":1,"data":[{"b64_json":"@"}],"data":[{"url":"https://files.example/x.png"}]}', A)
    result = provider_result(body.encode(), mocked)
    assert summary(result) == summary(old_path(body.encode()))  # URL only: no inline data


def test_save_to_with_a_shorter_later_data_array(mocked: Any, tmp_path: Path) -> None:
    png = base64.b64encode(PNG).decode()
    body = fill('{"created":1,"data":[{"b64_json":"@"},{"b64_json":"@"}],"data":[{"b64_json":"@"}]}', png, png, png)
    result = provider_result(body.encode(), mocked, save_to=tmp_path, n=2)
    assert sorted(folder_snapshot(tmp_path)) == ["a-koi-pond.png"]
    assert result.images[0].data == PNG


def test_a_response_with_invalid_base64_is_refused(mocked: Any) -> None:
    body = BODIES["invalid-bad-padding"]
    with pytest.raises(ResponseValidationError) as caught:
        provider_result(body, mocked, n=2)
    assert caught.value.path[::2] == ("data", "b64_json")


@pytest.mark.parametrize(
    "inside", [b"QU\nJD", b"QU\tJD", b"QU\\xJD", b"QU\\u00zzJD", b"QU\xffJD", b"QU\\UJD"], ids=repr
)
def test_invalid_json_inside_an_image_string_fails_the_call(inside: bytes, mocked: Any) -> None:
    body = b'{"created":1,"data":[{"b64_json":"' + inside + b'"}]}'
    with pytest.raises(ValueError):
        json.loads(body)  # the old path: the call itself raised "not valid JSON"
    with pytest.raises(ResponseValidationError) as caught:
        provider_result(body, mocked)
    assert "not valid JSON" in str(caught.value)


def utf16_decoy_body() -> bytes:
    """A UTF-16 body whose revised prompt (CJK characters) reads, byte by byte, as a ``data`` array."""
    decoy = b'"}],"data":[{"b64_json":"QUJD"}],"z":[{x'
    assert len(decoy) % 2 == 0
    prompt = decoy.decode("utf-16-le")
    text = json.dumps(
        {"created": 1, "data": [{"url": "https://files.example/a.png", "revised_prompt": prompt}]}, ensure_ascii=False
    )
    body = text.encode("utf-16-le")
    assert decoy in body
    return body


def test_a_utf16_body_is_never_scanned_for_images(mocked: Any) -> None:
    body = utf16_decoy_body()
    old = old_path(body)
    assert old.images[0].data is None and old.images[0].url
    # Today the prompt loses 'QUJD' and the URL result gains the bytes b"ABC".
    assert summary(provider_result(body, mocked)) == summary(old)


def test_a_failed_url_download_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    with ScriptedServer([]) as scripted:
        root = scripted.base_url[: -len("/v1")]
        body = {"created": 1, "data": [{"url": root + "/a.png"}, {"url": root + "/b.png"}]}
        scripted.replies[:] = [
            Reply(200, body),
            Reply(200, PNG, {"Content-Type": "image/png"}),
            Reply(404, b"gone", {"Content-Type": "text/plain"}),
        ]
        with OpenAIImageProvider(
            api_key=API_KEY, base_url=scripted.base_url, max_retries=0, clock=BEFORE_SHUTDOWNS
        ) as provider:
            with pytest.raises(ImageExpiredError):
                provider.generate_image("Owls", model="dall-e-2", response_format="url", n=2, save_to=tmp_path)
    assert folder_snapshot(tmp_path) == {}
