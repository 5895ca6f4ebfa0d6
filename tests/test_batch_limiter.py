"""The batch rate limiter: configured budgets, server pauses, spacing, stopping, threads.

Everything but the two real-thread tests runs on a fake clock whose ``sleep``
only advances it, so nothing sleeps for real and no test depends on timing.
The real-thread tests assert lower bounds only.
"""

import threading
import time
from typing import Callable, List, Optional

import pytest

from imageprovider.batch._limiter import WAIT_SLICE, BatchLimiter
from imageprovider.exceptions import ConfigurationError

START = 100.0


class FakeClock:
    """A clock that only moves when slept on (or told to).

    ``hook``, when set, runs at the start of each sleep (to act "meanwhile").
    """

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.sleeps: List[float] = []
        self.hook: Optional[Callable[[], None]] = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        if self.hook is not None:
            self.hook()
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _limiter(clock: FakeClock, **options) -> BatchLimiter:
    return BatchLimiter(clock=clock, sleep=clock.sleep, **options)


# -- no limits ----------------------------------------------------------------------------------


def test_without_limits_or_pause_acquire_returns_at_once(clock):
    """Nothing configured and nothing observed: no waiting at all."""
    limiter = _limiter(clock)
    assert [limiter.acquire(images=4) for _ in range(50)] == [0.0] * 50
    assert clock.sleeps == []
    assert clock.now == START
    assert limiter.stats == {"waits": 0, "waited_seconds": 0.0, "pauses_429": 0, "pauses_headers": 0}


@pytest.mark.parametrize("option", ["requests_per_minute", "images_per_minute"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "60"])
def test_bad_limits_are_configuration_errors(option, value):
    """A limit must be a positive finite number; the error is also a ValueError."""
    with pytest.raises(ConfigurationError, match=option):
        BatchLimiter(**{option: value})
    with pytest.raises(ValueError):
        BatchLimiter(**{option: value})


def test_negative_image_count_is_rejected(clock):
    with pytest.raises(ValueError):
        _limiter(clock).acquire(images=-1)


# -- configured budgets -------------------------------------------------------------------------


def test_requests_per_minute_admits_the_burst_then_one_per_second(clock):
    """60/min starts with 5 requests available, then refills one per second."""
    limiter = _limiter(clock, requests_per_minute=60)
    waits = [limiter.acquire() for _ in range(20)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == [pytest.approx(1.0)] * 15
    assert clock.now == pytest.approx(START + 15.0)
    assert max(clock.sleeps) <= WAIT_SLICE
    assert limiter.stats["waits"] == 15
    assert limiter.stats["waited_seconds"] == pytest.approx(15.0)


def test_small_limit_starts_with_that_limit_as_burst(clock):
    """A limit below the initial burst is itself the burst (2/min: two at once, then one per 30 s)."""
    limiter = _limiter(clock, requests_per_minute=2)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(30.0)


def test_idle_time_refills_the_bucket(clock):
    """After the burst is spent, waiting idle for 3 s makes 3 requests free again."""
    limiter = _limiter(clock, requests_per_minute=60)
    for _ in range(5):
        limiter.acquire()
    clock.now += 3.0
    assert [limiter.acquire() for _ in range(3)] == [0.0] * 3
    assert limiter.acquire() == pytest.approx(1.0)


def test_images_per_minute_counts_images(clock):
    """n=3 takes 3 images: 5 available, then 1 image per second."""
    limiter = _limiter(clock, images_per_minute=60)
    assert limiter.acquire(images=3) == 0.0  # 2 left
    assert limiter.acquire(images=3) == pytest.approx(1.0)  # 1 short
    assert limiter.acquire(images=3) == pytest.approx(3.0)  # all 3 short
    assert clock.now == pytest.approx(START + 4.0)


def test_more_images_than_the_whole_budget_still_gets_through(clock):
    """A request larger than the per-minute image budget waits for the deficit instead of forever."""
    limiter = _limiter(clock, images_per_minute=2)
    assert limiter.acquire(images=4) == pytest.approx(60.0)  # 2 available, 2 more at 1 per 30 s


def test_the_stricter_budget_wins(clock):
    """With both limits, a request waits for the one that runs out first."""
    limiter = _limiter(clock, requests_per_minute=600, images_per_minute=60)
    assert limiter.acquire(images=2) == 0.0
    assert limiter.acquire(images=2) == 0.0
    assert limiter.acquire(images=2) == pytest.approx(1.0)  # requests plenty, images 1 short


def test_sleeps_happen_outside_the_lock(clock):
    """While one caller sleeps, others can reserve (no one holds the lock across a sleep)."""
    limiter = _limiter(clock, requests_per_minute=60)
    for _ in range(5):
        limiter.acquire()
    lock_free: List[bool] = []

    def check_lock() -> None:
        free = limiter._lock.acquire(blocking=False)
        if free:
            limiter._lock.release()
        lock_free.append(free)

    clock.hook = check_lock
    limiter.acquire()
    assert lock_free and all(lock_free)


# -- server pauses ------------------------------------------------------------------------------


def test_429_retry_after_observed_by_one_thread_pauses_every_later_acquire(clock):
    """A 429 asking for 2 s, seen by another thread, holds everyone until then; they resume together."""
    limiter = _limiter(clock)
    observer = threading.Thread(target=limiter.observe, args=(429, {"retry-after": "2"}))
    observer.start()
    observer.join()
    assert limiter.paused_until == START + 2.0
    assert limiter.acquire() == pytest.approx(2.0)
    assert clock.now == pytest.approx(START + 2.0)
    assert [limiter.acquire() for _ in range(5)] == [0.0] * 5
    assert limiter.stats["pauses_429"] == 1


def test_a_pause_observed_while_waiting_extends_the_wait(clock):
    """A worker already waiting for its slot also honours a pause that arrives meanwhile."""
    limiter = _limiter(clock, requests_per_minute=60)
    for _ in range(5):
        limiter.acquire()

    def pause_once() -> None:
        if not clock.sleeps:
            limiter.observe(429, {"Retry-After": "3"})

    clock.hook = pause_once
    assert limiter.acquire() == pytest.approx(3.0)  # its slot was at +1 s, the pause ends at +3 s


def test_retry_after_ms_is_honoured(clock):
    """``retry-after-ms`` wins over ``retry-after``."""
    limiter = _limiter(clock)
    limiter.observe(429, {"retry-after-ms": "250", "retry-after": "5"})
    assert limiter.paused_until == START + 0.25
    assert limiter.acquire() == pytest.approx(0.25)


def test_header_names_are_case_insensitive(clock):
    limiter = _limiter(clock)
    limiter.observe(429, {"Retry-After-Ms": "500"})
    assert limiter.current_wait == pytest.approx(0.5)


def test_429_without_retry_after_pauses_one_second(clock):
    limiter = _limiter(clock)
    limiter.observe(429, {"retry-after": "soon"})
    assert limiter.paused_until == START + 1.0


def test_retry_after_on_another_status_also_pauses(clock):
    """Any response that names a retry-after is obeyed (a 503 here)."""
    limiter = _limiter(clock)
    limiter.observe(503, {"retry-after": "4"})
    assert limiter.paused_until == START + 4.0


def test_success_without_headers_changes_nothing(clock):
    limiter = _limiter(clock)
    limiter.observe(200, {"x-request-id": "req_1"})
    limiter.observe(500, {})
    assert limiter.paused_until == 0.0
    assert limiter.acquire() == 0.0


def test_a_later_shorter_retry_after_does_not_shorten_the_pause(clock):
    limiter = _limiter(clock)
    limiter.observe(429, {"retry-after": "5"})
    limiter.observe(429, {"retry-after": "1"})
    assert limiter.paused_until == START + 5.0
    assert limiter.stats["pauses_429"] == 2


def test_pauses_are_capped_at_max_pause(clock):
    """An hour-long retry-after is capped, like the retry policy caps it (60 s by default)."""
    limiter = _limiter(clock)
    limiter.observe(429, {"retry-after": "3600"})
    assert limiter.paused_until == START + 60.0
    limiter.max_pause = 7200.0
    limiter.observe(429, {"retry-after": "3600"})
    assert limiter.paused_until == START + 3600.0


# -- rate-limit headers -------------------------------------------------------------------------


def test_remaining_requests_zero_pauses_until_the_reset(clock):
    """Slow down before the server says no: 0 requests left, reset in 1.5 s."""
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"})
    assert limiter.paused_until == START + 1.5
    assert limiter.acquire() == pytest.approx(1.5)
    assert limiter.stats["pauses_headers"] == 1
    assert limiter.stats["pauses_429"] == 0


@pytest.mark.parametrize("family, reset, seconds", [("images", "250ms", 0.25), ("tokens", "1m0s", 60.0)])
def test_remaining_images_or_tokens_zero_pauses_until_their_reset(clock, family, reset, seconds):
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-" + family: "0", "x-ratelimit-reset-" + family: reset})
    assert limiter.paused_until == pytest.approx(START + seconds)


def test_remaining_zero_without_a_reset_pauses_one_second(clock):
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "0"})
    assert limiter.paused_until == START + 1.0


def test_unknown_remaining_is_ignored(clock):
    """Azure sends -1 for unknown; that is not 0."""
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "-1", "x-ratelimit-reset-requests": "5s"})
    assert limiter.paused_until == 0.0
    assert limiter.current_wait == 0.0


def test_low_remaining_spaces_requests_over_the_reset_window(clock):
    """4 left (<= low_water 4), reset in 2 s: one request every 0.5 s until the window ends."""
    limiter = _limiter(clock)
    limiter.low_water = 4
    limiter.observe(200, {"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "2s"})
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == [0.0, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5)]
    assert limiter.acquire() == pytest.approx(0.5)  # the window's end: the budget is back
    assert clock.now == pytest.approx(START + 2.0)
    assert [limiter.acquire() for _ in range(3)] == [0.0] * 3  # past the window, no spacing
    assert limiter.paused_until == 0.0


def test_low_remaining_images_spaces_requests_too(clock):
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-images": "1", "x-ratelimit-reset-images": "3s"})
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(3.0)


def test_remaining_above_low_water_does_not_space(clock):
    """The default low water is 1; 4 left is plenty."""
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "2s"})
    assert [limiter.acquire() for _ in range(5)] == [0.0] * 5


def test_a_later_healthy_remaining_ends_the_spacing(clock):
    limiter = _limiter(clock)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "10s"})
    limiter.acquire()
    assert limiter.current_wait == pytest.approx(10.0)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-requests": "10s"})
    assert limiter.current_wait == 0.0
    assert limiter.acquire() == 0.0


# -- stopping -----------------------------------------------------------------------------------


def test_stop_event_makes_acquire_return_early(clock):
    """Stop set during the wait: return after the current slice, and give the reservation back."""
    limiter = _limiter(clock, requests_per_minute=60)
    for _ in range(5):
        limiter.acquire()
    stop = threading.Event()
    clock.hook = stop.set
    assert limiter.acquire(stop=stop) == pytest.approx(WAIT_SLICE)
    assert clock.sleeps == [WAIT_SLICE]
    # The abandoned request's slot is free again: the next one is 0.75 s away, not 1.75 s.
    assert limiter.current_wait == pytest.approx(1.0 - WAIT_SLICE)


def test_stop_during_a_pause_returns_early(clock):
    limiter = _limiter(clock)
    limiter.observe(429, {"retry-after": "30"})
    stop = threading.Event()
    clock.hook = stop.set
    assert limiter.acquire(stop=stop) == pytest.approx(WAIT_SLICE)
    assert limiter.paused_until == START + 30.0


def test_stop_already_set_returns_at_once_without_taking_budget(clock):
    limiter = _limiter(clock, requests_per_minute=60)
    for _ in range(5):
        limiter.acquire()
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(stop=stop) == 0.0
    assert clock.sleeps == []
    assert limiter.current_wait == pytest.approx(1.0)


# -- progress display ---------------------------------------------------------------------------


def test_current_wait_and_paused_until_reflect_the_state(clock):
    limiter = _limiter(clock, requests_per_minute=60)
    assert limiter.current_wait == 0.0
    assert limiter.paused_until == 0.0
    for _ in range(5):
        limiter.acquire()
    assert limiter.current_wait == pytest.approx(1.0)
    assert limiter.paused_until == 0.0
    limiter.observe(429, {"retry-after": "2"})
    assert limiter.paused_until == START + 2.0
    assert limiter.current_wait == pytest.approx(2.0)
    clock.now += 0.5
    assert limiter.current_wait == pytest.approx(1.5)
    clock.now = START + 3.0
    assert limiter.paused_until == 0.0
    assert limiter.current_wait == 0.0
    # Reading them reserves nothing.
    assert limiter.acquire() == 0.0


def test_repr_names_the_limits(clock):
    text = repr(_limiter(clock, requests_per_minute=50, images_per_minute=100))
    assert "50/min" in text and "100/min" in text


# -- real threads (lower bounds only) -----------------------------------------------------------


@pytest.mark.slow
def test_real_threads_share_one_budget():
    """8 threads, 20 acquires, 600/min (10/s, burst 5): at least 15 x 0.1 s pass in all."""
    total, per_second, burst, tolerance = 20, 10.0, 5, 0.05
    began = time.monotonic()
    limiter = BatchLimiter(requests_per_minute=per_second * 60)
    claimed = iter(range(total))
    claim_lock = threading.Lock()
    finished: List[float] = []

    def worker() -> None:
        while True:
            with claim_lock:
                if next(claimed, None) is None:
                    return
            limiter.acquire()
            with claim_lock:
                finished.append(time.monotonic() - began)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - began
    assert len(finished) == total
    assert elapsed >= (total - burst) / per_second - tolerance
    # No two requests share a slot: the k-th start past the burst comes no earlier than its turn.
    for k, moment in enumerate(sorted(finished)):
        assert moment >= max(0, k + 1 - burst) / per_second - tolerance


def test_real_threads_all_wait_out_a_pause():
    """A 429 asking for 300 ms holds back every worker started afterwards."""
    limiter = BatchLimiter()
    began = time.monotonic()
    limiter.observe(429, {"retry-after-ms": "300"})
    finished: List[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter.acquire()
        with lock:
            finished.append(time.monotonic() - began)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(finished) == 4
    assert min(finished) >= 0.3 - 0.05


def test_an_empty_window_pauses_for_one_request_not_the_whole_reset(clock):
    """OpenAI's reset is the time until the whole window refills; with the limit known the pause is reset/limit."""
    limiter = _limiter(clock)
    limiter.observe(
        429,
        {
            "x-ratelimit-limit-requests": "1200",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "60s",
        },
    )
    assert limiter.paused_until == pytest.approx(clock.now + 1.0)  # the 429's default pause dominates 0.05 s
    limiter2 = _limiter(clock)
    limiter2.observe(
        200,
        {
            "x-ratelimit-limit-requests": "1200",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "60s",
        },
    )
    assert limiter2.paused_until == pytest.approx(clock.now + 0.05)


def test_low_remaining_with_a_known_limit_spaces_at_the_refill_rate(clock):
    """With 1200/min and 2 left, requests are spaced 60/1198 s apart, not 30 s."""
    limiter = _limiter(clock)
    limiter.low_water = 4
    limiter.observe(
        200,
        {
            "x-ratelimit-limit-requests": "1200",
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "60s",
        },
    )
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(60 / 1198)
