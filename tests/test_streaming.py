"""Streamed generations and edits: stream_image, stream_edit and ImageStream.

Simple cases run against ``responses``; everything that depends on real
socket behaviour (chunk boundaries, multi-megabyte lines, a connection cut
mid-event, the client hanging up early, retries before the stream starts)
runs against :class:`SSEServer`, a small threaded HTTP/1.1 server on
127.0.0.1 that plays a per-request script of raw writes.
"""

import base64
import email.parser
import email.policy
import gc
import json
import random
import socket
import threading
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union, cast

import pytest
import requests
import responses
from helpers import API_KEY, BASE_URL, BEFORE_SHUTDOWNS, GENERATIONS_URL, PNG, PNG_B64
from scripted_server import Conn, RawServer, Seen

from imageprovider import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    Completed,
    ContentPolicyError,
    ImageStream,
    ImageUsage,
    InternalServerError,
    OpenAIImageProvider,
    PartialImage,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    streaming,
)
from imageprovider.results import InputTokensDetails

EDITS_URL = BASE_URL + "/images/edits"
PROMPT = "A koi pond"
REQUEST_ID = "req_stream_123"
MB = 1024 * 1024

USAGE = {
    "total_tokens": 100,
    "input_tokens": 50,
    "output_tokens": 50,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
}

#: How long a test waits for something the server or client must observe.
WAIT = 2.5
#: The slow writer of the early-close tests: one event every TRICKLE_DELAY
#: seconds, at most TRICKLE_MAX of them, so the script always ends.
TRICKLE_DELAY = 0.05
TRICKLE_MAX = 40


# -- event builders ------------------------------------------------------------


def partial(index: int, b64: str = PNG_B64, kind: str = "image_generation", **fields: Any) -> Dict[str, Any]:
    """A ``*.partial_image`` payload as in api-facts section 7."""
    payload: Dict[str, Any] = {
        "type": kind + ".partial_image",
        "b64_json": b64,
        "created_at": 1620000000,
        "size": "1024x1024",
        "quality": "high",
        "background": "transparent",
        "output_format": "png",
        "partial_image_index": index,
    }
    payload.update(fields)
    return payload


def completed(b64: str = PNG_B64, kind: str = "image_generation", **fields: Any) -> Dict[str, Any]:
    """A ``*.completed`` payload as in api-facts section 7."""
    payload: Dict[str, Any] = {
        "type": kind + ".completed",
        "b64_json": b64,
        "created_at": 1620000001,
        "size": "1024x1024",
        "quality": "high",
        "background": "transparent",
        "output_format": "png",
        "usage": USAGE,
    }
    payload.update(fields)
    return payload


def without(payload: Dict[str, Any], key: str) -> Dict[str, Any]:
    return {name: value for name, value in payload.items() if name != key}


_AUTO = object()


def sse(payload: Union[Dict[str, Any], str], event: Any = _AUTO, eol: str = "\n") -> bytes:
    """One event: an ``event:`` line (the payload's type by default), a ``data:`` line, a blank line."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    if event is _AUTO:
        event = payload.get("type") if isinstance(payload, dict) else None
    lines = (["event: " + event] if event else []) + ["data: " + data]
    return (eol.join(lines) + eol + eol).encode("utf-8")


def simple_stream(partials: int = 1, kind: str = "image_generation") -> bytes:
    return b"".join(sse(partial(i, kind=kind)) for i in range(partials)) + sse(completed(kind=kind))


def add_stream(mocked: responses.RequestsMock, body: bytes, url: str = GENERATIONS_URL, **kwargs: Any) -> None:
    headers = {"x-request-id": REQUEST_ID}
    headers.update(kwargs.pop("headers", {}))
    mocked.add("POST", url, body=body, content_type="text/event-stream", headers=headers, **kwargs)


def collect(stream: ImageStream) -> Tuple[List[Any], Optional[BaseException]]:
    """Every event the stream yields, and the exception that ended it (or None)."""
    events: List[Any] = []
    try:
        for event in stream:
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def response_closed(stream: ImageStream) -> bool:
    return bool(stream._response.raw.closed)


# -- a scripted event-stream server on a real socket ----------------------------


class Received(NamedTuple):
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


class StreamConn(Conn):
    """A :class:`Conn` whose answers carry this module's request id."""

    def start(
        self,
        status: int = 200,
        headers: Optional[Dict[str, str]] = None,
        chunked: bool = False,
        content_type: str = "text/event-stream",
    ) -> None:
        super().start(status, {"x-request-id": REQUEST_ID, **(headers or {})}, chunked, content_type)


Script = Callable[[Conn], None]


class SSEServer:
    """Answers the n-th request with the n-th script (the last one repeats) and records every request.

    :ivar disconnected: set when a write fails because the client hung up.
    :ivar done: set when a script has returned (the server then closes the connection).
    :ivar stopping: set at teardown, so slow scripts end at once.
    """

    def __init__(self) -> None:
        self.scripts: List[Script] = []
        self.received: List[Received] = []
        self.disconnected = threading.Event()
        self.done = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        # A socket timeout, so that no write can block a script for ever.
        self._server = RawServer(self._answer, timeout=10)

    def _answer(self, request: Seen, connection: socket.socket) -> bool:
        with self._lock:
            self.received.append(Received(request.method, request.target, request.named_headers, request.body))
            script = self.scripts[0] if len(self.scripts) == 1 else self.scripts.pop(0)
        try:
            script(StreamConn(connection))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.disconnected.set()
        finally:
            self.done.set()
        return False

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def play(self, *scripts: Script) -> None:
        self.scripts = list(scripts)

    def stop(self) -> None:
        self.stopping.set()
        self._server.close()

    def pause(self, seconds: float) -> bool:
        """Sleep, unless the test is being torn down; False when it is."""
        return not self.stopping.wait(seconds)


def send_all(*pieces: bytes, chunked: bool = False, status: int = 200) -> Script:
    """A script writing ``pieces`` one write (and flush) each, then ending the body."""

    def script(conn: Conn) -> None:
        conn.start(status, chunked=chunked)
        for piece in pieces:
            conn.write(piece)
        conn.end()

    return script


@pytest.fixture
def server() -> Iterator[SSEServer]:
    instance = SSEServer()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def client(server: SSEServer) -> Iterator[OpenAIImageProvider]:
    with OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url) as instance:
        yield instance


# -- what goes on the wire -------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, b'{"prompt":"A koi pond","model":"gpt-image-2","stream":true}'),
        ({"partial_images": 0}, b'{"prompt":"A koi pond","model":"gpt-image-2","stream":true,"partial_images":0}'),
        ({"partial_images": 2}, b'{"prompt":"A koi pond","model":"gpt-image-2","stream":true,"partial_images":2}'),
        (
            {
                "partial_images": 3,
                "size": "1024x1536",
                "quality": "low",
                "output_format": "webp",
                "model": "gpt-image-2.5-flare",
            },
            b'{"prompt":"A koi pond","model":"gpt-image-2.5-flare","size":"1024x1536","quality":"low",'
            b'"output_format":"webp","stream":true,"partial_images":3}',
        ),
    ],
    ids=["no-partials", "partials-0", "partials-2", "with-options"],
)
def test_stream_image_sends_exact_json_with_stream_true_and_accepts_event_stream(mocked, kwargs, expected):
    """The body is compact JSON with "stream":true and partial_images; Accept is text/event-stream."""
    add_stream(mocked, simple_stream())
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, **kwargs) as stream:
            collect(stream)
    assert len(mocked.calls) == 1
    request = mocked.calls[0].request
    assert request.url == GENERATIONS_URL
    assert request.body == expected
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"


def multipart_fields(request: Any) -> Dict[str, List[bytes]]:
    """The parts of a multipart/form-data request body, by field name."""
    head = "Content-Type: {}\r\n\r\n".format(request.headers["Content-Type"]).encode("ascii")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    assert message.is_multipart()
    fields: Dict[str, List[bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        fields.setdefault(name, []).append(cast(bytes, part.get_payload(decode=True)))
    return fields


def test_stream_edit_sends_multipart_text_part_stream_true(mocked):
    """stream_edit posts multipart with text parts stream=true and partial_images, and Accept: text/event-stream."""
    add_stream(mocked, simple_stream(2, kind="image_edit"), url=EDITS_URL)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_edit("Add a watercolor effect", PNG, partial_images=2) as stream:
            events, error = collect(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, PartialImage, Completed]
    assert [event.type for event in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    assert len(mocked.calls) == 1
    request = mocked.calls[0].request
    assert request.url == EDITS_URL
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    fields = multipart_fields(request)
    assert fields["stream"] == [b"true"]
    assert fields["partial_images"] == [b"2"]
    assert fields["prompt"] == [b"Add a watercolor effect"]
    assert fields["model"] == [b"gpt-image-2"]
    assert fields["image"] == [PNG]


@pytest.mark.parametrize("partial_images", [-1, 4])
def test_partial_images_outside_0_to_3_is_refused_before_sending(mocked, partial_images):
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(RequestValidationError) as caught:
            provider.stream_image(PROMPT, partial_images=partial_images)
    assert caught.value.param == "partial_images"
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "call, model, endpoint",
    [
        ("stream_image", "dall-e-3", "generations"),
        ("stream_image", "dall-e-2", "generations"),
        ("stream_edit", "dall-e-2", "edits"),
    ],
)
def test_dall_e_models_refuse_streaming_before_sending(mocked, call, model, endpoint):
    """'stream' is a GPT-image-only parameter: the per-model rules name it, and nothing is sent."""
    with OpenAIImageProvider(api_key=API_KEY, clock=BEFORE_SHUTDOWNS) as provider:
        method = getattr(provider, call)
        args = (PROMPT, PNG) if call == "stream_edit" else (PROMPT,)
        with pytest.raises(RequestValidationError) as caught:
            method(*args, model=model, partial_images=1)
    assert type(caught.value) is RequestValidationError
    assert caught.value.param == "stream"
    assert caught.value.message.startswith(
        f"Parameter 'stream' is not supported by {model} for {endpoint}; it is accepted by "
    )
    assert "gpt-image-2" in caught.value.message
    assert len(mocked.calls) == 0


def test_generate_image_refuses_stream_in_extra_body(mocked):
    """The non-streaming call does not smuggle in a stream it could not read."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image(PROMPT, extra_body={"stream": True})
    assert caught.value.param == "stream"
    assert "stream_image" in caught.value.message
    assert len(mocked.calls) == 0


# -- typed events ----------------------------------------------------------------


def test_events_are_typed_validated_and_carry_every_field(mocked):
    body = (
        sse(partial(0, quality="medium"))
        + sse(partial(1, background="opaque"))
        + sse(completed(size="1536x1024", output_format="png"))
    )
    add_stream(mocked, body)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        stream = provider.stream_image(PROMPT, partial_images=2)
        assert isinstance(stream, ImageStream)
        assert iter(stream) is stream
        with stream as entered:
            assert entered is stream
            assert stream.request_id == REQUEST_ID
            events = list(stream)

    first, second, last = events
    assert isinstance(first, PartialImage) and isinstance(second, PartialImage)
    assert (first.index, second.index) == (0, 1)
    assert first.type == "image_generation.partial_image"
    assert first.b64_json == PNG_B64
    assert first.data == PNG
    assert first.mime_type == "image/png"
    assert (first.size, first.quality, first.background, first.output_format, first.created_at) == (
        "1024x1024",
        "medium",
        "transparent",
        "png",
        1620000000,
    )
    assert second.background == "opaque"

    assert isinstance(last, Completed)
    assert last.type == "image_generation.completed"
    assert last.data == PNG
    assert last.image.data == PNG
    assert last.image.b64_json == PNG_B64
    assert (last.size, last.quality, last.background, last.output_format, last.created_at) == (
        "1536x1024",
        "high",
        "transparent",
        "png",
        1620000001,
    )
    assert last.usage == ImageUsage(
        input_tokens=50,
        output_tokens=50,
        total_tokens=100,
        input_tokens_details=InputTokensDetails(text_tokens=10, image_tokens=40),
    )

    assert stream.completed == [last]
    assert stream.partial_count == 2
    assert stream.request_id == REQUEST_ID
    assert response_closed(stream)


def test_partial_images_zero_yields_only_the_completed_event(mocked):
    add_stream(mocked, sse(completed()))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=0) as stream:
            events = list(stream)
    assert [type(event) for event in events] == [Completed]
    assert stream.completed == events
    assert stream.partial_count == 0


def test_completed_with_null_usage_and_null_options_is_accepted(mocked):
    add_stream(
        mocked,
        sse(completed(usage=None, size=None, quality=None, background=None, output_format=None, created_at=None)),
    )
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT) as stream:
            (event,) = list(stream)
    assert event.usage is None
    assert (event.size, event.quality, event.background, event.output_format, event.created_at) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert event.data == PNG


def test_n_2_needs_two_completed_events_and_lists_both(mocked):
    add_stream(mocked, sse(partial(0)) + sse(completed()) + sse(partial(0)) + sse(completed()))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, n=2, partial_images=1) as stream:
            events, error = collect(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, Completed, PartialImage, Completed]
    assert stream.completed == [events[1], events[3]]
    assert [event.image.index for event in stream.completed] == [0, 1]


def test_done_after_completed_ends_the_stream_cleanly(mocked):
    """``data: [DONE]`` stops reading: anything after it (here not even JSON) is never parsed."""
    body = simple_stream(1) + b"data: [DONE]\n\n" + b"data: this is not json\n\n"
    add_stream(mocked, body)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=1) as stream:
            events, error = collect(stream)
            assert response_closed(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, Completed]


def test_done_before_completed_raises_connection_error(mocked):
    add_stream(mocked, sse(partial(0)) + b"data: [DONE]\n\n")
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=1) as stream:
            events, error = collect(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is APIConnectionError
    assert "before every image was completed" in error.message
    assert response_closed(stream)


def test_unknown_event_types_and_comments_are_skipped(mocked):
    body = (
        b": keep-alive\n\n"
        + sse({"type": "image_generation.in_progress", "sequence_number": 1})
        + sse(partial(0))
        + sse({"type": "ping"}, event="ping")
        + sse({"type": "image_generation.something_new", "b64_json": 42})
        + b": another comment\n"
        + sse(completed())
    )
    add_stream(mocked, body)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=1) as stream:
            events, error = collect(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, Completed]
    assert stream.completed == [events[1]]


# -- validation of each event -------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        without(partial(1), "partial_image_index"),
        partial(1, partial_image_index=-1),
        partial(1, partial_image_index="1"),
        partial(1, b64_json=12345),
        without(completed(), "b64_json"),
        without(completed(), "type"),
        completed(created_at="yesterday"),
        completed(size=1024),
        completed(usage={"input_tokens": 50, "output_tokens": -1, "total_tokens": 49}),
        completed(usage={"input_tokens": 50}),
        completed(type="image_edits.completed"),
    ],
    ids=[
        "partial-no-index",
        "partial-negative-index",
        "partial-index-string",
        "b64-not-string",
        "no-b64",
        "no-type",
        "created-at-string",
        "size-number",
        "usage-negative",
        "usage-incomplete",
        "misspelled-type",
    ],
)
def test_off_schema_event_raises_response_validation_error_after_earlier_events(mocked, payload):
    add_stream(mocked, sse(partial(0)) + sse(payload) + sse(completed()))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=2) as stream:
            events, error = collect(stream)
            assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is ResponseValidationError
    assert "stream event" in error.message
    assert error.status_code == 200
    assert error.request_id == REQUEST_ID
    assert stream.completed == []


@pytest.mark.parametrize(
    "data",
    ["not json at all", '{"type": "image_generation.completed", "b64_json": ', "[1, 2, 3]", '"a string"', "null"],
    ids=["text", "truncated-json", "array", "string", "null"],
)
def test_event_data_that_is_not_a_json_object_raises_response_validation_error(mocked, data):
    add_stream(mocked, sse(partial(0)) + sse(data, event="image_generation.completed"))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=1) as stream:
            events, error = collect(stream)
            assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is ResponseValidationError
    assert "not a JSON object" in error.message
    assert error.request_id == REQUEST_ID


# -- errors in the middle of the stream --------------------------------------------


MODERATION_MESSAGE = "Your request was rejected by the safety system."
RATE_MESSAGE = "Rate limit reached for gpt-image-2 on images per minute."
SERVER_MESSAGE = "The server had an error while processing your request."


@pytest.mark.parametrize(
    "error_event, expected_class, message, code, error_type",
    [
        (
            sse(
                {
                    "error": {
                        "message": MODERATION_MESSAGE,
                        "type": "image_generation_user_error",
                        "code": "moderation_blocked",
                        "param": None,
                    }
                },
                event=None,
            ),
            ContentPolicyError,
            MODERATION_MESSAGE,
            "moderation_blocked",
            "image_generation_user_error",
        ),
        (
            sse(
                {
                    "error": {
                        "message": MODERATION_MESSAGE,
                        "type": "image_generation_user_error",
                        "code": "moderation_blocked",
                        "param": None,
                    }
                },
                event="error",
            ),
            ContentPolicyError,
            MODERATION_MESSAGE,
            "moderation_blocked",
            "image_generation_user_error",
        ),
        (
            sse({"type": "error", "code": "rate_limit_exceeded", "message": RATE_MESSAGE}, event="error"),
            RateLimitError,
            RATE_MESSAGE,
            "rate_limit_exceeded",
            None,
        ),
        (
            sse({"type": "error", "code": "rate_limit_exceeded", "message": RATE_MESSAGE}, event=None),
            RateLimitError,
            RATE_MESSAGE,
            "rate_limit_exceeded",
            None,
        ),
        (
            sse(
                {"error": {"message": SERVER_MESSAGE, "type": "server_error", "code": None, "param": None}}, event=None
            ),
            InternalServerError,
            SERVER_MESSAGE,
            None,
            "server_error",
        ),
        (
            sse({"type": "error", "code": "server_error", "message": SERVER_MESSAGE}, event="error"),
            InternalServerError,
            SERVER_MESSAGE,
            "server_error",
            None,
        ),
        (
            sse({"message": SERVER_MESSAGE, "code": "server_error"}, event="error"),
            InternalServerError,
            SERVER_MESSAGE,
            "server_error",
            None,
        ),
    ],
    ids=[
        "nested-moderation",
        "nested-moderation-error-event",
        "flat-rate-limit",
        "flat-rate-limit-no-event-line",
        "nested-server-error",
        "flat-server-error",
        "error-event-without-type",
    ],
)
def test_mid_stream_error_raises_typed_error_after_earlier_events(
    mocked, sleeps, error_event, expected_class, message, code, error_type
):
    """Partials before the error are yielded first; the error is typed by its code, never retried."""
    add_stream(mocked, sse(partial(0)) + sse(partial(1)) + error_event + sse(completed()))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=2) as stream:
            events, error = collect(stream)
            assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage, PartialImage]
    assert [event.index for event in events] == [0, 1]
    assert type(error) is expected_class
    assert isinstance(error, APIStatusError)
    assert error.message == message
    assert error.code == code
    assert error.type == error_type
    assert error.request_id == REQUEST_ID
    assert stream.completed == []
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_mid_stream_error_is_a_bad_request_subclass_for_moderation(mocked):
    add_stream(
        mocked,
        sse(
            {
                "error": {
                    "message": MODERATION_MESSAGE,
                    "type": "image_generation_user_error",
                    "code": "moderation_blocked",
                    "param": None,
                }
            }
        ),
    )
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT) as stream:
            with pytest.raises(BadRequestError) as caught:
                next(stream)
    assert isinstance(caught.value, ContentPolicyError)
    assert "moderation_blocked" in str(caught.value)


# -- streams that end too early --------------------------------------------------


def test_stream_ending_without_completed_raises_connection_error(mocked):
    add_stream(mocked, sse(partial(0)) + sse(partial(1)))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=2) as stream:
            events, error = collect(stream)
            assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage, PartialImage]
    assert type(error) is APIConnectionError
    assert "ended before every image was completed" in error.message
    assert "0 of 1 completed" in error.message


def test_empty_event_stream_raises_connection_error(mocked):
    add_stream(mocked, b"")
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT) as stream:
            events, error = collect(stream)
    assert events == []
    assert type(error) is APIConnectionError
    assert "before every image was completed" in error.message


def test_n_2_with_only_one_completed_raises(mocked):
    """Nothing is silently lost: the second image never came, so the stream fails after yielding the first."""
    add_stream(mocked, sse(partial(0)) + sse(completed()))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, n=2, partial_images=1) as stream:
            events, error = collect(stream)
    assert [type(event) for event in events] == [PartialImage, Completed]
    assert type(error) is APIConnectionError
    assert "before every image was completed" in error.message
    assert "1 of 2 completed" in error.message
    assert len(stream.completed) == 1


def test_final_event_without_blank_line_is_not_dispatched(mocked):
    """Per WHATWG, an event with no blank line after it is dropped; here that loses the completed image."""
    add_stream(mocked, sse(partial(0)) + sse(completed())[:-1])
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=1) as stream:
            events, error = collect(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is APIConnectionError
    assert "before every image was completed" in error.message


# -- the response is always closed ---------------------------------------------------


def test_response_is_open_before_reading_and_closed_at_normal_end(mocked):
    add_stream(mocked, simple_stream(1))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        stream = provider.stream_image(PROMPT, partial_images=1)
        assert not response_closed(stream)
        assert isinstance(next(stream), PartialImage)
        assert isinstance(next(stream), Completed)
        with pytest.raises(StopIteration):
            next(stream)
        assert response_closed(stream)


@pytest.mark.parametrize("how", ["close", "with", "close-before-reading", "exception-in-with"])
def test_stopping_early_closes_the_response(mocked, how):
    add_stream(mocked, simple_stream(3))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        stream = provider.stream_image(PROMPT, partial_images=3)
        if how == "close":
            next(stream)
            stream.close()
        elif how == "with":
            with stream:
                for _ in stream:
                    break
        elif how == "close-before-reading":
            stream.close()
        else:
            with pytest.raises(KeyError):
                with stream:
                    next(stream)
                    raise KeyError("the caller failed")
        assert response_closed(stream)
        with pytest.raises(StopIteration):
            next(stream)
        stream.close()  # a second close is harmless
        assert response_closed(stream)


# -- SSE parsing through the stream ---------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("chunk_size", [1, 2, 7])
def test_tiny_reads_split_every_line_and_line_end(mocked, monkeypatch, eol, chunk_size):
    """Reading the body a byte at a time (every CR|LF and 'da|ta:' split) gives the same events."""
    body = b": hello" + eol.encode() + sse(partial(0), eol=eol) + sse(partial(1), eol=eol) + sse(completed(), eol=eol)
    add_stream(mocked, body)
    add_stream(mocked, body)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with provider.stream_image(PROMPT, partial_images=2) as stream:
            whole, error = collect(stream)
        assert error is None
        monkeypatch.setattr(streaming, "CHUNK_SIZE", chunk_size)
        with provider.stream_image(PROMPT, partial_images=2) as stream:
            split, error = collect(stream)
    assert error is None
    assert [type(event) for event in whole] == [PartialImage, PartialImage, Completed]
    assert split == whole
    assert [event.data for event in split] == [PNG, PNG, PNG]


def random_bytes(seed: int, count: int) -> bytes:
    return random.Random(seed).getrandbits(8 * count).to_bytes(count, "little")


def realistic_stream() -> Tuple[bytes, bytes, bytes]:
    """A stream with a comment, a small partial (LF), a 3 MB partial (CRLF) and a 3 MB completed (CR).

    Returns the stream and the two large images' bytes.
    """
    big_partial = b"\x89PNG\r\n\x1a\n" + random_bytes(1, 3 * MB)
    big_final = b"\x89PNG\r\n\x1a\n" + random_bytes(2, 3 * MB + 1)
    stream = (
        b": connected\r\n\r\n"
        + sse(partial(0), eol="\n")
        + sse(partial(1, b64=base64.b64encode(big_partial).decode("ascii")), eol="\r\n")
        + b": keep-alive\r\n"
        + sse(completed(b64=base64.b64encode(big_final).decode("ascii")), eol="\r")
    )
    return stream, big_partial, big_final


def split_points(stream: bytes) -> List[int]:
    """Where to cut: inside every 'data:' field name and value, between every CR and LF, and at random."""
    rng = random.Random(3)
    points = set()
    start = 0
    while True:
        found = stream.find(b"data:", start)
        if found < 0:
            break
        points.update({found + 2, found + 5, found + 6, found + 1000})
        start = found + 1
    start = 0
    while True:
        found = stream.find(b"\r\n", start)
        if found < 0:
            break
        points.add(found + 1)
        start = found + 1
    points.update(rng.randrange(1, len(stream)) for _ in range(300))
    points.update(range(1, 40))  # single bytes at the very start
    return sorted(point for point in points if 0 < point < len(stream))


def cut(stream: bytes, points: Sequence[int]) -> List[bytes]:
    bounds = [0] + list(points) + [len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("chunk_size", [None, 4099], ids=["library-chunk-size", "odd-chunk-size"])
def test_realistic_multi_megabyte_stream_over_a_socket_in_arbitrary_chunks(server, client, monkeypatch, chunk_size):
    """Cut at arbitrary points on the server, the events equal those of the unsplit stream."""
    if chunk_size is not None:
        monkeypatch.setattr(streaming, "CHUNK_SIZE", chunk_size)
    stream, big_partial, big_final = realistic_stream()
    assert len(big_partial) >= 3 * MB
    pieces = cut(stream, split_points(stream))
    assert len(pieces) > 300 and b"".join(pieces) == stream
    assert any(piece.endswith(b"\r") for piece in pieces[:-1])
    assert any(piece.endswith(b"da") for piece in pieces)
    server.play(send_all(*pieces), send_all(stream))

    with client.stream_image(PROMPT, partial_images=2) as split_stream:
        split, error = collect(split_stream)
        assert error is None
    with client.stream_image(PROMPT, partial_images=2) as whole_stream:
        whole, error = collect(whole_stream)
        assert error is None

    assert len(server.received) == 2
    assert [type(event) for event in split] == [PartialImage, PartialImage, Completed]
    assert split == whole
    assert [event.index for event in split[:2]] == [0, 1]
    assert split[0].data == PNG
    assert split[1].data == big_partial
    assert split[2].data == big_final
    assert split[2].usage is not None and split[2].usage.total_tokens == 100
    assert split_stream.completed == [split[2]]
    assert split_stream.request_id == REQUEST_ID
    assert response_closed(split_stream) and response_closed(whole_stream)


# -- real sockets: cuts, retries, early close ----------------------------------------


def test_request_over_a_socket_has_stream_body_and_event_stream_accept(server, client):
    server.play(send_all(simple_stream(1)))
    with client.stream_image(PROMPT, partial_images=1) as stream:
        events, error = collect(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, Completed]
    (request,) = server.received
    assert request.path == "/v1/images/generations"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.body == b'{"prompt":"A koi pond","model":"gpt-image-2","stream":true,"partial_images":1}'


def test_stream_cut_in_the_middle_of_a_data_line_raises_and_is_not_retried(server, client, sleeps):
    """The server closes the socket halfway through the completed event's data line."""
    final = sse(completed())
    server.play(send_all(sse(partial(0)), final[: len(final) // 2]))
    with client.stream_image(PROMPT, partial_images=1) as stream:
        events, error = collect(stream)
        assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is APIConnectionError
    assert "cut off mid-event before every image was completed" in error.message
    assert len(server.received) == 1
    assert sleeps == []


def test_chunked_stream_cut_mid_chunk_raises_connection_error(server, client, sleeps):
    """A chunked body that stops mid-chunk is a transport error, translated; not retried."""

    def script(conn: Conn) -> None:
        conn.start(chunked=True)
        conn.write(sse(partial(0)))
        conn.write_raw(b'400\r\ndata: {"type":')  # announces 1024 bytes, sends a few

    server.play(script)
    with client.stream_image(PROMPT, partial_images=1) as stream:
        events, error = collect(stream)
        assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert isinstance(error, APIConnectionError)
    assert not isinstance(error, requests.RequestException)
    assert len(server.received) == 1
    assert sleeps == []


def test_stream_cut_right_after_headers_raises_and_is_not_retried(server, client, sleeps):
    server.play(send_all())
    with client.stream_image(PROMPT) as stream:
        events, error = collect(stream)
    assert events == []
    assert type(error) is APIConnectionError
    assert "before every image was completed" in error.message
    assert len(server.received) == 1
    assert sleeps == []


def test_mid_stream_error_over_a_socket_closes_the_response(server, client, sleeps):
    server.play(
        send_all(
            sse(partial(0)),
            sse({"type": "error", "code": "rate_limit_exceeded", "message": RATE_MESSAGE}, event="error"),
        )
    )
    with client.stream_image(PROMPT, partial_images=1) as stream:
        events, error = collect(stream)
        assert response_closed(stream)
    assert [type(event) for event in events] == [PartialImage]
    assert type(error) is RateLimitError
    assert error.message == RATE_MESSAGE
    assert error.code == "rate_limit_exceeded"
    assert len(server.received) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "status, headers, expected_sleeps",
    [(503, {}, None), (429, {"retry-after-ms": "250"}, [0.25]), (500, {"retry-after": "1"}, [1.0])],
)
def test_status_error_before_the_stream_starts_is_retried(server, client, sleeps, status, headers, expected_sleeps):
    def refuse(conn: Conn) -> None:
        conn.reply_json(
            status, {"error": {"message": "busy", "type": "server_error", "code": None, "param": None}}, headers
        )

    server.play(refuse, send_all(simple_stream(1)))
    with client.stream_image(PROMPT, partial_images=1) as stream:
        events, error = collect(stream)
    assert error is None
    assert [type(event) for event in events] == [PartialImage, Completed]
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body
    assert server.received[1].headers["Accept"] == "text/event-stream"
    if expected_sleeps is None:
        assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5
    else:
        assert sleeps == expected_sleeps


def test_status_errors_before_the_stream_are_raised_after_retries_run_out(mocked, sleeps):
    for _ in range(3):
        mocked.add("POST", GENERATIONS_URL, status=503, json={"error": {"message": "overloaded"}})
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(InternalServerError) as caught:
            provider.stream_image(PROMPT, partial_images=1)
    assert caught.value.attempts == 3
    assert caught.value.message == "overloaded"
    assert len(mocked.calls) == 3


def test_moderation_refusal_before_the_stream_is_not_retried(mocked, sleeps):
    mocked.add(
        "POST",
        GENERATIONS_URL,
        status=400,
        json={
            "error": {
                "message": MODERATION_MESSAGE,
                "type": "image_generation_user_error",
                "param": None,
                "code": "moderation_blocked",
            }
        },
    )
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(ContentPolicyError) as caught:
            provider.stream_image(PROMPT, partial_images=1)
    assert caught.value.status_code == 400
    assert caught.value.message == MODERATION_MESSAGE
    assert len(mocked.calls) == 1
    assert sleeps == []


def trickle(server: SSEServer, chunked: bool) -> Script:
    """One partial image, then another every TRICKLE_DELAY seconds (at most TRICKLE_MAX), never completing."""

    def script(conn: Conn) -> None:
        conn.start(chunked=chunked)
        conn.write(sse(partial(0)))
        for index in range(1, TRICKLE_MAX + 1):
            if not server.pause(TRICKLE_DELAY):
                return
            conn.write(sse(partial(index)))
        conn.end()

    return script


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_each_event_is_delivered_as_soon_as_it_arrives(server, client, chunked):
    """The first partial must reach the caller while the server is still waiting to send the rest.

    The server sends one partial, then waits (up to WAIT s) for the test to
    say it received it before sending the completed image.
    """
    received_first = threading.Event()
    delivered_in_time: List[bool] = []

    def script(conn: Conn) -> None:
        conn.start(chunked=chunked)
        conn.write(sse(partial(0)))
        delivered_in_time.append(received_first.wait(WAIT))
        conn.write(sse(completed()))
        conn.end()

    server.play(script)
    with client.stream_image(PROMPT, partial_images=1) as stream:
        first = next(stream)
        received_first.set()
        rest, error = collect(stream)
    assert isinstance(first, PartialImage)
    assert error is None and [type(event) for event in rest] == [Completed]
    assert delivered_in_time == [True], "the first event was only delivered after the server sent more data"


@pytest.mark.parametrize(
    "chunked, how",
    [
        (False, "break-in-with"),
        (True, "break-in-with"),
        (True, "close"),
        (True, "leave-with"),
        (True, "exception-in-with"),
    ],
    ids=[
        "close-delimited-break-in-with",
        "chunked-break-in-with",
        "chunked-close",
        "chunked-leave-with",
        "chunked-exception-in-with",
    ],
)
def test_stopping_early_releases_the_connection(server, client, chunked, how):
    """The client reads one event and stops; the server's next writes fail because the socket is gone."""
    server.play(trickle(server, chunked))
    state: Dict[str, Any] = {}
    if how == "break-in-with":
        with client.stream_image(PROMPT, partial_images=3) as stream:
            for event in stream:
                state["first"] = event
                state["server_done"] = server.done.is_set()
                break
    elif how == "close":
        stream = client.stream_image(PROMPT, partial_images=3)
        state["first"] = next(stream)
        state["server_done"] = server.done.is_set()
        stream.close()
    elif how == "leave-with":
        with client.stream_image(PROMPT, partial_images=3) as stream:
            state["first"] = next(stream)
            state["server_done"] = server.done.is_set()
    else:
        with pytest.raises(KeyError):
            with client.stream_image(PROMPT, partial_images=3) as stream:
                state["first"] = next(stream)
                state["server_done"] = server.done.is_set()
                raise KeyError("the caller failed")

    assert isinstance(state["first"], PartialImage) and state["first"].index == 0
    assert state["server_done"] is False, "the first event only arrived after the server had sent everything"
    assert response_closed(stream)
    assert server.disconnected.wait(WAIT), "the server never saw the client hang up"
    assert len(server.received) == 1


def test_dropping_a_stream_after_break_releases_the_connection_without_the_garbage_collector(server, client):
    """``for event in provider.stream_image(...): break`` leaves no open socket behind.

    The cyclic garbage collector is switched off so that only reference
    counting can release the stream, as it does deterministically in CPython.
    """
    server.play(trickle(server, chunked=True))
    gc.collect()
    gc.disable()
    try:
        for event in client.stream_image(PROMPT, partial_images=3):
            assert isinstance(event, PartialImage)
            break
        released = server.disconnected.wait(WAIT)
    finally:
        gc.enable()
        gc.collect()
    assert released, "the dropped stream kept its connection open until the cyclic garbage collector ran"


def test_stream_edit_over_a_socket_yields_edit_events(server, client):
    server.play(send_all(simple_stream(1, kind="image_edit"), chunked=True))
    with client.stream_edit("Add a watercolor effect", [PNG, PNG], partial_images=1) as stream:
        events, error = collect(stream)
    assert error is None
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert events[1].data == PNG
    (request,) = server.received
    assert request.path == "/v1/images/edits"
    assert request.headers["Accept"] == "text/event-stream"
    assert b'name="stream"\r\n\r\ntrue\r\n' in request.body
    assert b'name="partial_images"\r\n\r\n1\r\n' in request.body
    assert request.body.count(b'name="image[]"') == 2


def test_a_json_answer_to_a_streaming_request_is_refused_clearly(mocked: Any) -> None:
    """A server that ignores stream=true and answers JSON gets a clear error, not 'stream ended'."""
    from helpers import images_body

    mocked.add("POST", GENERATIONS_URL, json=images_body(), headers={"x-request-id": "req_nostream"})
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        with pytest.raises(ResponseValidationError) as caught:
            provider.stream_image("an otter")
    assert "text/event-stream" in caught.value.message
    assert "application/json" in caught.value.message
    assert caught.value.request_id == "req_nostream"
    assert caught.value.body.startswith('{"created"')


def test_streams_ask_for_an_uncompressed_body(mocked: Any) -> None:
    """Events are read as they arrive, beneath any decoder, so the body must not be compressed."""
    mocked.add("POST", GENERATIONS_URL, body=b"", content_type="text/event-stream")
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        stream = provider.stream_image("an otter")
        stream.close()
    assert mocked.calls[0].request.headers["Accept-Encoding"] == "identity"
