"""
imageprovider._response
~~~~~~~~~~~~~~~~~~~~~~~

Reading the bodies of :class:`~imageprovider._transport.Sent` responses:
chunks as they arrive (network failures translated), whole JSON bodies
validated against their schema, images bodies read through the scanner of
:mod:`imageprovider._imagebody` (each image decoded on arrival, the body never
held whole), and bodies copied into a file. A body shorter than its
``Content-Length`` is an error here, whatever urllib3 version let it through.
"""

import binascii
from typing import IO, Any, Callable, Dict, Iterator, Optional, Tuple, cast

import requests

from . import _errors, _schemas
from ._decoding import ContentDecoder, DecodingError, TooLarge
from ._errors import is_read_error
from ._imagebody import BodyTooLarge, Extracted, ImageBodyScanner, Sink, memory_sink, strict_b64decode
from ._transport import Sent
from .exceptions import ResponseValidationError

#: Bytes read at a time from a body that is read as it arrives.
BODY_CHUNK_BYTES = 64 * 1024


def chunks(
    sent: Sent,
    limit: Optional[int] = None,
    what: str = "The response body",
    limit_name: str = "limit (Limits.max_response_bytes)",
    read: Optional[Callable[[int], bytes]] = None,
    size: Optional[int] = None,
) -> Iterator[bytes]:
    """The body of ``sent``, decoded, in pieces as they arrive; at most ``limit`` bytes (the response limit by default).

    The body is read raw and decoded here with a bound on every step
    (:mod:`imageprovider._decoding`): a compressed bomb is stopped before it
    grows. Only the network reads are translated into
    :class:`APIConnectionError`: what the caller raises while handling a piece
    (a full disk) stays its own.

    :param read: returns up to ``size`` raw bytes, ``b""`` at the end (an event
        stream passes one that returns whatever has arrived); by default the
        body is read ``size`` bytes (:data:`BODY_CHUNK_BYTES`) at a time.
    :raises ResponseValidationError: the decoded body passed the limit, or cannot be decoded.
    :raises APITimeoutError: the call's deadline passed.
    """
    limit = sent.limits.max_response_bytes if limit is None else limit
    size = BODY_CHUNK_BYTES if size is None else size
    try:
        decoder = ContentDecoder(sent.headers.get("Content-Encoding"), limit)
    except DecodingError as exc:
        raise _body_error(sent, f"{what} cannot be read: {exc}") from None
    if read is None:
        raw = sent.response.raw.stream(size, decode_content=False)
        read = lambda _size: next(raw, b"")  # noqa: E731 (the stream already reads `size` at a time)
    while True:
        sent.check_deadline()
        try:
            piece = read(size)
        except Exception as exc:
            if is_read_error(exc):
                raise sent.connection_error(exc) from exc
            raise
        if not piece:
            # The watchdog ends a call past its deadline by shutting its socket: that is not the body's end.
            sent.check_deadline()
        try:
            # Lazily: one raw chunk of a bomb decodes to many pieces, which must not be held at once.
            # (What the consumer raises between pieces never enters this generator.)
            yield from decoder.feed(piece) if piece else decoder.finish()
        except TooLarge as exc:
            raise _body_error(sent, f"{what} is larger than the {limit_name} of {exc.limit:,} bytes") from None
        except DecodingError as exc:
            raise _body_error(sent, f"{what} cannot be read: {exc}") from None
        if not piece:
            return


def _body_error(sent: Sent, message: str) -> ResponseValidationError:
    return ResponseValidationError(message, status_code=sent.status, request_id=sent.request_id)


def cut_short(response: requests.Response) -> Optional[str]:
    """Describe a body shorter than its Content-Length, or ``None``.

    urllib3 2 raises on such a body; 1.26 returns it truncated, silently.
    ``raw.tell()`` counts the bytes read from the socket, before decompression,
    which is what Content-Length counts.
    """
    declared = response.headers.get("Content-Length", "")
    if not declared.isdigit():
        return None
    try:
        received = int(response.raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return None
    if received >= int(declared):
        return None
    return f"{received} of {declared} bytes arrived"


def check_complete(sent: Sent) -> None:
    """Raise if the body ended before its ``Content-Length``."""
    cut = cut_short(sent.response)
    if cut is not None:
        raise _errors.cut_short_error(sent.host, cut, sent.attempts)


def read_bytes(sent: Sent, limit: Optional[int] = None, limit_name: str = "limit (Limits.max_response_bytes)") -> bytes:
    """The whole body (at most ``limit`` bytes, the response limit by default); the connection is released."""
    with sent:
        data = b"".join(chunks(sent, limit, limit_name=limit_name))
        check_complete(sent)
    return data


def validated(sent: Sent, data: bytes, schema: str, what: Optional[str] = None) -> Dict[str, Any]:
    """``data`` parsed as JSON and checked against ``schema``.

    :raises ResponseValidationError: not JSON, ``null``, or off-schema.
    """
    what = what or f"The {sent.status} response body"
    parsed = _errors.parse_json(data, what, status=sent.status, headers=sent.headers, redactor=sent.redactor)
    violation = _schemas.find_violation(schema, parsed)
    if violation is not None:
        raise _errors.off_schema(
            violation,
            "The response body",
            status=sent.status,
            headers=sent.headers,
            text=data.decode("utf-8", "replace"),
            redactor=sent.redactor,
        )
    return cast(Dict[str, Any], parsed)


def read_json(sent: Sent, schema: str) -> Dict[str, Any]:
    """The whole body, parsed and validated against ``schema``.

    Such bodies (a file, a batch, the models list) hold no images: they are
    bounded like the JSON around the images of an images body.
    """
    data = read_bytes(sent, sent.limits.max_skeleton_bytes, "limit (Limits.max_skeleton_bytes)")
    return validated(sent, data, schema)


def read_images(
    sent: Sent, open_sink: Optional[Callable[[int], Sink]] = None, expected_images: Optional[int] = None
) -> Tuple[Dict[str, Any], Dict[int, Extracted]]:
    """Read an images body as it arrives, decoding each image into ``open_sink(index)`` (memory by default).

    Returns the validated body, whose decoded images' ``b64_json`` are ``""``,
    and those images by index. Images the scanner left in the body are checked
    too: a response whose images are not all valid base64 is refused whole, and
    so is one with more images than ``expected_images`` (the client, not the
    server, decides how many files a call writes).

    :raises ResponseValidationError: the body is not JSON, off-schema, or holds invalid base64.
    :raises APIConnectionError: the body could not be read whole.
    """
    scanner = ImageBodyScanner(
        open_sink if open_sink is not None else memory_sink, limits=sent.limits, expected=expected_images
    )
    with sent:
        try:
            for chunk in chunks(sent):
                scanner.feed(chunk)
        except BodyTooLarge as exc:
            raise _body_error(sent, str(exc)) from None
        skeleton = scanner.finish()
        check_complete(sent)
    body = validated(sent, skeleton, "images_response")
    if expected_images is not None and len(body["data"]) > expected_images:
        raise _body_error(
            sent,
            f"The response holds {len(body['data'])} images where {expected_images} were asked for; nothing is kept",
        )
    images = scanner.images_in(body)
    for index, item in sorted(images.items()):
        if item.error is not None:
            raise _invalid_image(sent, index)
    for index, entry in enumerate(body["data"]):
        text = entry.get("b64_json")
        if index not in images and isinstance(text, str):
            try:
                strict_b64decode(text.encode("ascii"))
            except (UnicodeEncodeError, binascii.Error, ValueError):
                raise _invalid_image(sent, index) from None
    return body, images


def _invalid_image(sent: Sent, index: int) -> ResponseValidationError:
    return ResponseValidationError(
        f"Image {index} of the response is not valid base64; the response is refused",
        status_code=sent.status,
        request_id=sent.request_id,
        path=("data", index, "b64_json"),
    )


def copy_body(
    sent: Sent,
    sink: IO[bytes],
    max_bytes: Optional[int] = None,
    what: str = "The body",
    limit: str = "limit (Limits.max_response_bytes)",
) -> int:
    """Stream the body into ``sink``, at most ``max_bytes``; return the bytes written.

    :raises ResponseValidationError: the body is larger than ``max_bytes``.
    """
    declared = sent.headers.get("Content-Length", "")
    if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
        sent.close()
        raise ResponseValidationError(
            f"{what} is {int(declared):,} bytes, over the {limit} of {max_bytes:,}", status_code=sent.status
        )
    max_bytes = sent.limits.max_response_bytes if max_bytes is None else max_bytes
    written = 0
    with sent:
        for chunk in chunks(sent, max_bytes, what, limit):
            written += len(chunk)
            sink.write(chunk)
        check_complete(sent)
    return written


def check_event_stream(sent: Sent) -> None:
    """Refuse a success response that is not an event stream (a server that ignored ``stream``)."""
    content_type = sent.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() == "text/event-stream":
        return
    try:
        excerpt = sent.redactor.excerpt(sent.redactor.body_text(sent.response, sent.limits.max_error_body_bytes))
    finally:
        sent.close()
    raise ResponseValidationError(
        "Expected a text/event-stream response to a streaming request, got {!r}; the server may not support "
        "streaming".format(content_type or "no Content-Type"),
        status_code=sent.status,
        request_id=sent.request_id,
        body=excerpt,
    )
