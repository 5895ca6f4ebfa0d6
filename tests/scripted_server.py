"""A loopback HTTP server that plays a script of responses, for tests that need real sockets.

``responses`` emulates status retries but never sleeps, never retries
connection errors and never times out; these tests need urllib3's real
behaviour, so they talk to this server over 127.0.0.1.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, NamedTuple, Optional


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
    """One request as the server saw it."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


class ScriptedServer:
    """Serves ``replies`` in order (the last one repeats) and records every request."""

    def __init__(self, replies: List[Reply]) -> None:
        self.replies = list(replies)
        self.received: List[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.received.append(Received(self.command, self.path, dict(self.headers), body))
                    reply = server.replies[0] if len(server.replies) == 1 else server.replies.pop(0)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = reply.body
                if not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode("utf-8")
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json"}
                headers.update(reply.headers or {})
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if int(headers.get("Content-Length", len(payload))) > len(payload):
                    # A declared length longer than the body: cut the connection, as a crashed peer would.
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll makes shutdown quick (serve_forever polls every 0.5 s by default).
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def unused_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
