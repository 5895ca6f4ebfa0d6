"""
imageprovider.testing._server
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

:class:`FakeImagesServer`: a local, standard-library HTTP server that speaks
the images, models, files and batches endpoints of OpenAI's API (checking
requests with its own table of API rules, :mod:`._rules`, on a clock that
tests can set), and misbehaves when
told to (:class:`~imageprovider.testing.Fault`: error statuses, HTML proxy
pages, connections closed or reset before or during the body, delays, slow
bodies, bad JSON, broken streams). It records every request and counts TCP
connections.
"""

import datetime
import json
import re
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Set, Tuple, Union, cast
from urllib.parse import unquote, urlsplit

from .. import _multipart
from . import _rules
from ._api import APIError, Generated, ImagesAPI, UrlStore, error_body, new_request_id, utc_today
from ._batches import BatchInputError, BatchStore, FileStore
from ._faults import Fault, parse_fault
from ._images import DEFAULT_DETAIL_BITS
from ._ratelimit import RateLimiter

__all__ = ["FAKE_API_KEY", "FakeImagesServer", "RecordedRequest"]

#: The key the stand-in accepts unless told otherwise.
FAKE_API_KEY = "sk-fake-imageprovider-local"

_IMAGES_ROUTE = re.compile(r"^(?:/v1|/openai(?:/deployments/([^/]+))?)/images/(generations|edits|variations)$")
_FILE_CONTENT_ROUTE = re.compile(r"^/v1/files/([^/]+)/content$")
_BATCH_ROUTE = re.compile(r"^/v1/batches/([^/]+)(/cancel)?$")
_MODELS_ROUTE = re.compile(r"^/v1/models(?:/([^/]+))?$")
_URL_STORE_ROUTE = re.compile(r"^/fake-files/([0-9a-f]+)\.(png|jpeg|webp|gif|svg)$")
_INT_FIELDS = ("n", "output_compression", "partial_images", "frame_count", "frame_duration_ms")
_BOOL_FIELDS = ("stream",)
_REDACTED = "[REDACTED]"
#: How often the background serving thread looks for a stop request: :meth:`FakeImagesServer.stop` waits up to this.
_POLL_SECONDS = 0.01
#: Pieces a ``slow-body`` fault splits a response body into.
SLOW_BODY_PIECES = 4

#: What ``today=`` takes: a date, or a callable returning one.
Today = Union[datetime.date, Callable[[], datetime.date]]


class RecordedRequest(NamedTuple):
    """One request as the stand-in received it."""

    method: str
    path: str
    #: Header names as sent; credentials replaced by ``[REDACTED]``.
    headers: Dict[str, str]
    #: The parsed body: a dict for JSON; ``{"fields": ..., "files": ...}`` for multipart; else ``None``.
    body: Any


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 drops (or resets) the connections of a burst, such as
    # ``imageprovider batch --concurrency 32`` opening its pool at once.
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], fake: "FakeImagesServer") -> None:
        self.fake = fake
        self.connections_accepted = 0
        self.open_sockets: Set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections_accepted += 1
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets a kept-alive connection (as after a stream error event)
        # is not a server failure; Python 3.8's handler raises it from the next readline.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class FakeImagesServer:
    """A stand-in for OpenAI's images API on loopback.

    Usage::

        >>> from imageprovider import OpenAIImageProvider
        >>> from imageprovider.testing import FakeImagesServer
        >>> with FakeImagesServer() as server:
        ...     with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
        ...         result = provider.generate_image("A lighthouse", size="1024x1024")

    :param host: address to bind; loopback by default.
    :param port: 0 picks a free port.
    :param api_key: the bearer token (or Azure ``api-key``) it accepts.
    :param requests_per_minute: simulated request limit (real 429s past it).
    :param images_per_minute: simulated image limit.
    :param tokens_per_minute: simulated token limit.
    :param latency: seconds of "generation" per image: a number, or ``(low, high)`` for a random spread.
    :param detail_bits: noise bits per colour channel of generated PNGs, 0-8
        (the default gives a realistic ~1 MB 1024x1024 image).
    :param url_ttl: seconds URL results stay downloadable (the API's are 60 minutes).
    :param batch_completion_seconds: seconds until a batch completes.
    :param today: the stand-in's date, for model shutdowns: a ``datetime.date``,
        or a callable returning one (default: today's UTC date). From a
        model's shutdown date on, requests naming it are answered
        ``404 model_not_found`` and ``GET /v1/models`` leaves it out. Azure
        paths (``/openai/...``) ignore shutdowns: Azure's dates are its own.
        Test suites that use retired models pass a day before the shutdowns::

            FakeImagesServer(today=datetime.date(2026, 1, 1))
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = FAKE_API_KEY,
        requests_per_minute: Optional[int] = None,
        images_per_minute: Optional[int] = None,
        tokens_per_minute: Optional[int] = None,
        latency: Union[float, Tuple[float, float]] = 0.0,
        detail_bits: int = DEFAULT_DETAIL_BITS,
        url_ttl: float = 3600.0,
        batch_completion_seconds: float = 2.0,
        today: Optional[Today] = None,
    ) -> None:
        self.today = today if today is not None else utc_today
        self.api_key = api_key
        self.latency = latency
        self.limiter = RateLimiter(
            requests_per_minute or 10_000, images_per_minute or 10_000, tokens_per_minute or 10_000_000
        )
        self.files = FileStore()
        self.url_store = UrlStore(url_ttl)
        self.api = ImagesAPI(self.url_store, self._url_for, self._file_content, detail_bits, self._current_date)
        self.batches = BatchStore(self.files, self._run_batch_line, batch_completion_seconds)
        self._faults: Deque[List[Any]] = deque()
        self._records: List[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), self)
        self._thread: Optional[threading.Thread] = None

    # -- the clock ---------------------------------------------------------

    @property
    def today(self) -> datetime.date:
        """The stand-in's date; may be set (to a date or a callable returning one) while it runs."""
        return self._current_date()

    @today.setter
    def today(self, value: Today) -> None:
        if isinstance(value, datetime.date):
            # A datetime is a date too; only its day counts.
            day = value.date() if isinstance(value, datetime.datetime) else value
            self._clock: Callable[[], datetime.date] = lambda: day
        elif callable(value):
            self._clock = value
        else:
            raise TypeError(f"today must be a datetime.date or a callable returning one, not {type(value).__name__}")

    def _current_date(self) -> datetime.date:
        day = self._clock()
        if isinstance(day, datetime.datetime):
            return day.date()
        if not isinstance(day, datetime.date):
            raise TypeError(f"the today= callable returned {type(day).__name__}, not a datetime.date")
        return day

    # -- lifecycle -------------------------------------------------------

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    @property
    def base_url(self) -> str:
        """The API root to configure clients with, ending in ``/v1``."""
        return self.root_url + "/v1"

    def start(self) -> "FakeImagesServer":
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name="FakeImagesServer",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or Ctrl-C)."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._close_connections()
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self._close_connections()
        self._httpd.server_close()

    def _close_connections(self) -> None:
        with self._httpd.lock:
            sockets = list(self._httpd.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "FakeImagesServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- faults and records ------------------------------------------------

    def add_fault(self, fault: Union[Fault, str]) -> Fault:
        """Script a fault for the next matching request(s); a string uses :func:`parse_fault`'s form."""
        parsed = parse_fault(fault) if isinstance(fault, str) else fault
        with self._lock:
            self._faults.append([parsed, parsed.times])
        return parsed

    def clear_faults(self) -> None:
        """Drop every scripted fault not yet used."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self, path: str) -> Optional[Fault]:
        with self._lock:
            for entry in self._faults:
                fault, remaining = entry
                if fault.path is None or path.startswith(fault.path):
                    entry[1] = remaining - 1
                    if entry[1] == 0:
                        self._faults.remove(entry)
                    return cast(Fault, fault)  # entries are [Fault, remaining] lists
        return None

    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._records)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._records.clear()

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (one per connection, however many requests it carried)."""
        return self._httpd.connections_accepted

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._records.append(request)

    # -- helpers for the handler -------------------------------------------

    def _url_for(self, token: str, extension: str) -> str:
        return f"{self.root_url}/fake-files/{token}.{extension}"

    def _file_content(self, file_id: str) -> Optional[bytes]:
        stored = self.files.get(file_id)
        return stored[1] if stored else None

    def _run_batch_line(self, url: str, body: Dict[str, Any]) -> Tuple[int, str, Dict[str, Any]]:
        endpoint = url.rsplit("/", 1)[-1]
        request_id = new_request_id()
        if body.get("stream"):
            return 400, request_id, error_body("Streaming is not supported in batches", "stream")
        try:
            generated = self.api.prepare(endpoint, body)
        except APIError as exc:
            return exc.status, request_id, exc.body()
        return 200, request_id, self.api.json_body(generated)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return early (``True``) when the server is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the
    # body would wait for the client's delayed ACK (~40 ms on Linux) on every
    # small response -- a stall real API servers do not have.
    disable_nagle_algorithm = True
    server: _HTTPServer
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- dispatch ----------------------------------------------------------

    def _handle(self) -> None:
        self._headers_sent = False
        self._request_id = new_request_id()
        self._started = time.monotonic()
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            if self._headers_sent:
                raise
            self._send_json(
                500,
                error_body(
                    f"The stand-in server failed: {type(exc).__name__}: {exc}", None, "stand_in_error", "server_error"
                ),
            )

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self._headers_sent = True
        super().send_response(code, message)

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        path = urlsplit(self.path).path
        body = self._parse_body(raw)
        shown = {key: value for key, value in body.items() if key != "_files"} if isinstance(body, dict) else body
        fake._record(RecordedRequest(self.command, self.path, self._redacted_headers(), shown))

        store = _URL_STORE_ROUTE.match(path)
        if store and self.command == "GET":
            return self._serve_stored(store.group(1))
        images = _IMAGES_ROUTE.match(path)
        files_content = _FILE_CONTENT_ROUTE.match(path)
        batch = _BATCH_ROUTE.match(path)
        models = _MODELS_ROUTE.match(path)
        known = (
            (images and self.command == "POST")
            or (models and self.command == "GET")
            or (path == "/v1/files" and self.command == "POST")
            or (files_content and self.command == "GET")
            or (path == "/v1/batches" and self.command == "POST")
            or (batch and (self.command == "GET" if not batch.group(2) else self.command == "POST"))
        )
        if not known:
            return self._send_json(404, error_body(f"Invalid URL ({self.command} {path})", None, "unknown_url"))
        if not self._authorized():
            return self._send_json(
                401,
                error_body(
                    "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                    None,
                    "invalid_api_key",
                ),
            )
        fault = fake._next_fault(path)
        if fault is not None and self._apply_fault(fault):
            return
        if images:
            azure = path.startswith("/openai/")
            return self._images(images.group(2), body, fault, unquote(images.group(1) or ""), azure)
        if models:
            return self._models(unquote(models.group(1) or ""))
        if path == "/v1/files":
            return self._upload_file(body, raw)
        if files_content:
            return self._file_content(files_content.group(1))
        if path == "/v1/batches":
            return self._create_batch(body)
        if batch is not None:
            return self._batch(batch.group(1), bool(batch.group(2)))
        return self._send_json(404, error_body(f"Invalid URL ({self.command} {path})", None, "unknown_url"))

    def _authorized(self) -> bool:
        key = self.server.fake.api_key
        bearer = self.headers.get("Authorization", "")
        return bearer == "Bearer " + key or self.headers.get("api-key") == key

    # -- images ------------------------------------------------------------

    def _images(
        self, endpoint: str, body: Any, fault: Optional[Fault], deployment: str = "", azure: bool = False
    ) -> None:
        fake = self.server.fake
        try:
            params, files = self._request_params(body)
            if deployment and not params.get("model"):
                params["model"] = deployment  # Azure: the deployment decides the model
            generated = fake.api.prepare(endpoint, params, files, shutdowns=not azure)
        except APIError as exc:
            return self._send_json(exc.status, exc.body())
        allowed, limit_headers = fake.limiter.acquire(
            len(generated.images), (generated.usage or {}).get("total_tokens", 0)
        )
        if not allowed:
            return self._send_json(
                429,
                error_body(
                    "Rate limit reached for requests or images per minute. Please try again in {}s.".format(
                        limit_headers["retry-after"]
                    ),
                    None,
                    "rate_limit_exceeded",
                    "requests",
                ),
                limit_headers,
            )
        if fake.wait(fake.api.latency(len(generated.images), fake.latency)):
            return self._drop()
        if generated.stream:
            return self._stream(generated, limit_headers, fault)
        payload = json.dumps(fake.api.json_body(generated), separators=(",", ":")).encode("utf-8")
        if fault is not None and fault.kind in ("drop-mid-body", "reset-mid-body", "stream-cut"):
            return self._send_partial(payload, limit_headers, reset=fault.kind == "reset-mid-body")
        if fault is not None and fault.kind == "slow-body":
            return self._send_slowly(payload, limit_headers, fault.seconds)
        self._send_bytes(200, payload, "application/json", limit_headers)

    def _request_params(self, body: Any) -> Tuple[Dict[str, Any], Optional[Dict[str, List[Tuple[str, bytes, str]]]]]:
        if isinstance(body, dict) and "fields" in body and "_files" in body:
            params: Dict[str, Any] = {}
            for name, value in body["fields"].items():
                params[name] = _typed_field(name, value)
            return params, body["_files"]
        if not isinstance(body, dict):
            raise APIError("The request body must be a JSON object or a multipart form.", None)
        return body, None

    # -- models --------------------------------------------------------------

    def _models(self, model_id: str) -> None:
        today = self.server.fake.today
        if not model_id:
            return self._send_json(200, _rules.model_list(today))
        try:
            self._send_json(200, _rules.find_model(model_id, today))
        except APIError as exc:
            self._send_json(exc.status, exc.body())

    def _stream(self, generated: Generated, headers: Dict[str, str], fault: Optional[Fault]) -> None:
        self.send_response(200)
        for name, value in self._common_headers(headers).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        breaks = fault is not None and fault.kind in ("stream-cut", "stream-error", "drop-mid-body", "reset-mid-body")
        slow = fault.seconds if fault is not None and fault.kind == "slow-body" else None
        for number, event in enumerate(self.server.fake.api.events(generated)):
            if breaks and event["type"].endswith(".completed"):
                if fault is not None and fault.kind == "stream-error":
                    self._write_event(_error_event(fault), "error")
                    break
                # Cut inside a chunk: its size line promises more than arrives.
                self.wfile.write(b"400\r\nevent: image_generation.parti")
                self.wfile.flush()
                if fault is not None and fault.kind == "reset-mid-body":
                    return self._reset()
                return self._drop()
            if slow is not None and number > 0 and self.server.fake.wait(slow):
                return self._drop()
            self._write_event(event, event["type"])
        self._write_chunk(b"")

    def _write_event(self, event: Dict[str, Any], kind: str) -> None:
        text = "event: {}\ndata: {}\n\n".format(kind, json.dumps(event, separators=(",", ":")))
        self._write_chunk(text.encode("utf-8"))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- faults --------------------------------------------------------------

    def _apply_fault(self, fault: Fault) -> bool:
        """Apply ``fault``; ``True`` when it answered the request itself."""
        if fault.kind == "status":
            body = {"error": {"message": fault.message, "type": fault.type, "param": fault.param, "code": fault.code}}
            self._send_json(fault.status, body, fault.headers)
            return True
        if fault.kind == "drop":
            self._drop()
            return True
        if fault.kind == "reset":
            self._reset()
            return True
        if fault.kind == "html-error":
            self._send_html_error(fault.status)
            return True
        if fault.kind == "delay":
            if self.server.fake.wait(fault.seconds):
                self._drop()
                return True
            return False
        if fault.kind == "invalid-json":
            self._send_bytes(200, b'{"created": 1713833628, "data": [{"b64_json": "iVBORw0', "application/json")
            return True
        if fault.kind == "bad-schema":
            self._send_json(200, {"created": "yesterday", "data": {"b64_json": 42}})
            return True
        return False

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reset(self) -> None:
        """Abort the connection: with a zero linger time, closing sends a TCP RST instead of a FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The socket closes for real once its buffered reader lets go of it.
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _send_partial(self, payload: bytes, headers: Dict[str, str], reset: bool = False) -> None:
        self._send_head(200, len(payload), "application/json", headers)
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        if reset:
            self._reset()
        else:
            self._drop()

    def _send_slowly(self, payload: bytes, headers: Dict[str, str], seconds: float) -> None:
        """The headers at once, then the body in :data:`SLOW_BODY_PIECES` pieces, ``seconds`` apart."""
        self._send_head(200, len(payload), "application/json", headers)
        step = max(1, -(-len(payload) // SLOW_BODY_PIECES))
        for start in range(0, len(payload), step):
            if start and self.server.fake.wait(seconds):
                return self._drop()
            self.wfile.write(payload[start : start + step])
            self.wfile.flush()

    def _send_html_error(self, status: int) -> None:
        # A proxy's page: HTML, and none of the API's headers (no x-request-id).
        reason = self.responses.get(status, ("Error",))[0]
        page = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
        self.wfile.flush()

    # -- files and batches ---------------------------------------------------

    def _upload_file(self, body: Any, raw: bytes) -> None:
        fields = body.get("fields", {}) if isinstance(body, dict) else {}
        files = body.get("_files", {}) if isinstance(body, dict) else {}
        purpose = fields.get("purpose")
        if purpose not in ("batch", "vision", "user_data"):
            return self._send_json(400, error_body("purpose must be 'batch', 'vision' or 'user_data'", "purpose"))
        uploads = files.get("file", [])
        if len(uploads) != 1:
            return self._send_json(400, error_body("Exactly one 'file' part is required", "file"))
        filename, data, _ = uploads[0]
        self._send_json(200, self.server.fake.files.add(filename, purpose, data))

    def _file_content(self, file_id: str) -> None:
        stored = self.server.fake.files.get(file_id)
        if stored is None:
            return self._send_json(404, error_body(f"No such File object: {file_id}", "id", "not_found"))
        self._send_bytes(200, stored[1], "application/octet-stream")

    def _create_batch(self, body: Any) -> None:
        if not isinstance(body, dict):
            return self._send_json(400, error_body("The body must be a JSON object", None))
        try:
            batch = self.server.fake.batches.create(body)
        except BatchInputError as exc:
            return self._send_json(400, error_body(str(exc), exc.param))
        self._send_json(200, batch)

    def _batch(self, batch_id: str, cancel: bool) -> None:
        store = self.server.fake.batches
        batch = store.cancel(batch_id) if cancel else store.get(batch_id)
        if batch is None:
            return self._send_json(404, error_body(f"No batch found with id {batch_id!r}", "batch_id", "not_found"))
        self._send_json(200, batch)

    def _serve_stored(self, token: str) -> None:
        stored = self.server.fake.url_store.get(token)
        if stored is None or stored[2]:
            body = (
                b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>'
                b"Signed expiry time has passed.</Message></Error>"
            )
            return self._send_bytes(403 if stored else 404, body, "application/xml")
        self._send_bytes(200, stored[0], stored[1])

    # -- plumbing --------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _parse_body(self, raw: bytes) -> Any:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return _parse_multipart(content_type, raw)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _redacted_headers(self) -> Dict[str, str]:
        headers = {}
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                value = value.split(" ", 1)[0] + " " + _REDACTED if " " in value else _REDACTED
            elif name.lower() == "api-key":
                value = _REDACTED
            headers[name] = value
        return headers

    def _common_headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        headers = {
            "x-request-id": self._request_id,
            "openai-processing-ms": str(int((time.monotonic() - self._started) * 1000)),
            "openai-version": "2020-10-01",
        }
        headers.update(extra or {})
        return headers

    def _send_json(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        self._send_bytes(status, json.dumps(body, separators=(",", ":")).encode("utf-8"), "application/json", headers)

    def _send_bytes(
        self, status: int, payload: bytes, content_type: str, headers: Optional[Dict[str, str]] = None
    ) -> None:
        self._send_head(status, len(payload), content_type, headers)
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_head(self, status: int, length: int, content_type: str, headers: Optional[Dict[str, str]]) -> None:
        """The status line and headers (the API's own, ``headers``, type and length) of a body to follow."""
        self.send_response(status)
        for name, value in self._common_headers(headers).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()


def _typed_field(name: str, value: Any) -> Any:
    # Multipart text parts are strings; the schemas expect JSON types.
    if name in _INT_FIELDS and isinstance(value, str) and re.match(r"-?[0-9]{1,9}\Z", value):
        return int(value)
    if name in _BOOL_FIELDS and value in ("true", "false"):
        return value == "true"
    return value


def _parse_multipart(content_type: str, raw: bytes) -> Dict[str, Any]:
    fields: Dict[str, Any] = {}
    files: Dict[str, List[Tuple[str, bytes, str]]] = {}
    summary: Dict[str, List[Dict[str, Any]]] = {}
    for part in _multipart.parse(content_type, raw):
        if part.filename is None:
            fields[part.name] = part.payload.decode("utf-8", "replace")
            continue
        files.setdefault(part.name, []).append((part.filename, part.payload, part.content_type))
        summary.setdefault(part.name, []).append(
            {"filename": part.filename, "content_type": part.content_type, "bytes": len(part.payload)}
        )
    return {"fields": fields, "files": summary, "_files": files}


def _error_event(fault: Fault) -> Dict[str, Any]:
    if fault.shape == "flat":
        return {"type": "error", "code": fault.code, "message": fault.message, "param": None}
    return {
        "error": {
            "type": "server_error" if fault.code == "server_error" else "invalid_request_error",
            "code": fault.code,
            "message": fault.message,
            "param": None,
        }
    }
