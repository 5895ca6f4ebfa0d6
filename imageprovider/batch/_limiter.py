"""
imageprovider.batch._limiter
~~~~~~~~~~~~~~~~~~~~~~~~~~~~

One client-side rate limiter shared by every worker thread of a batch run.

Two sources of pacing are combined:

* **Configured limits** (``requests_per_minute``, ``images_per_minute``): token
  buckets that refill continuously, like the server's own.
* **What the server says**, fed in through :meth:`BatchLimiter.observe` with
  every response: a ``retry-after`` / ``retry-after-ms`` (or a bare 429) pauses
  all workers at once, and the ``x-ratelimit-remaining-*`` / ``-reset-*``
  headers pause or space out requests before the server has to refuse them.

Waiters never form a thundering herd: each :meth:`~BatchLimiter.acquire`
computes its start time under a lock and reserves its share of the budget
there, then sleeps outside the lock until its own start time. A pause observed
later still holds back everyone who has not started yet.
"""

import math
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .._log import LOGGER, fields
from .._retry import DEFAULT_MAX_RETRY_AFTER, parse_retry_after
from ..exceptions import ConfigurationError
from ..results import RateLimits, parse_count, parse_duration

log = LOGGER

__all__ = ["BatchLimiter"]

#: Most of a configured per-minute budget available at the start. A full
#: bucket would let a fresh run fire a whole minute's budget in its first
#: second, which the server (whose window already holds earlier traffic, from
#: this or other clients on the key) is likely to answer with a burst of 429s.
INITIAL_BURST = 5.0
#: The clock and the wait of limiters built without their own (run_batch's); tests
#: replace them to run a batch on virtual time.
default_clock: Callable[[], float] = time.monotonic
default_sleep: Callable[[float], None] = time.sleep

#: Longest single sleep while waiting, so a stop event is noticed promptly.
WAIT_SLICE = 0.25
#: Pause, in seconds, after a 429 that names no usable ``retry-after``, and after
#: a ``remaining`` of 0 whose reset is missing.
DEFAULT_PAUSE = 1.0
#: A ``remaining`` at or below this spaces requests out over the reset window.
DEFAULT_LOW_WATER = 1

# Waits shorter than this are rounding noise, not waits.
_EPSILON = 1e-9


class _Bucket:
    """A token bucket that may go into debt: a reservation takes its share at once."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.tokens = min(self.capacity, INITIAL_BURST)
        self._updated = now

    def refill(self, now: float) -> None:
        if now > self._updated:
            self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
            self._updated = now

    def ready_at(self, amount: float, now: float) -> float:
        """The clock time at which ``amount`` is available (``now`` when it already is)."""
        if amount <= self.tokens:
            return now
        return now + (amount - self.tokens) / self.rate

    def __repr__(self) -> str:
        return f"{self.capacity:g}/min"


class BatchLimiter:
    """Paces the requests of all workers of a batch run; one instance is shared by all.

    Usage::

        limiter = BatchLimiter(requests_per_minute=50, images_per_minute=100)
        limiter.low_water = workers
        # in each worker, before each request:
        limiter.acquire(images=n, stop=stop_event)
        if stop_event.is_set():
            return
        # and for every response, including ones urllib3 retries internally:
        limiter.observe(status, headers)

    :param requests_per_minute: (optional) client-side request budget; ``None`` for no limit.
    :param images_per_minute: (optional) client-side image budget; ``None`` for no limit.
    :param clock: monotonic seconds (default: this module's :data:`default_clock`); tests pass a fake one.
    :param sleep: waits that many seconds (default: this module's :data:`default_sleep`); tests pass a fake one.
    :raises ConfigurationError: a limit is not a positive finite number.
    """

    def __init__(
        self,
        *,
        requests_per_minute: Optional[float] = None,
        images_per_minute: Optional[float] = None,
        clock: Optional[Callable[[], float]] = None,
        sleep: Optional[Callable[[float], None]] = None,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute), ("images_per_minute", images_per_minute)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
            ):
                raise ConfigurationError(f"{name} must be a positive number, not {value!r}")
        self._clock = clock if clock is not None else default_clock
        self._sleep = sleep if sleep is not None else default_sleep
        self._lock = threading.Lock()
        now = self._clock()
        self._requests = _Bucket(requests_per_minute, now) if requests_per_minute is not None else None
        self._images = _Bucket(images_per_minute, now) if images_per_minute is not None else None
        self._paused_until = 0.0
        # Per header family ("requests", "images"): (seconds between starts, until when).
        self._spacing: Dict[str, Tuple[float, float]] = {}
        self._last_start = -math.inf
        #: A ``remaining`` at or below this spaces requests out; set it to the number of workers,
        #: since that many requests may be in flight when a response reports it.
        self.low_water = DEFAULT_LOW_WATER
        #: Longest pause taken from one response (``retry-after`` or a reset), in seconds;
        #: the same cap the retry policy applies to ``retry-after``.
        self.max_pause = DEFAULT_MAX_RETRY_AFTER
        #: Counters: ``waits`` (acquires that waited), ``waited_seconds``, ``pauses_429``
        #: (pauses from ``retry-after`` or a 429), ``pauses_headers`` (pauses from a ``remaining`` of 0).
        self.stats: Dict[str, Any] = {"waits": 0, "waited_seconds": 0.0, "pauses_429": 0, "pauses_headers": 0}

    # -- waiting ---------------------------------------------------------------------------------

    def acquire(self, images: int = 1, stop: Optional[threading.Event] = None) -> float:
        """Block until one request and ``images`` images may start; return the seconds waited.

        Returns early, raising nothing, once ``stop`` is set (the caller checks
        ``stop`` afterwards); the budget reserved for the abandoned request is
        given back. Sleeps in slices of at most :data:`WAIT_SLICE` seconds.

        :raises ValueError: ``images`` is negative.
        """
        if images < 0:
            raise ValueError(f"images must be 0 or more, not {images!r}")
        if stop is not None and stop.is_set():
            return 0.0
        with self._lock:
            now = self._clock()
            start = self._next_start(now, float(images))
            for bucket, amount in ((self._requests, 1.0), (self._images, float(images))):
                if bucket is not None:
                    bucket.tokens -= amount
            self._last_start = max(self._last_start, start)
            if start - now <= _EPSILON:
                return 0.0
        began = now
        while True:
            with self._lock:
                now = self._clock()
                remaining = max(start, self._paused_until) - now
            if remaining <= _EPSILON:
                break
            if stop is not None and stop.is_set():
                self._give_back(float(images))
                break
            self._sleep(min(WAIT_SLICE, remaining))
        waited = max(0.0, now - began)
        with self._lock:
            self.stats["waits"] += 1
            self.stats["waited_seconds"] += waited
        return waited

    def _next_start(self, now: float, images: float) -> float:
        # Under the lock: the earliest time a request taking ``images`` images may start.
        start = max(now, self._paused_until)
        for bucket, amount in ((self._requests, 1.0), (self._images, images)):
            if bucket is not None:
                bucket.refill(now)
                start = max(start, bucket.ready_at(amount, now))
        for interval, until in self._spacing.values():
            if now < until:
                # Evenly spaced within the window; at its end the server's budget is back.
                start = max(start, min(self._last_start + interval, until))
        return start

    def _give_back(self, images: float) -> None:
        with self._lock:
            for bucket, amount in ((self._requests, 1.0), (self._images, images)):
                if bucket is not None:
                    bucket.tokens = min(bucket.capacity, bucket.tokens + amount)

    @property
    def current_wait(self) -> float:
        """Seconds until the next request (of one image) may start; 0 if it may start now."""
        with self._lock:
            now = self._clock()
            wait = self._next_start(now, 1.0) - now
        return wait if wait > _EPSILON else 0.0

    @property
    def paused_until(self) -> float:
        """The :func:`clock` time at which the global pause ends; 0 if there is none."""
        with self._lock:
            return self._paused_until if self._paused_until > self._clock() else 0.0

    # -- learning from responses -----------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one response of the API (call it for every response, retried ones included).

        * A 429, or any response with ``retry-after`` / ``retry-after-ms``,
          pauses every worker until the server's delay (:data:`DEFAULT_PAUSE`
          for a 429 without one) has passed, so all resume together.
        * ``x-ratelimit-remaining-requests``, ``-images`` or ``-tokens`` of 0
          pauses every worker until one more unit is back. OpenAI's reset is
          the time until the *whole* window has refilled, so with the limit
          known that is ``reset / limit``, not the whole reset.
        * ``remaining-requests`` or ``-images`` at or below :attr:`low_water`
          spaces the next requests at the window's refill rate. (Tokens are
          not counted per request, so they only ever pause.)

        Pauses are capped at :attr:`max_pause` and only ever extended, never
        shortened, by a later response.
        """
        lowered = {str(key).lower(): value for key, value in headers.items()}
        delay = parse_retry_after(lowered)
        if delay is None and status == 429:
            delay = DEFAULT_PAUSE
        limits = RateLimits.from_headers(lowered)
        families = (
            ("requests", limits.remaining_requests, limits.reset_requests, limits.limit_requests),
            (
                "images",
                parse_count(lowered.get("x-ratelimit-remaining-images")),
                parse_duration(lowered.get("x-ratelimit-reset-images")),
                parse_count(lowered.get("x-ratelimit-limit-images")),
            ),
            ("tokens", limits.remaining_tokens, limits.reset_tokens, limits.limit_tokens),
        )
        with self._lock:
            now = self._clock()
            if delay is not None:
                self._pause(now, delay, "pauses_429", f"retry-after (status {status})")
            for family, remaining, reset, limit in families:
                if remaining is None:
                    continue
                # Seconds per unit: with the limit known, the steady refill rate of the
                # window; without it, the remaining budget spread over the reset.
                if reset is None:
                    refill = None
                elif limit:
                    refill = reset / max(limit - remaining, 1)
                else:
                    refill = reset / remaining if remaining else reset
                if remaining == 0:
                    self._pause(
                        now, DEFAULT_PAUSE if refill is None else refill, "pauses_headers", f"{family} remaining 0"
                    )
                elif family != "tokens":
                    if remaining <= self.low_water and refill:
                        self._spacing[family] = (refill, now + min(reset or 0.0, self.max_pause))
                    else:
                        self._spacing.pop(family, None)

    def _pause(self, now: float, seconds: float, counter: str, reason: str) -> None:
        # Under the lock.
        seconds = min(seconds, self.max_pause)
        if seconds <= 0:
            return
        self.stats[counter] += 1
        if now + seconds > self._paused_until:
            self._paused_until = now + seconds
            log.debug("Pausing all workers for %.2f s: %s", seconds, reason, extra=fields())

    def __repr__(self) -> str:
        return f"BatchLimiter(requests={self._requests!r}, images={self._images!r}, low_water={self.low_water}, paused_until={self._paused_until:g})"
