"""
imageprovider.streaming
~~~~~~~~~~~~~~~~~~~~~~~

Streamed generations and edits: an :class:`ImageStream` reads server-sent
events from an open response and yields typed, validated events --
:class:`PartialImage` while the image is being drawn, then :class:`Completed`
for each finished image. The response is closed when the stream ends, fails,
or the caller stops early.
"""

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Dict, Generator, Iterator, List, Mapping, Optional, Type, Union, cast

import requests

from . import _errors, _response, _saving, _schemas
from ._log import LOGGER, fields
from ._sse import ServerSentEvent, SSEDecoder, StreamTooLarge
from ._transport import Sent
from .exceptions import APIConnectionError, ResponseValidationError
from .results import GeneratedImage, ImageUsage, RateLimits

__all__ = ["Completed", "ImageStream", "PartialImage", "StreamEvent"]

log = LOGGER

#: Bytes read from the socket at a time; partial images arrive as multi-megabyte lines.
CHUNK_SIZE = 64 * 1024


def _chunk_reader(response: requests.Response) -> Callable[[int], bytes]:
    """A read function returning whatever raw bytes have arrived (up to n), ``b""`` at the end.

    ``iter_content`` would wait for a whole chunk on bodies without chunked
    encoding, holding events back; ``read1`` returns as soon as anything arrives.
    urllib3 has it from 2.3 on; below that, http.client's response underneath
    has it. Either way the bytes are raw: they are decoded by the caller, with a
    bound (a server may compress a stream it was asked not to).
    """
    raw = response.raw
    if hasattr(raw, "read1"):
        return lambda size: cast(bytes, raw.read1(size, decode_content=False))
    inner = getattr(raw, "_fp", None)
    if inner is not None and hasattr(inner, "read1"):
        return cast(Callable[[int], bytes], inner.read1)  # http.client's response, untyped behind urllib3
    chunks = raw.stream(1024, decode_content=False)
    return lambda size: next(chunks, b"")


@dataclass(frozen=True)
class _ImageEvent:
    #: The event type, e.g. ``image_generation.partial_image``.
    type: str
    image: GeneratedImage
    size: Optional[str]
    quality: Optional[str]
    background: Optional[str]
    output_format: Optional[str]
    #: Unix time the event was created.
    created_at: Optional[int]

    @property
    def b64_json(self) -> str:
        """The image as base64 text."""
        return self.image.b64_json or ""

    @property
    def data(self) -> bytes:
        """The decoded image bytes (decoded on first access)."""
        return self.image.data or b""

    @property
    def mime_type(self) -> Optional[str]:
        """The image format sniffed from the decoded bytes."""
        return self.image.mime_type


@dataclass(frozen=True)
class PartialImage(_ImageEvent):
    """A preview of the image while it is being generated."""

    #: 0-based number of this partial image.
    index: int


@dataclass(frozen=True)
class Completed(_ImageEvent):
    """A finished image, with the token usage of the request."""

    usage: Optional[ImageUsage]


StreamEvent = Union[PartialImage, Completed]


class ImageStream(Iterator[StreamEvent]):
    """Iterate over the events of a streamed generation or edit.

    Also a context manager; leaving the ``with`` block, calling :meth:`close`,
    breaking out of the loop or dropping the stream releases the connection.

    Usage::

        >>> with provider.stream_image("A koi pond", partial_images=2) as stream:
        ...     for event in stream:
        ...         if isinstance(event, PartialImage):
        ...             show_preview(event.data)
        ...         else:
        ...             save(event.data)

    :raises APIStatusError: an error event arrived mid-stream (by its code).
    :raises APIConnectionError: the stream broke or ended before every image was completed.
    :raises ResponseValidationError: an event did not match ``schemas/image_stream_event.json``.
    """

    def __init__(self, sent: Sent, expected_images: int = 1, request: Optional[Mapping[str, Any]] = None) -> None:
        self._sent = sent
        self._response = sent.response
        #: The parameters that were sent (file parts summarised).
        self.request: Mapping[str, Any] = dict(request or {})
        # The generator holds the reader, never this object: a stream dropped
        # after `break` is freed (and its socket closed) at once, not by the GC.
        self._reader = _EventReader(sent, expected_images, self.request)
        self._events = self._reader.events()

    @property
    def completed(self) -> List[Completed]:
        """Every :class:`Completed` event received so far."""
        return self._reader.completed

    @property
    def partial_count(self) -> int:
        """Number of :class:`PartialImage` events received so far."""
        return self._reader.partial_count

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` header of the response, redacted and bounded."""
        return self._reader.request_id

    @property
    def rate_limits(self) -> RateLimits:
        """The ``x-ratelimit-*`` headers of the response."""
        return RateLimits.from_headers(self._response.headers)

    def __iter__(self) -> "ImageStream":
        return self

    def __next__(self) -> StreamEvent:
        return next(self._events)

    def close(self) -> None:
        """Stop reading and release the connection. Safe to call more than once."""
        self._events.close()
        self._sent.close()

    def __enter__(self) -> "ImageStream":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        sent = getattr(self, "_sent", None)
        if sent is not None:
            sent.close()


class _EventReader:
    """Turns the response body into validated, typed events."""

    def __init__(self, sent: Sent, expected_images: int, request: Mapping[str, Any]) -> None:
        self._sent = sent
        self._response = sent.response
        self._expected = expected_images
        self._request = request
        partials = request.get("partial_images")
        #: Most partial images the request allows: more is the server deciding what is written.
        self._max_partials = (partials if isinstance(partials, int) and partials > 0 else 0) * expected_images
        self.completed: List[Completed] = []
        self.partial_count = 0

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` header, redacted and bounded."""
        return self._sent.request_id

    def events(self) -> Generator[StreamEvent, None, None]:
        limit = self._sent.limits.max_stream_line_bytes
        decoder = SSEDecoder(max_line_bytes=limit, max_event_bytes=limit)
        try:
            for chunk in self._chunks():
                try:
                    events = decoder.feed(chunk)
                except StreamTooLarge as exc:
                    raise self._too_large(str(exc)) from None
                for sse in events:
                    if sse.data.startswith("[DONE]"):
                        self._check_finished(cut=False)
                        return
                    event = self._parse(sse)
                    if event is not None:
                        yield event
            for sse in decoder.close():
                event = self._parse(sse)
                if event is not None:
                    yield event
            self._check_finished(cut=decoder.incomplete)
        finally:
            self._sent.close()

    def _too_large(self, message: str) -> ResponseValidationError:
        return ResponseValidationError(message, status_code=self._sent.status, request_id=self._sent.request_id)

    def _chunks(self) -> Iterator[bytes]:
        """The decoded body as it arrives (whatever has arrived, not whole chunks), bounded in size and in time."""
        return _response.chunks(
            self._sent, what="The event stream", read=_chunk_reader(self._response), size=CHUNK_SIZE
        )

    def _check_finished(self, cut: bool) -> None:
        if len(self.completed) >= self._expected:
            return
        how = "was cut off mid-event" if cut else "ended"
        raise APIConnectionError(
            f"The image stream {how} before every image was completed ({len(self.completed)} of {self._expected} completed, {self.partial_count} partial images "
            "received); it is not retried because events had already arrived."
        )

    def _parse(self, sse: ServerSentEvent) -> Optional[StreamEvent]:
        payload = self._decode(sse)
        if sse.event == "error" or payload.get("type") == "error" or isinstance(payload.get("error"), Mapping):
            raise _errors.stream_error(payload, self._sent.status, self._sent.headers, self._sent.redactor)
        kind = payload.get("type")
        if isinstance(kind, str) and not kind.endswith((".partial_image", ".completed")):
            log.debug("Skipping unknown stream event type %r", kind, extra=fields())
            return None
        violation = _schemas.find_violation("image_stream_event", payload)
        if violation is not None:
            raise _errors.off_schema(
                violation,
                "A stream event",
                status=self._sent.status,
                headers=self._sent.headers,
                text=sse.data,
                redactor=self._sent.redactor,
            )
        return self._build(payload)

    def _decode(self, sse: ServerSentEvent) -> Dict[str, Any]:
        failure = None
        try:
            payload = json.loads(sse.data)
        except (ValueError, RecursionError) as exc:
            failure = str(exc)[:120]
        if failure is None and not isinstance(payload, dict):
            failure = "not a JSON object"
        if failure is not None:
            raise _errors.invalid_body(
                f"A stream event's data is not a JSON object ({failure})",
                status=self._sent.status,
                headers=self._sent.headers,
                text=sse.data,
                redactor=self._sent.redactor,
            )
        return cast(Dict[str, Any], payload)  # checked to be a dict just above

    def _build(self, payload: Dict[str, Any]) -> StreamEvent:
        common = dict(
            type=payload["type"],
            size=payload.get("size"),
            quality=payload.get("quality"),
            background=payload.get("background"),
            output_format=payload.get("output_format"),
            created_at=payload.get("created_at"),
        )
        if payload["type"].endswith(".partial_image"):
            self.partial_count += 1
            if self.partial_count > self._max_partials:
                raise self._too_large(
                    f"The stream sent more partial images than the {self._max_partials} asked for; the rest is refused"
                )
            index = payload["partial_image_index"]
            return PartialImage(image=GeneratedImage(b64_json=payload["b64_json"], index=index), index=index, **common)
        stem, metadata = _saving.image_metadata(
            self._request,
            size=payload.get("size"),
            usage=payload.get("usage"),
            request_id=self.request_id,
            created=payload.get("created_at"),
        )
        if len(self.completed) >= self._expected:
            raise self._too_large(
                f"The stream sent more images than the {self._expected} asked for; the rest is refused"
            )
        completed = Completed(
            image=GeneratedImage(b64_json=payload["b64_json"], index=len(self.completed), name=stem, metadata=metadata),
            usage=ImageUsage.from_body(payload.get("usage")),
            **common,
        )
        self.completed.append(completed)
        return completed
