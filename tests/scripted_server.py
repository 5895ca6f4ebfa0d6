"""The tests' one loopback HTTP server, and the scripts that drive it.

``responses`` emulates status retries but never sleeps, never retries
connection errors and never times out; tests that need urllib3's real
behaviour, or a server that misbehaves on the wire, talk to a
:class:`RawServer` over 127.0.0.1 (or 127.0.0.2, or ::1). It reads each
request itself and hands it to a handler that writes whatever bytes it likes;
the handlers below cover what the tests need:

- :func:`reply`, :func:`reply_stream`, :func:`routes`: a whole answer, a body
  written piece by piece, a dispatch on the path (the hostile-server suite);
- :class:`ScriptedServer`: a list of :class:`Reply` values played in order,
  with delays, dropped connections and short bodies (retries, timeouts);
- :class:`Conn`: a script writes the status line, headers and pieces itself
  (event streams, chunked downloads).
"""

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional

# -- the server ------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as it arrived: request line, headers (lower-cased names) and body, raw."""

    method: str
    target: str
    headers: Dict[str, str]
    raw: bytes

    @property
    def body(self) -> bytes:
        return self.raw.partition(b"\r\n\r\n")[2]

    @property
    def named_headers(self) -> Dict[str, str]:
        """The headers with their names as the client wrote them."""
        head = self.raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        fields = (line.partition(":") for line in head.split("\r\n")[1:])
        return {name.strip(): value.strip() for name, _, value in fields}


#: Writes a whole answer on the socket; returns whether the connection may serve another request.
Handler = Callable[[Seen, socket.socket], bool]


class RawServer:
    """A TCP listener that reads each request itself and answers with ``handler``.

    :ivar connections: connections accepted.
    :ivar bytes_received: bytes received on them (a request never completed counts once the client hangs up).
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", timeout: float = 60.0, tls: Any = None) -> None:
        self.handler = handler
        self.host = host
        #: An ``ssl.SSLContext`` to serve https with (``None``: plain http).
        self.tls = tls
        #: The certificates clients presented (mutual TLS), one per handshake.
        self.client_certs: List[Any] = []
        self.seen: List[Seen] = []
        self.connections = 0
        self.bytes_received = 0
        self._timeout = timeout
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._open: List[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return "{}://{}:{}".format(scheme, f"[{self.host}]" if ":" in self.host else self.host, self.port)

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def url(self, path: str) -> str:
        return self.origin + path

    def received(self) -> bytes:
        return b"".join(request.raw for request in self.seen)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(self._timeout)
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
                with self._lock:
                    self.client_certs.append(connection.getpeercert())  # type: ignore[attr-defined]
            while True:
                request = self._read_request(connection)
                if request is None or not self.handler(request, connection):
                    return
        except OSError:
            return
        finally:
            connection.close()

    def _read_request(self, connection: socket.socket) -> Optional[Seen]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                with self._lock:
                    self.bytes_received += len(data)
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        while len(body) < int(headers.get("content-length") or 0):
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        seen = Seen(method, target, headers, head + b"\r\n\r\n" + body)
        with self._lock:
            self.bytes_received += len(seen.raw)
            self.seen.append(seen)
        return seen

    def close(self) -> None:
        try:
            # Wakes the accept() under way (closing alone does not, on Linux).
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for connection in self._open:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)

    def __enter__(self) -> "RawServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


@contextmanager
def raw_server(handler: Handler, host: str = "127.0.0.1") -> Iterator[RawServer]:
    server = RawServer(handler, host)
    try:
        yield server
    finally:
        server.close()


def send(connection: socket.socket, data: bytes) -> bool:
    """Write ``data``; ``False`` when the client has gone away."""
    try:
        connection.sendall(data)
        return True
    except OSError:
        return False


def head(status: int, headers: Dict[str, str], close: bool = True) -> bytes:
    """A status line and headers (``Connection: close`` unless ``close`` is false)."""
    lines = [f"HTTP/1.1 {status} Scripted"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines + (["Connection: close"] if close else []) + ["", ""])).encode("latin-1")


def chunk(data: bytes) -> bytes:
    """``data`` framed as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


#: The last chunk of a chunked body.
LAST_CHUNK = b"0\r\n\r\n"


# -- handlers ------------------------------------------------------------------------------


def reply(status: int = 200, body: Any = b"", headers: Optional[Dict[str, str]] = None) -> Handler:
    """A whole body with its length, then the connection is closed."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    fields = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **(headers or {})}

    def handle(request: Seen, connection: socket.socket) -> bool:
        send(connection, head(status, fields) + payload)
        return False

    return handle


def reply_stream(
    pieces: Callable[[], Iterable[bytes]], status: int = 200, headers: Optional[Dict[str, str]] = None
) -> Handler:
    """A body without a length, written piece by piece until it ends or the client goes away."""
    fields = {"Content-Type": "application/json", **(headers or {})}

    def handle(request: Seen, connection: socket.socket) -> bool:
        if send(connection, head(status, fields)):
            for piece in pieces():
                if not send(connection, piece):
                    break
        return False

    return handle


def routes(table: Dict[str, Handler], default: Optional[Handler] = None) -> Handler:
    """Dispatch on the request's path (without the query)."""

    def handle(request: Seen, connection: socket.socket) -> bool:
        handler = table.get(request.target.split("?", 1)[0], default)
        assert handler is not None, f"unexpected request {request.method} {request.target}"
        return handler(request, connection)

    return handle


def echo_prompt(request: Seen, connection: socket.socket) -> bool:
    """Answers a generation with one image whose revised prompt is the request's own prompt, on a kept-alive
    connection: a client that reads another request's answer is caught by its prompt."""
    from helpers import PNG_B64

    prompt = json.loads(request.body)["prompt"]
    body = json.dumps({"created": 1, "data": [{"b64_json": PNG_B64, "revised_prompt": prompt}]}).encode()
    return send(
        connection, head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, False) + body
    )


# -- a script of replies -------------------------------------------------------------------


class Reply(NamedTuple):
    """One scripted answer."""

    status: int = 200
    body: Any = b""
    headers: Optional[Dict[str, str]] = None
    #: Seconds to wait before sending the status line.
    delay: float = 0.0
    #: Close the connection without answering.
    drop: bool = False


class Received(NamedTuple):
    """One request as the server saw it (header names as the client wrote them)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


class ScriptedServer:
    """Serves ``replies`` in order (the last one repeats) on kept-alive connections, and records every request."""

    def __init__(self, replies: List[Reply]) -> None:
        self.replies = list(replies)
        self.received: List[Received] = []
        self._lock = threading.Lock()
        # Listening from here on, so that its URL can go into the replies before the with block.
        self._server = RawServer(self._answer)

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def _answer(self, request: Seen, connection: socket.socket) -> bool:
        with self._lock:
            self.received.append(Received(request.method, request.target, request.named_headers, request.body))
            reply = self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            connection.shutdown(socket.SHUT_RDWR)
            return False
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode("utf-8")
        headers = {"Content-Type": "application/json", **(reply.headers or {})}
        headers.setdefault("Content-Length", str(len(payload)))
        if not send(connection, head(reply.status, headers, close=False) + payload):
            return False
        if int(headers["Content-Length"]) > len(payload):
            # A declared length longer than the body: cut the connection, as a crashed peer would.
            connection.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def __enter__(self) -> "ScriptedServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.close()


# -- a script that writes the answer itself ------------------------------------------------


class Conn:
    """What a script uses to answer one request: raw writes, each sent at once.

    :raises BrokenPipeError: (or another ``OSError``) from a write, when the client has hung up.
    """

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.chunked = False

    def start(
        self,
        status: int = 200,
        headers: Optional[Dict[str, str]] = None,
        chunked: bool = False,
        content_type: str = "text/event-stream",
    ) -> None:
        """Status line and headers: no Content-Length, ``Connection: close``."""
        fields = {"Content-Type": content_type, **(headers or {})}
        if chunked:
            fields["Transfer-Encoding"] = "chunked"
        self._connection.sendall(head(status, fields))
        self.chunked = chunked

    def write(self, data: bytes) -> None:
        self._connection.sendall(chunk(data) if self.chunked else data)

    def write_raw(self, data: bytes) -> None:
        """``data`` as it is, outside any chunk framing (to break the framing on purpose)."""
        self._connection.sendall(data)

    def end(self) -> None:
        """The last chunk of a chunked body (a close-delimited body just ends with the connection)."""
        if self.chunked:
            self._connection.sendall(LAST_CHUNK)

    def reply_json(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        """An ordinary JSON answer with a Content-Length (errors before the stream starts)."""
        payload = json.dumps(body).encode("utf-8")
        fields = {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(payload))}
        self._connection.sendall(head(status, fields) + payload)


def unused_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
