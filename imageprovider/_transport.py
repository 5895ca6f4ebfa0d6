"""
imageprovider._transport
~~~~~~~~~~~~~~~~~~~~~~~~

The one way requests reach the API: a ``requests.Session`` with an
``HTTPAdapter`` carrying :class:`~imageprovider._retry.ImageRetry`, explicit
timeouts on every request, credentials attached per request (so they can never
ride along to another host), and the translation of every foreign error and
non-success status into this library's exceptions. One log record per request
cycle is written to the ``imageprovider`` logger.
"""

import http.client
import json
import logging
import socket
import threading
import time
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Type, cast
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from . import _schemas
from ._config import is_header_token, is_loopback
from ._imagebody import ImageBodyScanner
from ._retry import ImageRetry
from .exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
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

log = logging.getLogger("imageprovider")

#: Characters of a body kept in error messages and ``ResponseValidationError.body``.
BODY_EXCERPT_CHARS = 500
#: Bytes read at a time from a body that is read as it arrives.
BODY_CHUNK_BYTES = 64 * 1024
#: What reading a body can raise when the connection fails.
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
REDACTED = "[REDACTED]"

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


class CredentialAuth(AuthBase):
    """Adds the credential headers to requests bound for the API, and to nothing else.

    :param headers: fixed headers (API key, organization, extra headers).
    :param token_provider: called before each request for a bearer token
        (Azure Entra ID); its result is sent as ``Authorization: Bearer``.
    """

    def __init__(self, headers: Mapping[str, str], token_provider: Optional[Callable[[], str]] = None) -> None:
        self._headers = dict(headers)
        self._token_provider = token_provider
        #: Secret values to scrub from errors and logs: the caller's, plus every token fetched.
        self.secrets: Set[str] = set()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token_provider is not None:
            token = self._fresh_token()
            self.secrets.add(token)
            request.headers["Authorization"] = "Bearer " + token
        request.headers.update(self._headers)
        return request

    def _fresh_token(self) -> str:
        provider = self._token_provider
        if provider is None:  # __call__ asks only when there is one
            raise ConfigurationError("No token provider is configured")
        try:
            token = provider()
        except Exception as exc:
            raise ConfigurationError(f"The token provider failed: {type(exc).__name__}") from exc
        if not isinstance(token, str) or not is_header_token(token):
            raise ConfigurationError("The token provider must return a non-empty ASCII token string")
        return token

    def __repr__(self) -> str:
        names = sorted(self._headers) + (["Authorization (token provider)"] if self._token_provider else [])
        return "CredentialAuth(headers=[{}])".format(", ".join(names))


class _PerRequestRetryAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose ``max_retries`` can be set per request and per thread.

    urllib3 retries inside the adapter, out of our sight; giving each request
    its own :class:`ImageRetry` (with its own attempt log) lets the transport
    count attempts exactly, even when threads share the provider.
    """

    def __init__(self, retry: ImageRetry, **kwargs: Any) -> None:
        self._local = threading.local()
        super().__init__(max_retries=retry, **kwargs)

    @property  # type: ignore[override]  # a per-thread property over requests' plain attribute
    def max_retries(self) -> ImageRetry:
        return getattr(self._local, "retry", None) or self._default_retry

    @max_retries.setter
    def max_retries(self, value: ImageRetry) -> None:
        self._default_retry = value

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._local = threading.local()
        super().__setstate__(state)  # type: ignore[misc]  # untyped in types-requests

    def use(self, retry: Optional[ImageRetry]) -> None:
        self._local.retry = retry


class Transport:
    """Sends requests to ``base_url`` and returns successful ``requests.Response`` objects.

    :param base_url: API root without trailing slash, e.g. ``https://api.openai.com/v1``.
    :param credential_headers: headers that carry secrets; sent only to ``base_url``'s host.
    :param secrets: strings scrubbed from anything the transport puts in errors or logs.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credential_headers: Mapping[str, str],
        user_agent: str,
        timeout: Timeout,
        retry: ImageRetry,
        secrets: Iterable[str] = (),
        token_provider: Optional[Callable[[], str]] = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self._auth = CredentialAuth(credential_headers, token_provider)
        self._auth.secrets.update(secret for secret in secrets if secret)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        self._adapter = _PerRequestRetryAdapter(retry)
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        #: Called with each fully prepared API request instead of sending it, when set
        #: (the command line's --dry-run). It is expected to raise.
        self.intercept: Optional[Callable[[requests.PreparedRequest], None]] = None
        #: Told ``(status, headers)`` of every API response, retried ones included
        #: (a batch's shared rate limiter listens here).
        self.observers: List[Callable[[int, Mapping[str, str]], None]] = []

    def close(self) -> None:
        """Close the session and its pooled connections."""
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        files: Any = None,
        data: Any = None,
        timeout: Optional[Timeout] = None,
        stream: bool = False,
        accept: Optional[str] = None,
        query: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        """Send one request (with retries) and return the successful response.

        :raises APIStatusError: (a subclass, by status) for a non-2xx answer.
        :raises APIConnectionError: when no response could be had.
        """
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        try:
            prepared = self.session.prepare_request(
                requests.Request(
                    method,
                    self.base_url + path,
                    params=query,
                    data=body if body is not None else data,
                    files=files,
                    headers=headers,
                    auth=self._auth,
                )
            )
        except requests.RequestException as exc:
            raise ConfigurationError(
                f"Cannot build the request to {self.base_url + path}: {self.redact(str(exc))[:200]}"
            ) from exc
        if self.intercept is not None:
            self.intercept(prepared)
        retry = self.retry.for_request(self._notify if self.observers else None)
        started = time.monotonic()
        self._adapter.use(retry)
        try:
            # What Session.request adds beyond preparing: proxies, verify and cert from the environment.
            settings = self.session.merge_environment_settings(prepared.url, {}, stream, None, None)
            response = self.session.send(prepared, timeout=timeout or self.timeout, allow_redirects=False, **settings)
        except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            error = self._connection_error(exc, retry.attempts, timeout or self.timeout)
            self._log_cycle(method, path, None, retry.attempts, started, None, error)
            raise error from exc
        finally:
            self._adapter.use(None)
        request_id = response.headers.get("x-request-id")
        if 200 <= response.status_code < 300:
            # Error responses, final or retried, reach the observers through ImageRetry.increment.
            self._notify(response.status_code, response.headers)
        if not stream and 200 <= response.status_code < 300:
            cut = _cut_short(response)
            if cut is not None:
                error = self._cut_short_error(cut, retry.attempts)
                self._log_cycle(method, path, response.status_code, retry.attempts, started, request_id, error)
                raise error
        if not 200 <= response.status_code < 300:
            status_error = self.status_error(response, retry.attempts)
            self._log_cycle(method, path, response.status_code, retry.attempts, started, request_id, status_error)
            response.close()
            raise status_error
        self._log_cycle(method, path, response.status_code, retry.attempts, started, request_id, None)
        return response

    def _cut_short_error(self, cut: str, attempts: int) -> APIConnectionError:
        return APIConnectionError(
            f"The response from {urlsplit(self.base_url).netloc} was cut short: {cut}; not retried, because the "
            "request had been processed",
            attempts=attempts,
        )

    def _notify(self, status: int, headers: Mapping[str, str]) -> None:
        for observer in list(self.observers):
            observer(status, headers)

    # -- downloads -----------------------------------------------------

    def download(self, url: str, sink: IO[bytes], *, max_bytes: int, timeout: Optional[Timeout] = None) -> int:
        """Stream the image at ``url`` into ``sink``; return the number of bytes written.

        Only https URLs (or http on loopback) are fetched. Redirects are
        followed by hand so that credentials go only to the API's own origin,
        never to a storage host. Reads are retried like connection errors:
        a GET of a finished image costs nothing twice.

        :raises ImageExpiredError: the URL answered 403, 404 or 410.
        :raises ResponseValidationError: the URL is not fetchable, or the image is larger than ``max_bytes``.
        """
        for _ in range(_MAX_REDIRECTS + 1):
            _check_download_url(url)
            same_origin = _origin(url) == _origin(self.base_url)
            retry = self.retry.for_request()
            retry = retry.new(read=retry.total, attempt_log=retry.attempt_log)
            started = time.monotonic()
            self._adapter.use(retry)
            try:
                response = self.session.get(
                    url,
                    auth=self._auth if same_origin else None,
                    stream=True,
                    allow_redirects=False,
                    timeout=timeout or self.timeout,
                    headers={"Accept": "image/*"},
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                error = self._connection_error(exc, retry.attempts, timeout or self.timeout)
                self._log_cycle("GET", _loggable(url), None, retry.attempts, started, None, error)
                raise error from exc
            finally:
                self._adapter.use(None)
            with response:
                if response.is_redirect and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code in (403, 404, 410):
                    expired = self._expired(response, retry.attempts)
                    self._log_cycle("GET", _loggable(url), response.status_code, retry.attempts, started, None, expired)
                    raise expired
                if not 200 <= response.status_code < 300:
                    status_error = self.status_error(response, retry.attempts)
                    self._log_cycle(
                        "GET", _loggable(url), response.status_code, retry.attempts, started, None, status_error
                    )
                    raise status_error
                written = self._stream_body(response, sink, max_bytes)
                self._log_cycle(
                    "GET",
                    _loggable(url),
                    response.status_code,
                    retry.attempts,
                    started,
                    response.headers.get("x-request-id"),
                    None,
                )
                return written
        raise ResponseValidationError(f"The image URL redirected more than {_MAX_REDIRECTS} times")

    def body_chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The body of an open (``stream=True``) response, in chunks as they arrive.

        Only the network reads are translated into :class:`APIConnectionError`:
        what the caller raises while handling a chunk (a full disk) stays its own.
        """
        chunks = response.iter_content(chunk_size=BODY_CHUNK_BYTES)
        while True:
            try:
                chunk = next(chunks, b"")
            except _READ_ERRORS as exc:
                raise self.connection_error(exc) from exc
            if not chunk:
                return
            yield chunk

    def copy_body(self, response: requests.Response, sink: IO[bytes], max_bytes: Optional[int] = None) -> int:
        """Stream an open (``stream=True``) response's body into ``sink``; return the bytes written."""
        with response:
            return self._stream_body(response, sink, max_bytes)

    def _stream_body(self, response: requests.Response, sink: IO[bytes], max_bytes: Optional[int]) -> int:
        declared = response.headers.get("Content-Length", "")
        if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseValidationError(
                f"The image is {int(declared):,} bytes, over the download limit of {max_bytes:,}",
                status_code=response.status_code,
            )
        written = 0
        for chunk in self.body_chunks(response):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise ResponseValidationError(
                    f"The image is larger than the download limit of {max_bytes:,} bytes",
                    status_code=response.status_code,
                )
            sink.write(chunk)
        cut = _cut_short(response)
        if cut is not None:
            raise APIConnectionError(f"The image download was cut short: {cut}")
        return written

    def _expired(self, response: requests.Response, attempts: int) -> ImageExpiredError:
        return ImageExpiredError(
            f"The image URL answered HTTP {response.status_code}: it has expired or does not exist. OpenAI's image URLs live 60 "
            "minutes after generation; download sooner, or ask for response_format='b64_json'.",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id") or response.headers.get("x-ms-request-id"),
            body=self.excerpt(self.body_text(response)),
            headers=self.redacted_headers(response),
            attempts=attempts,
        )

    # -- translation ---------------------------------------------------

    def redact(self, text: str) -> str:
        """Replace every secret in ``text`` with ``[REDACTED]``."""
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self._auth.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def body_text(self, response: requests.Response) -> str:
        """The response body as text, redacted (undecodable bytes replaced); what arrived of it if cut."""
        try:
            content = response.content
        except _READ_ERRORS:
            # An error body cut short: the status says enough.
            content = b""
        return self.redact(content.decode("utf-8", "replace"))

    def redacted_headers(self, response: requests.Response) -> Dict[str, str]:
        """The response's headers, names lower-cased, secrets scrubbed, for an error to carry."""
        return {key.lower(): self.redact(value) for key, value in response.headers.items()}

    def excerpt(self, text: str) -> str:
        """The first :data:`BODY_EXCERPT_CHARS` characters of ``text``."""
        if len(text) <= BODY_EXCERPT_CHARS:
            return text
        return text[:BODY_EXCERPT_CHARS] + f"... ({len(text)} chars)"

    def status_error(self, response: requests.Response, attempts: int) -> APIStatusError:
        """Map a non-2xx response to the matching :class:`APIStatusError` subclass."""
        status = response.status_code
        text = self.body_text(response)
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
                self.redact(response.headers.get("location", ""))
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
            body = self.excerpt(text)
        return error_class(
            message,
            status_code=status,
            request_id=response.headers.get("x-request-id"),
            type=fields.get("type"),
            code=code,
            param=fields.get("param"),
            body=body,
            headers=self.redacted_headers(response),
            attempts=attempts,
        )

    def read_json(
        self, response: requests.Response, schema: str, scanner: Optional[ImageBodyScanner] = None
    ) -> Dict[str, Any]:
        """Parse and validate a success body against ``schema``.

        :param scanner: reads an open (``stream=True``) images body as it
            arrives, decoding the images on the way; what is parsed and
            validated is then its skeleton.
        :raises ResponseValidationError: the body is not JSON, is ``null``, or is off-schema.
        :raises APIConnectionError: the body could not be read whole.
        """
        request_id = response.headers.get("x-request-id")
        if scanner is None:
            try:
                content = response.content
            except _READ_ERRORS as exc:
                raise self.connection_error(exc) from exc
        else:
            with response:
                for chunk in self.body_chunks(response):
                    scanner.feed(chunk)
            content = scanner.finish()
            cut = _cut_short(response)
            if cut is not None:
                raise self._cut_short_error(cut, 1)
        # The decoder's exception holds the whole unredacted body in .doc, so it
        # is neither chained nor kept as context: only its reason is.
        failure = None
        try:
            parsed = json.loads(content)
        except (ValueError, RecursionError) as exc:
            failure = _short_reason(exc)
        if failure is not None:
            raise ResponseValidationError(
                f"The {response.status_code} response body is not valid JSON ({failure})",
                status_code=response.status_code,
                request_id=request_id,
                body=self.excerpt(self.redact(content.decode("utf-8", "replace"))),
            )
        violation = _schemas.find_violation(schema, parsed)
        if violation is not None:
            where = _schemas.format_path(violation.path)
            raise ResponseValidationError(
                "The response body does not match the expected shape: {}{}".format(
                    f"field {where!r} " if where else "", violation.message
                ),
                status_code=response.status_code,
                request_id=request_id,
                body=self.excerpt(self.redact(content.decode("utf-8", "replace"))),
                path=violation.path,
            )
        return cast(Dict[str, Any], parsed)

    def stream_error(self, payload: Mapping[str, Any], response: requests.Response) -> APIStatusError:
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
            self.redact(message)
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
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
            type=error_type if isinstance(error_type, str) else None,
            code=code,
            param=param if isinstance(param, str) else None,
            body=dict(fields),
            headers=self.redacted_headers(response),
        )

    def connection_error(self, exc: BaseException, attempts: int = 1) -> APIConnectionError:
        """Translate a transport exception raised while reading a response body."""
        return self._connection_error(exc, attempts, self.timeout, in_body=True)

    def _connection_error(
        self, exc: BaseException, attempts: int, timeout: Timeout, in_body: bool = False
    ) -> APIConnectionError:
        host = urlsplit(self.base_url).netloc
        reason = self.redact(_root_reason(exc))
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        timed_out = (
            isinstance(exc, requests.exceptions.ReadTimeout)
            or _caused_by(exc, urllib3.exceptions.ReadTimeoutError)
            or _caused_by(exc, socket.timeout)
        )
        if in_body and timed_out:
            return APITimeoutError(
                f"The response from {host} stalled for longer than the read timeout while its body was arriving; "
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

    def _log_cycle(
        self,
        method: str,
        path: str,
        status: Optional[int],
        attempts: int,
        started: float,
        request_id: Optional[str],
        error: Optional[Exception],
    ) -> None:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        outcome = str(status) if status is not None else type(error).__name__
        log.log(
            logging.WARNING if error is not None else logging.INFO,
            "%s %s -> %s in %d ms (%d attempt%s, request id %s)",
            method,
            path,
            outcome,
            elapsed_ms,
            attempts,
            "" if attempts == 1 else "s",
            request_id,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "attempts": attempts,
                "elapsed_ms": elapsed_ms,
                "request_id": request_id,
            },
        )


_MAX_REDIRECTS = 5


def _origin(url: str) -> Tuple[str, str, Optional[int]]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _check_download_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # parsed lazily: a port like ":99999" or ":abc" raises only here
    except ValueError:
        raise ResponseValidationError("The image URL is not a valid URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback(host):
        return
    raise ResponseValidationError(
        f"Refusing to fetch the image from {_loggable(url)!r}: only https URLs (or http on this machine) are downloaded"
    )


def _loggable(url: str) -> str:
    # Signed storage URLs carry their credentials in the query string.
    parts = urlsplit(url)
    return "{}://{}{}".format(parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path)


def _cut_short(response: requests.Response) -> Optional[str]:
    """Describe a body shorter than its Content-Length, or ``None``.

    urllib3 2 raises on such a body; 1.26 returns it truncated, silently.
    ``raw.tell()`` counts the bytes read from the socket, before decompression,
    which is what Content-Length counts.
    """
    declared = response.headers.get("Content-Length", "")
    if not declared.isdigit():
        return None
    try:
        received = int(response.raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return None
    if received >= int(declared):
        return None
    return f"{received} of {declared} bytes arrived"


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
