"""
imageprovider._sse
~~~~~~~~~~~~~~~~~~

An incremental decoder for ``text/event-stream`` bodies (Server-Sent Events),
following the WHATWG HTML "event stream interpretation" rules. The streaming
image endpoints answer with SSE, and this module turns the raw bytes of such a
response into :class:`ServerSentEvent` values.

Why not ``requests.Response.iter_lines``:

- A partial image is one ``data:`` line holding several megabytes of base64.
  The decoder therefore has no line or event size limit, and it scans each
  byte for line terminators a bounded number of times (at most twice), so a
  5 MB line arriving in 64 KB chunks costs linear time, not quadratic.
- ``iter_lines`` splits on ``str.splitlines``-style boundaries per chunk: a
  CRLF torn between two chunks becomes two line ends (an empty line, which
  dispatches an event too early), and a lone CR is not handled the way the
  SSE rules require. Here CR, LF and CRLF all end a line, also when the CR
  and the LF arrive in different chunks.
- Bytes are decoded as UTF-8 only once a whole line is available, so a
  multi-byte character split between chunks decodes correctly.

Feed chunks from ``iter_content`` to :meth:`SSEDecoder.feed`, then call
:meth:`SSEDecoder.close` at end of body and check
:attr:`SSEDecoder.incomplete` to tell a clean end from a stream cut mid-event.
"""

from typing import List, NamedTuple, Optional, Union

__all__ = ["ServerSentEvent", "SSEDecoder", "StreamTooLarge"]

_CR = 0x0D
_LF = 0x0A
_COLON = 0x3A
_BOM = b"\xef\xbb\xbf"
#: A ``retry`` longer than this many digits (centuries of milliseconds) is read as 10**16.
_MAX_RETRY_DIGITS = 16


class StreamTooLarge(ValueError):
    """A line or an event of the stream passed its limit (raised before it grows further)."""


class ServerSentEvent(NamedTuple):
    """One dispatched event."""

    #: The ``event`` field, or ``"message"`` when none (or an empty one) was given.
    event: str = "message"
    #: The ``data`` lines joined with ``"\\n"``.
    data: str = ""
    #: The last event ID seen on the stream so far (it persists across events), or ``None``.
    id: Optional[str] = None
    #: The reconnection time in milliseconds last set by a ``retry`` field, or ``None``.
    retry: Optional[int] = None


class SSEDecoder:
    """Turns the bytes of an event stream, in chunks of any size, into events.

    Usage::

        decoder = SSEDecoder()
        for chunk in response.iter_content(chunk_size=65536):
            for event in decoder.feed(chunk):
                handle(event)
        for event in decoder.close():
            handle(event)
        if decoder.incomplete:
            raise ...  # the stream was cut mid-event

    Not thread-safe; use one decoder per response.

    :param max_line_bytes: longest line (``None``: no limit, as the standard says).
    :param max_event_bytes: most ``data`` bytes of one event.
    :raises StreamTooLarge: from :meth:`feed`, when either is passed.
    """

    def __init__(self, max_line_bytes: Optional[int] = None, max_event_bytes: Optional[int] = None) -> None:
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._event_bytes = 0
        #: Set by :meth:`close`: ``True`` if the stream ended inside a line or
        #: inside an event (a field line with no blank line after it).
        self.incomplete = False
        #: How many bytes were examined while looking for line terminators.
        #: Diagnostics for tests: stays at most twice the number of bytes fed.
        self.bytes_scanned = 0

        # Bytes of the current, unterminated line; consumed lines are removed
        # once per feed() so the buffer never holds more than one partial line
        # between calls.
        self._buf = bytearray()
        # How many bytes at the start of _buf were already searched (and hold
        # no CR or LF), so feed() only searches what is new.
        self._scanned = 0
        # The previous chunk ended with CR: an LF starting the next chunk
        # belongs to the same line end.
        self._skip_lf = False
        # The BOM check is still pending (fewer than 3 bytes seen so far).
        self._at_start = True
        self._closed = False

        self._event_type = ""
        # The data lines of the current event, each followed by LF.
        self._data = bytearray()
        self._has_data = False
        self._last_id: Optional[str] = None
        self._retry: Optional[int] = None
        # A field line was seen since the last blank line.
        self._in_event = False

    def feed(self, chunk: bytes) -> List[ServerSentEvent]:
        """Add the next chunk of the body; return the events it completed, in order."""
        if self._closed:
            raise ValueError("SSEDecoder.feed() called after close()")
        if not chunk:
            return []
        buf = self._buf
        buf += chunk

        if self._at_start:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []  # could still become a BOM; wait for more bytes
            if buf.startswith(_BOM):
                del buf[: len(_BOM)]
            self._at_start = False

        pos = 0  # start of the current line
        if self._skip_lf:
            self._skip_lf = False
            if buf and buf[0] == _LF:
                pos = 1
        scan = max(pos, self._scanned)

        events: List[ServerSentEvent] = []
        end_of_buf = len(buf)
        # Next CR / LF at or after pos, or -1 if there is none in the buffer.
        # Each is searched again only after pos has moved past it, so every
        # byte is looked at by at most one CR search and one LF search, even
        # when one kind of terminator never occurs.
        cr = self._find(_CR, scan)
        lf = self._find(_LF, scan)
        while cr >= 0 or lf >= 0:
            if lf < 0 or 0 <= cr < lf:
                line_end = cr
                if cr + 1 < end_of_buf:
                    next_pos = cr + 2 if buf[cr + 1] == _LF else cr + 1
                else:
                    # CR is the last byte we have: the LF of a CRLF may be in
                    # the next chunk.
                    next_pos = cr + 1
                    self._skip_lf = True
            else:
                line_end = lf
                next_pos = lf + 1
            event = self._process_line(buf[pos:line_end])
            if event is not None:
                events.append(event)
            pos = next_pos
            if 0 <= cr < pos:
                cr = self._find(_CR, pos)
            if 0 <= lf < pos:
                lf = self._find(_LF, pos)

        if pos:
            del buf[:pos]  # once per feed: consuming lines stays linear
        self._scanned = len(buf)
        if self._max_line is not None and len(buf) > self._max_line:
            raise StreamTooLarge(
                f"A line of the event stream is longer than the limit of {self._max_line:,} bytes (Limits.max_stream_line_bytes)"
            )
        return events

    def close(self) -> List[ServerSentEvent]:
        """Signal end of stream; return the events that can still be dispatched.

        Under the WHATWG rules that is always an empty list: only a blank line
        dispatches, and :meth:`feed` has already handled every blank line. A
        final line without a line terminator is still processed (an ``id`` or
        ``retry`` in it takes effect), then the pending event is discarded.
        Sets :attr:`incomplete`. Calling ``close()`` again returns ``[]``.
        """
        if self._closed:
            return []
        self._closed = True
        partial_line = bool(self._buf)
        if partial_line:
            self._process_line(self._buf)
            self._buf = bytearray()
        self.incomplete = partial_line or self._in_event
        self._event_type = ""
        self._data = bytearray()
        self._has_data = False
        self._in_event = False
        return []

    def _find(self, byte: int, start: int) -> int:
        found = self._buf.find(byte, start)
        self.bytes_scanned += (found + 1 if found >= 0 else len(self._buf)) - start
        return found

    def _process_line(self, raw: bytearray) -> Optional[ServerSentEvent]:
        if self._max_line is not None and len(raw) > self._max_line:
            raise StreamTooLarge(
                f"A line of the event stream is longer than the limit of {self._max_line:,} bytes (Limits.max_stream_line_bytes)"
            )
        if not raw:
            return self._dispatch()
        if raw[0] == _COLON:
            return None  # comment, e.g. a keep-alive
        field, _, value = raw.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        self._in_event = True
        if field == b"data":
            self._event_bytes += len(value) + 1
            if self._max_event is not None and self._event_bytes > self._max_event:
                raise StreamTooLarge(
                    f"An event of the stream holds more than the limit of {self._max_event:,} bytes of data (Limits.max_stream_line_bytes)"
                )
            # Kept as bytes in one buffer: a list of many short str lines costs several times their size.
            self._data += value
            self._data.append(_LF)
            self._has_data = True
        elif field == b"event":
            self._event_type = _text(value)
        elif field == b"id":
            if b"\0" not in value:
                self._last_id = _text(value)
        elif field == b"retry":
            # bytes.isdigit() accepts ASCII digits only (str.isdigit() would also accept "²" or "١").
            if value and value.isdigit():
                # Saturated: Python refuses to parse ints of over 4300 digits.
                digits = value.lstrip(b"0") or b"0"
                self._retry = int(digits) if len(digits) <= _MAX_RETRY_DIGITS else 10**_MAX_RETRY_DIGITS
        return None

    def _dispatch(self) -> Optional[ServerSentEvent]:
        data, has_data = self._data, self._has_data
        event_type = self._event_type or "message"
        self._event_type = ""
        self._data = bytearray()
        self._has_data = False
        self._event_bytes = 0
        self._in_event = False
        if not has_data:
            return None
        # The spec's "append value + LF, then drop the final LF". Decoded once
        # here: CR and LF are ASCII, so no character spans two data lines.
        del data[-1:]
        return ServerSentEvent(event_type, _text(data), self._last_id, self._retry)


def _text(raw: Union[bytes, bytearray]) -> str:
    # errors="replace": one bad byte must not lose the whole stream, and the
    # JSON parser downstream reports anything that matters.
    return raw.decode("utf-8", "replace")
