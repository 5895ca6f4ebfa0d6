"""
imageprovider._imagebody
~~~~~~~~~~~~~~~~~~~~~~~~

Reads an images response body as it arrives, without ever holding all of it.

The base64 text of each ``data[i].b64_json`` is validated and decoded in
chunks straight into a sink (memory, or a temporary file beside its final
name). Everything else -- the skeleton, a few hundred bytes -- is kept with
each extracted string left empty (``""``), then parsed and validated as JSON
once the body is complete, exactly as a whole body would be.

Only strings at that exact place are extracted: the scanner follows the
JSON structure (objects, arrays, keys) and string escapes, so a
``"b64_json"`` inside another string or another object is left alone. A
body the scanner cannot follow (not JSON, another encoding) simply stays in
the skeleton and fails or succeeds in the JSON parser, as before.
"""

import binascii
import json
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol

from .exceptions import ResponseValidationError

if TYPE_CHECKING:  # pragma: no cover
    from ._config import Limits


class BodyTooLarge(ValueError):
    """The body passed one of its limits: an image too large, too many images, nesting too deep, too much
    outside the images. Raised while reading, before memory grows past the limit."""


#: Characters a base64 image string may hold before its padding.
_ALPHABET_AND_PADDING = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_STRUCTURE = re.compile(rb"[{}\[\]:,]")
_LAST_QUARTET = re.compile(rb"[A-Za-z0-9+/]{2}(?:==|[A-Za-z0-9+/]=|[A-Za-z0-9+/]{2})")
#: Keys longer than this, even escaped (``\\u0062\\u0036...``), are never ones we look for.
_MAX_KEY_BYTES = 64
_SIMPLE_ESCAPES = {
    b"/": b"/",
    b"\\": b"\\",
    b'"': b'"',
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
}

_OUTSIDE, _IN_STRING, _IN_IMAGE = 0, 1, 2


def strict_b64decode(text: bytes) -> bytes:
    """Decode base64 as the scanner does: alphabet only, padding only at the end, length a multiple of 4.

    Stricter, and the same on every Python, unlike ``b64decode(validate=True)``,
    which on some versions takes stray padding.

    :raises ValueError: ``text`` is not such base64.
    """
    if len(text) % 4 or text.translate(None, _ALPHABET_AND_PADDING):
        raise ValueError("not base64")
    if text and (b"=" in text[:-4] or not _LAST_QUARTET.fullmatch(text[-4:])):
        raise ValueError("misplaced base64 padding")
    return binascii.a2b_base64(text)


class Sink(Protocol):
    """Where one image's decoded bytes go (memory, or a temporary file)."""

    def write(self, data: bytes) -> object:
        """Take the next decoded bytes."""

    def close(self) -> None:
        """The image is complete."""

    def discard(self) -> None:
        """The image will not be used (invalid, or replaced by a duplicate key)."""

    def getvalue(self) -> bytes:
        """What was written so far (an image found invalid half-way goes back to the parser as text)."""


class MemorySink:
    """Keeps one image's decoded bytes in memory."""

    def __init__(self) -> None:
        self._pieces: List[bytes] = []
        #: The decoded image, once :meth:`close` has run.
        self.data: Optional[bytes] = None

    def write(self, data: bytes) -> None:
        """Take the next decoded bytes."""
        self._pieces.append(data)

    def close(self) -> None:
        """The image is complete."""
        self.data = b"".join(self._pieces)
        self._pieces = []

    def discard(self) -> None:
        """The image will not be used (invalid, or replaced by a duplicate key)."""
        self._pieces = []
        self.data = None

    def getvalue(self) -> bytes:
        """What was written so far."""
        return b"".join(self._pieces)


def memory_sink(index: int) -> MemorySink:
    """Where an image's bytes go when they are kept in memory."""
    return MemorySink()


class Extracted:
    """One ``b64_json`` string taken out of the body: its sink, or why it is unusable.

    :param max_bytes: most decoded bytes the image may have (``None``: no limit).
    """

    def __init__(self, index: int, sink: Sink, max_bytes: Optional[int] = None) -> None:
        #: Position of the image in the response's ``data`` list.
        self.index = index
        self.sink = sink
        self.max_bytes = max_bytes
        #: Decoded bytes written so far.
        self.written = 0
        #: Set when the text is not valid base64; raised when the image is used.
        self.error: Optional[ResponseValidationError] = None
        #: The whole (invalid) text, when :attr:`error` was found only at its end.
        self.text: Optional[str] = None
        self._pending = b""
        self._padded = False

    def feed(self, text: bytes) -> None:
        """Decode the next piece of base64 text (unescaped) into the sink.

        On invalid text, :attr:`error` is set and nothing of ``text`` is used.
        """
        if self.error is not None:
            return
        # Checked whole and at once, so that what is held (pending) is always
        # plain base64 text: an invalid piece goes back to the parser untouched.
        if text.translate(None, _ALPHABET_AND_PADDING):
            self.error = self._invalid()
            return
        data = self._pending + text if self._pending else text
        padding = data.find(b"=")
        if self._padded or padding >= 0:
            # Padding may end only the last quartet; hold the tail until the string ends.
            whole = 0 if padding < 0 else padding - padding % 4
            if len(data) - whole > 4:
                self.error = self._invalid()
                return
            self._padded = True
        else:
            whole = len(data) - len(data) % 4
        if whole:
            self._write(binascii.a2b_base64(data[:whole]))
        self._pending = data[whole:]

    def _write(self, decoded: bytes) -> None:
        self.written += len(decoded)
        if self.max_bytes is not None and self.written > self.max_bytes:
            raise BodyTooLarge(
                f"Image {self.index} of the response is larger than the limit of {self.max_bytes:,} bytes (Limits.max_image_bytes)"
            )
        self.sink.write(decoded)

    def text_so_far(self) -> bytes:
        """The base64 text taken before :attr:`error` was set (escapes undone)."""
        return binascii.b2a_base64(self.sink.getvalue(), newline=False) + self._pending

    def finish(self) -> None:
        """The string ended: decode the last quartet (padding checked) and close the sink."""
        if self.error is None and self._pending:
            # Checked here rather than by b64decode, whose leniency about stray
            # padding differs between Python versions.
            if _LAST_QUARTET.fullmatch(self._pending):
                self._write(binascii.a2b_base64(self._pending))
            else:
                self.error = self._invalid()
                # Kept so the image reads as received (raw, b64_json); it is only this short.
                self.text = self.text_so_far().decode("ascii")
        self._pending = b""
        if self.error is None:
            self.sink.close()
        else:
            self.sink.discard()

    def _invalid(self) -> ResponseValidationError:
        return ResponseValidationError(
            f"Image {self.index} of the response is not valid base64",
            path=("data", self.index, "b64_json"),
        )


class ImageBodyScanner:
    """Feed it the body in chunks; :meth:`finish` returns the skeleton to parse.

    :param open_sink: called with an image's index when its base64 text
        starts; returns where the decoded bytes go.
    :param limits: the size of one image, the skeleton and the nesting are bounded by these.
    :param expected: how many images were asked for: a further one is refused when it starts.
    :raises BodyTooLarge: from :meth:`feed`, when a limit is passed.
    """

    def __init__(
        self,
        open_sink: Callable[[int], Sink] = memory_sink,
        limits: Optional["Limits"] = None,
        expected: Optional[int] = None,
    ) -> None:
        self._open_sink = open_sink
        self._max_image = limits.max_image_bytes if limits is not None else None
        self._max_skeleton = limits.max_skeleton_bytes if limits is not None else None
        self._max_depth = limits.max_json_depth if limits is not None else None
        self._expected = expected
        self._skeleton_bytes = 0
        self._skeleton: List[bytes] = []
        #: Bytes held back: only ever a split escape inside an image string.
        self._buffer = b""
        self._mode = _OUTSIDE
        #: Frames of open containers: [kind, key it sits under, items seen].
        self._stack: List[List[Any]] = []
        self._key: Optional[bytes] = None
        self._last_string: Optional[bytes] = None
        #: The start of the string being read (``None`` once too long to be a key we look for).
        self._string_head: Optional[bytes] = b""
        #: Whether the previous chunk ended inside an escape (an odd run of backslashes).
        self._escaped = False
        self._broken = False
        self._current: Optional[Extracted] = None
        #: The first bytes, held until there are enough to tell the encoding.
        self._start: Optional[bytes] = b""
        #: Image index -> its extracted string; a later duplicate key wins, as in ``json``.
        self.extracted: Dict[int, Extracted] = {}

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body."""
        if self._start is not None:
            chunk = self._start + chunk
            if len(chunk) < 4:
                self._start = chunk
                return
            self._start = None
            # UTF-16 and UTF-32 JSON (which ``json`` accepts from bytes) is left
            # whole to the parser: byte patterns mean nothing in it.
            if chunk[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in chunk[:4]:
                self._broken = True
        buffer = self._buffer + chunk if self._buffer else chunk
        self._buffer = b""
        position, end = 0, len(buffer)
        while position < end:
            if self._mode == _OUTSIDE:
                position = self._outside(buffer, position)
            elif self._mode == _IN_IMAGE:
                position = self._in_image(buffer, position)
            else:
                position = self._in_string(buffer, position)

    def finish(self) -> bytes:
        """The body is complete: return the skeleton (images elided) for the JSON parser."""
        if self._start:
            start, self._start = self._start, None
            self._broken = b"\x00" in start or start[:2] in (b"\xff\xfe", b"\xfe\xff")
            self._keep(start)
        if self._current is not None:
            # An unterminated image string: the parser will call the body invalid.
            self._keep(b'"')
            self._current.sink.discard()
            self._current = None
        return b"".join(self._skeleton)

    def images_in(self, parsed: Any) -> Dict[int, Extracted]:
        """The extracted images that stand in the parsed skeleton, by index; the others are discarded.

        An image decoded on arrival left ``""`` in the skeleton. Anything else
        there is text the parser kept (a key the scanner could not read, say),
        and it wins, as it would without the scanner.
        """
        data = parsed.get("data") if isinstance(parsed, dict) else None
        kept = {}
        for index, extracted in self.extracted.items():
            item = data[index] if isinstance(data, list) and index < len(data) else None
            if isinstance(item, dict) and item.get("b64_json") == "":
                kept[index] = extracted
            else:
                extracted.sink.discard()
        return kept

    def _keep(self, piece: bytes) -> None:
        self._skeleton_bytes += len(piece)
        if self._max_skeleton is not None and self._skeleton_bytes > self._max_skeleton:
            raise BodyTooLarge(
                f"The response body holds more than {self._max_skeleton:,} bytes besides its images (Limits.max_skeleton_bytes)"
            )
        self._skeleton.append(piece)

    # -- modes: each returns the position where it stopped

    def _outside(self, buffer: bytes, position: int) -> int:
        quote = buffer.find(b'"', position)
        stop = len(buffer) if quote < 0 else quote
        if not self._broken:
            for match in _STRUCTURE.finditer(buffer, position, stop):
                self._structure(match.group())
        self._keep(buffer[position:stop] if position or quote >= 0 else buffer)
        if quote < 0:
            return stop
        if self._starts_image():
            index = self._stack[1][2]
            if self._expected is not None and index >= self._expected:
                raise BodyTooLarge(
                    f"The response holds more than the {self._expected} image(s) asked for; nothing is kept"
                )
            self._current = Extracted(index, self._open_sink(index), self._max_image)
            self._mode = _IN_IMAGE
        else:
            self._keep(b'"')
            self._mode = _IN_STRING
            self._string_head = b""
            self._escaped = False
        return quote + 1

    def _in_string(self, buffer: bytes, position: int) -> int:
        search = position
        while True:
            close = buffer.find(b'"', search)
            if close < 0:
                self._take_string_piece(buffer[position:])
                self._escaped = _ends_in_escape(buffer, position, len(buffer), self._escaped)
                return len(buffer)
            if not _ends_in_escape(buffer, position, close, self._escaped):
                break
            search = close + 1
        self._take_string_piece(buffer[position : close + 1])
        head = self._string_head
        self._last_string = _unescape_key(head[:-1]) if head is not None else None
        self._mode = _OUTSIDE
        return close + 1

    def _take_string_piece(self, piece: bytes) -> None:
        self._keep(piece)
        head = self._string_head
        if head is not None:
            head += piece
            self._string_head = head if len(head) <= _MAX_KEY_BYTES + 1 else None

    def _in_image(self, buffer: bytes, position: int) -> int:
        current = self._current
        assert current is not None  # noqa: S101 (only _outside enters this mode, and it sets _current)
        end = len(buffer)
        quote = buffer.find(b'"', position)
        stop = end if quote < 0 else quote
        backslash = buffer.find(b"\\", position, stop)
        if backslash < 0:
            if stop > position:
                current.feed(buffer[position:stop])
                if current.error is not None:
                    return self._keep_failed_image(position)
            if quote < 0:
                return end
            current.finish()
            previous = self.extracted.pop(current.index, None)
            if previous is not None:
                previous.sink.discard()
            self.extracted[current.index] = current
            self._current = None
            self._keep(b'""')
            self._last_string = None
            self._mode = _OUTSIDE
            return quote + 1
        # An escape (``\/`` from some JSON encoders): unescape it on the fly.
        if backslash > position:
            current.feed(buffer[position:backslash])
            if current.error is not None:
                return self._keep_failed_image(position)
        letter = buffer[backslash + 1 : backslash + 2]
        needed = 6 if letter == b"u" else 2
        if end - backslash < needed:
            self._buffer = buffer[backslash:]
            return end
        if letter == b"u":
            try:
                code = int(buffer[backslash + 2 : backslash + 6].decode("ascii"), 16)
            except ValueError:
                code = -1
            # Anything but ASCII is not base64 either: feed a byte the alphabet refuses.
            current.feed(bytes([code]) if 0 <= code < 0x80 else b"\x00")
        else:
            current.feed(_SIMPLE_ESCAPES.get(letter, b"\x00"))
        if current.error is not None:
            return self._keep_failed_image(backslash)
        return backslash + needed

    def _keep_failed_image(self, position: int) -> int:
        """The image string is not base64: the rest of it goes to the parser as text.

        The parser then judges it as JSON (raw control characters, bad escapes
        and invalid UTF-8 make the body invalid), and the image's ``b64_json``
        is that text, which fails as base64 when used -- as if never scanned.
        """
        current = self._current
        assert current is not None  # noqa: S101 (called from _in_image only)
        self._keep(b'"' + current.text_so_far())
        current.sink.discard()
        self._current = None
        self._mode = _IN_STRING
        self._string_head = None
        self._escaped = False
        return position

    # -- structure

    def _structure(self, char: bytes) -> None:
        stack = self._stack
        if char == b"{" or char == b"[":
            key = self._key if stack and stack[-1][0] == b"{" else None
            if char == b"[" and key == b"data" and len(stack) == 1:
                # A later duplicate "data" wins in ``json``: so it does here.
                for extracted in self.extracted.values():
                    extracted.sink.discard()
                self.extracted = {}
            if self._max_depth is not None and len(stack) >= self._max_depth:
                raise BodyTooLarge(
                    f"The response body is nested more than {self._max_depth} levels deep (Limits.max_json_depth)"
                )
            stack.append([char, key, 0])
            self._key = None
        elif char == b"}" or char == b"]":
            if not stack or stack[-1][0] != (b"{" if char == b"}" else b"["):
                self._broken = True
                return
            stack.pop()
            self._key = None
        elif char == b":":
            self._key = self._last_string
        else:  # ","
            if stack and stack[-1][0] == b"[":
                stack[-1][2] += 1
            self._key = None
        self._last_string = None

    def _starts_image(self) -> bool:
        stack = self._stack
        return (
            not self._broken
            and self._key == b"b64_json"
            and len(stack) == 3
            and stack[0][0] == b"{"
            and stack[1][0] == b"["
            and stack[1][1] == b"data"
            and stack[2][0] == b"{"
        )


def _unescape_key(raw: bytes) -> Optional[bytes]:
    if b"\\" not in raw:
        return raw
    try:
        key = json.loads(b'"' + raw + b'"')
    except (ValueError, UnicodeError):
        return None
    return key.encode("utf-8") if isinstance(key, str) else None


def _ends_in_escape(buffer: bytes, start: int, stop: int, escaped_before: bool) -> bool:
    """Whether ``buffer[stop]`` is escaped: an odd run of backslashes just before it.

    ``escaped_before`` says whether ``buffer[start]`` itself was escaped by the previous chunk.
    """
    index = stop - 1
    while index >= start and buffer[index] == 0x5C:
        index -= 1
    run = stop - 1 - index
    if index < start and escaped_before:
        run += 1
    return run % 2 == 1
