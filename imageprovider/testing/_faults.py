"""
imageprovider.testing._faults
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

Faults the stand-in server injects on purpose, and the short text form used
on the command line (``--fault 429,retry-after=1,times=2``).

Kinds (see :data:`KINDS`), in Python and in text form:

* a status with an API-shaped error body: ``Fault.error(503)``, ``503``;
  ``Fault.moderation_blocked()``, ``moderation``;
* an HTML error page, as a proxy in front of the API sends:
  ``Fault.html_error(502)``, ``html-error`` or ``html-error=504``;
* the connection closed (FIN) before any response: ``Fault.drop()``, ``drop``;
  or after the headers and half the body: ``Fault.drop_mid_body()``, ``drop-mid-body``;
* the connection reset (RST) at the same two points: ``Fault.reset()``,
  ``reset``; ``Fault.reset_mid_body()``, ``reset-mid-body``;
* slowness: ``Fault.delay(2.5)``, ``delay=2.5`` (nothing, then a normal
  answer); ``Fault.slow_body(1.0)``, ``slow-body=1`` (the headers at once,
  then the body in pieces one second apart);
* bad success bodies: ``Fault.invalid_json()``, ``invalid-json``;
  ``Fault.bad_schema()``, ``bad-schema``;
* broken streams: ``Fault.stream_cut()``, ``stream-cut``;
  ``Fault.stream_error()``, ``stream-error,code=rate_limit_exceeded,shape=flat``.

Every kind takes ``times`` and ``path`` (``times=2,path=/v1/images/edits``).
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

__all__ = ["Fault", "parse_fault"]

#: Fault kinds and what they do.
KINDS = {
    "status": "answer with this status and an API-shaped error body",
    "drop": "close the connection before any response",
    "drop-mid-body": "send the headers and half the body, then close",
    "reset": "reset the connection (TCP RST) before any response",
    "reset-mid-body": "send the headers and half the body, then reset the connection (TCP RST)",
    "delay": "wait this many seconds, then answer normally",
    "slow-body": "images: send the headers at once, then the body (or each stream event) this many seconds apart",
    "html-error": "answer with this status (502 by default) and an HTML error page, as a proxy does",
    "invalid-json": "answer 200 with a body that is not JSON",
    "bad-schema": "answer 200 with JSON that breaks the response schema",
    "stream-cut": "streaming: send a partial image, then close before 'completed'",
    "stream-error": "streaming: send a partial image, then an error event",
}

_DEFAULT_ERRORS = {
    400: ("invalid_request_error", "invalid_value", "Invalid request (injected fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (injected fault)."),
    403: ("invalid_request_error", "permission_denied", "Permission denied (injected fault)."),
    404: ("invalid_request_error", "not_found", "Not found (injected fault)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (injected fault)."),
}


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests."""

    kind: str
    status: int = 200
    #: ``error.type``, ``error.code`` and ``error.message`` of the error body or event.
    type: Optional[str] = None
    code: Optional[str] = None
    message: Optional[str] = None
    param: Optional[str] = None
    #: Extra response headers, e.g. ``retry-after``.
    headers: Dict[str, str] = field(default_factory=dict)
    #: Seconds to wait, for ``delay``; between pieces of the body, for ``slow-body``.
    seconds: float = 0.0
    #: ``nested`` (``{"error": {...}}``) or ``flat`` (``{"type": "error", ...}``), for ``stream-error``.
    shape: str = "nested"
    #: How many requests it applies to.
    times: int = 1
    #: Only requests whose path starts with this (e.g. ``/v1/images/edits``).
    path: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError("unknown fault kind {!r}; known: {}".format(self.kind, ", ".join(KINDS)))
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.kind == "html-error" and self.status == 200:
            self.status = 502  # what a proxy answers when the API behind it fails
        if self.kind == "slow-body" and not 0 <= self.seconds < float("inf"):
            raise ValueError("slow-body needs a finite number of seconds >= 0")
        if self.kind == "status":
            default_type, default_code, default_message = _DEFAULT_ERRORS.get(
                self.status, ("server_error", "server_error", "The server had an error (injected fault).")
            )
            self.type = self.type or default_type
            self.code = self.code or default_code
            self.message = self.message or default_message

    # -- constructors --------------------------------------------------

    @classmethod
    def error(
        cls,
        status: int,
        *,
        code: Optional[str] = None,
        message: Optional[str] = None,
        type: Optional[str] = None,
        param: Optional[str] = None,
        retry_after: Optional[float] = None,
        retry_after_ms: Optional[int] = None,
        should_retry: Optional[bool] = None,
        times: int = 1,
        path: Optional[str] = None,
    ) -> "Fault":
        """Any status with an API-shaped error body and optional retry headers."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        return cls(
            "status",
            status=status,
            type=type,
            code=code,
            message=message,
            param=param,
            headers=headers,
            times=times,
            path=path,
        )

    @classmethod
    def moderation_blocked(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """A 400 ``moderation_blocked`` refusal."""
        return cls.error(
            400,
            type="image_generation_user_error",
            code="moderation_blocked",
            message="Your request was rejected by the safety system (injected fault).",
            times=times,
            path=path,
        )

    @classmethod
    def drop(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Close the connection before any response."""
        return cls("drop", times=times, path=path)

    @classmethod
    def drop_mid_body(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Send headers and half the body, then close."""
        return cls("drop-mid-body", times=times, path=path)

    @classmethod
    def reset(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Reset the connection (TCP RST) after reading the request, before any response."""
        return cls("reset", times=times, path=path)

    @classmethod
    def reset_mid_body(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Send headers and half the body, then reset the connection (TCP RST)."""
        return cls("reset-mid-body", times=times, path=path)

    @classmethod
    def delay(cls, seconds: float, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Wait before answering normally (to trigger timeouts)."""
        return cls("delay", seconds=seconds, times=times, path=path)

    @classmethod
    def slow_body(cls, seconds: float, times: int = 1, path: Optional[str] = None) -> "Fault":
        """Images: send the headers at once, then the body in pieces ``seconds`` apart (a stream: each event)."""
        return cls("slow-body", seconds=seconds, times=times, path=path)

    @classmethod
    def html_error(cls, status: int = 502, times: int = 1, path: Optional[str] = None) -> "Fault":
        """``status`` with an HTML error page instead of the API's JSON, as a proxy sends."""
        if not 400 <= status <= 599:
            raise ValueError(f"html-error needs an error status (400-599), not {status}")
        return cls("html-error", status=status, times=times, path=path)

    @classmethod
    def invalid_json(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """A 200 whose body is not JSON."""
        return cls("invalid-json", times=times, path=path)

    @classmethod
    def bad_schema(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """A 200 whose JSON breaks the response schema."""
        return cls("bad-schema", times=times, path=path)

    @classmethod
    def stream_cut(cls, times: int = 1, path: Optional[str] = None) -> "Fault":
        """A stream that stops before ``completed``."""
        return cls("stream-cut", times=times, path=path)

    @classmethod
    def stream_error(
        cls,
        code: str = "server_error",
        *,
        shape: str = "nested",
        message: Optional[str] = None,
        times: int = 1,
        path: Optional[str] = None,
    ) -> "Fault":
        """A stream that emits an error event after one partial image."""
        if shape not in ("nested", "flat"):
            raise ValueError("shape must be 'nested' or 'flat'")
        return cls(
            "stream-error",
            code=code,
            shape=shape,
            message=message or "Stream failed (injected fault).",
            times=times,
            path=path,
        )


_KEYS = {
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "code",
    "message",
    "type",
    "param",
    "times",
    "path",
    "shape",
    "seconds",
}


def parse_fault(spec: str) -> Fault:
    """Parse the command-line form: a kind (or a status code) then ``key=value`` options, comma-separated.

    Examples: ``429,retry-after=1,times=2``; ``503,x-should-retry=false``;
    ``moderation``; ``html-error``; ``html-error=504``; ``drop``; ``drop-mid-body``;
    ``reset``; ``reset-mid-body``; ``delay=2.5``; ``slow-body=1``; ``invalid-json``;
    ``bad-schema``; ``stream-cut``; ``stream-error,code=rate_limit_exceeded,shape=flat``.

    :raises ValueError: with a message naming the bad part.
    """
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if not parts:
        raise ValueError("empty fault")
    head, options = parts[0], {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS:
            raise ValueError("bad fault option {!r} in {!r}; options: {}".format(part, spec, ", ".join(sorted(_KEYS))))
        options[key] = value
    times = int(options.pop("times", "1"))
    path = options.pop("path", None)
    allowed = {
        "status": {"code", "message", "type", "param", "retry-after", "retry-after-ms", "x-should-retry"},
        "stream-error": {"code", "shape", "message"},
    }
    kind = "status" if head.isdigit() else "stream-error" if head == "stream-error" else head
    unused = set(options) - allowed.get(kind, set())
    if unused:
        raise ValueError("option(s) {} do not apply to {!r} in {!r}".format(", ".join(sorted(unused)), head, spec))
    if head.startswith("delay="):
        return Fault.delay(float(head.split("=", 1)[1]), times=times, path=path)
    if head.startswith("slow-body="):
        return Fault.slow_body(float(head.split("=", 1)[1]), times=times, path=path)
    if head == "html-error" or head.startswith("html-error="):
        status = head.partition("=")[2]
        if status and not status.isdigit():
            raise ValueError(f"html-error takes a status code, not {status!r}, in {spec!r}")
        return Fault.html_error(int(status or 502), times=times, path=path)
    if head.isdigit():
        should_retry = options.pop("x-should-retry", None)
        return Fault.error(
            int(head),
            code=options.pop("code", None),
            message=options.pop("message", None),
            type=options.pop("type", None),
            param=options.pop("param", None),
            retry_after=float(options["retry-after"]) if "retry-after" in options else None,
            retry_after_ms=int(options["retry-after-ms"]) if "retry-after-ms" in options else None,
            should_retry=None if should_retry is None else should_retry.lower() == "true",
            times=times,
            path=path,
        )
    if head == "moderation":
        return Fault.moderation_blocked(times=times, path=path)
    if head == "stream-error":
        return Fault.stream_error(
            options.get("code", "server_error"),
            shape=options.get("shape", "nested"),
            message=options.get("message"),
            times=times,
            path=path,
        )
    if head in KINDS and head not in ("status", "delay", "slow-body"):
        return Fault(head, times=times, path=path)
    raise ValueError(
        "unknown fault {!r}; use a status code, moderation, or one of: {}".format(
            head, ", ".join(kind for kind in KINDS if kind != "status")
        )
    )
