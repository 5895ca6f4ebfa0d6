"""The local stand-in server, imageprovider.testing.FakeImagesServer.

Every test talks to a real server on 127.0.0.1: with raw ``requests`` calls,
to see exactly what goes over the wire, and with our own client, to show the
two agree. Waits are bounded everywhere; timings are only ever checked as
lower bounds.
"""

import base64
import datetime
import json
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from helpers import GIF, make_png

from imageprovider import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    AzureOpenAIImageProvider,
    BadRequestError,
    Completed,
    ContentPolicyError,
    InternalServerError,
    NotFoundError,
    OpenAIImageProvider,
    PartialImage,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
    _schemas,
    image_data_url,
)
from imageprovider._imageinfo import read_image_info
from imageprovider.testing import FAKE_API_KEY, FakeImagesServer, Fault, RecordedRequest, parse_fault

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A bound on every raw HTTP call, so a hung server fails a test instead of the run.
HTTP_TIMEOUT = 10
#: Fields every API error object carries (Spec:Error; all four required).
ERROR_FIELDS = {"message", "type", "param", "code"}
RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
#: Fields every stream event carries (Spec:ImageGen*Event / ImageEdit*Event).
EVENT_FIELDS = {"type", "b64_json", "created_at", "size", "quality", "background", "output_format"}

#: A day before every shutdown (dall-e-* 2026-05-12, gpt-image-1 2026-10-23, gpt-image-1.5 and co. 2026-12-01):
#: servers that must still serve retired models are started on it.
BEFORE_SHUTDOWNS = datetime.date(2026, 1, 1)

SMALL_PNG = make_png(16, 16, 2)
SMALL_MASK = make_png(16, 16, 6)


# -- helpers ------------------------------------------------------------------


def auth(server: FakeImagesServer) -> Dict[str, str]:
    return {"Authorization": "Bearer " + server.api_key}


def post(server: FakeImagesServer, path: str, **kwargs: Any) -> requests.Response:
    """A raw POST to ``server.base_url + path`` with the right bearer token (unless headers are given)."""
    kwargs.setdefault("headers", auth(server))
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return requests.post(server.base_url + path, **kwargs)


def get(server: FakeImagesServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", auth(server))
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    return requests.get(server.base_url + path, **kwargs)


def generate(server: FakeImagesServer, **fields: Any) -> requests.Response:
    body = {"model": "gpt-image-2", "prompt": "A lighthouse at dusk", "size": "1024x1024"}
    body.update(fields)
    return post(server, "/images/generations", json=body)


def generate_streamed(server: FakeImagesServer) -> requests.Response:
    """A generation whose response body is read by the caller (close it)."""
    return post(
        server,
        "/images/generations",
        stream=True,
        json={"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024"},
    )


def assert_api_error(response: requests.Response, status: int, param: Optional[str] = None) -> Dict[str, Any]:
    """The response has ``status`` and an API-shaped error body; returns its ``error`` object."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) >= ERROR_FIELDS
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if param is not None:
        assert error["param"] == param, error
    return error  # type: ignore[no-any-return]  # pytest.raises' value is untyped


def decode_png(data: bytes) -> Tuple[int, int, int, bytes]:
    """Walk every chunk (checking CRCs), inflate the IDATs; return width, height, colour type, raw scanlines."""
    assert data[:8] == PNG_SIGNATURE
    chunks: List[Tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        assert len(body) == length, f"truncated {kind} chunk"
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind} chunk"
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    assert pos == len(data), "bytes after IEND"
    assert chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13
    assert chunks[-1] == (b"IEND", b"")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + width * channels
    assert len(raw) == height * stride
    assert max(raw[::stride]) <= 4, "invalid filter type"
    return width, height, colour_type, raw


def read_sse(text: str) -> List[Tuple[str, Dict[str, Any]]]:
    """``(event name, parsed data)`` for each event of a whole event-stream body."""
    assert text.endswith("\n\n"), "the stream must end with a complete event"
    events = []
    for block in text.split("\n\n")[:-1]:
        fields: Dict[str, List[str]] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        assert set(fields) == {"event", "data"}, block[:200]
        events.append((fields["event"][0], json.loads("\n".join(fields["data"]))))
    return events


def refused(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:port is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def port_of(server: FakeImagesServer) -> int:
    return int(server.root_url.rsplit(":", 1)[1])


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def upload(
    server: FakeImagesServer, data: bytes, purpose: str = "batch", filename: str = "input.jsonl"
) -> Dict[str, Any]:
    response = post(server, "/files", data={"purpose": purpose}, files={"file": (filename, data)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]  # requests' json() is untyped


# -- fixtures ---------------------------------------------------------------


@pytest.fixture
def server(make_server: Callable[..., FakeImagesServer]) -> FakeImagesServer:
    """A fast server: smooth (small) PNGs, batches done in 0.3 s."""
    return make_server(batch_completion_seconds=0.3)


@pytest.fixture
def make_client() -> Iterator[Callable[..., OpenAIImageProvider]]:
    made: List[OpenAIImageProvider] = []

    def factory(server: FakeImagesServer, **options: Any) -> OpenAIImageProvider:
        client = OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def client(server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider]) -> OpenAIImageProvider:
    return make_client(server)


# -- lifecycle ----------------------------------------------------------------


def test_context_manager_binds_loopback_on_a_free_port() -> None:
    with FakeImagesServer(detail_bits=0) as first, FakeImagesServer(detail_bits=0) as second:
        for server in (first, second):
            assert server.root_url.startswith("http://127.0.0.1:")
            assert server.base_url == server.root_url + "/v1"
            assert server.base_url.endswith("/v1")
            assert port_of(server) > 0
            assert server.api_key == FAKE_API_KEY
            assert generate(server).status_code == 200
        assert port_of(first) != port_of(second)
    assert refused(port_of(first)) and refused(port_of(second))


def test_start_and_stop_without_a_with_block() -> None:
    server = FakeImagesServer(detail_bits=0, api_key="sk-custom-key")
    try:
        assert server.start() is server
        assert server.api_key == "sk-custom-key"
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as client:
            result = client.generate_image("A red fox", size="1024x1024")
        assert result.images[0].mime_type == "image/png"
    finally:
        server.stop()
    assert refused(port_of(server))


def test_command_line_prints_base_url_first_and_takes_faults() -> None:
    command = [
        sys.executable,
        "-m",
        "imageprovider.testing",
        "--port",
        "0",
        "--detail-bits",
        "0",
        "--api-key",
        "sk-cli-key",
        "--fault",
        "503,x-should-retry=false",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]  # stdout=PIPE was given
        reader.start()
        try:
            first = lines.get(timeout=20).strip()
            assert first.startswith("http://127.0.0.1:") and first.endswith("/v1"), first
            headers = {"Authorization": "Bearer sk-cli-key"}
            body = {"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024"}
            refusal = requests.post(first + "/images/generations", json=body, headers=headers, timeout=HTTP_TIMEOUT)
            assert_api_error(refusal, 503)
            assert refusal.headers["x-should-retry"] == "false"
            answer = requests.post(first + "/images/generations", json=body, headers=headers, timeout=HTTP_TIMEOUT)
            assert answer.status_code == 200
            assert decode_png(base64.b64decode(answer.json()["data"][0]["b64_json"]))[:2] == (1024, 1024)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            reader.join(5)


def _new_threads(before: set) -> List[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread not in before]


def test_stop_ends_every_thread_and_closes_the_port_despite_an_idle_keep_alive_connection() -> None:
    before = set(threading.enumerate())
    server = FakeImagesServer(detail_bits=0).start()
    port = port_of(server)
    session = requests.Session()
    try:
        response = session.post(
            server.base_url + "/images/generations",
            headers=auth(server),
            timeout=HTTP_TIMEOUT,
            json={"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024"},
        )
        assert response.status_code == 200
        assert _new_threads(before), "the server should be serving from threads"
        started = time.monotonic()
        server.stop()  # the session still holds its idle keep-alive connection
        assert time.monotonic() - started < 5
        assert wait_until(lambda: not _new_threads(before), timeout=3), _new_threads(before)
        assert refused(port)
    finally:
        session.close()
        server.stop()


def test_stop_returns_promptly_while_a_request_is_being_delayed() -> None:
    before = set(threading.enumerate())
    server = FakeImagesServer(detail_bits=0).start()
    server.add_fault(Fault.delay(30))
    outcome: queue.Queue[Any] = queue.Queue()

    def call() -> None:
        try:
            outcome.put(generate(server))
        except requests.RequestException as exc:
            outcome.put(exc)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert wait_until(lambda: len(server.requests) == 1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
    finally:
        caller.join(HTTP_TIMEOUT + 5)
    assert isinstance(outcome.get(timeout=1), requests.exceptions.ConnectionError)
    assert wait_until(lambda: not _new_threads(before), timeout=3), _new_threads(before)
    assert refused(port_of(server))


def test_pytest_plugin_fixtures(
    pytestconfig: Any, fake_images_server: FakeImagesServer, fake_images_provider: OpenAIImageProvider
) -> None:
    # Registered by the pytest11 entry point under the package's name, not by a conftest.
    assert pytestconfig.pluginmanager.get_plugin("imageprovider") is not None
    assert fake_images_provider.base_url == fake_images_server.base_url
    result = fake_images_provider.generate_image("A koi pond", size="1024x1024")
    assert decode_png(result.images[0].data or b"")[:2] == (1024, 1024)
    assert [(r.method, r.path) for r in fake_images_server.requests] == [("POST", "/v1/images/generations")]


# -- generations: body, headers, images ---------------------------------------


def test_generation_body_and_headers(server: FakeImagesServer) -> None:
    before = int(time.time())
    response = generate(server, quality="high", output_format="png", background="opaque")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert before - 1 <= body["created"] <= time.time() + 1
    assert len(body["data"]) == 1 and set(body["data"][0]) == {"b64_json"}
    assert (body["size"], body["quality"], body["output_format"], body["background"]) == (
        "1024x1024",
        "high",
        "png",
        "opaque",
    )
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert set(usage["input_tokens_details"]) == {"text_tokens", "image_tokens"}
    assert "output_tokens_details" not in usage  # api-facts §9.3: output_tokens only
    assert _schemas.find_violation("images_response", body) is None
    assert response.headers["x-request-id"].startswith("req_")
    assert int(response.headers["openai-processing-ms"]) >= 0
    for name in RATE_LIMIT_HEADERS:
        assert response.headers[name], name
    assert int(response.headers["x-ratelimit-remaining-requests"]) < int(response.headers["x-ratelimit-limit-requests"])
    assert generate(server).headers["x-request-id"] != response.headers["x-request-id"]


def test_generation_through_the_client(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    result = client.generate_image("A lighthouse", size="1536x1024", quality="low", n=2)
    assert len(result.images) == 2
    assert [decode_png(image.data or b"")[:2] for image in result.images] == [(1536, 1024)] * 2
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1536x1024",
        "low",
        "png",
        "opaque",
    )
    assert result.usage is not None and result.usage.total_tokens > 0
    assert result.request_id is not None and result.request_id.startswith("req_")
    assert result.rate_limits.limit_requests is not None and result.rate_limits.remaining_tokens is not None


@pytest.mark.parametrize(
    "model, size",
    [
        ("gpt-image-2", "1024x1024"),
        ("gpt-image-2", "1536x1024"),
        ("gpt-image-2", "1536x864"),  # a custom size only gpt-image-2 takes
        ("gpt-image-1.5", "1024x1536"),
    ],
)
def test_png_is_real_and_exactly_the_requested_size(
    make_server: Callable[..., FakeImagesServer], model: str, size: str
) -> None:
    server = make_server(detail_bits=2, today=BEFORE_SHUTDOWNS)
    response = generate(server, model=model, size=size)
    assert response.status_code == 200, response.text
    width, height, colour_type, _ = decode_png(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert f"{width}x{height}" == size == response.json()["size"]
    assert colour_type == 2


def test_transparent_background_gives_an_alpha_png(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    result = client.generate_image("A sticker", model="gpt-image-2", size="1024x1024", background="transparent")
    assert result.background == "transparent"
    width, height, colour_type, raw = decode_png(result.images[0].data or b"")
    assert (width, height, colour_type) == (1024, 1024, 6)
    alphas = {raw[1 + 4 * x + 3] for x in range(width)}  # first scanline
    assert alphas == {0, 255}, "some pixels transparent, some opaque"


@pytest.mark.parametrize("output_format, mime_type", [("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_jpeg_and_webp_answers_are_files_of_that_format(
    client: OpenAIImageProvider, output_format: str, mime_type: str
) -> None:
    result = client.generate_image("A red fox", size="1024x1024", output_format=output_format)
    assert result.output_format == output_format
    data = result.images[0].data or b""
    info = read_image_info(data)
    assert info is not None and info.mime_type == mime_type
    assert info.width and info.height
    assert result.images[0].mime_type == mime_type
    if output_format == "jpeg":
        assert data.endswith(b"\xff\xd9")
    else:
        assert len(data) == 8 + struct.unpack("<I", data[4:8])[0]  # the RIFF size covers the file exactly


def test_default_payload_is_realistically_large_and_detail_bits_zero_is_small(
    make_server: Callable[..., FakeImagesServer],
) -> None:
    default = FakeImagesServer().start()
    try:
        big = generate(default).json()["data"][0]["b64_json"]
    finally:
        default.stop()
    small = generate(make_server(detail_bits=0)).json()["data"][0]["b64_json"]
    assert 300_000 < len(big) < 2_500_000
    assert len(small) * 10 < len(big)
    assert decode_png(base64.b64decode(small))[:2] == decode_png(base64.b64decode(big))[:2] == (1024, 1024)


def test_dalle3_url_results_are_served_by_the_same_server(
    make_server: Callable[..., FakeImagesServer], make_client: Callable[..., OpenAIImageProvider]
) -> None:
    """DALL-E is shut down, but URL results still matter for compatible servers: served on a day before."""
    server = make_server(today=BEFORE_SHUTDOWNS)
    client = make_client(server, check_model_rules=False)
    result = client.generate_image("A red fox", model="dall-e-3", response_format="url")
    image = result.images[0]
    assert image.b64_json is None and image.revised_prompt
    assert image.url is not None and image.url.startswith(server.root_url + "/")
    download = requests.get(image.url, timeout=HTTP_TIMEOUT)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "image/png"
    assert decode_png(download.content)[:2] == (1024, 1024)


# -- edits and variations -------------------------------------------------------


def test_edit_multipart_with_one_image_and_a_mask(server: FakeImagesServer) -> None:
    response = post(
        server,
        "/images/edits",
        data={"model": "gpt-image-2", "prompt": "Add a hat", "size": "1024x1024"},
        files=[("image", ("photo.png", SMALL_PNG, "image/png")), ("mask", ("mask.png", SMALL_MASK, "image/png"))],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (1024, 1024)
    assert body["usage"]["input_tokens_details"]["image_tokens"] > 0
    recorded = server.requests[-1]
    assert recorded.body["fields"] == {"model": "gpt-image-2", "prompt": "Add a hat", "size": "1024x1024"}
    assert recorded.body["files"] == {
        "image": [{"filename": "photo.png", "content_type": "image/png", "bytes": len(SMALL_PNG)}],
        "mask": [{"filename": "mask.png", "content_type": "image/png", "bytes": len(SMALL_MASK)}],
    }


def test_edit_multipart_with_repeated_image_array_fields(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    response = post(
        server,
        "/images/edits",
        data={"model": "gpt-image-2", "prompt": "Combine", "size": "1536x1024"},
        files=[
            ("image[]", ("a.png", SMALL_PNG, "image/png")),
            ("image[]", ("b.png", SMALL_PNG, "image/png")),
            ("image[]", ("c.png", SMALL_PNG, "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    assert decode_png(base64.b64decode(response.json()["data"][0]["b64_json"]))[:2] == (1536, 1024)
    assert [part["filename"] for part in server.requests[-1].body["files"]["image[]"]] == ["a.png", "b.png", "c.png"]

    result = client.edit_image("Combine", [SMALL_PNG, SMALL_PNG], mask=SMALL_MASK, size="1024x1024")
    assert decode_png(result.images[0].data or b"")[:2] == (1024, 1024)
    files = server.requests[-1].body["files"]
    assert len(files["image[]"]) == 2 and len(files["mask"]) == 1


def test_edit_json_body_with_a_data_url_and_a_file_id(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    uploaded = upload(server, SMALL_PNG, purpose="vision", filename="photo.png")
    body = {
        "model": "gpt-image-2",
        "prompt": "Add snow",
        "size": "1024x1024",
        "images": [{"image_url": image_data_url(SMALL_PNG)}, {"file_id": uploaded["id"]}],
    }
    response = post(server, "/images/edits", json=body)
    assert response.status_code == 200, response.text
    assert decode_png(base64.b64decode(response.json()["data"][0]["b64_json"]))[:2] == (1024, 1024)
    assert response.json()["usage"]["input_tokens_details"]["image_tokens"] > 0
    assert server.requests[-1].body == body

    result = client.edit_image_from_refs(
        "Add snow", [{"file_id": uploaded["id"]}], mask={"image_url": image_data_url(SMALL_MASK)}, size="1536x1024"
    )
    assert decode_png(result.images[0].data or b"")[:2] == (1536, 1024)

    missing = post(server, "/images/edits", json=dict(body, images=[{"file_id": "file-nope"}]))
    assert_api_error(missing, 400, param="images")


def test_variations_return_urls_that_expire(
    make_server: Callable[..., FakeImagesServer], make_client: Callable[..., OpenAIImageProvider]
) -> None:
    server = make_server(url_ttl=0.2, today=BEFORE_SHUTDOWNS)
    client = make_client(server, check_model_rules=False)
    result = client.create_variation(SMALL_PNG, n=2, size="256x256")
    assert len(result.images) == 2 and result.usage is None
    urls = [image.url for image in result.images]
    assert all(url and url.startswith(server.root_url + "/") for url in urls)
    for url in urls:
        download = requests.get(url, timeout=HTTP_TIMEOUT)
        assert download.status_code == 200
        assert decode_png(download.content)[:2] == (256, 256)
    recorded = server.requests[0]
    assert recorded.path == "/v1/images/variations" and recorded.body["fields"]["model"] == "dall-e-2"
    time.sleep(0.35)
    expired = requests.get(urls[0], timeout=HTTP_TIMEOUT)
    assert expired.status_code == 403

    raw = post(
        server,
        "/images/variations",
        data={"model": "dall-e-2", "size": "256x256"},
        files={"image": ("fox.png", SMALL_PNG, "image/png")},
    )
    assert raw.status_code == 200
    assert set(raw.json()["data"][0]) == {"url"}


# -- streaming ----------------------------------------------------------------


@pytest.mark.parametrize("partial_images", [0, 1, 2, 3])
def test_generation_stream_raw_events(server: FakeImagesServer, partial_images: int) -> None:
    with post(
        server,
        "/images/generations",
        stream=True,
        json={
            "model": "gpt-image-2",
            "prompt": "A koi pond",
            "size": "1536x1024",
            "quality": "low",
            "stream": True,
            "partial_images": partial_images,
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["x-request-id"].startswith("req_")
        text = b"".join(response.iter_content(chunk_size=65536)).decode("utf-8")
    events = read_sse(text)
    names = [name for name, _ in events]
    assert names == ["image_generation.partial_image"] * partial_images + ["image_generation.completed"]
    for index, (name, data) in enumerate(events):
        assert data["type"] == name
        assert set(data) >= EVENT_FIELDS
        assert isinstance(data["created_at"], int)
        assert (data["size"], data["quality"], data["background"], data["output_format"]) == (
            "1536x1024",
            "low",
            "opaque",
            "png",
        )
        assert decode_png(base64.b64decode(data["b64_json"]))[:2] == (1536, 1024)
        assert _schemas.find_violation("image_stream_event", data) is None
        if name.endswith(".partial_image"):
            assert data["partial_image_index"] == index
            assert "usage" not in data
        else:
            assert "partial_image_index" not in data
            usage = data["usage"]
            assert set(usage) >= {"total_tokens", "input_tokens", "output_tokens", "input_tokens_details"}
            assert "output_tokens_details" not in usage


def test_edit_stream_raw_events(server: FakeImagesServer) -> None:
    with post(
        server,
        "/images/edits",
        stream=True,
        data={
            "model": "gpt-image-2",
            "prompt": "Add a hat",
            "size": "1024x1024",
            "stream": "true",
            "partial_images": "2",
        },
        files={"image": ("photo.png", SMALL_PNG, "image/png")},
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = b"".join(response.iter_content(chunk_size=65536)).decode("utf-8")
    events = read_sse(text)
    assert [name for name, _ in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert [data.get("partial_image_index") for _, data in events] == [0, 1, None]
    assert all(set(data) >= EVENT_FIELDS for _, data in events)


def test_streams_through_the_client(client: OpenAIImageProvider) -> None:
    with client.stream_image("A koi pond", partial_images=2, size="1024x1024") as stream:
        events = list(stream)
    assert [type(event) for event in events] == [PartialImage, PartialImage, Completed]
    assert [event.index for event in events[:2]] == [0, 1]  # type: ignore[union-attr]  # partial events
    assert events[-1].type == "image_generation.completed"
    assert decode_png(events[-1].data)[:2] == (1024, 1024)
    assert events[-1].usage is not None  # type: ignore[union-attr]  # the completed event

    with client.stream_edit("Add a hat", SMALL_PNG, partial_images=1, size="1024x1536") as stream:
        events = list(stream)
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert decode_png(events[-1].data)[:2] == (1024, 1536)


# -- files and batches ----------------------------------------------------------


def test_file_upload_and_download(server: FakeImagesServer) -> None:
    content = b'{"custom_id": "a"}\n'
    meta = upload(server, content, filename="in.jsonl")
    assert meta["id"].startswith("file-")
    assert (meta["object"], meta["bytes"], meta["purpose"], meta["filename"]) == (
        "file",
        len(content),
        "batch",
        "in.jsonl",
    )
    download = get(server, "/files/{}/content".format(meta["id"]))
    assert download.status_code == 200 and download.content == content
    assert_api_error(get(server, "/files/file-unknown/content"), 404)
    assert_api_error(
        post(server, "/files", data={"purpose": "fine-tune"}, files={"file": ("a", b"x")}), 400, param="purpose"
    )


def _batch_line(custom_id: str, **fields: Any) -> bytes:
    body = {"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024"}
    body.update(fields)
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/images/generations", "body": body}
    return json.dumps(line).encode("utf-8") + b"\n"


def _jsonl(server: FakeImagesServer, file_id: str) -> Dict[str, Dict[str, Any]]:
    response = get(server, f"/files/{file_id}/content")
    assert response.status_code == 200
    records = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    return {record["custom_id"]: record for record in records}


def test_batch_runs_to_completion_with_output_and_error_files(server: FakeImagesServer) -> None:
    data = _batch_line("fox-1") + _batch_line("fox-2", size="1536x1024") + _batch_line("bad-1", quality="ultra")
    input_file = upload(server, data)
    created = post(
        server,
        "/batches",
        json={
            "input_file_id": input_file["id"],
            "endpoint": "/v1/images/generations",
            "completion_window": "24h",
            "metadata": {"job": "foxes"},
        },
    )
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["id"].startswith("batch_") and batch["object"] == "batch"
    assert batch["status"] == "validating"
    assert (batch["input_file_id"], batch["endpoint"], batch["metadata"]) == (
        input_file["id"],
        "/v1/images/generations",
        {"job": "foxes"},
    )
    path = "/batches/" + batch["id"]

    early = get(server, path).json()
    assert early["status"] in ("validating", "in_progress"), "batch_completion_seconds is 0.3"
    latest: Dict[str, Any] = {}

    def completed() -> bool:
        latest.update(get(server, path).json())
        return latest["status"] == "completed"

    assert wait_until(completed, timeout=5, step=0.05), latest
    assert latest["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert latest["completed_at"] is not None

    outputs = _jsonl(server, latest["output_file_id"])
    assert set(outputs) == {"fox-1", "fox-2"}
    for custom_id, size in (("fox-1", "1024x1024"), ("fox-2", "1536x1024")):
        response = outputs[custom_id]["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        assert _schemas.find_violation("images_response", response["body"]) is None
        assert decode_png(base64.b64decode(response["body"]["data"][0]["b64_json"]))[:2] == tuple(
            int(part) for part in size.split("x")
        )
    errors = _jsonl(server, latest["error_file_id"])
    assert set(errors) == {"bad-1"}
    response = errors["bad-1"]["response"]
    assert response["status_code"] == 400
    assert set(response["body"]["error"]) >= ERROR_FIELDS and response["body"]["error"]["param"] == "quality"


def test_batch_cancel(server: FakeImagesServer) -> None:
    input_file = upload(server, _batch_line("fox-1"))
    batch = post(
        server,
        "/batches",
        json={"input_file_id": input_file["id"], "endpoint": "/v1/images/generations", "completion_window": "24h"},
    ).json()
    cancelled = post(server, "/batches/{}/cancel".format(batch["id"]))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] in ("cancelling", "cancelled")
    time.sleep(0.4)  # past batch_completion_seconds: a cancelled batch never completes
    later = get(server, "/batches/" + batch["id"]).json()
    assert later["status"] == "cancelled" and later["output_file_id"] is None
    assert_api_error(post(server, "/batches/batch_unknown/cancel"), 404)
    assert_api_error(get(server, "/batches/batch_unknown"), 404)
    assert_api_error(
        post(
            server,
            "/batches",
            json={"input_file_id": "file-unknown", "endpoint": "/v1/images/generations", "completion_window": "24h"},
        ),
        400,
        param="input_file_id",
    )


# -- validation, auth, routing ----------------------------------------------------


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "gpt-image-2", "prompt": "A red fox", "quality": "ultra"}, "quality"),
        ({"model": "gpt-image-2", "prompt": "A red fox", "size": "999x999"}, "size"),
        ({"model": "gpt-image-2", "prompt": "A red fox", "size": "256x256"}, "size"),  # too few pixels
        ({"model": "gpt-image-2", "prompt": "A red fox", "n": 0}, "n"),
        ({"model": "gpt-image-2"}, "prompt"),
    ],
)
def test_bad_generation_requests_get_a_400_naming_the_param(
    server: FakeImagesServer, body: Dict[str, Any], param: str
) -> None:
    assert_api_error(post(server, "/images/generations", json=body), 400, param=param)
    assert server.requests[-1].body == body


def test_the_server_rejects_what_the_client_did_not_check(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider]
) -> None:
    lax = make_client(server, check_model_rules=False)
    with pytest.raises(BadRequestError) as caught:
        lax.generate_image("A red fox", model="gpt-image-2", size="999x999")
    assert caught.value.status_code == 400 and caught.value.param == "size"
    assert caught.value.request_id is not None


def test_gif_upload_is_refused_naming_image(server: FakeImagesServer) -> None:
    response = post(
        server,
        "/images/edits",
        data={"model": "gpt-image-2", "prompt": "Add a hat"},
        files={"image": ("anim.gif", GIF, "image/gif")},
    )
    assert_api_error(response, 400, param="image")


def test_repeated_bare_image_fields_point_to_the_array_syntax(server: FakeImagesServer) -> None:
    response = post(
        server,
        "/images/edits",
        data={"model": "gpt-image-2", "prompt": "Combine"},
        files=[("image", ("a.png", SMALL_PNG, "image/png")), ("image", ("b.png", SMALL_PNG, "image/png"))],
    )
    error = assert_api_error(response, 400, param="image")
    assert "image[]" in error["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer sk-wrong-key"}, {"Authorization": "sk-fake"}, {"api-key": "sk-wrong-key"}]
)
def test_missing_or_wrong_credentials_get_a_401(server: FakeImagesServer, headers: Dict[str, str]) -> None:
    response = post(
        server, "/images/generations", headers=headers, json={"model": "gpt-image-2", "prompt": "A red fox"}
    )
    error = assert_api_error(response, 401)
    assert error["code"] == "invalid_api_key"
    assert_api_error(get(server, "/batches/batch_x", headers=headers), 401)


def test_a_client_with_the_wrong_key_gets_an_authentication_error(server: FakeImagesServer) -> None:
    with OpenAIImageProvider(api_key="sk-wrong-key", base_url=server.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.generate_image("A red fox")
    assert caught.value.status_code == 401 and caught.value.attempts == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/images/nothing"),
        ("POST", "/v2/images/generations"),
        ("GET", "/v1/images/generations"),
        ("POST", "/v1/models"),
        ("DELETE", "/v1/batches/batch_x"),
    ],
)
def test_unknown_paths_get_a_404(server: FakeImagesServer, method: str, path: str) -> None:
    response = requests.request(method, server.root_url + path, headers=auth(server), timeout=HTTP_TIMEOUT)
    assert_api_error(response, 404)


def test_azure_style_path_with_api_key_header(server: FakeImagesServer) -> None:
    url = server.root_url + "/openai/deployments/my-deployment/images/generations?api-version=2025-04-01-preview"
    response = requests.post(
        url,
        headers={"api-key": server.api_key},
        timeout=HTTP_TIMEOUT,
        json={"model": "gpt-image-1.5", "prompt": "A red fox", "size": "1024x1024", "quality": "low"},
    )
    assert response.status_code == 200, response.text
    assert decode_png(base64.b64decode(response.json()["data"][0]["b64_json"]))[:2] == (1024, 1024)
    recorded = server.requests[-1]
    assert recorded.path.startswith("/openai/deployments/my-deployment/images/generations?")
    assert recorded.headers["api-key"] == "[REDACTED]"

    with AzureOpenAIImageProvider(
        api_key=server.api_key, endpoint=server.root_url, deployment="my-deployment", api_version="2025-04-01-preview"
    ) as azure:
        result = azure.generate_image("A red fox", model="gpt-image-1.5", size="1024x1024")
    assert decode_png(result.images[0].data or b"")[:2] == (1024, 1024)


# -- faults ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 418, 422, 500, 502, 503])
def test_any_status_fault_has_an_api_error_body(server: FakeImagesServer, status: int) -> None:
    server.add_fault(Fault.error(status, code="custom_code", message=f"Injected {status}", param="size"))
    error = assert_api_error(generate(server), status, param="size")
    assert (error["code"], error["message"]) == ("custom_code", f"Injected {status}")
    server.add_fault(str(status))
    assert_api_error(generate(server), status)
    assert generate(server).status_code == 200


@pytest.mark.parametrize(
    "status, error_class",
    [
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
        (500, InternalServerError),
    ],
)
def test_status_faults_map_to_the_clients_errors(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider], status: int, error_class: type
) -> None:
    server.add_fault(Fault.error(status))
    with pytest.raises(error_class) as caught:
        make_client(server, max_retries=0).generate_image("A red fox")
    assert caught.value.status_code == status  # type: ignore[attr-defined]  # an APIStatusError here


@pytest.mark.parametrize(
    "fault, expected_wait",
    [
        (Fault.error(429, retry_after=1), 1.0),
        ("429,retry-after=1", 1.0),
        (Fault.error(429, retry_after_ms=250), 0.25),
        ("429,retry-after-ms=250", 0.25),
    ],
)
def test_429_retry_after_is_honoured_by_the_client(
    server: FakeImagesServer, client: OpenAIImageProvider, sleeps: List[float], fault: Any, expected_wait: float
) -> None:
    added = server.add_fault(fault)
    assert isinstance(added, Fault) and added.status == 429
    result = client.generate_image("A red fox", size="1024x1024")
    assert decode_png(result.images[0].data or b"")[:2] == (1024, 1024)
    assert sleeps == [expected_wait]
    assert len(server.requests) == 2


def test_raw_429_fault_headers(server: FakeImagesServer) -> None:
    server.add_fault("429,retry-after=2,retry-after-ms=1500")
    response = generate(server)
    error = assert_api_error(response, 429)
    assert error["code"] == "rate_limit_exceeded"
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2", "1500")


def test_500_is_retried_with_backoff(
    server: FakeImagesServer, client: OpenAIImageProvider, sleeps: List[float]
) -> None:
    server.add_fault(Fault.error(500))
    client.generate_image("A red fox")
    assert len(server.requests) == 2
    assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5


@pytest.mark.parametrize("fault", [Fault.error(503, should_retry=False), "503,x-should-retry=false"])
def test_503_with_should_retry_false_is_tried_once(
    server: FakeImagesServer, client: OpenAIImageProvider, sleeps: List[float], fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(InternalServerError) as caught:
        client.generate_image("A red fox")
    assert caught.value.status_code == 503 and caught.value.attempts == 1
    assert caught.value.headers["x-should-retry"] == "false"
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("fault", [Fault.moderation_blocked(), "moderation"])
def test_moderation_fault_raises_content_policy_error(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(ContentPolicyError) as caught:
        client.generate_image("A red fox")
    assert (caught.value.status_code, caught.value.code) == (400, "moderation_blocked")
    assert caught.value.type == "image_generation_user_error"
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", [Fault.drop(), "drop"])
def test_connection_closed_before_any_response(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(APIConnectionError) as caught:
        client.generate_image("A red fox")
    assert not isinstance(caught.value, APITimeoutError)
    server.add_fault(fault)
    with pytest.raises(requests.exceptions.ConnectionError):
        generate(server)
    assert generate(server).status_code == 200


@pytest.mark.parametrize("fault", [Fault.drop_mid_body(), "drop-mid-body"])
def test_connection_closed_half_way_through_the_body(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(APIConnectionError):
        client.generate_image("A red fox")
    server.add_fault(fault)
    with generate_streamed(server) as response:
        assert response.status_code == 200
        promised = int(response.headers["Content-Length"])
        received = bytearray()
        # urllib3 2 raises on the short body; 1.26 ends it silently. Either way it is short.
        try:
            for chunk in response.iter_content(chunk_size=4096):
                received.extend(chunk)
        except requests.exceptions.ChunkedEncodingError:
            pass
    assert 0 < len(received) < promised


@pytest.mark.parametrize("fault", [Fault.delay(1.0), "delay=1"])
def test_delay_triggers_the_client_read_timeout(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider], fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(APITimeoutError) as caught:
        make_client(server, timeout=0.2).generate_image("A red fox")
    assert caught.value.phase == "read"


def test_short_delay_then_a_normal_answer(server: FakeImagesServer) -> None:
    server.add_fault(Fault.delay(0.3))
    started = time.monotonic()
    response = generate(server)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


@pytest.mark.parametrize("fault", [Fault.invalid_json(), "invalid-json"])
def test_invalid_json_raises_response_validation_error(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(ResponseValidationError) as caught:
        client.generate_image("A red fox")
    assert caught.value.status_code == 200
    server.add_fault(fault)
    response = generate(server)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize("fault", [Fault.bad_schema(), "bad-schema"])
def test_schema_breaking_body_raises_response_validation_error(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    with pytest.raises(ResponseValidationError) as caught:
        client.generate_image("A red fox")
    assert caught.value.status_code == 200 and caught.value.path
    server.add_fault(fault)
    response = generate(server)
    assert response.status_code == 200
    assert _schemas.find_violation("images_response", response.json()) is not None


@pytest.mark.parametrize("fault", [Fault.stream_cut(), "stream-cut"])
def test_stream_cut_before_completed_raises_connection_error(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any
) -> None:
    server.add_fault(fault)
    received: List[Any] = []
    with client.stream_image("A koi pond", partial_images=1) as stream:
        with pytest.raises(APIConnectionError):
            for event in stream:
                received.append(event)
    assert [type(event) for event in received] == [PartialImage]


@pytest.mark.parametrize(
    "fault, error_class, code",
    [
        (Fault.stream_error(), InternalServerError, "server_error"),
        (Fault.stream_error("rate_limit_exceeded", shape="flat"), RateLimitError, "rate_limit_exceeded"),
        ("stream-error,code=moderation_blocked,shape=flat", ContentPolicyError, "moderation_blocked"),
        ("stream-error,code=server_error", InternalServerError, "server_error"),
    ],
)
def test_stream_error_event_raises_the_typed_error(
    server: FakeImagesServer, client: OpenAIImageProvider, fault: Any, error_class: type, code: str
) -> None:
    server.add_fault(fault)
    received: List[Any] = []
    with client.stream_image("A koi pond", partial_images=1) as stream:
        with pytest.raises(error_class) as caught:
            for event in stream:
                received.append(event)
    assert caught.value.code == code  # type: ignore[attr-defined]  # an APIStatusError here
    assert [type(event) for event in received] == [PartialImage]


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_stream_error_event_raw_shapes(server: FakeImagesServer, shape: str) -> None:
    server.add_fault(Fault.stream_error("server_error", shape=shape, message="Boom"))
    with post(
        server,
        "/images/generations",
        stream=True,
        json={"model": "gpt-image-2", "prompt": "A koi pond", "size": "1024x1024", "stream": True, "partial_images": 1},
    ) as response:
        assert response.status_code == 200
        text = b"".join(response.iter_content(chunk_size=65536)).decode("utf-8")
    events = read_sse(text)
    assert [name for name, _ in events] == ["image_generation.partial_image", "error"]
    data = events[-1][1]
    if shape == "nested":
        assert data["error"]["code"] == "server_error" and data["error"]["message"] == "Boom"
    else:
        assert (data["type"], data["code"], data["message"]) == ("error", "server_error", "Boom")


@pytest.mark.parametrize("fault", [Fault.error(500, times=2), "500,times=2"])
def test_times_applies_a_fault_to_n_requests(server: FakeImagesServer, fault: Any) -> None:
    server.add_fault(fault)
    assert [generate(server).status_code for _ in range(3)] == [500, 500, 200]


@pytest.mark.parametrize("fault", [Fault.error(500, path="/v1/images/edits"), "500,path=/v1/images/edits"])
def test_path_limits_a_fault_to_one_endpoint(server: FakeImagesServer, fault: Any) -> None:
    server.add_fault(fault)
    assert generate(server).status_code == 200
    edit = post(
        server,
        "/images/edits",
        data={"model": "gpt-image-2", "prompt": "Add a hat", "size": "1024x1024"},
        files={"image": ("photo.png", SMALL_PNG, "image/png")},
    )
    assert_api_error(edit, 500)
    assert generate(server).status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        "500,path=/v1/images/edits",
        "429,retry-after=1,path=/v1/images/edits",
        "drop,path=/v1/images/edits",
        "delay=0.5,path=/v1/images/edits",
        "invalid-json,path=/v1/images/edits",
        "moderation,path=/v1/images/edits",
        "stream-error,path=/v1/images/edits",
    ],
)
def test_string_faults_keep_their_path(spec: str) -> None:
    assert parse_fault(spec).path == "/v1/images/edits"


def test_moderation_string_fault_with_path_spares_other_endpoints(server: FakeImagesServer) -> None:
    server.add_fault("moderation,path=/v1/images/edits")
    assert generate(server).status_code == 200


def test_clear_faults_drops_pending_faults(server: FakeImagesServer) -> None:
    server.add_fault(Fault.error(500, times=5))
    server.add_fault("drop")
    assert generate(server).status_code == 500
    server.clear_faults()
    assert generate(server).status_code == 200
    assert generate(server).status_code == 200


@pytest.mark.parametrize("spec", ["", "teapot", "429,retry_after=1", "stream-error,shape=sideways"])
def test_bad_fault_strings_are_refused(server: FakeImagesServer, spec: str) -> None:
    with pytest.raises(ValueError):
        server.add_fault(spec)


# -- rate limiter ------------------------------------------------------------------


def test_requests_per_minute_limit(
    make_server: Callable[..., FakeImagesServer], make_client: Callable[..., OpenAIImageProvider]
) -> None:
    server = make_server(requests_per_minute=3)
    answers = [generate(server) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.headers["x-ratelimit-limit-requests"] for answer in answers] == ["3"] * 3
    assert [int(answer.headers["x-ratelimit-remaining-requests"]) for answer in answers] == [2, 1, 0]
    refused_answer = generate(server)
    error = assert_api_error(refused_answer, 429)
    assert error["code"] == "rate_limit_exceeded"
    assert refused_answer.headers["x-ratelimit-remaining-requests"] == "0"
    retry_after = float(refused_answer.headers["retry-after"])
    retry_after_ms = float(refused_answer.headers["retry-after-ms"])
    assert retry_after >= 1 and retry_after_ms > 0
    assert retry_after_ms / 1000 <= retry_after <= retry_after_ms / 1000 + 1
    with pytest.raises(RateLimitError) as caught:
        make_client(server, max_retries=0).generate_image("A red fox")
    assert caught.value.status_code == 429 and caught.value.headers["retry-after"]


def test_images_per_minute_limit(make_server: Callable[..., FakeImagesServer]) -> None:
    server = make_server(images_per_minute=2)
    response = generate(server, n=3)
    assert_api_error(response, 429)
    assert float(response.headers["retry-after"]) >= 1
    assert generate(server, n=2).status_code == 200
    assert_api_error(generate(server, n=1), 429)


@pytest.mark.slow
def test_latency_per_image_is_simulated(make_server: Callable[..., FakeImagesServer]) -> None:
    server = make_server(latency=0.2)
    started = time.monotonic()
    response = generate(server, n=2)
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200 and len(response.json()["data"]) == 2


# -- recorded requests and connections --------------------------------------------


def test_requests_are_recorded_with_the_key_redacted(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    client.generate_image("A red fox", size="1024x1024", quality="low")
    client.edit_image("Add a hat", SMALL_PNG, size="1024x1024")
    post(server, "/images/generations", headers={"Authorization": "Bearer sk-wrong-secret"}, json={"prompt": "x"})
    records = server.requests
    assert all(isinstance(record, RecordedRequest) for record in records)
    assert [(record.method, record.path) for record in records] == [
        ("POST", "/v1/images/generations"),
        ("POST", "/v1/images/edits"),
        ("POST", "/v1/images/generations"),
    ]
    for record in records:
        for name, value in record.headers.items():
            assert server.api_key not in value and "sk-wrong-secret" not in value, (name, value)
        assert record.headers["Authorization"] == "Bearer [REDACTED]"
    assert records[0].headers["Content-Type"] == "application/json"
    assert records[0].headers["User-Agent"].startswith("imageprovider/")
    assert records[0].body == {"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024", "quality": "low"}
    assert records[1].body["fields"] == {"model": "gpt-image-2", "prompt": "Add a hat", "size": "1024x1024"}
    (part,) = records[1].body["files"]["image"]
    assert (part["content_type"], part["bytes"]) == ("image/png", len(SMALL_PNG))
    assert part["filename"].endswith(".png")
    assert "_files" not in records[1].body
    assert records[2].body == {"prompt": "x"}
    server.clear_requests()
    assert server.requests == []


def test_one_provider_reuses_one_connection(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    for _ in range(10):
        client.generate_image("A red fox", size="1024x1024")
    assert len(server.requests) == 10
    assert server.connections_accepted == 1


def test_separate_providers_use_separate_connections(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider]
) -> None:
    for _ in range(3):
        make_client(server).generate_image("A red fox", size="1024x1024")
    assert server.connections_accepted == 3


@pytest.mark.slow
def test_100_concurrent_requests_from_8_threads(server: FakeImagesServer) -> None:
    local = threading.local()
    providers: List[OpenAIImageProvider] = []
    lock = threading.Lock()

    def call(number: int) -> Tuple[int, int]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url)
            with lock:
                providers.append(client)
        result = client.generate_image(f"Picture {number}", size="1024x1024", quality="low")
        return decode_png(result.images[0].data or b"")[:2]

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            sizes = list(pool.map(call, range(100), timeout=60))
    finally:
        for client in providers:
            client.close()
    assert sizes == [(1024, 1024)] * 100
    assert len(server.requests) == 100
    assert sorted(record.body["prompt"] for record in server.requests) == sorted(
        f"Picture {number}" for number in range(100)
    )
    assert len(providers) <= 8 and server.connections_accepted == len(providers)


@pytest.mark.parametrize(
    "spec", ["drop,retry-after=1", "moderation,code=x", "delay=1,shape=flat", "bad-schema,message=m"]
)
def test_fault_options_that_do_not_apply_are_refused(spec: str) -> None:
    """A text fault with an option its kind ignores is an error, not silently dropped."""
    with pytest.raises(ValueError) as caught:
        parse_fault(spec)
    assert "do not apply" in str(caught.value)


@pytest.mark.parametrize(
    "factory",
    [
        Fault.drop,
        Fault.drop_mid_body,
        Fault.invalid_json,
        Fault.bad_schema,
        Fault.stream_cut,
        Fault.moderation_blocked,
        Fault.stream_error,
        Fault.reset,
        Fault.reset_mid_body,
        Fault.html_error,
    ],
)
def test_every_fault_constructor_takes_a_path(factory: Callable[..., Fault]) -> None:
    """Any fault can be limited to one endpoint from Python."""
    assert factory(path="/v1/images/edits").path == "/v1/images/edits"
    assert Fault.delay(1.0, path="/v1/images/edits").path == "/v1/images/edits"
    assert Fault.slow_body(1.0, path="/v1/images/edits").path == "/v1/images/edits"


def test_edit_without_a_size_comes_back_1024_square(server: FakeImagesServer, client: OpenAIImageProvider) -> None:
    """An edit of a small input with no size is answered at the API's usual 1024x1024, with real usage."""
    result = client.edit_image("Add a hat", make_png(16, 16))
    width, height = decode_png(result.images[0].data)[:2]
    assert (width, height) == (1024, 1024)
    assert result.usage is not None and result.usage.output_tokens > 0


def test_azure_path_without_model_uses_the_deployment(server: FakeImagesServer) -> None:
    """On an Azure-style path the deployment names the model when the body does not."""
    response = requests.post(
        server.root_url + "/openai/deployments/gpt-image-1/images/generations",
        params={"api-version": "2025-04-01-preview"},
        headers={"api-key": server.api_key},
        json={"prompt": "x", "quality": "low"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["quality"] == "low"


# -- resets, slow bodies and proxy pages ---------------------------------------------


def raw_generation(server: FakeImagesServer) -> Tuple[bytes, Optional[BaseException]]:
    """POST a generation over a bare socket; return every byte that arrived and how the connection ended.

    ``None`` means an orderly close (FIN); a reset (RST) gives its ``ConnectionResetError``.
    """
    payload = json.dumps({"model": "gpt-image-2", "prompt": "A red fox", "size": "1024x1024"}).encode("utf-8")
    port = port_of(server)
    head = (
        f"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {server.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(head.encode("ascii") + payload)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return bytes(received), None
                received.extend(chunk)
        except ConnectionResetError as exc:
            return bytes(received), exc


@pytest.mark.parametrize(
    "fault, resets, answers",
    [
        ("drop", False, False),
        (Fault.reset(), True, False),
        ("reset", True, False),
        ("drop-mid-body", False, True),
        (Fault.reset_mid_body(), True, True),
        ("reset-mid-body", True, True),
    ],
)
def test_drop_closes_and_reset_resets_the_connection(
    server: FakeImagesServer, fault: Any, resets: bool, answers: bool
) -> None:
    """``drop*`` end with a FIN, ``reset*`` with an RST; the ``-mid-body`` kinds after the headers and half the body."""
    server.add_fault(fault)
    received, ending = raw_generation(server)
    assert isinstance(ending, ConnectionResetError) if resets else ending is None
    if answers:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
        declared = int({name.lower(): value for name, value in fields.items()}[b"content-length"])
        assert 0 < len(body) < declared
    else:
        assert received == b""
    assert generate(server).status_code == 200


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.reset_mid_body()])
def test_a_reset_is_a_connection_error_that_is_not_retried(
    server: FakeImagesServer, client: OpenAIImageProvider, sleeps: List[float], fault: Fault
) -> None:
    server.add_fault(fault)
    with pytest.raises(APIConnectionError) as caught:
        client.generate_image("A red fox")
    assert not isinstance(caught.value, APITimeoutError)
    assert caught.value.attempts == 1 and len(server.requests) == 1 and sleeps == []


#: Slack for the coarsest ``time.monotonic`` steps (about 16 ms on some Windows builds). Waits are
#: timed from before the request, so the server's pauses lie inside the measured span however late
#: a loaded client gets to the body: load only adds time, and this covers the clock, not the load.
CLOCK_GRANULARITY = 0.05


def read_slow_body(server: FakeImagesServer, fault: Any, stall: float = 0.0) -> Tuple[requests.Response, bytes, float]:
    """Send a generation under a ``slow-body`` fault; the response, its body, and the seconds it took.

    The clock starts before the request is sent, not when the headers arrive:
    the server starts its first pause right after the headers, before the
    client may even have seen them.

    :param stall: seconds the client spends between the headers and reading the body, as a loaded machine might.
    """
    added = server.add_fault(fault)
    assert (added.kind, added.seconds) == ("slow-body", 0.2)
    started = time.monotonic()
    with generate_streamed(server) as response:
        assert response.status_code == 200
        time.sleep(stall)
        body = b"".join(response.iter_content(chunk_size=65536))
        elapsed = time.monotonic() - started
    return response, body, elapsed


@pytest.mark.parametrize("fault", [Fault.slow_body(0.2), "slow-body=0.2"])
@pytest.mark.slow
def test_slow_body_sends_the_headers_at_once_then_the_body_in_pieces(server: FakeImagesServer, fault: Any) -> None:
    response, body, elapsed = read_slow_body(server, fault)
    assert elapsed >= 0.2 * 3 - CLOCK_GRANULARITY  # four pieces, three pauses
    assert len(body) == int(response.headers["Content-Length"])
    assert _schemas.find_violation("images_response", json.loads(body)) is None


@pytest.mark.slow
def test_regression_slow_body_timing_holds_for_a_client_slowed_by_load(server: FakeImagesServer) -> None:
    """Regression: the pauses were timed from when the client had the headers, so a client that got
    to them late (a loaded machine) measured less than the server paused: 0.599987 >= 0.6 failed."""
    response, body, elapsed = read_slow_body(server, "slow-body=0.2", stall=0.25)
    assert elapsed >= 0.2 * 3 - CLOCK_GRANULARITY
    assert len(body) == int(response.headers["Content-Length"])


def test_slow_body_spaces_out_stream_events(server: FakeImagesServer) -> None:
    server.add_fault("slow-body=0.15")
    started = time.monotonic()
    with post(
        server,
        "/images/generations",
        stream=True,
        json={"model": "gpt-image-2", "prompt": "A koi pond", "size": "1024x1024", "stream": True, "partial_images": 2},
    ) as response:
        text = b"".join(response.iter_content(chunk_size=65536)).decode("utf-8")
    assert time.monotonic() - started >= 0.15 * 2
    assert [name for name, _ in read_sse(text)] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]


def test_slow_body_past_the_read_timeout_is_a_read_timeout(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider], sleeps: List[float]
) -> None:
    server.add_fault(Fault.slow_body(30))
    with pytest.raises(APITimeoutError) as caught:
        make_client(server, timeout=0.2).generate_image("A red fox")
    assert caught.value.phase == "read" and caught.value.attempts == 1
    assert len(server.requests) == 1 and sleeps == []


def test_stop_returns_promptly_while_a_body_trickles() -> None:
    server = FakeImagesServer(detail_bits=0).start()
    server.add_fault(Fault.slow_body(30))
    try:
        response = generate_streamed(server)
        assert response.status_code == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
        received = bytearray()
        # urllib3 2 raises on the short body; 1.26 ends it silently. Either way it is short.
        try:
            for chunk in response.iter_content(chunk_size=65536):
                received.extend(chunk)
        except requests.exceptions.ChunkedEncodingError:
            pass
        assert len(received) < int(response.headers["Content-Length"])
        response.close()
    finally:
        server.stop()
    assert refused(port_of(server))


@pytest.mark.parametrize(
    "fault, status, reason",
    [
        (Fault.html_error(), 502, "Bad Gateway"),
        ("html-error", 502, "Bad Gateway"),
        (Fault.html_error(504), 504, "Gateway Timeout"),
        ("html-error=503", 503, "Service Unavailable"),
    ],
)
def test_html_error_is_a_proxy_page(server: FakeImagesServer, fault: Any, status: int, reason: str) -> None:
    server.add_fault(fault)
    response = generate(server)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert "x-request-id" not in response.headers
    assert response.text.startswith("<html>") and f"<h1>{status} {reason}</h1>" in response.text
    assert generate(server).status_code == 200


def test_html_error_reaches_the_client_as_its_status_error(
    server: FakeImagesServer, make_client: Callable[..., OpenAIImageProvider]
) -> None:
    server.add_fault("html-error")
    with pytest.raises(InternalServerError) as caught:
        make_client(server, max_retries=0).generate_image("A red fox")
    assert caught.value.status_code == 502 and caught.value.request_id is None
    assert isinstance(caught.value.body, str) and caught.value.body.startswith("<html>")


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("slow-body", "unknown fault"),
        ("slow-body=-1", "slow-body needs"),
        ("html-error=abc", "status code"),
        ("html-error=200", "400-599"),
        ("reset,retry-after=1", "do not apply"),
        ("html-error,code=x", "do not apply"),
        ("slow-body=1,shape=flat", "do not apply"),
    ],
)
def test_bad_new_fault_strings_are_refused(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_fault(spec)
    assert problem in str(caught.value)


def test_new_fault_strings_keep_times_and_path() -> None:
    fault = parse_fault("reset-mid-body,times=2,path=/v1/images/edits")
    assert (fault.kind, fault.times, fault.path) == ("reset-mid-body", 2, "/v1/images/edits")
    fault = parse_fault("html-error=504,times=3")
    assert (fault.kind, fault.status, fault.times) == ("html-error", 504, 3)


def test_a_burst_of_128_new_connections_is_queued_while_the_server_is_busy() -> None:
    """The listen backlog holds a burst: with the accept loop held up, 128 connections still complete their
    handshake (with socketserver's backlog of 5, about 6 did and the rest waited for SYN retries or were reset)."""
    import select

    gate = threading.Event()
    with FakeImagesServer(detail_bits=0) as server:
        httpd = server._httpd
        process = httpd.process_request

        def held(request: Any, address: Any) -> None:
            gate.wait(10)
            process(request, address)

        httpd.process_request = held  # type: ignore[method-assign]
        host, port = httpd.server_address[:2]
        first = socket.create_connection((host, port), timeout=5)  # the accept loop takes it and is held
        burst: List[socket.socket] = []
        try:
            time.sleep(0.05)
            for _ in range(128):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex((host, port))
                burst.append(sock)
            pending = set(burst)
            deadline = time.monotonic() + 2.0
            while pending and time.monotonic() < deadline:
                _, writable, _ = select.select([], list(pending), [], 0.1)
                pending -= {sock for sock in writable if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}
            assert len(burst) - len(pending) == 128
        finally:
            gate.set()
            first.close()
            for sock in burst:
                sock.close()
