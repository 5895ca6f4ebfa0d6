"""Retry behaviour: which failures are retried, how often, and how long the client waits.

Sequences that depend on urllib3's real retry loop (sleeps, connection
errors, timeouts) run against a scripted loopback server; status-only
sequences also run through ``responses``. Nothing sleeps for real: the
``sleeps`` fixture records each requested wait.
"""

import email.utils
import time

import pytest
import requests
from helpers import API_KEY, GENERATIONS_URL, PNG, images_body
from scripted_server import Reply, ScriptedServer, unused_port

from imageprovider import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ContentPolicyError,
    InternalServerError,
    OpenAIImageProvider,
    RateLimitError,
    _retry,
)

OK = Reply(200, images_body(), {"x-request-id": "req_ok"})


def _provider(server_url: str, **options) -> OpenAIImageProvider:
    return OpenAIImageProvider(api_key=API_KEY, base_url=server_url, **options)


# -- against a real socket -------------------------------------------------------


def test_429_with_retry_after_ms_then_200_waits_exactly_that_long(sleeps):
    """A 429 asking for 250 ms is retried once, after exactly 0.25 s, with the same body."""
    with ScriptedServer(
        [Reply(429, {"error": {"message": "slow down", "type": "requests"}}, {"retry-after-ms": "250"}), OK]
    ) as server:
        with _provider(server.base_url) as provider:
            result = provider.generate_image("an otter")
    assert result.images[0].data == PNG
    assert result.request_id == "req_ok"
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body
    assert sleeps == [0.25]


def test_500_three_times_raises_internal_server_error_after_three_attempts(sleeps):
    """Two retries by default; the third 500 becomes the typed error with its body and attempt count."""
    failure = Reply(
        500,
        {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}},
        {"x-request-id": "req_500"},
    )
    with ScriptedServer([failure]) as server:
        with _provider(server.base_url) as provider:
            with pytest.raises(InternalServerError) as caught:
                provider.generate_image("an otter")
    error = caught.value
    assert len(server.received) == 3
    assert error.attempts == 3
    assert error.status_code == 500
    assert error.request_id == "req_500"
    assert error.message == "The server had an error"
    assert error.body["type"] == "server_error"
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_x_should_retry_false_on_503_is_not_retried(sleeps):
    """The server's x-should-retry: false overrides a retryable status."""
    with ScriptedServer([Reply(503, {"error": {"message": "overloaded"}}, {"x-should-retry": "false"}), OK]) as server:
        with _provider(server.base_url) as provider:
            with pytest.raises(InternalServerError) as caught:
                provider.generate_image("an otter")
    assert len(server.received) == 1
    assert caught.value.attempts == 1
    assert caught.value.status_code == 503
    assert sleeps == []


def test_x_should_retry_true_on_400_is_retried(sleeps):
    """The header overrides the status the other way too."""
    with ScriptedServer([Reply(400, {"error": {"message": "try again"}}, {"x-should-retry": "true"}), OK]) as server:
        with _provider(server.base_url) as provider:
            result = provider.generate_image("an otter")
    assert len(server.received) == 2
    assert result.images[0].data == PNG
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    "headers, expected_wait",
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "30"}, 1.5),
        ({"retry-after": "3600"}, 60.0),
        ({"retry-after-ms": "86400000"}, 60.0),
    ],
    ids=["seconds", "fractional", "ms-wins", "capped-seconds", "capped-ms"],
)
def test_retry_after_is_honoured_and_capped(sleeps, headers, expected_wait):
    """retry-after-ms, then retry-after, each capped at max_retry_after (60 s by default)."""
    with ScriptedServer([Reply(429, {"error": {"message": "slow"}}, headers), OK]) as server:
        with _provider(server.base_url) as provider:
            provider.generate_image("an otter")
    assert sleeps == [expected_wait]


def test_retry_after_cap_is_configurable(sleeps):
    """max_retry_after lowers the cap."""
    with ScriptedServer([Reply(429, {"error": {"message": "slow"}}, {"retry-after": "30"}), OK]) as server:
        with _provider(server.base_url, max_retry_after=2.5) as provider:
            provider.generate_image("an otter")
    assert sleeps == [2.5]


def test_retry_after_http_date_is_honoured(sleeps):
    """An HTTP date is turned into seconds from now."""
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    with ScriptedServer([Reply(503, {"error": {"message": "later"}}, {"retry-after": when}), OK]) as server:
        with _provider(server.base_url) as provider:
            provider.generate_image("an otter")
    assert len(sleeps) == 1
    assert 8.0 <= sleeps[0] <= 10.5


@pytest.mark.parametrize("value", ["soon", "-5", "0", "nan", "inf"])
def test_unusable_retry_after_falls_back_to_backoff(sleeps, value):
    """Garbage, zero, negative and non-finite values mean ordinary backoff."""
    with ScriptedServer([Reply(429, {"error": {"message": "slow"}}, {"retry-after": value}), OK]) as server:
        with _provider(server.base_url) as provider:
            provider.generate_image("an otter")
    assert len(sleeps) == 1
    assert 0.375 <= sleeps[0] <= 0.5


def test_connection_refused_is_retried_then_raises_connection_error(sleeps):
    """Nothing listening: the request never reached a server, so it is retried with backoff."""
    port = unused_port()
    with _provider(f"http://127.0.0.1:{port}/v1") as provider:
        with pytest.raises(APIConnectionError) as caught:
            provider.generate_image("an otter")
    error = caught.value
    assert not isinstance(error, APITimeoutError)
    assert error.attempts == 3
    assert len(sleeps) == 2
    assert f"127.0.0.1:{port}" in error.message
    assert isinstance(error.__cause__, requests.RequestException)


def test_read_timeout_is_not_retried_by_default(sleeps):
    """The server may already be generating (and billing) the image: one attempt only."""
    with ScriptedServer([Reply(200, images_body(), delay=1.0)]) as server:
        with _provider(server.base_url, timeout=0.2) as provider:
            with pytest.raises(APITimeoutError) as caught:
                provider.generate_image("an otter")
        assert len(server.received) == 1
    error = caught.value
    assert error.phase == "read"
    assert error.attempts == 1
    assert "retry_read_timeouts" in error.message
    assert sleeps == []


@pytest.mark.slow
def test_read_timeout_retry_is_opt_in(sleeps):
    """retry_read_timeouts=True retries read timeouts like other failures."""
    with ScriptedServer([Reply(200, images_body(), delay=0.6)]) as server:
        with _provider(server.base_url, timeout=0.2, retry_read_timeouts=True) as provider:
            with pytest.raises(APITimeoutError) as caught:
                provider.generate_image("an otter")
        time.sleep(0.1)
        assert len(server.received) == 3
    assert caught.value.attempts == 3
    assert len(sleeps) == 2


def test_connection_dropped_after_sending_is_not_retried(sleeps):
    """A reset after the request went out is treated like a read timeout."""
    with ScriptedServer([Reply(drop=True)]) as server:
        with _provider(server.base_url) as provider:
            with pytest.raises(APIConnectionError) as caught:
                provider.generate_image("an otter")
        assert len(server.received) == 1
    assert caught.value.attempts == 1
    assert sleeps == []


def test_per_call_timeout_overrides_the_provider_timeout(sleeps):
    """A short per-call read timeout fails where the provider's default would have waited."""
    with ScriptedServer([Reply(200, images_body(), delay=0.6)]) as server:
        with _provider(server.base_url) as provider:
            with pytest.raises(APITimeoutError):
                provider.generate_image("an otter", timeout=0.2)


def test_successful_retry_reports_attempts_in_the_log(sleeps, caplog):
    """The one record of a cycle counts every attempt."""
    caplog.set_level("INFO", logger="imageprovider")
    with ScriptedServer([Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}), OK]) as server:
        with _provider(server.base_url) as provider:
            provider.generate_image("an otter")
    records = [r for r in caplog.records if r.name == "imageprovider" and r.levelname == "INFO"]
    assert len(records) == 1
    assert records[0].attempts == 2
    assert records[0].status == 200


# -- status sequences through responses ------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(mocked, provider, status):
    """Each retryable status is retried until success."""
    mocked.add("POST", GENERATIONS_URL, json={"error": {"message": "x"}}, status=status)
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    result = provider.generate_image("an otter")
    assert len(mocked.calls) == 2
    assert result.images[0].data == PNG


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 418])
def test_client_errors_are_not_retried(mocked, provider, status):
    """A client error is final unless the server says otherwise."""
    mocked.add("POST", GENERATIONS_URL, json={"error": {"message": "no"}}, status=status)
    with pytest.raises(APIStatusError) as caught:
        provider.generate_image("an otter")
    assert len(mocked.calls) == 1
    assert caught.value.attempts == 1


def test_moderation_block_is_never_retried(mocked, provider):
    """A moderation refusal is a ContentPolicyError after a single attempt."""
    mocked.add(
        "POST",
        GENERATIONS_URL,
        status=400,
        json={
            "error": {
                "message": "Your request was rejected by the safety system.",
                "type": "image_generation_user_error",
                "param": None,
                "code": "moderation_blocked",
            }
        },
    )
    with pytest.raises(ContentPolicyError) as caught:
        provider.generate_image("something forbidden")
    assert isinstance(caught.value, BadRequestError)
    assert caught.value.attempts == 1
    assert len(mocked.calls) == 1


def test_exhausted_429_is_a_rate_limit_error_with_headers(mocked):
    """When retries run out, the last 429 is raised with its headers and the attempt count."""
    for _ in range(3):
        mocked.add(
            "POST",
            GENERATIONS_URL,
            status=429,
            headers={"retry-after": "1", "x-request-id": "req_429"},
            json={
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
        )
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(RateLimitError) as caught:
            provider.generate_image("an otter")
    error = caught.value
    assert len(mocked.calls) == 3
    assert error.attempts == 3
    assert error.code == "rate_limit_exceeded"
    assert error.headers["retry-after"] == "1"
    assert error.request_id == "req_429"


@pytest.mark.parametrize("max_retries, status, attempts", [(0, 503, 1), (1, 500, 2), (5, 500, 6)])
def test_max_retries_counts_retries_after_the_first_attempt(mocked, max_retries, status, attempts):
    """max_retries=0 turns retrying off; otherwise it is the number of extra attempts."""
    mocked.add("POST", GENERATIONS_URL, status=status, json={"error": {"message": "busy"}})
    with OpenAIImageProvider(api_key=API_KEY, max_retries=max_retries) as provider:
        with pytest.raises(InternalServerError) as caught:
            provider.generate_image("an otter")
    assert caught.value.attempts == attempts
    assert len(mocked.calls) == attempts


# -- the policy object -------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_eight(monkeypatch):
    """min(0.5 * 2**n, 8) without jitter, and at most 25 % less with it."""
    retry = _retry.make_retry(10)
    history = []
    monkeypatch.setattr(_retry.random, "random", lambda: 0.0)
    bases = []
    for _ in range(7):
        history.append(object())
        bases.append(retry.new(history=tuple(history)).backoff_delay())
    assert bases == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    monkeypatch.setattr(_retry.random, "random", lambda: 0.999999)
    assert retry.new(history=(object(),)).backoff_delay() == pytest.approx(0.375, rel=1e-4)


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after-ms": "inf"}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    """Missing, past, negative and non-finite values give None."""
    assert _retry.parse_retry_after(headers) == expected


def test_retry_policy_allows_post_and_not_read_retries_by_default():
    """POST is retryable; reads are not unless asked; the repr names the cap."""
    retry = _retry.make_retry()
    assert "POST" in retry.allowed_methods
    assert retry.read is False
    assert retry.total == 2
    assert _retry.make_retry(3, retry_read_timeouts=True).read == 3
    assert "max_retry_after=60.0" in repr(retry)
    assert type(retry.new()) is _retry.ImageRetry


def test_attempts_are_counted_per_call_when_threads_share_a_provider(sleeps):
    """Each thread's call counts its own attempts, even while others retry at the same moment."""
    import threading

    failure = Reply(500, {"error": {"message": "down"}})
    outcomes = []
    with ScriptedServer([failure]) as server:
        with _provider(server.base_url) as provider:

            def call():
                try:
                    provider.generate_image("an otter")
                except InternalServerError as exc:
                    outcomes.append(exc.attempts)

            threads = [threading.Thread(target=call) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        assert len(server.received) == 18
    assert outcomes == [3] * 6


def test_hooks_hear_every_response_and_retry_including_retried_ones(sleeps):
    """A 429 that urllib3 retries out of sight still reaches the response hook, then the 200; the retry hook
    hears the wait before attempt 2."""
    seen = []
    retries = []
    with ScriptedServer([Reply(429, {"error": {"message": "slow"}}, {"retry-after": "1"}), OK]) as server:
        with _provider(server.base_url) as provider:
            provider.hooks.register(
                "response", lambda status, headers: seen.append((status, headers.get("retry-after")))
            )
            provider.hooks.register("retry", lambda delay, reason, attempt: retries.append((delay, reason, attempt)))
            provider.generate_image("an otter")
    assert seen == [(429, "1"), (200, None)]
    assert retries == [(1.0, "status 429", 2)]
    assert sleeps == [1.0]
