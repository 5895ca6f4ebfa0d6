"""Hostile servers, proxies and image hosts, each played over raw sockets.

Every test here is one way a server (or anything between it and the client)
can try to take the key, exhaust memory, hold a call forever or choose what is
written to disk. The servers are plain sockets on 127.0.0.1, 127.0.0.2 and
::1 that write whatever bytes the case needs: no HTTP library between them and
the client. Each case asserts

- the typed error the client raises (and its exit status on the command line),
- the memory: with the default limits, the client's peak RSS grows by at most
  :data:`MEMORY_BOUND` over its baseline in every bomb and amplification case
  (the peak is read from the kernel's high-water mark, reset before the case),
- the time, where the server tries to hold the call,
- what is on disk afterwards (nothing where nothing may be written),
- that no credential reached a foreign host and no form of the key (plain,
  JSON-escaped, percent-encoded, base64) appears in anything the client
  emitted; the suite-wide canary watches logs, errors, output and files too.

At the end the module prints ``N hostile cases, N held`` and the peak memory
growth of each bomb.
"""

import base64
import ctypes
import errno
import functools
import gc
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
import zlib
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import pytest
import urllib3
from helpers import API_KEY, BEFORE_SHUTDOWNS, PNG, PNG_B64
from scripted_server import RawServer, Seen, head, raw_server, reply, reply_stream, routes, send

from imageprovider import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AzureOpenAIImageProvider,
    BadRequestError,
    ConfigurationWarning,
    InternalServerError,
    Limits,
    OpenAIImageProvider,
    PartialImage,
    ResponseValidationError,
)
from imageprovider.batch import run_batch, run_batch_api
from imageprovider.cli import main as cli_main
from imageprovider.testing import FakeImagesServer

if not sys.platform.startswith("linux"):
    pytest.skip("the hostile suite reads peak memory from /proc and binds 127.0.0.2", allow_module_level=True)

MiB = 1024 * 1024
#: Most the client's peak RSS may grow in a bomb or amplification case (issue 14).
MEMORY_BOUND = 128 * MiB
PROMPT = "A lighthouse at dusk"
ORGANIZATION = "org-hostile-secret-organization"
PROJECT = "proj-hostile-secret-project"
GATEWAY_TOKEN = "gw-hostile-secret-token-4242"
#: Every credential the client holds: none may reach a host other than the API.
CREDENTIALS = (API_KEY, ORGANIZATION, PROJECT, GATEWAY_TOKEN)
#: A PNG signature and header, then zeros: what "805 MB on the wire as one .png" decodes to.
PNG_HEAD = PNG[:33]
assert len(PNG_HEAD) % 3 == 0  # so that its base64 joins the 'A's (zeros) without padding


# -- the report ------------------------------------------------------------------------

_RESULTS: Dict[str, bool] = {}
_PEAKS: Dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def hostile_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints ``N hostile cases, N held`` (and each bomb's peak memory growth) after the module."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        reporter.write_line("")
        for name, growth in sorted(_PEAKS.items()):
            reporter.write_line(f"hostile: {name}: peak RSS +{growth / MiB:.1f} MiB")
        reporter.write_line(f"{len(_RESULTS)} hostile cases, {sum(_RESULTS.values())} held")


def hostile(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test as one hostile case: whether it held goes into the module's closing line."""

    @functools.wraps(test)
    def case(*args: Any, **kwargs: Any) -> None:
        name = os.environ.get("PYTEST_CURRENT_TEST", test.__name__).split("::")[-1].rsplit(" ", 1)[0]
        _RESULTS[name] = False
        test(*args, **kwargs)
        _RESULTS[name] = True

    return case


# -- memory -------------------------------------------------------------------------------


def _status_bytes(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        found = re.search(rf"^{field_name}:\s+(\d+) kB", status.read(), re.MULTILINE)
    assert found, f"/proc/self/status has no {field_name}"
    return int(found.group(1)) * 1024


def _give_back_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: freed memory may stay counted, which only overstates growth
        pass


@contextmanager
def peak_growth(case: str) -> Iterator[None]:
    """Asserts the process's peak RSS grows by at most :data:`MEMORY_BOUND` inside the block.

    The kernel's high-water mark (``VmHWM``) is reset to the current RSS by
    writing 5 to ``/proc/self/clear_refs``, so the peak is this block's own.
    """
    _give_back_freed_memory()
    baseline = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")
    yield
    growth = _status_bytes("VmHWM") - baseline
    _PEAKS[case] = growth
    assert growth <= MEMORY_BOUND, f"peak RSS grew by {growth / MiB:.1f} MiB (bound {MEMORY_BOUND / MiB:.0f} MiB)"


# -- bodies --------------------------------------------------------------------------------


def endless(prefix: bytes, filler: bytes = b"A" * 65536, total: Optional[int] = None) -> Iterator[bytes]:
    """``prefix``, then ``filler`` forever (or until ``total`` bytes of it)."""
    yield prefix
    sent = 0
    while total is None or sent < total:
        yield filler
        sent += len(filler)


def compressed(pieces: Iterable[bytes], encodings: Sequence[str]) -> Iterator[bytes]:
    """``pieces`` compressed by each of ``encodings`` in turn (as ``Content-Encoding`` lists them), lazily."""
    bits = {"gzip": 31, "deflate": 15}
    compressors = [zlib.compressobj(6, zlib.DEFLATED, bits[name]) for name in encodings]
    for piece in pieces:
        for compressor in compressors:
            piece = compressor.compress(piece)
        if piece:
            yield piece
    tail = b""
    for compressor in compressors:
        tail = compressor.compress(tail) + compressor.flush()
    yield tail


def bomb(
    prefix: bytes, encodings: Sequence[str], total: Optional[int] = None, suffix: bytes = b""
) -> Callable[[], Iterator[bytes]]:
    """A compressed body that inflates to ``prefix`` + ``total`` bytes of ``A`` + ``suffix``.

    By default 2 GiB under one encoding, and 320 MiB (five times any default limit) under stacked ones: a
    stacked bomb is so small on the wire that no socket buffer holds its sender back, so the server would
    otherwise spend a dozen seconds of CPU compressing what the client never reads.
    """
    if total is None:
        total = 2048 * MiB if len(encodings) < 2 else 320 * MiB

    def pieces() -> Iterator[bytes]:
        yield from compressed(_chain(endless(prefix, total=total), [suffix]), encodings)

    return pieces


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part


IMAGE_PREFIX = b'{"created": 1, "data": [{"b64_json": "' + base64.b64encode(PNG_HEAD)


def images_json(count: int = 1, image: str = PNG_B64, **extra: Any) -> bytes:
    body = {"created": 1, "data": [{"b64_json": image} for _ in range(count)], **extra}
    return json.dumps(body).encode("utf-8")


def sse(events: Iterable[Tuple[str, Dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode() for kind, payload in events)


def partial_event(index: int) -> Tuple[str, Dict[str, Any]]:
    kind = "image_generation.partial_image"
    return kind, {"type": kind, "b64_json": PNG_B64, "partial_image_index": index, "created_at": 1, "size": "1024x1024"}


def completed_event() -> Tuple[str, Dict[str, Any]]:
    kind = "image_generation.completed"
    return kind, {"type": kind, "b64_json": PNG_B64, "created_at": 1, "size": "1024x1024"}


SSE_HEADERS = {"Content-Type": "text/event-stream"}


# -- what the client emitted -----------------------------------------------------------------


def key_forms(secret: str = API_KEY) -> Dict[str, str]:
    """Every form of ``secret`` a server could echo back."""
    return {
        "plain": secret,
        "json-escaped": "".join(f"\\u{ord(char):04x}" for char in secret),
        "first-char-escaped": f"\\u{ord(secret[0]):04x}" + secret[1:],
        "percent-encoded": "".join(f"%{byte:02X}" for byte in secret.encode()),
        "base64-bearer": base64.b64encode(b"Bearer " + secret.encode()).decode(),
        "base64": base64.b64encode(secret.encode()).decode(),
    }


def assert_no_key(*texts: Any) -> None:
    """No form of the key in any of ``texts`` (strings, bytes, exceptions: str and repr)."""
    for text in texts:
        if isinstance(text, BaseException):
            shown = [str(text), repr(text), repr(vars(text))]
        elif isinstance(text, bytes):
            shown = [text.decode("latin-1")]
        else:
            shown = [str(text)]
        for form_name, form in key_forms().items():
            for item in shown:
                assert form not in item, f"the key ({form_name}) is in {item[:300]!r}"


def assert_no_credentials(server: RawServer) -> None:
    """The foreign ``server`` was never handed a credential."""
    received = server.received().decode("latin-1")
    for secret in CREDENTIALS:
        assert secret not in received, f"a credential reached {server.host}"
    for request in server.seen:
        assert not {"authorization", "openai-organization", "openai-project", "x-gateway-token"} & set(request.headers)


def chain(error: BaseException) -> List[BaseException]:
    """``error`` and its causes and contexts."""
    found: List[BaseException] = []
    current: Optional[BaseException] = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def files_in(folder: Path) -> List[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# -- providers -------------------------------------------------------------------------------


def provider_for(base_url: str, **options: Any) -> OpenAIImageProvider:
    """A provider holding every kind of credential, with no retries and no model shutdowns."""
    options.setdefault("timeout", (5, 30))
    options.setdefault("max_retries", 0)
    return OpenAIImageProvider(
        api_key=API_KEY,
        base_url=base_url,
        organization=ORGANIZATION,
        project=PROJECT,
        extra_headers={"X-Gateway-Token": GATEWAY_TOKEN},
        clock=BEFORE_SHUTDOWNS,
        **options,
    )


def url_result(url: str) -> bytes:
    return json.dumps({"created": 1, "data": [{"url": url}]}).encode("utf-8")


def generate_url_result(api: RawServer, folder: Path, **options: Any) -> Path:
    """Ask for a dall-e-3 URL result and save it into ``folder`` (the download is the case)."""
    options.setdefault("base_url", api.base_url)
    with provider_for(**options) as provider:
        result = provider.generate_image(PROMPT, model="dall-e-3", response_format="url")
        return result.images[0].save(folder)


def run_cli(monkeypatch: pytest.MonkeyPatch, base_url: str, *args: str) -> int:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", os.devnull)
    return cli_main(list(args))


# == 1. Credentials go to the API's exact origin, decided as the transport connects ==================


@hostile
def test_backslash_authority_in_a_url_result_is_refused_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with raw_server(reply(404), "127.0.0.2") as evil:
        with raw_server(routes({})) as api:
            url = f"http://127.0.0.2:{evil.port}\\@127.0.0.1:{api.port}/img.png"
            # The trick is real: the stdlib sees the API's host, urllib3 (and so requests) connects to evil.
            assert urlsplit(url).hostname == "127.0.0.1"
            assert urllib3.util.parse_url(url).host == "127.0.0.2"
            api.handler = routes({"/v1/images/generations": reply(200, url_result(url))})
            with pytest.raises(ResponseValidationError, match="backslash") as caught:
                generate_url_result(api, tmp_path / "out")
            code = run_cli(
                monkeypatch,
                api.base_url,
                "generate",
                PROMPT,
                "--model",
                "dall-e-3",
                "--response-format",
                "url",
                "--no-model-rules",
                "-o",
                str(tmp_path / "cli"),
            )
        assert code == 5
        assert evil.connections == 0
        assert [request.method for request in api.seen] == ["POST", "POST"]
    assert files_in(tmp_path / "out") == [] and files_in(tmp_path / "cli") == []
    assert_no_key(caught.value)


@hostile
def test_backslash_authority_in_a_redirect_is_refused_before_connecting(tmp_path: Path) -> None:
    with raw_server(reply(404), "127.0.0.2") as evil, raw_server(routes({})) as api:
        location = f"http://127.0.0.2:{evil.port}\\@127.0.0.1:{api.port}/img.png"
        api.handler = routes(
            {
                "/v1/images/generations": reply(200, url_result(api.url("/images/1.png"))),
                "/images/1.png": reply(302, b"", {"Location": location}),
            }
        )
        with pytest.raises(ResponseValidationError, match="backslash"):
            generate_url_result(api, tmp_path)
        assert evil.connections == 0
    assert files_in(tmp_path) == []


@hostile
def test_a_redirect_to_another_origin_carries_no_credential(tmp_path: Path) -> None:
    """The image itself is fetched from the other host (it may be a CDN), without any credential."""
    with raw_server(reply(200, PNG, {"Content-Type": "image/png"}), "127.0.0.2") as cdn, raw_server(routes({})) as api:
        api.handler = routes(
            {
                "/v1/images/generations": reply(200, url_result(api.url("/images/1.png"))),
                # Same host, other port: another origin too.
                "/images/1.png": reply(302, b"", {"Location": cdn.url("/cdn/1.png")}),
            }
        )
        saved = generate_url_result(api, tmp_path)
        assert saved.read_bytes() == PNG
        assert [request.target for request in cdn.seen] == ["/cdn/1.png"]
        assert_no_credentials(cdn)
        # The API's own origin did get them, on every request (the download from it included).
        assert all(request.headers.get("authorization") == f"Bearer {API_KEY}" for request in api.seen)


@hostile
def test_azure_keeps_its_key_on_its_endpoint(tmp_path: Path) -> None:
    """Azure's ``api-key`` follows the same rules: a backslash URL is refused before connecting, and the image
    from another origin is fetched without the key."""
    with raw_server(reply(404), "127.0.0.2") as evil, raw_server(
        reply(200, PNG, {"Content-Type": "image/png"}), "127.0.0.2"
    ) as cdn, raw_server(routes({})) as api:
        deployment = "/openai/deployments/dall-e-3/images/generations"
        azure_options: Dict[str, Any] = dict(
            api_key=API_KEY,
            endpoint=api.origin,
            deployment="dall-e-3",
            api_version="2025-04-01-preview",
            timeout=(5, 30),
            max_retries=0,
        )
        api.handler = routes(
            {deployment: reply(200, url_result(f"http://127.0.0.2:{evil.port}\\@{api.origin[7:]}/i.png"))}
        )
        with AzureOpenAIImageProvider(**azure_options) as azure:
            with pytest.raises(ResponseValidationError, match="backslash"):
                azure.generate_image(PROMPT, model="dall-e-3", response_format="url").images[0].save(tmp_path)
        api.handler = routes({deployment: reply(200, url_result(cdn.url("/cdn/1.png")))})
        with AzureOpenAIImageProvider(**azure_options) as azure:
            saved = azure.generate_image(PROMPT, model="dall-e-3", response_format="url").images[0].save(tmp_path)
        assert saved.read_bytes() == PNG
    assert evil.connections == 0
    assert [request.target for request in cdn.seen] == ["/cdn/1.png"]
    assert "api-key" not in cdn.seen[0].headers and API_KEY.encode() not in cdn.received()
    assert all(request.headers.get("api-key") == API_KEY for request in api.seen)


@hostile
@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@{api}/images/1.png",
        "http://{api}@127.0.0.2:{evil}/images/1.png",
        "http://127.0.0.2:{evil}\t/images/1.png",
        "file:///etc/passwd",
        "ftp://127.0.0.2:{evil}/images/1.png",
    ],
    ids=["userinfo", "api-as-userinfo", "control-character", "file-scheme", "ftp-scheme"],
)
def test_url_results_with_credentials_or_odd_parts_are_refused(tmp_path: Path, url: str) -> None:
    with raw_server(reply(404), "127.0.0.2") as evil, raw_server(routes({})) as api:
        target = url.format(api=f"127.0.0.1:{api.port}", evil=evil.port)
        api.handler = routes({"/v1/images/generations": reply(200, url_result(target))})
        with pytest.raises(ResponseValidationError) as caught:
            generate_url_result(api, tmp_path)
        assert evil.connections == 0
        assert [request.method for request in api.seen] == ["POST"]
    assert "secret" not in str(caught.value)
    assert files_in(tmp_path) == []


# == 2. The download policy, with an API on a public name ===========================================

#: Names the tests resolve themselves (see ``resolver``): no DNS here.
API_NAME = "api.hostile.test"
IMAGES_NAME = "images.hostile.test"


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """Test names -> addresses: ``socket.getaddrinfo`` answers for them as a (hostile) DNS would."""
    table: Dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            return real(table[name], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@hostile
@pytest.mark.parametrize(
    "url, kind",
    [
        ("https://127.0.0.2:{port}/img.png", "loopback"),
        ("https://[::1]:{port}/img.png", "loopback"),
        ("https://localhost:{port}/img.png", "loopback"),
        ("https://10.11.12.13/img.png", "private"),
        ("https://192.168.1.20/img.png", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fd12:3456::7]/img.png", "private"),
        ("https://[fe80::1]/img.png", "link-local"),
        ("https://[::ffff:127.0.0.2]:{port}/img.png", "loopback"),
    ],
)
def test_downloads_refuse_private_addresses_when_the_api_is_public(
    tmp_path: Path, resolver: Dict[str, str], url: str, kind: str
) -> None:
    with raw_server(reply(200, PNG), "127.0.0.2") as host, raw_server(routes({})) as api:
        resolver[API_NAME] = "127.0.0.1"
        base_url = f"http://{API_NAME}:{api.port}/v1"
        api.handler = routes({"/v1/images/generations": reply(200, url_result(url.format(port=host.port)))})
        with pytest.raises(ResponseValidationError, match=f"it is a {kind} address") as caught:
            generate_url_result(api, tmp_path, base_url=base_url, allow_insecure_http=True)
        assert "allow_private_image_hosts" in str(caught.value)
        assert host.connections == 0
    assert files_in(tmp_path) == []


@hostile
def test_plain_http_downloads_are_refused_when_the_api_is_not_local(tmp_path: Path, resolver: Dict[str, str]) -> None:
    with raw_server(reply(200, PNG), "127.0.0.2") as host, raw_server(routes({})) as api:
        resolver[API_NAME] = "127.0.0.1"
        resolver[IMAGES_NAME] = "127.0.0.2"
        api.handler = routes(
            {"/v1/images/generations": reply(200, url_result(f"http://{IMAGES_NAME}:{host.port}/img.png"))}
        )
        with pytest.raises(ResponseValidationError, match="only https"):
            generate_url_result(api, tmp_path, base_url=f"http://{API_NAME}:{api.port}/v1", allow_insecure_http=True)
        assert host.connections == 0


@hostile
def test_dns_rebinding_is_caught_on_the_address_really_connected(tmp_path: Path, resolver: Dict[str, str]) -> None:
    """A public-looking name that resolves to loopback at connect time: refused before a byte is sent."""
    with raw_server(reply(200, PNG), "127.0.0.2") as host, raw_server(routes({})) as api:
        resolver[API_NAME] = "127.0.0.1"
        resolver[IMAGES_NAME] = "127.0.0.2"
        api.handler = routes(
            {"/v1/images/generations": reply(200, url_result(f"https://{IMAGES_NAME}:{host.port}/img.png"))}
        )
        with pytest.raises(ResponseValidationError, match=f"{IMAGES_NAME}: it is a loopback address"):
            generate_url_result(api, tmp_path, base_url=f"http://{API_NAME}:{api.port}/v1", allow_insecure_http=True)
        # The TCP connection was made (that is how the address was learnt) and closed: not even a TLS hello.
        deadline = time.monotonic() + 5
        while host.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host.connections == 1
        assert host.bytes_received == 0
    assert files_in(tmp_path) == []


@hostile
@pytest.mark.slow
def test_allow_private_image_hosts_lets_the_download_connect(tmp_path: Path, resolver: Dict[str, str]) -> None:
    """The named option lifts the refusal: the client really connects (the host here speaks no TLS)."""
    with raw_server(reply(200, PNG), "127.0.0.2") as host, raw_server(routes({})) as api:
        resolver[API_NAME] = "127.0.0.1"
        api.handler = routes({"/v1/images/generations": reply(200, url_result(f"https://127.0.0.2:{host.port}/img"))})
        with pytest.raises(APIConnectionError):
            generate_url_result(
                api,
                tmp_path,
                base_url=f"http://{API_NAME}:{api.port}/v1",
                allow_insecure_http=True,
                allow_private_image_hosts=True,
                timeout=(1, 1),  # the host never answers the ClientHello: the handshake ends at the timeout
            )
        # The host counts what it received once the client has hung up: give its thread a moment.
        for _ in range(100):
            if host.bytes_received:
                break
            time.sleep(0.02)
        assert host.connections >= 1 and host.bytes_received > 0  # a TLS ClientHello
        assert_no_credentials(host)


@hostile
def test_an_image_hosts_error_body_is_read_only_as_an_excerpt(tmp_path: Path) -> None:
    """A 500 from the image host with 10 MB of text (gzip-bombed): a short, named error, bounded memory."""
    with raw_server(routes({})) as api:
        api.handler = routes(
            {
                "/v1/images/generations": reply(200, url_result(api.url("/images/1.png"))),
                "/images/1.png": reply_stream(
                    bomb(b"<html>storage error ", ["gzip"]), status=500, headers={"Content-Encoding": "gzip"}
                ),
            }
        )
        with peak_growth("image host error body, gzip bomb"):
            with pytest.raises(InternalServerError) as caught:
                generate_url_result(api, tmp_path)
    assert len(str(caught.value)) < 2000
    assert "127.0.0.1" in str(caught.value)
    assert files_in(tmp_path) == []


@hostile
@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate"])
@pytest.mark.slow
def test_a_download_bomb_stops_at_max_download_bytes(tmp_path: Path, encoding: str) -> None:
    encodings = [name.strip() for name in encoding.split(",")]
    with raw_server(routes({})) as api:
        api.handler = routes(
            {
                "/v1/images/generations": reply(200, url_result(api.url("/images/1.png"))),
                "/images/1.png": reply_stream(
                    bomb(PNG_HEAD, encodings), headers={"Content-Type": "image/png", "Content-Encoding": encoding}
                ),
            }
        )
        with peak_growth(f"download bomb, {encoding}"):
            with pytest.raises(ResponseValidationError, match="max_download_bytes"):
                generate_url_result(api, tmp_path)
    assert files_in(tmp_path) == []


# == 3. Bounded reads: bombs, endless bodies, deep nesting ========================================


@hostile
@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate", "identity"])
@pytest.mark.slow
def test_an_image_that_inflates_past_its_limit_is_refused_unwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """A body whose one image decodes to ~1.5 GB ("1 MB on the wire became an 805 MB .png")."""
    encodings = [name.strip() for name in encoding.split(",") if name.strip() != "identity"]
    body = bomb(IMAGE_PREFIX, encodings) if encodings else functools.partial(endless, IMAGE_PREFIX)
    headers = {"Content-Encoding": encoding} if encodings else {}
    with raw_server(routes({"/v1/images/generations": reply_stream(body, headers=headers)})) as api:
        with peak_growth(f"one image, {encoding}"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_image_bytes"):
                    provider.generate_image(PROMPT, save_to=tmp_path / "api")
        code = run_cli(monkeypatch, api.base_url, "generate", PROMPT, "-o", str(tmp_path / "cli"))
    assert code == 5
    assert files_in(tmp_path / "api") == [] and files_in(tmp_path / "cli") == []


@hostile
@pytest.mark.slow
def test_an_error_body_bomb_is_read_as_a_short_excerpt(tmp_path: Path) -> None:
    body = bomb(b'{"error": {"type": "invalid_request_error", "message": "', ["gzip", "gzip"])
    with raw_server(
        routes({"/v1/images/generations": reply_stream(body, status=400, headers={"Content-Encoding": "gzip, gzip"})})
    ) as api:
        with peak_growth("error body, gzip, gzip"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(BadRequestError) as caught:
                    provider.generate_image(PROMPT)
    assert caught.value.status_code == 400
    assert len(str(caught.value)) < 2000


@hostile
def test_a_ten_megabyte_error_message_is_bounded_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    message = "no " * (10 * MiB // 3)
    body = {"error": {"message": message, "type": "invalid_request_error", "code": "x" * 100000}}
    with raw_server(routes({"/v1/images/generations": reply(400, body)})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(BadRequestError) as caught:
                provider.generate_image(PROMPT)
            summary = run_batch([PROMPT], tmp_path / "batch", provider=provider, concurrency=1, max_attempts=1)
        capsys.readouterr()
        code = run_cli(monkeypatch, api.base_url, "generate", PROMPT, "--json", "-o", str(tmp_path / "cli"))
        printed = capsys.readouterr()
    assert code == 3
    assert len(str(caught.value)) < 2000 and len(caught.value.message) < 2000
    assert len(json.dumps(caught.value.body)) < 20000
    assert summary.failed == 1
    manifest = (tmp_path / "batch" / "manifest.jsonl").read_bytes()
    assert len(manifest) < 4096
    assert len(printed.out) + len(printed.err) < 8192


@hostile
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_an_endless_event_stream_line_is_refused(tmp_path: Path, encoding: str) -> None:
    encodings = [] if encoding == "identity" else [encoding]
    prefix = b'event: image_generation.partial_image\ndata: {"type": "image_generation.partial_image", "b64_json": "'
    body = bomb(prefix, encodings) if encodings else functools.partial(endless, prefix)
    headers = dict(SSE_HEADERS, **({"Content-Encoding": encoding} if encodings else {}))
    with raw_server(routes({"/v1/images/generations": reply_stream(body, headers=headers)})) as api:
        with peak_growth(f"one stream line, {encoding}"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_stream_line_bytes"):
                    with provider.stream_image(PROMPT, partial_images=1) as stream:
                        list(stream)


@hostile
@pytest.mark.slow
def test_an_event_of_many_data_lines_is_refused(tmp_path: Path) -> None:
    """Short lines, one endless event: the event limit holds where the line limit cannot."""
    body = functools.partial(endless, b"event: image_generation.partial_image\n", b"data: AAAAAAAAAAAAAAAA\n" * 4096)
    with raw_server(routes({"/v1/images/generations": reply_stream(body, headers=SSE_HEADERS)})) as api:
        with peak_growth("one stream event of many lines, 4 MiB limit"):
            # A lower limit than the default 32 MiB, only to keep the test quick: two million lines take seconds.
            with provider_for(api.base_url, limits=Limits(max_stream_line_bytes=4 * MiB)) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_stream_line_bytes"):
                    with provider.stream_image(PROMPT, partial_images=1) as stream:
                        list(stream)


@hostile
@pytest.mark.parametrize("opener", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_deep_nesting_stops_at_max_json_depth(opener: bytes) -> None:
    """10 MB of ``[`` once cost the scanner about 1.1 GB."""
    prefix = b'{"created": 1, "data": [{"b64_json": "' + PNG_B64.encode() + b'"}], "x": '
    body = functools.partial(endless, prefix, opener * (65536 // len(opener)), 10 * MiB)
    with raw_server(routes({"/v1/images/generations": reply_stream(body)})) as api:
        with peak_growth(f"nesting, {opener.decode()}"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_json_depth"):
                    provider.generate_image(PROMPT)


@hostile
def test_the_json_around_the_images_is_bounded() -> None:
    """A gzip-bombed string beside the images: the skeleton limit, not the response limit, stops it."""
    prefix = b'{"created": 1, "data": [{"b64_json": "' + PNG_B64.encode() + b'"}], "padding": "'
    with raw_server(
        routes({"/v1/images/generations": reply_stream(bomb(prefix, ["gzip"]), headers={"Content-Encoding": "gzip"})})
    ) as api:
        with peak_growth("skeleton, gzip"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_skeleton_bytes"):
                    provider.generate_image(PROMPT)


@hostile
def test_a_json_endpoint_is_bounded_too(tmp_path: Path) -> None:
    """The models list (no images in it) is held to the skeleton limit."""
    prefix = b'{"object": "list", "data": [], "padding": "'
    with raw_server(
        routes({"/v1/models": reply_stream(bomb(prefix, ["gzip"]), headers={"Content-Encoding": "gzip"})})
    ) as api:
        with peak_growth("models list, gzip"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_skeleton_bytes"):
                    provider.list_models()


@hostile
def test_more_than_two_stacked_encodings_are_refused() -> None:
    with raw_server(
        routes({"/v1/images/generations": reply(200, images_json(), {"Content-Encoding": "gzip, gzip, gzip"})})
    ) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(ResponseValidationError, match="stacked content encodings"):
                provider.generate_image(PROMPT)


# == 4. The whole-call deadline ====================================================================


def trickle(prefix: bytes, every: float) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        yield prefix
        while True:
            time.sleep(every)
            yield b"A"

    return pieces


def keep_alives(every: float) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        while True:
            yield b": keep-alive\n\n"
            time.sleep(every)

    return pieces


@hostile
@pytest.mark.slow
def test_a_trickling_body_is_stopped_by_the_deadline() -> None:
    """A byte every 50 ms: the read timeout (5 s) never fires; the deadline (1.5 s) does."""
    with raw_server(routes({"/v1/images/generations": reply_stream(trickle(IMAGE_PREFIX, 0.05))})) as api:
        with provider_for(api.base_url, timeout=(5, 5), deadline=1.5) as provider:
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as caught:
                provider.generate_image(PROMPT)
            elapsed = time.monotonic() - started
    assert caught.value.phase == "deadline"
    assert "deadline of 1.5 s" in str(caught.value)
    assert 1.4 <= elapsed < 4.0


@hostile
@pytest.mark.slow
def test_the_command_lines_deadline_stops_a_trickling_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with raw_server(routes({"/v1/images/generations": reply_stream(trickle(IMAGE_PREFIX, 0.05))})) as api:
        started = time.monotonic()
        code = run_cli(monkeypatch, api.base_url, "generate", PROMPT, "--deadline", "1", "-o", str(tmp_path / "cli"))
        elapsed = time.monotonic() - started
    assert code == 4
    assert "APITimeoutError" in capsys.readouterr().err
    assert 0.9 <= elapsed < 4.0
    assert files_in(tmp_path) == []


@hostile
@pytest.mark.slow
def test_a_stream_of_keep_alives_is_stopped_by_the_deadline() -> None:
    with raw_server(routes({"/v1/images/generations": reply_stream(keep_alives(0.1), headers=SSE_HEADERS)})) as api:
        with provider_for(api.base_url, timeout=(5, 5), deadline=1.5) as provider:
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as caught:
                with provider.stream_image(PROMPT, partial_images=1) as stream:
                    list(stream)
            elapsed = time.monotonic() - started
    assert caught.value.phase == "deadline"
    assert 1.4 <= elapsed < 4.0


@hostile
@pytest.mark.slow
def test_with_options_sets_and_lifts_the_deadline() -> None:
    """``with_options(deadline=...)`` bounds the copy only; ``None`` lifts the bound (the read timeout still holds)."""
    with raw_server(routes({"/v1/images/generations": reply_stream(trickle(IMAGE_PREFIX, 0.05))})) as api:
        with provider_for(api.base_url, timeout=(5, 5), deadline=None) as provider:
            hurried = provider.with_options(deadline=1.0)
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                hurried.generate_image(PROMPT)
            assert time.monotonic() - started < 3.5
            assert provider.transport.deadline is None and hurried.transport.deadline == 1.0
            assert provider.with_options(max_retries=1).transport.deadline is None
            assert hurried.with_options(deadline=None).transport.deadline is None


# == 5. The client decides what is written ===========================================================


@hostile
def test_twenty_thousand_images_for_one_asked_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with raw_server(routes({"/v1/images/generations": reply(200, images_json(20000))})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(ResponseValidationError, match="more than the 1 image"):
                provider.generate_image(PROMPT, save_to=tmp_path / "api")
        code = run_cli(monkeypatch, api.base_url, "generate", PROMPT, "-o", str(tmp_path / "cli"))
    assert code == 5
    assert files_in(tmp_path / "api") == [] and files_in(tmp_path / "cli") == []


@hostile
def test_three_thousand_partials_for_two_asked_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = sse([partial_event(index % 3) for index in range(3001)] + [completed_event()])
    with raw_server(routes({"/v1/images/generations": reply(200, body, SSE_HEADERS)})) as api:
        events: List[Any] = []
        with provider_for(api.base_url) as provider:
            with pytest.raises(ResponseValidationError, match="more partial images than the 2 asked for"):
                with provider.stream_image(PROMPT, partial_images=2) as stream:
                    events.extend(stream)
        code = run_cli(
            monkeypatch,
            api.base_url,
            "generate",
            PROMPT,
            "--stream",
            "--partial-images",
            "2",
            "-o",
            str(tmp_path / "cli"),
        )
    assert [type(event) for event in events] == [PartialImage, PartialImage]
    assert code == 5
    # The two previews asked for (named after the -o path), and nothing else.
    assert files_in(tmp_path) == ["cli-partial-1.png", "cli-partial-2.png"]


@hostile
def test_a_stream_with_more_completed_images_than_asked_is_refused() -> None:
    body = sse([completed_event(), completed_event()])
    with raw_server(routes({"/v1/images/generations": reply(200, body, SSE_HEADERS)})) as api:
        with provider_for(api.base_url) as provider:
            completed: List[Any] = []
            with pytest.raises(ResponseValidationError, match="more images than the 1 asked for"):
                with provider.stream_image(PROMPT, partial_images=0) as stream:
                    completed.extend(stream)
    assert len(completed) == 1


# -- the Batch API, through a hostile front on the stand-in -------------------------------------


@contextmanager
def batch_front(
    rewrite: Callable[[bytes], Tuple[Dict[str, str], Callable[[], Iterable[bytes]]]],
) -> Iterator[RawServer]:
    """A front that passes every request to a stand-in, except result files, which ``rewrite`` serves."""
    stand_in = FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS, batch_completion_seconds=0).start()
    upstream = urlsplit(stand_in.base_url)

    def handle(request: Seen, connection: socket.socket) -> bool:
        body = request.body
        client = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        headers = {name: value for name, value in request.headers.items() if name not in ("host", "connection")}
        headers["authorization"] = f"Bearer {stand_in.api_key}"
        client.request(request.method, request.target, body=body, headers=headers)
        response = client.getresponse()
        content = response.read()
        client.close()
        if request.method == "GET" and request.target.endswith("/content") and response.status == 200:
            extra, pieces = rewrite(content)
            return reply_stream(pieces, headers={"Content-Type": "application/jsonl", **extra})(request, connection)
        fields = {
            "Content-Type": response.getheader("Content-Type", "application/json"),
            "Content-Length": str(len(content)),
        }
        send(connection, head(response.status, fields) + content)
        return False

    try:
        with raw_server(handle) as front:
            yield front
    finally:
        stand_in.stop()


def result_lines(content: bytes) -> Dict[str, Dict[str, Any]]:
    return {line["custom_id"]: line for line in map(json.loads, content.splitlines()) if line}


def run_hostile_batch(front: RawServer, out: Path, **options: Any) -> Any:
    with provider_for(front.base_url, **options) as provider:
        return run_batch_api(
            [{"id": "first", "prompt": "one"}, {"id": "second", "prompt": "two"}],
            out,
            provider=provider,
            wait=True,
            poll_interval=0.05,
            max_poll_interval=0.1,
            sleep=lambda seconds: time.sleep(min(seconds, 0.05)),
        )


def manifest_of(out: Path) -> Dict[str, Dict[str, Any]]:
    records: Dict[str, Dict[str, Any]] = {}
    for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records[record["id"]] = record
    return records


@hostile
def test_a_batch_item_with_extra_images_cannot_overwrite_another_items_file(tmp_path: Path) -> None:
    def rewrite(content: bytes) -> Tuple[Dict[str, str], Callable[[], Iterable[bytes]]]:
        lines = result_lines(content)
        # 'first' answers with three images: its second and third would be named like other items' files.
        data = lines["first"]["response"]["body"]["data"]
        lines["first"]["response"]["body"]["data"] = data * 3
        text = "\n".join(json.dumps(line) for line in lines.values()).encode() + b"\n"
        return {}, lambda: [text]

    out = tmp_path / "out"
    with batch_front(rewrite) as front:
        summary = run_hostile_batch(front, out)
    records = manifest_of(out)
    assert records["first"]["state"] == "failed"
    assert records["first"]["error_class"] == "ResponseValidationError"
    assert "3 images where 1 were asked for" in records["first"]["message"]
    assert records["second"]["state"] == "done"
    images = [name for name in files_in(out) if name.endswith(".png")]
    assert images == records["second"]["files"] and all(name.startswith("second") for name in images)
    assert summary.failed == 1 and summary.done == 1


@hostile
def test_a_nested_batch_result_line_fails_its_item_and_collection_goes_on(tmp_path: Path) -> None:
    def rewrite(content: bytes) -> Tuple[Dict[str, str], Callable[[], Iterable[bytes]]]:
        lines = result_lines(content)
        deep = (
            b'{"custom_id": "first", "response": {"status_code": 200, "body": ' + b"[" * 100000 + b"]" * 100000 + b"}}"
        )
        # A rerun resubmits the failed item only: the other lines are passed on as they are.
        others = [json.dumps(line).encode() for custom_id, line in lines.items() if custom_id != "first"]
        text = b"\n".join([deep, *others]) + b"\n"
        return {}, lambda: [text]

    out = tmp_path / "out"
    with batch_front(rewrite) as front:
        run_hostile_batch(front, out)
        assert manifest_of(out)["first"]["attempts"] == 1
        # Rerunning fails the item again and raises nothing (it once raised RecursionError on every rerun).
        run_hostile_batch(front, out)
    records = manifest_of(out)
    assert records["first"]["state"] == "failed" and records["first"]["attempts"] == 2
    assert "nested too deeply" in records["first"]["message"]
    assert records["first"]["error_class"] == "ResponseValidationError"
    assert records["second"]["state"] == "done"


@hostile
def test_a_too_long_batch_result_line_fails_its_item_and_collection_goes_on(tmp_path: Path) -> None:
    def rewrite(content: bytes) -> Tuple[Dict[str, str], Callable[[], Iterable[bytes]]]:
        lines = result_lines(content)
        long = json.dumps(dict(lines["first"], padding="p" * (3 * MiB // 2))).encode()
        text = long + b"\n" + json.dumps(lines["second"]).encode() + b"\n"
        return {}, lambda: [text]

    out = tmp_path / "out"
    with batch_front(rewrite) as front:
        run_hostile_batch(front, out, limits=Limits(max_batch_line_bytes=MiB))
    records = manifest_of(out)
    assert records["first"]["state"] == "failed"
    assert "longer than the limit" in records["first"]["message"]
    assert records["second"]["state"] == "done"


@hostile
def test_a_batch_result_file_bomb_stops_at_its_bound(tmp_path: Path) -> None:
    """A result file can hold one line per request: a gzip bomb past that is refused, and nothing is saved."""

    def rewrite(content: bytes) -> Tuple[Dict[str, str], Callable[[], Iterable[bytes]]]:
        return {"Content-Encoding": "gzip"}, bomb(content, ["gzip"])

    out = tmp_path / "out"
    with batch_front(rewrite) as front:
        with pytest.raises(ResponseValidationError, match=r"result file is larger .*Limits\.max_batch_line_bytes"):
            run_hostile_batch(front, out, limits=Limits(max_batch_line_bytes=MiB))
    assert not [name for name in files_in(out) if name.endswith((".png", ".part"))]
    assert manifest_of(out) == {}  # neither done nor failed: a rerun with a higher limit collects them


# == 6. Redaction ====================================================================================


@hostile
def test_a_request_id_reflecting_the_key_is_redacted_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, caplog: Any
) -> None:
    """A proxy that reflects the Authorization header as ``x-request-id``."""

    def reflect(request: Seen, connection: socket.socket) -> bool:
        echoed = request.headers.get("authorization", "")
        return reply(400, {"error": {"message": "nope"}}, {"x-request-id": echoed})(request, connection)

    def reflect_ok(request: Seen, connection: socket.socket) -> bool:
        echoed = request.headers.get("authorization", "")
        return reply(200, images_json(), {"x-request-id": echoed})(request, connection)

    with raw_server(routes({"/v1/images/generations": reflect})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(BadRequestError) as caught:
                provider.generate_image(PROMPT)
            run_batch([PROMPT], tmp_path / "batch", provider=provider, concurrency=1, max_attempts=1)
        code = run_cli(monkeypatch, api.base_url, "generate", PROMPT, "--json", "-o", str(tmp_path / "cli"))
    with raw_server(routes({"/v1/images/generations": reflect_ok})) as api:
        with provider_for(api.base_url) as provider:
            result = provider.generate_image(PROMPT)
            saved = result.images[0].save(tmp_path / "ok", metadata=True)
    assert code == 3
    assert "[REDACTED]" in (caught.value.request_id or "")
    printed = capsys.readouterr()
    files = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert_no_key(
        caught.value, caught.value.request_id, result.request_id, printed.out, printed.err, caplog.text, files
    )
    assert saved.exists()


@hostile
@pytest.mark.parametrize(
    "form", ["plain", "json-escaped", "first-char-escaped", "percent-encoded", "base64-bearer", "base64"]
)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_an_echoed_key_is_redacted_in_every_form(form: str, content_type: str, caplog: Any) -> None:
    echoed = key_forms()[form]
    if content_type == "application/json":
        # Raw text inside a JSON string: the escapes are JSON's own.
        body = (
            b'{"error": {"message": "Incorrect API key provided: '
            + echoed.encode()
            + b'", "code": "'
            + echoed.encode()
            + b'"}}'
        )
    else:
        body = b"401 Unauthorized: " + echoed.encode()
    with raw_server(
        routes({"/v1/images/generations": reply(401, body, {"Content-Type": content_type, "x-echo": echoed})})
    ) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(APIStatusError) as caught:
                provider.generate_image(PROMPT)
    assert caught.value.status_code == 401
    assert_no_key(caught.value, json.dumps(caught.value.body), caught.value.headers, caplog.text)


@hostile
def test_an_exception_chain_keeps_its_cause_but_no_credential() -> None:
    """A connection cut after the request: ``__cause__`` is kept, but no request (and its headers) hangs off it."""

    def cut(request: Seen, connection: socket.socket) -> bool:
        connection.shutdown(socket.SHUT_RDWR)
        return False

    with raw_server(routes({"/v1/images/generations": cut})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(APIConnectionError) as caught:
                provider.generate_image(PROMPT)
    links = chain(caught.value)
    assert len(links) > 1, "the cause is kept"
    for link in links:
        request = getattr(link, "request", None)
        headers = getattr(request, "headers", None) or {}
        assert not {"authorization", "openai-organization", "openai-project", "x-gateway-token"} & {
            str(name).lower() for name in headers
        }
        response = getattr(link, "response", None)
        assert getattr(getattr(response, "request", None), "headers", None) is None
        assert_no_key(link)
        for secret in CREDENTIALS:
            assert secret not in repr(vars(link))


@hostile
def test_a_stream_error_event_keeps_a_redacted_bounded_payload() -> None:
    message = f"upstream said: {API_KEY} " + "x" * (5 * MiB)
    body = sse(
        [
            (
                "error",
                {
                    "type": "error",
                    "error": {"message": message, "code": "server_error", "echo": key_forms()["base64-bearer"]},
                },
            )
        ]
    )
    with raw_server(routes({"/v1/images/generations": reply(200, body, SSE_HEADERS)})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(APIStatusError) as caught:
                with provider.stream_image(PROMPT, partial_images=1) as stream:
                    list(stream)
    assert len(str(caught.value)) < 2000
    assert len(json.dumps(caught.value.body)) < 20000
    assert "[REDACTED]" in json.dumps(caught.value.body)
    assert_no_key(caught.value, json.dumps(caught.value.body))


# == 7. Files the batch writes are never followed through a symbolic link =============================


@hostile
def test_a_planted_manifest_link_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").symlink_to(victim)
    with raw_server(routes({"/v1/images/generations": reply(200, images_json())})) as api:
        with provider_for(api.base_url) as provider:
            with pytest.raises(OSError) as caught:
                run_batch([PROMPT], out, provider=provider, concurrency=1)
    assert caught.value.errno == errno.ELOOP
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert api.seen == []


@hostile
@pytest.mark.parametrize("name", ["summary.json", "batch_api.json"])
def test_planted_summary_and_state_links_are_replaced_not_followed(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(victim)
    with batch_front(lambda content: ({}, lambda: [content])) as front:
        try:
            run_hostile_batch(front, out)
        except OSError as exc:  # batch_api.json is read first: a link there is refused outright
            assert exc.errno == errno.ELOOP and name == "batch_api.json"
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not (out / name).is_symlink() or name == "batch_api.json"


# == 8. The permissions warning reaches the user ======================================================


@hostile
@pytest.mark.slow
def test_a_readable_config_file_warns_by_default(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[imageprovider]\napi_key = sk-readable-by-others-1234\n", encoding="utf-8")
    config.chmod(0o644)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "IMAGEPROVIDER_", "PYTHONWARN"))
    }
    environment["IMAGEPROVIDER_CONFIG"] = str(config)
    script = "import imageprovider; imageprovider.OpenAIImageProvider().close()"
    library = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60
    )
    assert library.returncode == 0, library.stderr
    assert "ConfigurationWarning" in library.stderr and "readable by other users" in library.stderr
    cli = subprocess.run(
        [sys.executable, "-m", "imageprovider", "generate", PROMPT, "--dry-run"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "readable by other users" in cli.stderr
    assert "sk-readable-by-others-1234" not in library.stderr + cli.stderr + cli.stdout
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenAIImageProvider(config_file=str(config)).close()
    assert [warning.category for warning in caught] == [ConfigurationWarning]


# == Both address families ===========================================================================


@hostile
@pytest.mark.slow
def test_over_ipv6_loopback_the_same_limits_hold(tmp_path: Path) -> None:
    with raw_server(
        routes(
            {"/v1/images/generations": reply_stream(bomb(IMAGE_PREFIX, ["gzip"]), headers={"Content-Encoding": "gzip"})}
        ),
        "::1",
    ) as api:
        with peak_growth("one image over ::1, gzip"):
            with provider_for(api.base_url) as provider:
                with pytest.raises(ResponseValidationError, match=r"Limits\.max_image_bytes"):
                    provider.generate_image(PROMPT, save_to=tmp_path)
    with raw_server(reply(404), "127.0.0.2") as evil, raw_server(routes({}), "::1") as api:
        url = f"http://127.0.0.2:{evil.port}\\@[::1]:{api.port}/img.png"
        api.handler = routes({"/v1/images/generations": reply(200, url_result(url))})
        with pytest.raises(ResponseValidationError, match="backslash"):
            generate_url_result(api, tmp_path)
        assert evil.connections == 0
    assert files_in(tmp_path) == []
