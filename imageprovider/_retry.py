"""
imageprovider._retry
~~~~~~~~~~~~~~~~~~~~

The retry policy, as a small :class:`urllib3.util.Retry` subclass that the
transport mounts on its ``HTTPAdapter``. It uses only the constructor
arguments that urllib3 1.26 and 2.x share.

What is retried, and how long we wait:

* ``POST`` is allowed (urllib3 leaves it out by default, and every image call
  is a POST).
* Statuses :data:`RETRY_STATUS_CODES`; the server's ``x-should-retry`` header
  overrides the status either way.
* Connection errors (the request never reached the server) are retried.
  Read timeouts and connections dropped after the request was sent are not,
  by default: the server may already be generating, and billing, the image.
* The wait is ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)
  when the server sends one, capped at ``max_retry_after``; otherwise
  ``min(0.5 * 2**n, 8)`` seconds, less up to 25 % jitter.
"""

import email.utils
import math
import random
import time
from contextvars import ContextVar
from typing import Any, Callable, FrozenSet, Optional, Protocol

from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from ._log import LOGGER, fields

log = LOGGER

#: Statuses retried unless the server says ``x-should-retry: false``.
RETRY_STATUS_CODES: FrozenSet[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Retries after the first attempt.
DEFAULT_MAX_RETRIES = 2
#: Longest wait honoured from ``retry-after`` / ``retry-after-ms``, in seconds.
DEFAULT_MAX_RETRY_AFTER = 60.0
#: First backoff delay and its ceiling, in seconds.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: Largest fraction taken off a backoff delay at random, so clients spread out.
JITTER = 0.25

#: Called to wait between attempts; tests replace it so they never sleep.
sleep: Callable[[float], None] = time.sleep


class _NotRetried(MaxRetryError):
    """Raised from :meth:`ImageRetry.increment` to hand the response back unretried."""


class CycleWatcher(Protocol):
    """Hears what happens inside one request cycle, retries urllib3 makes out of sight included."""

    def responded(self, status: int, headers: Any) -> None:
        """A response arrived that urllib3 may retry (an error status)."""

    def retried(self, attempts: int) -> None:
        """A retry was decided: ``attempts`` attempts will have been made once it is sent."""

    def waiting(self, delay: float, reason: str, attempt: int) -> None:
        """Attempt ``attempt`` follows after ``delay`` seconds, because of ``reason``."""


#: The watcher of the request cycle running in this thread (set by the transport around each send).
#: The policy itself holds no per-request state, so one instance is shared by every thread.
#: (A type comment, because vermin reads a subscripted ContextVar annotation as needing 3.9.)
current_watcher = ContextVar("imageprovider_cycle", default=None)  # type: ContextVar[Optional[CycleWatcher]]


class ImageRetry(Retry):
    """urllib3 ``Retry`` with the API's conventions; see the module docstring.

    Immutable, as urllib3 expects (``increment`` returns a new instance), so one
    policy may be shared by threads and by providers made with ``with_options``.
    What happens to one request is reported to the :data:`current_watcher`.

    :param max_retry_after: cap, in seconds, on a server-requested wait.
    :param retry_rate_limits: ``False`` hands every 429 straight back: a batch's
        shared limiter schedules the item again, where a private retry would
        jump its queue.
    """

    def __init__(
        self,
        *args: Any,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        retry_rate_limits: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.retry_rate_limits = retry_rate_limits

    def new(self, **kw: Any) -> "ImageRetry":
        """Copy with overrides (urllib3 calls this on every increment)."""
        kw.setdefault("max_retry_after", self.max_retry_after)
        kw.setdefault("retry_rate_limits", self.retry_rate_limits)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Any error status may carry x-should-retry: true, so every one is a
        # candidate; increment() makes the decision with the headers in hand.
        return self._is_method_retryable(method) and status_code >= 400

    def increment(
        self, method: Optional[str] = None, url: Optional[str] = None, *args: Any, **kwargs: Any
    ) -> "ImageRetry":
        response = kwargs.get("response")
        error = kwargs.get("error")
        watcher = current_watcher.get()
        if response is not None and watcher is not None:
            watcher.responded(response.status, response.headers)
        if (
            response is not None
            and error is None
            and (
                not should_retry_status(response.status, response.headers)
                or (response.status == 429 and not self.retry_rate_limits)
            )
        ):
            raise _NotRetried(kwargs.get("_pool"), url or "", None)  # type: ignore[arg-type]  # urllib3 passes _pool
        new_retry = super().increment(method, url, *args, **kwargs)
        if watcher is not None:
            watcher.retried(len(new_retry.history) + 1)
        return new_retry

    def sleep(self, response: Any = None) -> None:
        """Wait before the next attempt, as the server asks or by backoff."""
        delay = self.server_delay(response) if response is not None else None
        if delay is None:
            delay = self.backoff_delay()
        reason = _reason(self.history[-1]) if self.history else "a failure"
        attempt = len(self.history) + 1
        log.debug(
            "Retrying in %.2f s after %s; attempt %d follows", delay, reason, attempt, extra=fields(attempts=attempt)
        )
        watcher = current_watcher.get()
        if watcher is not None:
            watcher.waiting(delay, reason, attempt)
        if delay > 0:
            sleep(delay)

    def server_delay(self, response: Any) -> Optional[float]:
        """Seconds the server asked us to wait, capped; ``None`` when it asked nothing usable."""
        delay = parse_retry_after(response.headers)
        return None if delay is None else min(delay, self.max_retry_after)

    def backoff_delay(self) -> float:
        """``min(0.5 * 2**n, 8)`` seconds for the n-th retry (from 0), less up to 25 % jitter."""
        retries_taken = max(len(self.history) - 1, 0)
        base = min(INITIAL_BACKOFF * float(2 ** min(retries_taken, 32)), MAX_BACKOFF)
        # Jitter only spreads clients apart in time; it guards no secret.
        return base * (1.0 - JITTER * random.random())  # noqa: S311 (jitter, not a secret)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(total={self.total}, connect={self.connect}, read={self.read}, status={self.status}, max_retry_after={self.max_retry_after}, retry_rate_limits={self.retry_rate_limits})"


def _reason(entry: Any) -> str:
    """Why an attempt was retried, from urllib3's history entry: ``status 503`` or the error's class."""
    if getattr(entry, "status", None) is not None:
        return f"status {entry.status}"
    error = getattr(entry, "error", None)
    return type(error).__name__ if error is not None else "a failure"


def should_retry_status(status: int, headers: Any) -> bool:
    """Whether a response with ``status`` should be retried; ``x-should-retry`` wins."""
    override = (headers.get("x-should-retry") or "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    return status in RETRY_STATUS_CODES


def parse_retry_after(headers: Any) -> Optional[float]:
    """Seconds from ``retry-after-ms``, else ``retry-after`` (seconds or HTTP date).

    Returns ``None`` for a missing, unparsable, non-finite or non-positive value,
    so the caller falls back to backoff.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _positive_float(raw_ms)
        if seconds is not None:
            return seconds / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _positive_float(raw)
    if seconds is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_tz(raw)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        return None
    try:
        seconds = email.utils.mktime_tz(parsed) - time.time()
    except (OverflowError, ValueError):
        return None
    return seconds if seconds > 0 else None


def _positive_float(text: str) -> Optional[float]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or math.isinf(value) or value <= 0:
        return None
    return value


def make_retry(
    max_retries: int = DEFAULT_MAX_RETRIES,
    *,
    retry_read_timeouts: bool = False,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    retry_rate_limits: bool = True,
) -> ImageRetry:
    """Build the provider's retry policy from its options."""
    return ImageRetry(
        total=max_retries,
        connect=None,
        read=max_retries if retry_read_timeouts else False,
        status=None,
        other=0,
        redirect=0,
        status_forcelist=RETRY_STATUS_CODES,
        allowed_methods=frozenset({"GET", "POST", "DELETE"}),
        backoff_factor=0,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
        max_retry_after=max_retry_after,
        retry_rate_limits=retry_rate_limits,
    )
