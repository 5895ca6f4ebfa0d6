"""
imageprovider.exceptions
~~~~~~~~~~~~~~~~~~~~~~~~

Every error this library raises derives from :class:`ImageProviderError`.
Errors from ``requests``, ``urllib3`` and ``jsonschema`` are translated into
these at one boundary each and chained as ``__cause__``; they never reach the
caller bare.

This module is a leaf: it imports nothing from the package.
"""

from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

__all__ = [
    "ImageProviderError",
    "ConfigurationError",
    "ProviderClosedError",
    "RequestValidationError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "ContentPolicyError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "ImageExpiredError",
    "ResponseValidationError",
    "ImageProviderWarning",
    "ModelShutdownWarning",
    "ConfigurationWarning",
]

_E = TypeVar("_E", bound="ImageProviderError")


def _rebuild(cls: Type[_E], state: Dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ImageProviderError(Exception):
    """Base class of every error raised by imageprovider.

    :ivar message: a sentence a person can act on.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keyword-only constructors break the default pickling of exceptions;
        # errors must survive multiprocessing and logging queues intact.
        return (_rebuild, (type(self), dict(self.__dict__)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(ImageProviderError, ValueError):
    """The provider cannot be configured: no API key, a bad base URL, a bad option.

    Raised before any network I/O.
    """


class ProviderClosedError(ImageProviderError, RuntimeError):
    """The provider (or one made from it by ``with_options``) was closed; nothing was sent."""


class RequestValidationError(ImageProviderError, ValueError):
    """A request parameter is invalid; nothing was sent.

    :ivar param: the name of the offending parameter (``"size"``, ``"n"``...),
        or ``None`` when the problem is not tied to one parameter.
    :ivar path: the JSON path inside the request body, as a tuple.
    """

    def __init__(self, message: str, *, param: Optional[str] = None, path: Tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.param = param
        self.path = tuple(path) if path else ((param,) if param else ())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param={self.param!r}, message={self.message!r})"


class APIConnectionError(ImageProviderError):
    """No usable HTTP response arrived: DNS, connect, TLS, reset, or retries ran out.

    :ivar attempts: how many attempts were made, when known.
    """

    def __init__(self, message: str = "Connection error.", *, attempts: Optional[int] = None) -> None:
        super().__init__(message)
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"{type(self).__name__}(attempts={self.attempts!r}, message={self.message!r})"


class APITimeoutError(APIConnectionError):
    """The connect or read timeout expired, or the whole call passed its deadline.

    :ivar phase: ``"connect"``, ``"read"`` or ``"deadline"``. A read timeout
        means the server may already be generating (and billing) the image; it
        is not retried unless the provider was created with
        ``retry_read_timeouts=True``. A deadline is never retried.
    """

    def __init__(
        self, message: str = "Request timed out.", *, phase: str = "read", attempts: Optional[int] = None
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.phase = phase


class APIStatusError(ImageProviderError):
    """The API answered with a non-success HTTP status.

    :ivar status_code: the HTTP status.
    :ivar request_id: the ``x-request-id`` header, for OpenAI support.
    :ivar type: ``error.type`` from the body, if any.
    :ivar code: ``error.code`` from the body, if any (always a string).
    :ivar param: ``error.param`` from the body, if any.
    :ivar body: the parsed ``error`` object, the whole JSON body when it has
        no ``error`` key, or the (truncated) text when it is not JSON.
    :ivar headers: the response headers, lower-cased names.
    :ivar attempts: how many attempts were made, retries included.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: Optional[str] = None,
        type: Optional[str] = None,
        code: Optional[str] = None,
        param: Optional[str] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.type = type
        self.code = code
        self.param = param
        self.body = body
        self.headers = dict(headers or {})
        self.attempts = attempts

    def __str__(self) -> str:
        details = [f"status {self.status_code}"]
        if self.code:
            details.append(f"code {self.code!r}")
        if self.param:
            details.append(f"param {self.param!r}")
        if self.attempts > 1:
            details.append(f"after {self.attempts} attempts")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return "{} ({})".format(self.message, ", ".join(details))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, param={self.param!r}, request_id={self.request_id!r}, attempts={self.attempts!r}, message={self.message!r})"


class BadRequestError(APIStatusError):
    """HTTP 400: the API rejected the request."""


class ContentPolicyError(BadRequestError):
    """HTTP 400 with ``code == "moderation_blocked"``: the safety system refused the prompt.

    Never retried: the same prompt is refused again.
    """


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the key may not use this model, organization or project."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown endpoint, model or deployment."""


class ConflictError(APIStatusError):
    """HTTP 409: the resource was modified concurrently (retried by default)."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request was well-formed but could not be processed."""


class RateLimitError(APIStatusError):
    """HTTP 429: rate limit or quota exceeded (retried by default, honouring ``retry-after``)."""


class InternalServerError(APIStatusError):
    """HTTP 5xx: the server failed (retried by default)."""


class ImageExpiredError(APIStatusError):
    """An image URL answered 403, 404 or 410: it has expired (OpenAI's live 60 minutes) or never existed."""


class ResponseValidationError(ImageProviderError):
    """A success response could not be used: not JSON, ``null``, or off-schema.

    :ivar status_code: the HTTP status of the response.
    :ivar request_id: the ``x-request-id`` header, for OpenAI support.
    :ivar body: the start of the body as text (truncated).
    :ivar path: where in the body the schema failed, as a tuple.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        body: Optional[str] = None,
        path: Tuple[Any, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body
        self.path = tuple(path)

    def __str__(self) -> str:
        extra = []
        if self.status_code is not None:
            extra.append(f"status {self.status_code}")
        if self.request_id:
            extra.append(f"request id {self.request_id}")
        return "{} ({})".format(self.message, ", ".join(extra)) if extra else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, request_id={self.request_id!r}, path={self.path!r}, message={self.message!r})"


class ImageProviderWarning(UserWarning):
    """Base class of every warning imageprovider issues."""


class ModelShutdownWarning(ImageProviderWarning, FutureWarning):
    """A call names a model whose shutdown date is announced and not yet reached.

    Issued once per model per process; shown by default (it is a ``FutureWarning``).
    On and after the date, the call raises :class:`RequestValidationError` instead.
    """


class ConfigurationWarning(ImageProviderWarning):
    """A setting works but is unsafe, e.g. a config file holding the key is readable by other users.

    Shown by default (a ``UserWarning``), and printed by the command line.
    """
