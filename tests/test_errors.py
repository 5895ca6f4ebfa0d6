"""Status codes and transport failures become typed errors carrying what the server said."""

import pickle

import pytest
import requests
import urllib3.exceptions
from helpers import API_KEY, GENERATIONS_URL

from imageprovider import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentPolicyError,
    ImageProviderError,
    InternalServerError,
    NotFoundError,
    OpenAIImageProvider,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)


@pytest.fixture
def single_try():
    """A provider that does not retry, so each status is seen once."""
    with OpenAIImageProvider(api_key=API_KEY, max_retries=0) as instance:
        yield instance


def _error_body(message="Bad things", type_="invalid_request_error", param="size", code="invalid_size"):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    "status, error_class",
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (408, APIStatusError),
        (409, ConflictError),
        (418, APIStatusError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (529, InternalServerError),
    ],
)
def test_each_status_maps_to_its_error_class_with_all_fields(mocked, single_try, status, error_class):
    """The class is exact, and every field of the error body is carried."""
    mocked.add("POST", GENERATIONS_URL, status=status, json=_error_body(), headers={"x-request-id": "req_abc"})
    with pytest.raises(APIStatusError) as caught:
        single_try.generate_image("an otter")
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.request_id == "req_abc"
    assert error.message == "Bad things"
    assert error.type == "invalid_request_error"
    assert error.param == "size"
    assert error.code == "invalid_size"
    assert error.body == _error_body()["error"]
    assert error.attempts == 1
    assert "req_abc" in str(error)
    assert f"status {status}" in str(error)


def test_moderation_block_is_a_content_policy_error_keeping_details(mocked, single_try):
    """code == moderation_blocked selects ContentPolicyError; extra fields stay in the body."""
    body = _error_body(
        "Your request was rejected by the safety system.", "image_generation_user_error", None, "moderation_blocked"
    )
    body["error"]["moderation_details"] = {"moderation_stage": "input", "categories": ["violence"]}
    mocked.add("POST", GENERATIONS_URL, status=400, json=body)
    with pytest.raises(ContentPolicyError) as caught:
        single_try.generate_image("something forbidden")
    assert isinstance(caught.value, BadRequestError)
    assert caught.value.body["moderation_details"]["categories"] == ["violence"]
    assert caught.value.param is None


def test_html_error_page_still_yields_the_right_class_with_truncated_text(mocked, single_try):
    """A proxy's HTML page is not JSON: the class follows the status, the text is kept, truncated."""
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
    mocked.add("POST", GENERATIONS_URL, status=502, body=page, content_type="text/html")
    with pytest.raises(InternalServerError) as caught:
        single_try.generate_image("an otter")
    error = caught.value
    assert error.message.startswith("HTTP 502")
    assert "non-JSON body" in error.message
    assert "502 Bad Gateway" in error.message
    assert len(error.message) < 300
    assert isinstance(error.body, str)
    assert error.body.startswith("<html>")
    assert len(error.body) < 600
    assert error.code is None and error.type is None


def test_azure_style_error_without_type_or_param(mocked, single_try):
    """Azure's {"error": {"code": "404", "message": ...}} is read despite missing fields."""
    mocked.add("POST", GENERATIONS_URL, status=404, json={"error": {"code": "404", "message": "Resource not found"}})
    with pytest.raises(NotFoundError) as caught:
        single_try.generate_image("an otter")
    assert caught.value.message == "Resource not found"
    assert caught.value.code == "404"
    assert caught.value.type is None


def test_numeric_error_code_is_turned_into_a_string(mocked, single_try):
    """Compatible servers send numeric codes; .code is always a string."""
    mocked.add("POST", GENERATIONS_URL, status=400, json={"error": {"message": "nope", "code": 1234}})
    with pytest.raises(BadRequestError) as caught:
        single_try.generate_image("an otter")
    assert caught.value.code == "1234"


def test_json_error_without_error_key_keeps_the_whole_body(mocked, single_try):
    """A JSON body of another shape is kept whole; the message falls back to the status line."""
    mocked.add("POST", GENERATIONS_URL, status=400, json={"detail": "weird"})
    with pytest.raises(BadRequestError) as caught:
        single_try.generate_image("an otter")
    assert caught.value.body == {"detail": "weird"}
    assert caught.value.message == "HTTP 400 Bad Request"


def test_redirects_are_not_followed(mocked, single_try):
    """A redirect is an error: credentials never follow it elsewhere."""
    mocked.add("POST", GENERATIONS_URL, status=307, headers={"Location": "https://elsewhere.example/steal"})
    with pytest.raises(APIStatusError) as caught:
        single_try.generate_image("an otter")
    assert caught.value.status_code == 307
    assert "elsewhere.example" in caught.value.message
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "raised, error_class, phase",
    [
        (requests.exceptions.ConnectionError("refused"), APIConnectionError, None),
        (requests.exceptions.ConnectTimeout("slow connect"), APITimeoutError, "connect"),
        (requests.exceptions.ReadTimeout("slow read"), APITimeoutError, "read"),
        (requests.exceptions.SSLError("bad certificate"), APIConnectionError, None),
        (requests.exceptions.ChunkedEncodingError("cut"), APIConnectionError, None),
        (
            requests.exceptions.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "body stalled")),
            APITimeoutError,
            "read",
        ),
        (urllib3.exceptions.ProtocolError("Connection aborted."), APIConnectionError, None),
    ],
    ids=["connection", "connect-timeout", "read-timeout", "ssl", "chunked", "body-timeout", "raw-urllib3"],
)
def test_transport_failures_are_translated(mocked, single_try, raised, error_class, phase):
    """requests and urllib3 exceptions never reach the caller bare; the original is the __cause__."""
    mocked.add("POST", GENERATIONS_URL, body=raised)
    with pytest.raises(ImageProviderError) as caught:
        single_try.generate_image("an otter")
    error = caught.value
    assert type(error) is error_class
    assert error.__cause__ is raised
    if phase is not None:
        assert error.phase == phase
    if isinstance(raised, requests.exceptions.SSLError):
        assert error.message.startswith("TLS error")


def test_errors_survive_pickling_with_their_fields():
    """Errors cross process boundaries (multiprocessing, logging queues) intact."""
    error = RateLimitError(
        "slow down",
        status_code=429,
        request_id="req_1",
        code="rate_limit_exceeded",
        body={"message": "slow down"},
        headers={"retry-after": "1"},
        attempts=3,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimitError
    assert (copy.status_code, copy.request_id, copy.code, copy.attempts) == (429, "req_1", "rate_limit_exceeded", 3)
    assert str(copy) == str(error)
    timeout = pickle.loads(pickle.dumps(APITimeoutError("late", phase="connect", attempts=2)))
    assert (timeout.phase, timeout.attempts, timeout.message) == ("connect", 2, "late")


def test_hierarchy_roots_at_image_provider_error():
    """Every public error derives from ImageProviderError, every warning from ImageProviderWarning;
    input errors are also ValueErrors."""
    import imageprovider

    for name in imageprovider.__all__:
        value = getattr(imageprovider, name)
        if isinstance(value, type) and issubclass(value, Warning):
            assert issubclass(value, imageprovider.ImageProviderWarning), name
        elif isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, ImageProviderError), name
    assert issubclass(imageprovider.ConfigurationError, ValueError)
    assert issubclass(imageprovider.RequestValidationError, ValueError)
    assert issubclass(APITimeoutError, APIConnectionError)


def test_body_shorter_than_its_content_length_is_a_connection_error(sleeps):
    """A body cut mid-way is an APIConnectionError on every urllib3 (1.26 would return it truncated)."""
    from scripted_server import Reply, ScriptedServer

    with ScriptedServer([Reply(200, b'{"created": 1, "data": [', {"Content-Length": "500"})]) as server:
        with OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url) as provider:
            with pytest.raises(APIConnectionError) as caught:
                provider.generate_image("an otter")
    assert "cut short" in caught.value.message
    assert len(server.received) == 1
