"""The stand-in server's own API rules (as of 2026-12-03), its model list and its GIF and SVG answers.

Everything goes over real sockets with plain ``requests``, never through the
client, so these tests pin what the stand-in answers whatever the client
does: status, error ``code`` and ``param`` for each rule; the 404 of every
shut-down model and its success the day before; ``GET /v1/models``; animated
GIFs parsed and LZW-decoded here, by a decoder written from the GIF89a
specification; SVGs parsed with ``xml.etree``.
"""

import ast
import base64
import datetime
import json
import pathlib
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest
import requests
from helpers import make_jpeg, make_webp

from imageprovider import _schemas
from imageprovider.testing import FakeImagesServer, _cli
from imageprovider.testing._gif import _make_gif, delay_centiseconds, make_gif
from imageprovider.testing._imagehead import read_head
from imageprovider.testing._images import SAMPLE_JPEG, SAMPLE_WEBP, SAMPLE_WEBP_ALPHA

HTTP_TIMEOUT = 10
BEFORE_SHUTDOWNS = datetime.date(2026, 1, 1)
#: The date the facts were checked: every model with a shutdown date is gone by then.
CHECKED = datetime.date(2026, 12, 3)
FAR_FUTURE = datetime.date(2031, 1, 1)
SVG_NS = "{http://www.w3.org/2000/svg}"

#: Each shut-down model, its shutdown day, and a request body it took the day before.
SHUT_DOWN = [
    ("dall-e-2", datetime.date(2026, 5, 12), {"size": "256x256"}),
    ("dall-e-3", datetime.date(2026, 5, 12), {"size": "1024x1024"}),
    ("gpt-image-1", datetime.date(2026, 10, 23), {"size": "1024x1024", "quality": "low"}),
    ("gpt-image-1.5", datetime.date(2026, 12, 1), {"size": "1024x1024", "quality": "low"}),
    ("gpt-image-1.5-2025-12-16", datetime.date(2026, 12, 1), {"size": "1024x1024"}),
    ("gpt-image-1-mini", datetime.date(2026, 12, 1), {"size": "1024x1024"}),
    ("chatgpt-image-latest", datetime.date(2026, 12, 1), {"size": "1024x1024"}),
]
ACTIVE = [
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-flare-2026-09-08",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.6-flare",
    "gpt-image-2.6-sunburst",
]


# -- helpers -----------------------------------------------------------------------


def png(width: int, height: int, colour_type: int = 2, trns: bool = False) -> bytes:
    """A real PNG; colour type 2 (RGB), 6 (RGBA, all transparent) or 3 (palette, with ``trns``)."""
    channels = {2: 3, 3: 1, 6: 4}[colour_type]
    rows = (b"\x00" + b"\x00" * channels * width) * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    chunks = [chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))]
    if colour_type == 3:
        chunks.append(chunk(b"PLTE", b"\x10\x20\x30"))
    if trns:
        chunks.append(chunk(b"tRNS", b"\x00"))
    chunks += [chunk(b"IDAT", zlib.compress(rows)), chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def data_url(data: bytes, mime_type: str = "image/png") -> str:
    return f"data:{mime_type};base64," + base64.b64encode(data).decode("ascii")


IMAGE = png(64, 64)
MASK = png(64, 64, 6)


def post(server: FakeImagesServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", {"Authorization": "Bearer " + server.api_key})
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return requests.post(server.base_url + path, **kwargs)


def get(server: FakeImagesServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", {"Authorization": "Bearer " + server.api_key})
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return requests.get(server.base_url + path, **kwargs)


def generate(server: FakeImagesServer, **fields: Any) -> requests.Response:
    body: Dict[str, Any] = {"model": "gpt-image-2", "prompt": "A lighthouse at dusk", "size": "1024x1024"}
    body.update(fields)
    return post(server, "/images/generations", json={key: value for key, value in body.items() if value is not None})


def edit_json(server: FakeImagesServer, **fields: Any) -> requests.Response:
    body: Dict[str, Any] = {
        "model": "gpt-image-2",
        "prompt": "Add a hat",
        "size": "1024x1024",
        "images": [{"image_url": data_url(IMAGE)}],
    }
    body.update(fields)
    return post(server, "/images/edits", json=body)


def edit_multipart(
    server: FakeImagesServer, files: List[Tuple[str, Tuple[str, bytes, str]]], **fields: Any
) -> requests.Response:
    data = {"model": "gpt-image-2", "prompt": "Add a hat", "size": "1024x1024"}
    data.update(fields)
    return post(server, "/images/edits", data=data, files=files)


def refused(response: requests.Response, status: int, param: Optional[str], code: Optional[str] = None) -> str:
    """The response is the API's error shape with ``status``, ``param`` (and ``code``); returns the message."""
    assert response.status_code == status, response.text[:400]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


def ok(response: requests.Response) -> Dict[str, Any]:
    assert response.status_code == 200, response.text[:400]
    body: Dict[str, Any] = response.json()
    assert _schemas.find_violation("images_response", body) is None
    return body


def image_bytes(body: Dict[str, Any], index: int = 0) -> bytes:
    return base64.b64decode(body["data"][index]["b64_json"])


# The rule tests only send requests, so they share two servers per module (stopping one takes ~50 ms).


@pytest.fixture(scope="module")
def server() -> Iterator[FakeImagesServer]:
    """A server on the day the facts were checked (2026-12-03)."""
    with FakeImagesServer(detail_bits=0, today=CHECKED) as running:
        yield running


@pytest.fixture(scope="module")
def old_server() -> Iterator[FakeImagesServer]:
    """A server on a day before every shutdown."""
    with FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS) as running:
        yield running


# -- a GIF reader written from the GIF89a specification ------------------------------------


def lzw_decode(data: bytes, minimum_size: int) -> bytes:
    """Decode GIF LZW data (variable-length codes, LSB first, clear and end codes, 12-bit limit)."""
    clear, end = 1 << minimum_size, (1 << minimum_size) + 1
    table: List[bytes] = []
    size = minimum_size + 1
    previous: Optional[bytes] = None
    out = bytearray()
    buffer, bits, position = 0, 0, 0

    def reset() -> None:
        table[:] = [bytes([value]) for value in range(clear)] + [b"", b""]

    reset()
    while True:
        while bits < size:
            assert position < len(data), "the data ran out before the end code"
            buffer |= data[position] << bits
            bits += 8
            position += 1
        code = buffer & ((1 << size) - 1)
        buffer >>= size
        bits -= size
        if code == clear:
            reset()
            size, previous = minimum_size + 1, None
            continue
        if code == end:
            return bytes(out)
        if code < len(table):
            entry = table[code]
        else:
            assert code == len(table) and previous is not None, f"code {code} is not in the table yet"
            entry = previous + previous[:1]
        if previous is not None and len(table) < 4096:
            table.append(previous + entry[:1])
            if len(table) == 1 << size and size < 12:
                size += 1
        out += entry
        previous = entry


class GifFrame:
    def __init__(self, control: Optional[bytes], left: int, top: int, width: int, height: int, pixels: bytes) -> None:
        assert control is not None, "every frame has a Graphic Control Extension"
        packed, self.delay, self.transparent_index = struct.unpack("<BHB", control)
        self.disposal = (packed >> 2) & 7
        self.has_transparency = bool(packed & 1)
        self.left, self.top, self.width, self.height = left, top, width, height
        self.pixels = pixels

    def row(self, y: int) -> bytes:
        return self.pixels[y * self.width : (y + 1) * self.width]


def read_gif(data: bytes, decode: bool = True) -> Tuple[int, int, bytes, Optional[int], List[GifFrame]]:
    """``(width, height, palette, loop count, frames)``; with ``decode``, every frame's pixels too."""
    assert data[:6] == b"GIF89a"
    width, height, packed, _background, _aspect = struct.unpack_from("<HHBBB", data, 6)
    position = 13
    palette = b""
    if packed & 0x80:
        palette = data[position : position + 3 * (2 << (packed & 7))]
        position += len(palette)
    loop: Optional[int] = None
    control: Optional[bytes] = None
    frames: List[GifFrame] = []

    def blocks() -> bytes:
        nonlocal position
        pieces = []
        while data[position]:
            pieces.append(data[position + 1 : position + 1 + data[position]])
            position += 1 + data[position]
        position += 1
        return b"".join(pieces)

    while True:
        introducer = data[position]
        if introducer == 0x3B:
            assert position == len(data) - 1, "bytes after the trailer"
            return width, height, palette, loop, frames
        if introducer == 0x21:
            label, position = data[position + 1], position + 2
            if label == 0xFF:
                size = data[position]
                identifier = data[position + 1 : position + 1 + size]
                position += 1 + size
                payload = blocks()
                if identifier == b"NETSCAPE2.0":
                    assert payload[0] == 1
                    (loop,) = struct.unpack("<H", payload[1:3])
            elif label == 0xF9:
                assert data[position] == 4
                control = data[position + 1 : position + 5]
                position += 5
                assert data[position] == 0
                position += 1
            else:
                blocks()
            continue
        assert introducer == 0x2C, hex(introducer)
        left, top, frame_width, frame_height, frame_packed = struct.unpack_from("<HHHHB", data, position + 1)
        position += 10
        assert not frame_packed & 0x80, "no local colour table expected"
        minimum_size = data[position]
        position += 1
        compressed = blocks()
        pixels = lzw_decode(compressed, minimum_size) if decode else b""
        if decode:
            assert len(pixels) == frame_width * frame_height
        frames.append(GifFrame(control, left, top, frame_width, frame_height, pixels))
        control = None


def bar_of(row: bytes) -> Tuple[int, int, int]:
    """``(colour, start, stop)`` of the one stretch of a row that differs from the rest of it."""
    background = row[0] if row[0] == row[-1] else max(set(row), key=row.count)
    inside = [x for x, value in enumerate(row) if value != background]
    assert inside, "every row crosses the bar"
    start, stop = inside[0], inside[-1] + 1
    assert set(row[start:stop]) == {row[start]}, "the bar is one colour"
    assert set(row[:start] + row[stop:]) == {background}, "the rest of the row is one colour"
    return row[start], start, stop


# -- the stand-in's rules are its own ------------------------------------------------------


def client_modules_imported(source: pathlib.Path) -> Set[str]:
    """Modules of the ``imageprovider`` package outside ``testing`` that a stand-in module imports."""
    used: Set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from .. import x, from ..x import y
            used.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "imageprovider":
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("imageprovider."):
            used.add((node.module or "").split(".")[1])
        elif isinstance(node, ast.Import):
            used.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("imageprovider."))
    return used - {"testing"}


def test_the_stand_in_does_not_import_the_clients_validation() -> None:
    """An independent oracle: nothing in imageprovider/testing uses the client's rules, model table or input checks."""
    package = pathlib.Path(__file__).resolve().parent.parent / "imageprovider" / "testing"
    sources = sorted(package.glob("*.py"))
    assert {source.name for source in sources} >= {"_api.py", "_rules.py", "_server.py", "_imagehead.py"}
    for source in sources:
        allowed = {"provider"} if source.name == "pytest_plugin.py" else {"_schemas", "_multipart"}
        assert client_modules_imported(source) <= allowed, source.name


# -- models and dates -----------------------------------------------------------------------


@pytest.mark.parametrize("model, shutdown, fields", SHUT_DOWN, ids=[entry[0] for entry in SHUT_DOWN])
def test_shut_down_models_get_404_model_not_found_from_their_shutdown_day(
    make_server: Callable[..., FakeImagesServer], model: str, shutdown: datetime.date, fields: Dict[str, Any]
) -> None:
    server = make_server(today=shutdown - datetime.timedelta(days=1))
    assert generate(server, model=model, **fields).status_code == 200
    for day in (shutdown, shutdown + datetime.timedelta(days=400)):
        server.today = day
        message = refused(generate(server, model=model, **fields), 404, "model", "model_not_found")
        assert message.startswith(f"The model `{model}` has been shut down on {shutdown.isoformat()}")
    server.today = lambda: shutdown - datetime.timedelta(days=1)  # a callable clock works too
    assert generate(server, model=model, **fields).status_code == 200


def test_the_refusal_names_the_replacements(server: FakeImagesServer) -> None:
    message = refused(generate(server, model="gpt-image-1"), 404, "model", "model_not_found")
    assert "gpt-image-2.5-sunburst or gpt-image-2.5-flare" in message
    message = refused(generate(server, model="gpt-image-1.5"), 404, "model", "model_not_found")
    assert "gpt-image-2.6-sunburst or gpt-image-2.6-flare" in message


@pytest.mark.parametrize("model", ACTIVE)
def test_active_models_are_served_far_into_the_future(make_server: Callable[..., FakeImagesServer], model: str) -> None:
    body = ok(generate(make_server(today=FAR_FUTURE), model=model, quality="low"))
    assert body["size"] == "1024x1024" and image_bytes(body)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_default_clock_is_todays_utc_date() -> None:
    server = FakeImagesServer(detail_bits=0)
    try:
        before = datetime.datetime.now(datetime.timezone.utc).date()
        assert server.today in (before, datetime.datetime.now(datetime.timezone.utc).date())  # midnight may pass
        server.today = datetime.datetime(2026, 3, 4, 23, 59)
        assert server.today == datetime.date(2026, 3, 4)
        with pytest.raises(TypeError):
            server.today = "2026-03-04"  # type: ignore[assignment]  # the point of the test
    finally:
        server.stop()


def test_shut_down_models_are_refused_in_batch_lines_too(make_server: Callable[..., FakeImagesServer]) -> None:
    server = make_server(today=CHECKED, batch_completion_seconds=0.05)
    lines = [
        {
            "custom_id": "old",
            "method": "POST",
            "url": "/v1/images/generations",
            "body": {"model": "gpt-image-1", "prompt": "x"},
        },
        {
            "custom_id": "new",
            "method": "POST",
            "url": "/v1/images/generations",
            "body": {"model": "gpt-image-2", "prompt": "x"},
        },
    ]
    upload = post(
        server, "/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", "\n".join(map(json.dumps, lines)))}
    )
    batch = post(
        server,
        "/batches",
        json={"input_file_id": upload.json()["id"], "endpoint": "/v1/images/generations", "completion_window": "24h"},
    ).json()
    deadline = time.monotonic() + 5
    while batch["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
        batch = get(server, "/batches/" + batch["id"]).json()
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    (record,) = [
        json.loads(line) for line in get(server, "/files/{}/content".format(batch["error_file_id"])).text.splitlines()
    ]
    assert record["custom_id"] == "old" and record["response"]["status_code"] == 404
    assert record["response"]["body"]["error"]["code"] == "model_not_found"


def test_azure_paths_ignore_openai_shutdown_dates(server: FakeImagesServer) -> None:
    response = requests.post(
        server.root_url + "/openai/deployments/gpt-image-1/images/generations?api-version=2025-04-01-preview",
        headers={"api-key": server.api_key},
        json={"prompt": "A red fox", "quality": "low"},
        timeout=HTTP_TIMEOUT,
    )
    assert ok(response)["quality"] == "low"


def test_unknown_models_get_shape_checks_only(server: FakeImagesServer) -> None:
    """Compatible servers name their own models: no value rules, but the schema still holds."""
    body = ok(generate(server, model="my-compatible-model", size="1000x700", quality="ultra"))
    assert body["size"] == "1000x700"
    refused(generate(server, model="my-compatible-model", colour="red"), 400, "colour", "unknown_parameter")
    refused(generate(server, model="my-compatible-model", n="two"), 400, "n", "invalid_type")
    refused(generate(server, model="my-compatible-model", n=11), 400, "n", "integer_above_max_value")


def test_without_a_model_the_apis_default_applies(server: FakeImagesServer, old_server: FakeImagesServer) -> None:
    """dall-e-2 by default (gpt-image-1.5 with a GPT-only parameter): both shut down by 2026-12-03."""
    assert refused(post(server, "/images/generations", json={"prompt": "x"}), 404, "model", "model_not_found")
    message = refused(
        post(server, "/images/generations", json={"prompt": "x", "output_format": "png"}),
        404,
        "model",
        "model_not_found",
    )
    assert "gpt-image-1.5" in message
    body = ok(post(old_server, "/images/generations", json={"prompt": "x", "size": "256x256"}))
    assert set(body["data"][0]) == {"url"}


def test_serve_fake_takes_today() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    _cli.add_arguments(parser)
    server = _cli.build_server(parser.parse_args(["--today", "2026-01-01", "--detail-bits", "0"]))
    try:
        assert server.today == BEFORE_SHUTDOWNS
    finally:
        server.stop()
    server = _cli.build_server(parser.parse_args([]))
    try:
        now = datetime.datetime.now(datetime.timezone.utc).date()
        assert now - datetime.timedelta(days=1) <= server.today <= now  # midnight may pass between the two
    finally:
        server.stop()
    with pytest.raises(SystemExit):
        parser.parse_args(["--today", "2026-13-01"])


# -- GET /v1/models -----------------------------------------------------------------------


def listed(server: FakeImagesServer) -> Dict[str, Dict[str, Any]]:
    response = get(server, "/models")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert _schemas.find_violation("model_list", body) is None
    for item in body["data"]:
        assert item["object"] == "model" and isinstance(item["created"], int) and isinstance(item["owned_by"], str)
        assert set(item) <= {"id", "object", "created", "owned_by", "shutdown_date"}
    return {item["id"]: item for item in body["data"]}


def test_model_list_before_the_shutdowns(old_server: FakeImagesServer) -> None:
    models = listed(old_server)
    assert set(models) >= set(ACTIVE) | {name for name, _, _ in SHUT_DOWN}
    assert {"gpt-5", "text-embedding-3-small"} <= set(models)  # not image models: for clients to filter out
    for name, shutdown, _ in SHUT_DOWN:
        assert models[name]["shutdown_date"] == shutdown.isoformat()
    for name in ACTIVE + ["gpt-5"]:
        assert "shutdown_date" not in models[name]


def test_model_list_leaves_out_shut_down_models(make_server: Callable[..., FakeImagesServer]) -> None:
    server = make_server(today=datetime.date(2026, 11, 1))
    models = listed(server)
    assert "gpt-image-1" not in models and "dall-e-3" not in models
    assert models["gpt-image-1.5"]["shutdown_date"] == "2026-12-01"
    server.today = CHECKED
    models = listed(server)
    assert set(ACTIVE) <= set(models)
    assert not any("shutdown_date" in item for item in models.values())


def test_retrieve_one_model(server: FakeImagesServer) -> None:
    response = get(server, "/models/gpt-image-2.6-flare")
    assert response.status_code == 200
    assert response.json() == {
        "id": "gpt-image-2.6-flare",
        "object": "model",
        "created": int(datetime.datetime(2026, 11, 4, tzinfo=datetime.timezone.utc).timestamp()),
        "owned_by": "system",
    }
    refused(get(server, "/models/gpt-image-1"), 404, None, "model_not_found")
    message = refused(get(server, "/models/no-such-model"), 404, None, "model_not_found")
    assert "does not exist" in message


def test_models_need_the_key(server: FakeImagesServer) -> None:
    for path in ("/models", "/models/gpt-image-2"):
        response = get(server, path, headers={"Authorization": "Bearer sk-wrong"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


# -- request rules ----------------------------------------------------------------------------

GIF_FIELDS = {"model": "gpt-image-2.6-flare", "output_format": "gif", "size": "512x512"}
SVG_FIELDS = {"model": "gpt-image-2.6-sunburst", "output_format": "svg", "svg": {"model": "gpt-5"}}


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"prompt": None}, "prompt", "missing_required_parameter"),
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"n": 11}, "n", "integer_above_max_value"),
        ({"n": "2"}, "n", "invalid_type"),
        ({"colour": "red"}, "colour", "unknown_parameter"),
        ({"response_format": "b64_json"}, "response_format", "unknown_parameter"),
        ({"style": "vivid"}, "style", "unknown_parameter"),
        ({"quality": "ultra"}, "quality", "invalid_value"),
        ({"quality": "xhigh"}, "quality", "invalid_value"),  # gpt-image-2 stops at high
        ({"model": "gpt-image-2.5-flare", "quality": "ultra"}, "quality", "invalid_value"),
        ({"output_format": "gif"}, "output_format", "invalid_value"),
        ({"model": "gpt-image-2.5-flare", "output_format": "svg"}, "output_format", "invalid_value"),
        ({"complexity": "low"}, "complexity", "unknown_parameter"),
        ({"model": "gpt-image-2.5-sunburst", "frame_count": 4}, "frame_count", "unknown_parameter"),
        ({"model": "gpt-image-2.6-flare", "complexity": "extreme"}, "complexity", "invalid_value"),
        ({"background": "transparent", "output_format": "jpeg"}, "background", None),
        ({"partial_images": 4, "stream": True}, "partial_images", "integer_above_max_value"),
        ({"output_compression": 101, "output_format": "jpeg"}, "output_compression", "integer_above_max_value"),
        ({"size": "999x999"}, "size", None),  # not multiples of 16
        ({"size": "3840x1024"}, "size", None),  # wider than 3:1
        ({"size": "4096x1536"}, "size", None),  # an edge over 3840
        ({"size": "512x512"}, "size", None),  # under 655,360 pixels
        ({"size": "3840x2400"}, "size", None),  # over 8,294,400 pixels
        ({"size": "big"}, "size", "invalid_value"),
    ],
)
def test_generation_rules(server: FakeImagesServer, fields: Dict[str, Any], param: str, code: Optional[str]) -> None:
    refused(generate(server, **fields), 400, param, code)


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "gpt-image-2.5-flare", "quality": "xhigh"},
        {"model": "gpt-image-2.5-sunburst-2026-09-08", "quality": "max"},
        {"model": "gpt-image-2.6-sunburst", "quality": "max", "complexity": "low"},
        {"model": "gpt-image-2.6-flare", "complexity": None, "safety_identifier": "user-1234"},
        {"size": "1536x864", "safety_identifier": "user-1234", "user": "u"},
        {"size": "1024x3072"},  # exactly 3:1
        {"output_format": "png", "output_compression": 100},  # as in the spec's own example
        {"model": "gpt-image-2.5-flare", "background": "transparent", "output_format": "webp"},
        {"model": "gpt-image-2.6-flare", "n": 2, "quality": "low"},
    ],
)
def test_generations_the_rules_let_through(server: FakeImagesServer, fields: Dict[str, Any]) -> None:
    body = ok(generate(server, **fields))
    assert body["quality"] == fields.get("quality", "medium")
    assert len(body["data"]) == fields.get("n", 1)


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"model": "dall-e-3", "n": 2}, "n", "integer_above_max_value"),
        ({"model": "dall-e-3", "prompt": "x" * 4001}, "prompt", "string_above_max_length"),
        ({"model": "dall-e-2", "prompt": "x" * 1001, "size": "256x256"}, "prompt", "string_above_max_length"),
        ({"model": "dall-e-3", "quality": "low"}, "quality", "invalid_value"),
        ({"model": "dall-e-3", "size": "256x256"}, "size", "invalid_value"),
        ({"model": "dall-e-2", "output_format": "png", "size": "256x256"}, "output_format", "unknown_parameter"),
        ({"model": "dall-e-2", "stream": True, "size": "256x256"}, "stream", "unknown_parameter"),
        ({"model": "gpt-image-1.5", "size": "1536x864"}, "size", "invalid_value"),  # no free sizes before gpt-image-2
        ({"model": "gpt-image-1", "response_format": "url"}, "response_format", "unknown_parameter"),
        ({"model": "gpt-image-1", "prompt": "x" * 32001}, "prompt", "string_above_max_length"),
    ],
)
def test_rules_of_retired_models_before_their_shutdown(
    old_server: FakeImagesServer, fields: Dict[str, Any], param: str, code: str
) -> None:
    refused(generate(old_server, **fields), 400, param, code)


def test_endpoints_per_model(old_server: FakeImagesServer) -> None:
    refused(
        post(
            old_server,
            "/images/variations",
            data={"model": "gpt-image-2"},
            files={"image": ("a.png", IMAGE, "image/png")},
        ),
        400,
        "model",
    )
    refused(edit_multipart(old_server, [("image", ("a.png", IMAGE, "image/png"))], model="dall-e-3"), 400, "model")
    refused(edit_json(old_server, model="dall-e-2", size="256x256"), 400, "model")  # multipart only
    refused(edit_json(old_server, model="gpt-image-2", svg={"model": "gpt-5"}), 400, "svg", "unknown_parameter")


def test_input_fidelity(old_server: FakeImagesServer) -> None:
    files = [("image", ("a.png", IMAGE, "image/png"))]
    refused(
        edit_multipart(old_server, files, input_fidelity="high"), 400, "input_fidelity", "invalid_input_fidelity_model"
    )
    refused(
        edit_multipart(old_server, files, model="gpt-image-1-mini", input_fidelity="high"),
        400,
        "input_fidelity",
        "invalid_input_fidelity_model",
    )
    ok(edit_multipart(old_server, files, model="gpt-image-1.5", input_fidelity="high"))
    refused(edit_multipart(old_server, files, model="gpt-image-1", input_fidelity="max"), 400, "input_fidelity")


# -- GIF rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"frame_count": 1}, "frame_count", "integer_below_min_value"),
        ({"frame_count": 17}, "frame_count", "integer_above_max_value"),
        ({"frame_duration_ms": 19}, "frame_duration_ms", "integer_below_min_value"),
        ({"output_format": "png", "frame_count": 4}, "frame_count", None),
        ({"output_format": "webp", "frame_duration_ms": 100}, "frame_duration_ms", None),
        ({"stream": True}, "stream", None),
        ({"partial_images": 1}, "partial_images", None),
        ({"output_compression": 80}, "output_compression", None),
        ({"size": "1024x1024", "frame_count": 6}, "size", None),  # 3x3 sheet of 3072x3072: too many pixels
        ({"size": "1024x1024"}, "size", None),  # 9 frames by default: the same sheet
        ({"size": "1536x1536", "frame_count": 4}, "size", None),  # 3072x3072 sheet: too many pixels
        ({"size": "1024x1024", "frame_count": 16}, "size", None),  # 4096x4096 sheet: an edge over 3840
        ({"size": "256x256", "frame_count": 2}, "size", None),  # 512x512 sheet: too few pixels
        ({"size": "500x500"}, "size", None),  # not multiples of 16
        ({"size": "1024x256", "frame_count": 4}, "size", None),  # 4:1
    ],
)
def test_gif_rules(server: FakeImagesServer, fields: Dict[str, Any], param: str, code: Optional[str]) -> None:
    refused(generate(server, **dict(GIF_FIELDS, **fields)), 400, param, code)


def test_gif_mask_is_refused(server: FakeImagesServer) -> None:
    files = [("image", ("a.png", IMAGE, "image/png")), ("mask", ("m.png", MASK, "image/png"))]
    refused(edit_multipart(server, files, **dict(GIF_FIELDS, frame_count="4")), 400, "mask")
    body = ok(edit_multipart(server, files[:1], **dict(GIF_FIELDS, frame_count="4")))  # no mask: fine
    assert body["output_format"] == "gif" and len(read_gif(image_bytes(body), decode=False)[4]) == 4


@pytest.mark.parametrize(
    "size, frame_count",
    [("512x512", None), ("512x512", 9), ("1024x1024", 4), ("768x256", 16), ("auto", 2)],
)
def test_gif_sizes_that_fit_the_sheet(server: FakeImagesServer, size: str, frame_count: Optional[int]) -> None:
    body = ok(generate(server, **dict(GIF_FIELDS, size=size, frame_count=frame_count)))
    width, height, _, _, frames = read_gif(image_bytes(body), decode=False)
    expected = "1024x1024" if size == "auto" else size
    assert body["size"] == expected == f"{width}x{height}"
    assert len(frames) == (frame_count or 9)


# -- SVG rules --------------------------------------------------------------------------------------


def test_svg_needs_svg_model(server: FakeImagesServer) -> None:
    for svg in (None, {}, {"reasoning": {"effort": "low"}}):
        message = refused(generate(server, **dict(SVG_FIELDS, svg=svg)), 400, "svg")
        assert message == "SVG generation requires 'svg.model'."


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"n": 2}, "n", None),
        ({"output_format": "png"}, "svg", None),  # svg options without svg output
        ({"svg": "gpt-5"}, "svg", "invalid_type"),
    ],
)
def test_svg_rules(server: FakeImagesServer, fields: Dict[str, Any], param: Optional[str], code: Optional[str]) -> None:
    response = generate(server, **dict(SVG_FIELDS, **fields))
    if param is None:
        ok(response)  # the svg object's own extra keys are not checked: its schema is open
    else:
        refused(response, 400, param, code)


def test_svg_is_generations_only(server: FakeImagesServer) -> None:
    refused(edit_json(server, model="gpt-image-2.6-flare", output_format="svg"), 400, "output_format")


# -- input images ----------------------------------------------------------------------------------------


def test_input_images_are_read_by_the_stand_ins_own_header_reader() -> None:
    assert read_head(png(3, 2)) == ("png", 3, 2, False)
    assert read_head(png(3, 2, 6)) == ("png", 3, 2, True)
    assert read_head(png(3, 2, 3, trns=True)) == ("png", 3, 2, True)
    assert read_head(png(3, 2, 3)) == ("png", 3, 2, False)
    assert read_head(make_jpeg(640, 480)) == ("jpeg", 640, 480, False)
    head = read_head(SAMPLE_JPEG)
    assert head is not None and head.format == "jpeg" and head.width == head.height == 16
    assert read_head(make_webp(300, 200)) == ("webp", 300, 200, False)
    assert read_head(make_webp(300, 200, alpha=True)) == ("webp", 300, 200, True)
    assert read_head(SAMPLE_WEBP) == ("webp", 16, 16, False)  # VP8
    assert read_head(SAMPLE_WEBP_ALPHA) == ("webp", 16, 16, True)  # VP8L
    for junk in (
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a" + b"\x00" * 20,
        b"\xff\xd8\xff\xd9",
        b"RIFF\x00\x00\x00\x00WEBPXXXX",
    ):
        assert read_head(junk) is None


@pytest.mark.parametrize(
    "files, param, fragment",
    [
        (
            [("image", ("a.png", IMAGE, "application/octet-stream"))],
            "image",
            "unsupported mimetype ('application/octet-stream')",
        ),
        ([("image", ("a.gif", b"GIF89a" + b"\x00" * 40, "image/gif"))], "image", "unsupported mimetype ('image/gif')"),
        ([("image", ("a.png", make_jpeg(64, 64), "image/png"))], "image", "image/jpeg"),
        ([("image", ("a.png", b"not an image", "image/png"))], "image", "not a valid"),
        ([("image[]", ("a.png", IMAGE, "image/png"))] * 17, "image", "at most 16"),
        ([("image", ("a.png", IMAGE, "image/png")), ("mask", ("m.png", png(64, 64), "image/png"))], "mask", "alpha"),
        (
            [("image", ("a.png", IMAGE, "image/png")), ("mask", ("m.png", png(32, 64, 6), "image/png"))],
            "mask",
            "same size",
        ),
        (
            [("image", ("a.png", IMAGE, "image/png")), ("mask", ("m.jpg", make_jpeg(64, 64), "image/jpeg"))],
            "mask",
            "'image/png'",
        ),
        ([("image", ("a.png", IMAGE, "image/png")), ("markup", ("m.png", MASK, "image/png"))], "markup", "Unknown"),
        ([("image", ("a.png", IMAGE, "image/png"))] * 2, "image", "image[]"),
    ],
)
def test_multipart_input_rules(
    server: FakeImagesServer, files: List[Tuple[str, Tuple[str, bytes, str]]], param: str, fragment: str
) -> None:
    assert fragment in refused(edit_multipart(server, files), 400, param)


def test_gpt_inputs_may_be_jpeg_webp_or_several_with_a_mask_for_the_first(server: FakeImagesServer) -> None:
    files = [
        ("image[]", ("a.jpg", make_jpeg(64, 64), "image/jpeg")),
        ("image[]", ("b.webp", make_webp(100, 50), "image/webp")),
        ("mask", ("m.png", png(64, 64, 3, trns=True), "image/png")),
    ]
    body = ok(edit_multipart(server, files))
    assert body["usage"]["input_tokens_details"]["image_tokens"] > 0


@pytest.mark.parametrize(
    "image, fragment",
    [
        (("a.png", png(64, 32), "image/png"), "square"),
        (("a.jpg", make_jpeg(64, 64), "image/jpeg"), "Supported file formats are 'image/png'"),
    ],
)
def test_dall_e_2_takes_one_square_png(
    old_server: FakeImagesServer, image: Tuple[str, bytes, str], fragment: str
) -> None:
    assert fragment in refused(
        edit_multipart(old_server, [("image", image)], model="dall-e-2", size="256x256"), 400, "image"
    )
    assert fragment in refused(
        post(old_server, "/images/variations", data={"model": "dall-e-2", "size": "256x256"}, files={"image": image}),
        400,
        "image",
    )
    two = [("image[]", ("a.png", IMAGE, "image/png"))] * 2
    assert "at most 1" in refused(edit_multipart(old_server, two, model="dall-e-2", size="256x256"), 400, "image")
    square = ("a.png", IMAGE, "image/png")
    ok(edit_multipart(old_server, [("image", square)], model="dall-e-2", size="256x256"))


def test_json_edit_references(server: FakeImagesServer) -> None:
    refused(edit_json(server, images=[{"image_url": data_url(b"junk")}]), 400, "images", "invalid_image_format")
    refused(edit_json(server, images=[{"file_id": "file-nope"}]), 400, "images")
    refused(edit_json(server, images=[]), 400, "images", "empty_array")
    refused(edit_json(server, images=[{"image_url": data_url(IMAGE)}] * 17), 400, "images", "array_above_max_length")
    refused(edit_json(server, images=[{"image_url": "x", "file_id": "y"}]), 400, "images[0]")
    refused(edit_json(server, mask={"image_url": data_url(png(64, 64))}), 400, "mask")
    ok(edit_json(server, images=[{"image_url": "https://example.com/a.png"}], mask={"image_url": data_url(MASK)}))


def test_markup_is_a_transparent_png_the_size_of_the_first_image(server: FakeImagesServer) -> None:
    model = {"model": "gpt-image-2.6-flare"}
    ok(edit_json(server, markup={"image_url": data_url(MASK)}, **model))
    uploaded = post(server, "/files", data={"purpose": "vision"}, files={"file": ("m.png", MASK)}).json()
    ok(edit_json(server, markup={"file_id": uploaded["id"]}, **model))
    refused(edit_json(server, markup={"image_url": data_url(png(64, 64))}, **model), 400, "markup")
    refused(edit_json(server, markup={"image_url": data_url(png(32, 32, 6))}, **model), 400, "markup")
    refused(edit_json(server, markup={"image_url": data_url(MASK)}), 400, "markup", "unknown_parameter")


# -- real GIFs ------------------------------------------------------------------------------------------


def test_gif_answer_is_a_real_animated_gif(server: FakeImagesServer) -> None:
    """256x256 frames x 16 (a 1024x1024 sheet): every frame decoded and checked pixel by pixel."""
    body = ok(generate(server, **dict(GIF_FIELDS, size="256x256", frame_count=16, frame_duration_ms=125)))
    assert (body["output_format"], body["size"]) == ("gif", "256x256")
    assert body["usage"]["output_tokens"] > 0
    width, height, palette, loop, frames = read_gif(image_bytes(body))
    assert (width, height) == (256, 256)
    assert loop == 0, "NETSCAPE2.0: loop forever"
    assert len(frames) == 16
    assert len(palette) % 3 == 0 and len(palette) >= 6
    starts = []
    bar_colours = set()
    for frame in frames:
        assert (frame.left, frame.top, frame.width, frame.height) == (0, 0, 256, 256)
        assert frame.delay == 13  # 125 ms in hundredths of a second, rounded to 10 ms
        assert not frame.has_transparency
        row_bars = {bar_of(frame.row(y)) for y in range(0, 256, 5)}
        assert len(row_bars) == 1, "the bar is vertical: the same columns on every row"
        ((colour, start, stop),) = row_bars
        assert stop - start == 256 // 8
        bar_colours.add(colour)
        starts.append(start)
        backgrounds = [frame.row(y)[0 if start else -1] for y in range(256)]
        assert backgrounds[0] != backgrounds[-1], "the rows change colour from top to bottom"
        assert colour not in backgrounds
    assert len(bar_colours) == 1
    assert starts[0] == 0 and starts[-1] == 256 - 32, "the bar crosses from the left edge to the right"
    assert starts == sorted(starts) and len(set(starts)) == 16, "every frame differs"


def test_gif_defaults_and_delay_rounding(server: FakeImagesServer) -> None:
    body = ok(generate(server, **GIF_FIELDS))
    _, _, _, _, frames = read_gif(image_bytes(body), decode=False)
    assert len(frames) == 9 and {frame.delay for frame in frames} == {20}
    body = ok(generate(server, **dict(GIF_FIELDS, frame_duration_ms=20, frame_count=2, size="768x768")))
    assert {frame.delay for frame in read_gif(image_bytes(body), decode=False)[4]} == {2}
    assert [delay_centiseconds(ms) for ms in (20, 24, 25, 200, 204, 205, 1000)] == [2, 2, 3, 20, 20, 21, 100]


def test_transparent_gif(server: FakeImagesServer) -> None:
    body = ok(generate(server, **dict(GIF_FIELDS, background="transparent", frame_count=9, size="512x512")))
    assert body["background"] == "transparent"
    _, _, _, _, frames = read_gif(image_bytes(body))
    first = frames[0]
    assert first.has_transparency and first.disposal == 2
    row = first.row(100)
    assert row[-1] == first.transparent_index and row[256] != first.transparent_index


def test_make_gif_directly_and_its_speed(capsys: pytest.CaptureFixture[str]) -> None:
    width, height, _, _, frames = read_gif(make_gif(17, 5, frame_count=3, seed="odd sizes"))
    assert (width, height, len(frames)) == (17, 5, 3)
    _make_gif.cache_clear()
    started = time.perf_counter()
    data = make_gif(1024, 1024, frame_count=9, seed="timing")
    elapsed = time.perf_counter() - started
    assert len(read_gif(data, decode=False)[4]) == 9
    with capsys.disabled():
        print(f"\n[stand-in] 1024x1024 GIF of 9 frames: {elapsed * 1000:.0f} ms, {len(data):,} bytes")


# -- real SVGs ----------------------------------------------------------------------------------------


def test_svg_answer_is_a_real_svg_document(server: FakeImagesServer) -> None:
    prompt = "A <b>bold</b> \"fox\" & a 'hen'\x01 \u00e9t\u00e9 \U0001f98a"
    body = ok(
        generate(
            server,
            **dict(SVG_FIELDS, prompt=prompt, size="1536x864", svg={"model": "gpt-5", "reasoning": {"effort": "high"}}),
        )
    )
    assert (body["output_format"], body["size"]) == ("svg", "1536x864")
    data = image_bytes(body)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(data)  # noqa: S314 (the stand-in's own output, parsed to check it)
    assert root.tag == SVG_NS + "svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("1536", "864", "0 0 1536 864")
    title = root.find(SVG_NS + "title")
    assert title is not None and title.text == prompt.replace("\x01", "")
    shapes = [child for child in root if child.tag in {SVG_NS + name for name in ("rect", "circle", "polygon")}]
    assert len(shapes) >= 3
    usage = body["svg_usage"]
    assert set(usage) == {"input_tokens", "output_tokens", "reasoning_tokens", "total_tokens", "model"}
    assert usage["model"] == "gpt-5"
    assert all(isinstance(usage[key], int) and usage[key] >= 0 for key in usage if key != "model")
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["reasoning_tokens"] <= usage["output_tokens"]
    assert body["usage"]["output_tokens"] > 0


def test_svg_complexity_and_transparency(server: FakeImagesServer) -> None:
    def shapes(**fields: Any) -> List[ET.Element]:
        data = image_bytes(ok(generate(server, **dict(SVG_FIELDS, **fields))))
        root = ET.fromstring(data)  # noqa: S314 (the stand-in's own output, parsed to check it)
        return [child for child in root if child.tag not in (SVG_NS + "title", SVG_NS + "desc")]

    low, high = shapes(complexity="low"), shapes(complexity="high")
    assert len(low) < len(high)
    assert len(shapes(complexity="low", background="transparent")) == len(low) - 1, "no background rectangle"


def stream_events(response: requests.Response) -> List[Dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = response.content.decode("utf-8")
    events = []
    for block in text.split("\n\n")[:-1]:
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        assert _schemas.find_violation("image_stream_event", data) is None
        events.append(data)
    return events


@pytest.mark.parametrize("output_format, signature", [("svg", b"<?xml"), ("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")])
def test_stream_events_carry_the_output_format(server: FakeImagesServer, output_format: str, signature: bytes) -> None:
    fields = dict(SVG_FIELDS) if output_format == "svg" else {"output_format": output_format}
    events = stream_events(generate(server, stream=True, partial_images=1, **fields))
    assert [event["type"] for event in events] == ["image_generation.partial_image", "image_generation.completed"]
    for event in events:
        assert event["output_format"] == output_format
        assert base64.b64decode(event["b64_json"]).startswith(signature)
    if output_format == "svg":
        assert events[-1]["svg_usage"]["model"] == "gpt-5"
