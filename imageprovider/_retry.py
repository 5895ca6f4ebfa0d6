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
import logging
import math
import random
import time
from typing import Any, Callable, FrozenSet, List, Optional

from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

log = logging.getLogger("imageprovider")

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


class ImageRetry(Retry):
    """urllib3 ``Retry`` with the API's conventions; see the module docstring.

    :param max_retry_after: cap, in seconds, on a server-requested wait.
    :param attempt_log: shared by every copy made from this instance; each
        retry appends to it, so the caller can count attempts afterwards.
    """

    def __init__(
        self,
        *args: Any,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        attempt_log: Optional[List[str]] = None,
        observer: Optional[Callable[[int, Any], None]] = None,
        retry_rate_limits: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        #: ``False`` hands every 429 straight back: a batch's shared limiter
        #: schedules the item again, where a private retry would jump its queue.
        self.retry_rate_limits = retry_rate_limits
        self.attempt_log: List[str] = attempt_log if attempt_log is not None else []
        #: Told ``(status, headers)`` of every error response, even those retried
        #: out of the caller's sight (a batch's shared limiter pauses on 429s).
        self.observer = observer

    def new(self, **kw: Any) -> "ImageRetry":
        """Copy with overrides (urllib3 calls this on every increment)."""
        kw.setdefault("max_retry_after", self.max_retry_after)
        kw.setdefault("attempt_log", self.attempt_log)
        kw.setdefault("observer", self.observer)
        kw.setdefault("retry_rate_limits", self.retry_rate_limits)
        return super().new(**kw)

    def for_request(self, observer: Optional[Callable[[int, Any], None]] = None) -> "ImageRetry":
        """A copy with a fresh attempt log (and ``observer``), for one request."""
        return self.new(attempt_log=[], observer=observer)

    @property
    def attempts(self) -> int:
        """Attempts made so far with this instance's log: one plus the retries taken."""
        return 1 + len(self.attempt_log)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Any error status may carry x-should-retry: true, so every one is a
        # candidate; increment() makes the decision with the headers in hand.
        return self._is_method_retryable(method) and status_code >= 400

    def increment(
        self, method: Optional[str] = None, url: Optional[str] = None, *args: Any, **kwargs: Any
    ) -> "ImageRetry":
        response = kwargs.get("response")
        error = kwargs.get("error")
        if response is not None and self.observer is not None:
            self.observer(response.status, response.headers)
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
        reason = f"status {response.status}" if response is not None else type(error).__name__
        self.attempt_log.append(reason)
        return new_retry

    def sleep(self, response: Any = None) -> None:
        """Wait before the next attempt, as the server asks or by backoff."""
        delay = self.server_delay(response) if response is not None else None
        if delay is None:
            delay = self.backoff_delay()
        log.debug("Retrying in %.2f s after %s; attempt %d follows", delay, self.attempt_log[-1:], self.attempts)
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
        return f"{type(self).__name__}(total={self.total}, connect={self.connect}, read={self.read}, status={self.status}, max_retry_after={self.max_retry_after})"


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
    )
