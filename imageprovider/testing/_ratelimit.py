"""
imageprovider.testing._ratelimit
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

Per-minute limits on requests and images, as token buckets that refill
continuously, reported the way OpenAI reports them: ``x-ratelimit-limit-*``,
``-remaining-*``, ``-reset-*`` (a duration such as ``1.2s`` or ``6m0s``), and
``retry-after`` / ``retry-after-ms`` on a 429.
"""

import math
import threading
import time
from typing import Callable, Dict, Optional, Tuple

__all__ = ["RateLimiter", "format_duration"]


def format_duration(seconds: float) -> str:
    """``0.012`` -> ``12ms``, ``1.5`` -> ``1.5s``, ``360`` -> ``6m0s``, as OpenAI writes resets."""
    if seconds < 1:
        return f"{int(math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{round(rest, 3):g}s"
    return f"{round(rest, 3):g}s"


class _Bucket:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = float(per_minute)
        self._clock = clock
        self._updated = clock()

    def refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 when it is)."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.tokens) / self.rate)

    def reset_after(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.tokens) / self.rate


class RateLimiter:
    """Requests, images and tokens per minute, checked together.

    :param requests_per_minute: request budget (``x-ratelimit-*-requests``).
    :param images_per_minute: image budget (``x-ratelimit-*-images``).
    :param tokens_per_minute: token budget (``x-ratelimit-*-tokens``).
    :param clock: monotonic seconds; tests may pass their own.
    """

    def __init__(
        self,
        requests_per_minute: int = 10_000,
        images_per_minute: int = 10_000,
        tokens_per_minute: int = 10_000_000,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if min(requests_per_minute, images_per_minute, tokens_per_minute) < 1:
            raise ValueError("rate limits must be at least 1 per minute")
        clock = clock or time.monotonic
        self._buckets = {
            "requests": _Bucket(requests_per_minute, clock),
            "images": _Bucket(images_per_minute, clock),
            "tokens": _Bucket(tokens_per_minute, clock),
        }
        self._lock = threading.Lock()

    def acquire(self, images: int, tokens: int = 0) -> Tuple[bool, Dict[str, str]]:
        """Take one request, ``images`` images and ``tokens`` tokens if all are available.

        Returns ``(allowed, headers)``; when not allowed nothing is taken and
        the headers include ``retry-after`` and ``retry-after-ms``.
        """
        wanted = {"requests": 1.0, "images": float(images), "tokens": float(tokens)}
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill()
            wait = max(bucket.wait_for(wanted[name]) for name, bucket in self._buckets.items())
            allowed = wait == 0
            if allowed:
                for name, bucket in self._buckets.items():
                    bucket.tokens -= wanted[name]
            headers = self._headers()
        if not allowed:
            if math.isinf(wait):
                wait = 60.0
            headers["retry-after"] = str(max(1, int(math.ceil(wait))))
            headers["retry-after-ms"] = str(int(math.ceil(wait * 1000)))
        return allowed, headers

    def _headers(self) -> Dict[str, str]:
        headers = {}
        for name, bucket in self._buckets.items():
            headers["x-ratelimit-limit-" + name] = str(int(bucket.capacity))
            headers["x-ratelimit-remaining-" + name] = str(int(math.floor(bucket.tokens)))
            headers["x-ratelimit-reset-" + name] = format_duration(bucket.reset_after())
        return headers
