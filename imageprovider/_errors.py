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

import http.client
import json
import socket
from typing import AbstractSet, Any, Dict, Iterable, Mapping, MutableSet, Optional, Tuple, Type

import requests
import urllib3.exceptions

from . import _schemas
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


class Redactor:
    """Scrubs secrets from text taken from responses, and shortens it.

    :param secrets: the key, extra header values, tokens; the set is shared
        with the credentials so that tokens fetched later are scrubbed too.
    """

    def __init__(self, secrets: MutableSet[str]) -> None:
        self.secrets = secrets

    def redact(self, text: str) -> str:
        """Replace every secret in ``text`` with ``[REDACTED]``."""
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def excerpt(self, text: str) -> str:
        """``text`` redacted, its first :data:`BODY_EXCERPT_CHARS` characters."""
        text = self.redact(text)
        if len(text) <= BODY_EXCERPT_CHARS:
            return text
        return text[:BODY_EXCERPT_CHARS] + f"... ({len(text)} chars)"

    def headers(self, headers: Mapping[str, str]) -> Dict[str, str]:
        """Response headers, names lower-cased, secrets scrubbed, for an error to carry."""
        return {key.lower(): self.redact(value) for key, value in headers.items()}

    def body_text(self, response: requests.Response) -> str:
        """The response body as text, redacted (undecodable bytes replaced); what arrived of it if cut."""
        try:
            content = response.content
        except READ_ERRORS:
            # An error body cut short: the status says enough.
            content = b""
        return self.redact(content.decode("utf-8", "replace"))


def request_id_of(headers: Mapping[str, str]) -> Optional[str]:
    """The ``x-request-id`` header (Azure's ``x-ms-request-id`` where that is all there is)."""
    return headers.get("x-request-id") or headers.get("x-ms-request-id")


# -- statuses ---------------------------------------------------------------------------


def status_error(response: requests.Response, attempts: int, redactor: Redactor) -> APIStatusError:
    """Map a non-2xx response to the matching :class:`APIStatusError` subclass (reads its body)."""
    status = response.status_code
    text = redactor.body_text(response)
    parsed = _loads_or_none(text)
    error_obj: Optional[Dict[str, Any]] = None
    if parsed is not None and _schemas.find_violation("error_response", parsed) is None:
        error_obj = parsed["error"]
    fields = error_obj or {}
    code = fields.get("code")
    code = None if code is None else str(code)
    message = fields.get("message") or _default_message(response, text, parsed)
    if 300 <= status < 400:
        message = "Unexpected redirect to {!r}; redirects are not followed".format(
            redactor.redact(response.headers.get("location", ""))
        )
    if status == 400 and code == "moderation_blocked":
        error_class: Type[APIStatusError] = ContentPolicyError
    elif status >= 500:
        error_class = InternalServerError
    else:
        error_class = _STATUS_ERRORS.get(status, APIStatusError)
    if error_obj is not None:
        body: Any = error_obj
    elif parsed is not None:
        body = parsed
    else:
        body = redactor.excerpt(text)
    return error_class(
        message,
        status_code=status,
        request_id=response.headers.get("x-request-id"),
        type=fields.get("type"),
        code=code,
        param=fields.get("param"),
        body=body,
        headers=redactor.headers(response.headers),
        attempts=attempts,
    )


def expired_error(response: requests.Response, attempts: int, redactor: Redactor) -> ImageExpiredError:
    """An image URL that answered 403, 404 or 410."""
    return ImageExpiredError(
        f"The image URL answered HTTP {response.status_code}: it has expired or does not exist. OpenAI's image URLs live 60 "
        "minutes after generation; download sooner, or ask for response_format='b64_json'.",
        status_code=response.status_code,
        request_id=request_id_of(response.headers),
        body=redactor.excerpt(redactor.body_text(response)),
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
    code = fields.get("code")
    code = None if code is None else str(code)
    error_type = fields.get("type") if fields.get("type") != "error" else None
    message = fields.get("message")
    message = (
        redactor.redact(message)
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
        request_id=headers.get("x-request-id"),
        type=error_type if isinstance(error_type, str) else None,
        code=code,
        param=param if isinstance(param, str) else None,
        body=dict(fields),
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
        request_id=headers.get("x-request-id"),
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


def cut_short_error(host: str, cut: str, attempts: int) -> APIConnectionError:
    """A body shorter than its ``Content-Length``."""
    return APIConnectionError(
        f"The response from {host} was cut short: {cut}; not retried, because the request had been processed",
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
) -> APIConnectionError:
    """Translate a transport exception: while connecting and sending, or (``in_body``) while reading a body."""
    reason = redactor.redact(_root_reason(exc))
    tried = f" after {attempts} attempts" if attempts > 1 else ""
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
    if isinstance(exc, requests.exceptions.SSLError):
        return APIConnectionError(f"TLS error talking to {host}{tried}: {reason}", attempts=attempts)
    return APIConnectionError(f"Connection error talking to {host}{tried}: {reason}", attempts=attempts)


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


def secret_set(values: Iterable[Optional[str]]) -> AbstractSet[str]:
    """The non-empty ``values``, as secrets to redact."""
    return {value for value in values if value}
