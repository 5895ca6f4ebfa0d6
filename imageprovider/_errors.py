"""
imageprovider._errors
~~~~~~~~~~~~~~~~~~~~~

The one place where foreign errors become this library's: an HTTP status
(:func:`status_error`), an error event in the middle of a stream
(:func:`stream_error`), a failure of ``requests``, ``urllib3``,
``http.client`` or the socket while connecting or reading
(:func:`connection_error`), and a body that is not JSON or not of the
expected shape (:func:`invalid_body`). Every text taken from a response is
redacted of the secrets and shortened before it reaches an exception.
"""

import base64
import http.client
import json
import re
import socket
from typing import Any, Dict, Iterable, List, Mapping, MutableSet, Optional, Tuple, Type
from urllib.parse import unquote

import requests
import urllib3.exceptions

from . import _schemas
from ._decoding import ContentDecoder, DecodingError
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentPolicyError,
    ImageExpiredError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnprocessableEntityError,
)

#: Characters of a body kept in error messages and ``ResponseValidationError.body``.
BODY_EXCERPT_CHARS = 500
#: Longest message taken from a server's error body.
MESSAGE_CHARS = 1000
#: Longest header value an error carries, and most headers.
HEADER_CHARS = 1000
MAX_HEADERS = 100
#: Longest request id kept (real ones are about 30 characters).
REQUEST_ID_CHARS = 128
REDACTED = "[REDACTED]"

#: What reading a body can raise when the connection fails.
READ_ERRORS: Tuple[Type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

_STATUS_ERRORS: Dict[int, Type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

Timeout = Tuple[float, float]


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _base64_forms(secret: str) -> List[str]:
    """How ``secret`` (and ``Bearer secret``) reads inside base64 text, at any of the three alignments."""
    forms = []
    for text in (secret, "Bearer " + secret):
        raw = text.encode("utf-8", "replace")
        for offset in range(3):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
                # Characters that depend only on the text: skip those mixed with the prefix and the last group.
                start = -(-offset * 4 // 3) + 1
                core = encoded[start : len(encoded) - 3]
                if len(core) >= 16:
                    forms.append(core)
    return forms


class Redactor:
    """Scrubs secrets from text taken from responses, and shortens it.

    A secret is found in every form a server could echo it: as is, with JSON
    ``\\uXXXX`` escapes, percent-encoded, or in base64 (of itself or of
    ``Bearer`` and itself).

    :param secrets: the key, extra header values, tokens; the set is shared
        with the credentials so that tokens fetched later are scrubbed too.
    """

    def __init__(self, secrets: MutableSet[str]) -> None:
        self.secrets = secrets
        self._forms: Dict[str, List[str]] = {}

    def _all_forms(self) -> List[str]:
        forms = []
        for secret in list(self.secrets):
            if secret not in self._forms:
                self._forms[secret] = [secret, *_base64_forms(secret)]
            forms.extend(self._forms[secret])
        # Longest first, so a secret containing another is replaced whole.
        return sorted(set(forms), key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Replace every secret in ``text`` (in any form listed above) with ``[REDACTED]``."""
        forms = self._all_forms()
        if not forms or not text:
            return text
        decoded = _unescape(text)
        if decoded != text and any(form in decoded for form in forms):
            # An escaped echo: the text is shown unescaped, so that no escaped form survives.
            text = decoded
        for form in forms:
            text = text.replace(form, REDACTED)
        return text

    def excerpt(self, text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
        """``text`` redacted, its first ``limit`` characters."""
        # Redacted on a slice a little longer than shown (a secret cut at the edge is still found), never on
        # the whole of a huge text.
        text = self.redact(text[: limit * 2 + 200]) if len(text) > limit * 2 + 200 else self.redact(text)
        if len(text) <= limit:
            return text
        return text[:limit] + "... (more follows)"

    def headers(self, headers: Mapping[str, str]) -> Dict[str, str]:
        """Response headers, names lower-cased, values redacted and bounded, for an error to carry."""
        kept: Dict[str, str] = {}
        for key, value in list(headers.items())[:MAX_HEADERS]:
            kept[str(key).lower()[:200]] = self.excerpt(str(value), HEADER_CHARS)
        return kept

    def body_text(self, response: requests.Response, limit: int = 64 * 1024) -> str:
        """At most ``limit`` bytes of the body as text, redacted; the rest is not read."""
        return self.redact(read_excerpt(response, limit).decode("utf-8", "replace"))


def _unescape(text: str) -> str:
    text = _JSON_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text).replace("\\/", "/")
    if _PERCENT_ESCAPE.search(text):
        text = unquote(text)
    return text


#: What can go wrong reading an error body's excerpt: what arrived is all there is.
_EXCERPT_ERRORS: Tuple[Type[BaseException], ...] = (DecodingError, *READ_ERRORS)


def read_excerpt(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` decoded bytes of a body, decoded with a bound; what arrived of it if cut."""
    try:
        decoder = ContentDecoder(response.headers.get("Content-Encoding"))
    except DecodingError:
        return b""
    pieces: List[bytes] = []
    size = 0
    try:
        for raw in response.raw.stream(16 * 1024, decode_content=False):
            for piece in decoder.feed(raw):
                pieces.append(piece[: limit - size])
                size += len(pieces[-1])
                if size >= limit:
                    return b"".join(pieces)
        for piece in decoder.finish():
            pieces.append(piece[: limit - size])
            size += len(pieces[-1])
            if size >= limit:
                break
    except _EXCERPT_ERRORS:
        pass
    return b"".join(pieces)


def request_id_of(headers: Mapping[str, str], redactor: Optional[Redactor] = None) -> Optional[str]:
    """The ``x-request-id`` header (Azure's ``x-ms-request-id`` where that is all there is), redacted and bounded:
    a proxy that reflects the ``Authorization`` header there must not put the key in logs and files."""
    value = headers.get("x-request-id") or headers.get("x-ms-request-id")
    if value is None:
        return None
    value = redactor.redact(value) if redactor is not None else value
    return value[:REQUEST_ID_CHARS]


def bounded(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + "... (cut)"


def without_credentials(exc: BaseException) -> BaseException:
    """``exc``, with every request (and its headers) dropped from the exceptions of its chain.

    requests' exceptions keep the prepared request, credentials included; an
    error chained to one would carry the key wherever it is logged or pickled.
    """
    for cause in _causes(exc):
        for name in ("request", "response"):
            if getattr(cause, name, None) is not None:
                try:
                    setattr(cause, name, None)
                except AttributeError:
                    pass
    return exc


# -- statuses ---------------------------------------------------------------------------


def status_error(
    response: requests.Response,
    attempts: int,
    redactor: Redactor,
    max_body: int = 64 * 1024,
    *,
    source: Optional[str] = None,
) -> APIStatusError:
    """Map a non-2xx response to the matching :class:`APIStatusError` subclass (reads at most ``max_body`` of its body).

    :param source: who answered, when it is not the API (an image host), to start the message with.
    """
    status = response.status_code
    text = redactor.body_text(response, max_body)
    parsed = _loads_or_none(text)
    error_obj: Optional[Dict[str, Any]] = None
    if parsed is not None and _schemas.find_violation("error_response", parsed) is None:
        error_obj = parsed["error"]
    fields = error_obj or {}
    code = fields.get("code")
    code = None if code is None else bounded(redactor.redact(str(code)), 200)
    message = bounded(redactor.redact(str(fields.get("message") or _default_message(response, text, parsed))))
    if 300 <= status < 400:
        message = "Unexpected redirect to {!r}; redirects are not followed".format(
            redactor.excerpt(response.headers.get("location", ""), 300)
        )
    if source is not None:
        message = f"{source} answered HTTP {status}: {message}"
    if status == 400 and code == "moderation_blocked":
        error_class: Type[APIStatusError] = ContentPolicyError
    elif status >= 500:
        error_class = InternalServerError
    else:
        error_class = _STATUS_ERRORS.get(status, APIStatusError)
    if error_obj is not None:
        body: Any = _bounded_json(error_obj, redactor)
    elif parsed is not None:
        body = _bounded_json(parsed, redactor)
    else:
        body = redactor.excerpt(text)
    return error_class(
        message,
        status_code=status,
        request_id=request_id_of(response.headers, redactor),
        type=_bounded_field(fields.get("type"), redactor),
        code=code,
        param=_bounded_field(fields.get("param"), redactor),
        body=body,
        headers=redactor.headers(response.headers),
        attempts=attempts,
    )


def _bounded_field(value: Any, redactor: Redactor) -> Optional[str]:
    return None if value is None else bounded(redactor.redact(str(value)), 200)


def _bounded_json(value: Any, redactor: Redactor, depth: int = 0) -> Any:
    """A parsed error object with every string redacted and bounded, and nesting cut."""
    if depth > 8:
        return "..."
    if isinstance(value, str):
        return bounded(redactor.redact(value))
    if isinstance(value, dict):
        return {
            bounded(str(key), 200): _bounded_json(item, redactor, depth + 1) for key, item in list(value.items())[:50]
        }
    if isinstance(value, list):
        return [_bounded_json(item, redactor, depth + 1) for item in value[:50]]
    return value


def expired_error(response: requests.Response, attempts: int, redactor: Redactor) -> ImageExpiredError:
    """An image URL that answered 403, 404 or 410."""
    return ImageExpiredError(
        f"The image URL answered HTTP {response.status_code}: it has expired or does not exist. OpenAI's image URLs live 60 "
        "minutes after generation; download sooner, or ask for response_format='b64_json'.",
        status_code=response.status_code,
        request_id=request_id_of(response.headers, redactor),
        body=redactor.excerpt(redactor.body_text(response, 4096)),
        headers=redactor.headers(response.headers),
        attempts=attempts,
    )


def stream_error(
    payload: Mapping[str, Any], status: int, headers: Mapping[str, str], redactor: Redactor
) -> APIStatusError:
    """Map an error event received mid-stream to the matching typed error.

    Both shapes seen in the wild are read: ``{"error": {...}}`` and the
    flat ``{"type": "error", "message": ..., "code": ...}``.
    """
    nested = payload.get("error")
    fields: Mapping[str, Any] = nested if isinstance(nested, Mapping) else payload
    code = _bounded_field(fields.get("code"), redactor)
    error_type = fields.get("type") if fields.get("type") != "error" else None
    message = fields.get("message")
    message = (
        bounded(redactor.redact(message))
        if isinstance(message, str) and message
        else "The server reported an error in the middle of the stream"
    )
    marker = "{} {}".format(code or "", error_type or "")
    if code == "moderation_blocked":
        error_class: Type[APIStatusError] = ContentPolicyError
    elif "rate_limit" in marker:
        error_class = RateLimitError
    elif "server_error" in marker:
        error_class = InternalServerError
    elif "invalid_request" in marker:
        error_class = BadRequestError
    else:
        error_class = APIStatusError
    param = fields.get("param")
    return error_class(
        message,
        status_code=status,
        request_id=request_id_of(headers, redactor),
        type=_bounded_field(error_type, redactor) if isinstance(error_type, str) else None,
        code=code,
        param=_bounded_field(param, redactor) if isinstance(param, str) else None,
        body=_bounded_json(dict(fields), redactor),
        headers=redactor.headers(headers),
    )


# -- bodies ---------------------------------------------------------------------------------


def invalid_body(
    what: str,
    *,
    status: Optional[int],
    headers: Mapping[str, str],
    text: str,
    redactor: Redactor,
    path: Tuple[Any, ...] = (),
) -> ResponseValidationError:
    """A success body (or stream event) that is not JSON, or not of the expected shape."""
    return ResponseValidationError(
        what,
        status_code=status,
        request_id=request_id_of(headers, redactor),
        body=redactor.excerpt(text),
        path=path,
    )


def parse_json(data: bytes, what: str, *, status: Optional[int], headers: Mapping[str, str], redactor: Redactor) -> Any:
    """``json.loads`` of a body, or a :class:`ResponseValidationError` naming why not.

    :raises ResponseValidationError: not valid JSON (or nested too deeply).
    """
    # The decoder's exception holds the whole unredacted body in .doc, so it
    # is neither chained nor kept as context: only its reason is.
    failure = None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        failure = _short_reason(exc)
    raise invalid_body(
        f"{what} is not valid JSON ({failure})",
        status=status,
        headers=headers,
        text=data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data),
        redactor=redactor,
    )


def off_schema(
    violation: "_schemas.SchemaViolation",
    what: str,
    *,
    status: Optional[int],
    headers: Mapping[str, str],
    text: str,
    redactor: Redactor,
) -> ResponseValidationError:
    """A body (or event) that is JSON but breaks its schema."""
    where = _schemas.format_path(violation.path)
    return invalid_body(
        "{} does not match the expected shape: {}{}".format(
            what, f"field {where!r} " if where else "", violation.message
        ),
        status=status,
        headers=headers,
        text=text,
        redactor=redactor,
        path=violation.path,
    )


def _after(attempts: int) -> str:
    """``" after N attempts"`` when the cycle retried, for the end of a message."""
    return f" after {attempts} attempts" if attempts > 1 else ""


def cut_short_error(host: str, cut: str, attempts: int) -> APIConnectionError:
    """A body shorter than its ``Content-Length``."""
    tried = _after(attempts)
    return APIConnectionError(
        f"The response from {host} was cut short{tried}: {cut}; not retried, because the request had been processed",
        attempts=attempts,
    )


# -- connections ------------------------------------------------------------------------------


def connection_error(
    exc: BaseException,
    *,
    host: str,
    attempts: int,
    timeout: Timeout,
    redactor: Redactor,
    in_body: bool = False,
    deadline: Optional[float] = None,
    proxy: Optional[str] = None,
) -> APIConnectionError:
    """Translate a transport exception: while connecting and sending, or (``in_body``) while reading a body.

    :param deadline: the call's deadline, when it passed (the failure is then its doing).
    :param proxy: the proxy the request went through (shown without credentials), if any.
    """
    if deadline is not None:
        return deadline_error(host, deadline, attempts)
    reason = redactor.redact(_root_reason(exc))
    tried = _after(attempts)
    timed_out = (
        isinstance(exc, requests.exceptions.ReadTimeout)
        or _caused_by(exc, urllib3.exceptions.ReadTimeoutError)
        or _caused_by(exc, socket.timeout)
    )
    if in_body and timed_out:
        return APITimeoutError(
            f"The response from {host} stalled for longer than the read timeout while its body was arriving{tried}; "
            "not retried, because the request had been processed",
            phase="read",
            attempts=attempts,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return APITimeoutError(
            f"Timed out connecting to {host} (connect timeout {timeout[0]:g} s){tried}",
            phase="connect",
            attempts=attempts,
        )
    if timed_out:
        return APITimeoutError(
            f"No response from {host} within the read timeout of {timeout[1]:g} s{tried}. Not retried by default: the server "
            "may already be generating (and billing) the image. Raise the timeout, or pass "
            "retry_read_timeouts=True to retry.",
            phase="read",
            attempts=attempts,
        )
    if _caused_by(exc, http.client.IncompleteRead) or _caused_by(exc, urllib3.exceptions.IncompleteRead):
        return APIConnectionError(
            f"The response from {host} was cut short{tried} ({reason}); not retried, because the request had been "
            "processed",
            attempts=attempts,
        )
    if proxy is not None and isinstance(exc, requests.exceptions.ProxyError):
        return APIConnectionError(
            f"Cannot reach {host} through the proxy {proxy}{tried}: the proxy refused or failed ({reason})",
            attempts=attempts,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return APIConnectionError(f"TLS error talking to {host}{tried}: {reason}", attempts=attempts)
    return APIConnectionError(f"Connection error talking to {host}{tried}: {reason}", attempts=attempts)


def deadline_error(host: str, deadline: Optional[float], attempts: int) -> APITimeoutError:
    """The whole call took longer than its deadline."""
    limit = f" of {deadline:g} s" if deadline is not None else ""
    return APITimeoutError(
        f"The call to {host} took longer than its deadline{limit} (the server held it open); raise deadline= "
        "for generations that really take longer",
        phase="deadline",
        attempts=attempts,
    )


def is_read_error(exc: BaseException) -> bool:
    """Whether ``exc``, raised while reading a body, is the network failing (not the caller's own error)."""
    return isinstance(exc, READ_ERRORS) or type(exc).__module__.startswith("urllib3")


# -- helpers ----------------------------------------------------------------------------------


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _default_message(response: requests.Response, text: str, parsed: Any) -> str:
    reason = response.reason or http.client.responses.get(response.status_code, "")
    summary = f"HTTP {response.status_code} {reason}".strip()
    if parsed is None and text.strip():
        snippet = " ".join(text.split())[:200]
        return f"{summary} (non-JSON body: {snippet!r})"
    return summary


def _short_reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return str(exc)[:120]


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # A context raised "from None" is noise the raiser chose to hide (urllib3 1.26
        # leaves a TypeError from its getresponse(buffering=True) probe there).
        context = None if current.__suppress_context__ else current.__context__
        for nested in (getattr(current, "reason", None), current.__cause__, context, *current.args):
            if isinstance(nested, BaseException):
                pending.append(nested)


def _caused_by(exc: BaseException, kind: Type[BaseException]) -> bool:
    return any(isinstance(cause, kind) for cause in _causes(exc))


def _root_reason(exc: BaseException) -> str:
    innermost = exc
    for cause in _causes(exc):
        innermost = cause
    text = str(innermost)
    # urllib3 prefixes messages with an object repr ("<...HTTPConnection object at 0x..>: ...").
    if text.startswith("<") and ">: " in text:
        text = text.split(">: ", 1)[1]
    return text[:300] or type(innermost).__name__
