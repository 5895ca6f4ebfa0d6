"""The Server-Sent Events decoder: WHATWG line and field rules, chunk boundaries, size and cost.

Every rule is checked on whole input first; ``TestChunking`` then checks that
no way of cutting the same bytes into chunks changes the events.
"""

import base64
import json
from typing import Iterable, List, Optional, Tuple, Union

import pytest

from imageprovider._sse import ServerSentEvent, SSEDecoder

Chunking = Union[int, Iterable[int]]


def feed_in_chunks(stream: bytes, sizes: Chunking) -> Tuple[List[ServerSentEvent], bool]:
    """Feed ``stream`` in chunks of ``sizes`` (one size, or a list cycled); return events and ``incomplete``."""
    size_list = [sizes] if isinstance(sizes, int) else list(sizes)
    decoder = SSEDecoder()
    events: List[ServerSentEvent] = []
    offset = 0
    turn = 0
    while offset < len(stream):
        size = size_list[turn % len(size_list)]
        events.extend(decoder.feed(stream[offset : offset + size]))
        offset += size
        turn += 1
    events.extend(decoder.close())
    return events, decoder.incomplete


def decode(stream: bytes) -> List[ServerSentEvent]:
    """Events of ``stream`` fed in one chunk."""
    return feed_in_chunks(stream, max(len(stream), 1))[0]


def msg(data: str, event: str = "message", id: Optional[str] = None, retry: Optional[int] = None) -> ServerSentEvent:
    """The expected event, with the decoder's defaults."""
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


class TestLineEnds:
    @pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
    def test_each_line_end_separates_lines_and_events(self, eol: bytes) -> None:
        """LF, CRLF and CR each end a line; a blank line dispatches."""
        stream = eol.join([b"event: a", b"data: 1", b"", b"data: 2", b"", b""])
        assert decode(stream) == [msg("1", event="a"), msg("2")]

    def test_mixed_line_ends_in_one_stream(self) -> None:
        """Line ends may change from line to line."""
        assert decode(b"data: 1\rdata: 2\r\ndata: 3\n\r\n") == [msg("1\n2\n3")]

    def test_cr_cr_is_two_line_ends(self) -> None:
        """CR CR is a line end then a blank line (a dispatch), not one line end."""
        assert decode(b"data: 1\r\rdata: 2\r\r") == [msg("1"), msg("2")]

    def test_lf_cr_is_two_line_ends(self) -> None:
        """LF followed by CR is two line ends, so it dispatches."""
        assert decode(b"data: 1\n\r") == [msg("1")]

    def test_crlf_split_between_chunks_counts_once(self) -> None:
        """CR ending one chunk and LF starting the next are one line end, not a blank line."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: 1\r") == []
        assert decoder.feed(b"\ndata: 2\r") == []
        assert decoder.feed(b"\n\r") == [msg("1\n2")]
        assert decoder.feed(b"\n") == []
        assert decoder.close() == []
        assert decoder.incomplete is False

    def test_cr_at_chunk_end_then_other_byte(self) -> None:
        """A CR at a chunk end still ends the line when the next chunk does not start with LF."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: 1\r") == []
        assert decoder.feed(b"\r") == [msg("1")]

    def test_empty_chunks_are_harmless(self) -> None:
        """An empty chunk between CR and LF does not break the CRLF."""
        decoder = SSEDecoder()
        events = decoder.feed(b"data: 1\r") + decoder.feed(b"") + decoder.feed(b"\ndata: 2\r\n\r\n")
        assert events == [msg("1\n2")]


class TestFields:
    def test_comment_lines_are_ignored(self) -> None:
        """Lines starting with ':' do nothing, not even end the event."""
        assert decode(b": keep-alive\ndata: a\n:\n: x: y\ndata: b\n\n") == [msg("a\nb")]

    def test_only_comments_dispatch_nothing(self) -> None:
        """A keep-alive comment followed by a blank line is not an event."""
        assert decode(b": ping\n\n: ping\n\n") == []

    def test_multi_line_data_joined_with_lf(self) -> None:
        """Each data line adds its value and LF; the final LF is dropped."""
        assert decode(b"data: one\ndata: two\ndata:\ndata: four\n\n") == [msg("one\ntwo\n\nfour")]

    def test_empty_data_line_dispatches_empty_string(self) -> None:
        """``data:`` alone makes the buffer non-empty ("\\n"), so an event with data "" is sent."""
        assert decode(b"data:\n\n") == [msg("")]
        assert decode(b"data\n\n") == [msg("")]

    def test_event_type_defaults_to_message(self) -> None:
        """No event field, or an empty one, gives type "message"."""
        assert decode(b"data: x\n\nevent:\ndata: y\n\nevent: custom\ndata: z\n\n") == [
            msg("x"),
            msg("y"),
            msg("z", event="custom"),
        ]

    def test_event_type_resets_after_each_dispatch(self) -> None:
        """The type applies to one event only."""
        assert decode(b"event: a\ndata: 1\n\ndata: 2\n\n") == [msg("1", event="a"), msg("2")]

    def test_last_event_field_wins(self) -> None:
        assert decode(b"event: a\nevent: b\ndata: 1\n\n") == [msg("1", event="b")]

    def test_field_without_colon_has_empty_value(self) -> None:
        """``event`` alone sets an empty type (so "message"); ``data`` alone appends ""."""
        assert decode(b"event: a\nevent\ndata: x\ndata\n\n") == [msg("x\n")]

    def test_exactly_one_leading_space_is_removed(self) -> None:
        """``data:x``, ``data: x`` and ``data:  x`` give "x", "x" and " x"."""
        assert decode(b"data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n") == [
            msg("x"),
            msg("x"),
            msg(" x"),
            msg("\tx"),
        ]

    def test_value_split_on_first_colon_only(self) -> None:
        """Colons in the value are kept (JSON has plenty)."""
        assert decode(b'data: {"a": "b:c"}\n\n') == [msg('{"a": "b:c"}')]

    def test_trailing_space_is_kept(self) -> None:
        assert decode(b"data: x \n\n") == [msg("x ")]

    def test_unknown_and_wrong_case_fields_are_ignored(self) -> None:
        """Field names are case-sensitive; anything unknown is skipped."""
        assert decode(b"Data: no\nfoo: bar\nEVENT: no\ndata: yes\n\n") == [msg("yes")]

    def test_id_persists_across_events(self) -> None:
        """The last event ID is not reset by dispatch."""
        assert decode(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n") == [
            msg("a", id="1"),
            msg("b", id="1"),
            msg("c", id="2"),
        ]

    def test_empty_id_resets_to_empty_string(self) -> None:
        assert decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n") == [msg("a", id="1"), msg("b", id="")]

    def test_id_containing_nul_is_ignored(self) -> None:
        """An id value with NUL leaves the previous last event ID in place."""
        assert decode(b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n") == [msg("a", id="7"), msg("b", id="7")]

    def test_id_from_an_empty_event_carries_to_the_next(self) -> None:
        """The ID buffer is set even when the block dispatches nothing."""
        assert decode(b"id: 5\n\ndata: a\n\n") == [msg("a", id="5")]

    def test_retry_with_ascii_digits_is_used(self) -> None:
        assert decode(b"retry: 1500\ndata: a\n\n") == [msg("a", retry=1500)]

    @pytest.mark.parametrize(
        "value",
        [b"", b"abc", b"10a", b"-5", b"+5", b"1.5", b"5 ", b" 5", "\u0661\u0662".encode("utf-8"), "\u00b2".encode()],
        ids=[
            "empty",
            "letters",
            "digits-then-letter",
            "negative",
            "plus",
            "decimal",
            "trailing-space",
            "extra-leading-space",
            "arabic-indic-digits",
            "superscript-two",
        ],
    )
    def test_retry_with_anything_but_ascii_digits_is_ignored(self, value: bytes) -> None:
        """A non-digit retry value leaves the previous reconnection time in place."""
        stream = b"retry: 100\ndata: a\n\nretry: " + value + b"\ndata: b\n\n"
        assert decode(stream) == [msg("a", retry=100), msg("b", retry=100)]

    def test_blank_line_with_empty_data_dispatches_nothing(self) -> None:
        """A block with no data line (only event/id/retry) is dropped, and its type with it."""
        assert decode(b"event: lost\n\n\n\ndata: a\n\n") == [msg("a")]
        assert decode(b"\n\n\n") == []


class TestEncoding:
    def test_bom_at_stream_start_is_stripped(self) -> None:
        assert decode(b"\xef\xbb\xbfdata: a\n\n") == [msg("a")]

    def test_bom_split_over_chunks_is_stripped(self) -> None:
        assert feed_in_chunks(b"\xef\xbb\xbfdata: a\n\n", 1)[0] == [msg("a")]

    def test_only_one_bom_is_stripped(self) -> None:
        """A second BOM is part of the first line, making the field name "\\ufeffdata" (ignored)."""
        assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [msg("b")]

    def test_bom_later_in_stream_is_not_stripped(self) -> None:
        """A BOM at the start of a later line is data, not a marker."""
        assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n") == [msg("a"), msg("\ufeffc")]

    def test_multibyte_character_split_across_chunks(self) -> None:
        """UTF-8 is decoded per complete line, so a character cut between chunks survives."""
        stream = "data: caf\u00e9 \u20ac \U0001f9a6\n\n".encode("utf-8")
        euro = stream.index("\u20ac".encode("utf-8"))
        otter = stream.index("\U0001f9a6".encode("utf-8"))
        for cut in (euro + 1, euro + 2, otter + 1, otter + 2, otter + 3):
            decoder = SSEDecoder()
            assert decoder.feed(stream[:cut]) == []
            assert decoder.feed(stream[cut:]) == [msg("caf\u00e9 \u20ac \U0001f9a6")]

    def test_invalid_utf8_is_replaced_not_fatal(self) -> None:
        assert decode(b"data: a\xffb\n\n") == [msg("a\ufffdb")]


class TestEndOfStream:
    def test_clean_end_is_complete(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"data: a\n\n: bye\n") == [msg("a")]
        assert decoder.close() == []
        assert decoder.incomplete is False

    def test_unterminated_final_event_is_discarded(self) -> None:
        """Fields with no blank line after them are dropped at EOF, and the stream is marked incomplete."""
        events, incomplete = feed_in_chunks(b'data: a\n\nevent: image_generation.completed\ndata: {"b\n', 4096)
        assert events == [msg("a")]
        assert incomplete is True

    def test_final_line_without_terminator_is_discarded(self) -> None:
        """``data: b`` then EOF: the line is processed, but no blank line follows, so no event."""
        events, incomplete = feed_in_chunks(b"data: a\n\ndata: b", 4096)
        assert events == [msg("a")]
        assert incomplete is True

    def test_final_line_without_terminator_still_counts_as_a_line(self) -> None:
        """Its id takes effect though nothing is dispatched (visible only as state, so check via close())."""
        decoder = SSEDecoder()
        decoder.feed(b"data: a\n\nid: 9")
        assert decoder.close() == []
        assert decoder.incomplete is True
        assert decoder._last_id == "9"

    def test_one_line_end_short_of_dispatch_is_incomplete(self) -> None:
        events, incomplete = feed_in_chunks(b"data: a\n", 4096)
        assert events == []
        assert incomplete is True

    def test_empty_stream_is_complete(self) -> None:
        decoder = SSEDecoder()
        assert decoder.close() == []
        assert decoder.incomplete is False

    def test_incomplete_is_false_before_close(self) -> None:
        decoder = SSEDecoder()
        decoder.feed(b"data: a")
        assert decoder.incomplete is False

    def test_partial_bom_at_eof_is_incomplete(self) -> None:
        events, incomplete = feed_in_chunks(b"\xef\xbb", 1)
        assert events == []
        assert incomplete is True

    def test_close_is_idempotent_and_feed_after_close_fails(self) -> None:
        decoder = SSEDecoder()
        decoder.feed(b"data: a")
        decoder.close()
        assert decoder.close() == []
        assert decoder.incomplete is True
        with pytest.raises(ValueError):
            decoder.feed(b"\n\n")


#: Exercises every rule at once: BOM, all three line ends (including CRLF),
#: comments, multi-line data, ids (one with NUL), retry, multi-byte UTF-8 and
#: an unterminated event at the end.
MIXED_STREAM = (
    b"\xef\xbb\xbf: hello\r\n"
    b"event: first\r\nid: 1\r\nretry: 250\r\ndata: line one\r\ndata:line two\r\n\r\n"
    b"data: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\xa6\xa6\rdata\r\r"
    b'id: bad\x00id\nevent: third\ndata:  spaced\n: comment\ndata: {"k": "v:w"}\n\n'
    b"event: nothing\n\n"
    b"\r\n\n\r"
    b"data: last\r\n\r"
    b"data: cut"
)
MIXED_EVENTS = [
    ServerSentEvent("first", "line one\nline two", "1", 250),
    ServerSentEvent("message", "caf\u00e9 \u20ac \U0001f9a6\n", "1", 250),
    ServerSentEvent("third", ' spaced\n{"k": "v:w"}', "1", 250),
    ServerSentEvent("message", "last", "1", 250),
]


class TestChunking:
    def test_mixed_stream_whole(self) -> None:
        events, incomplete = feed_in_chunks(MIXED_STREAM, len(MIXED_STREAM))
        assert events == MIXED_EVENTS
        assert incomplete is True

    def test_every_two_way_split(self) -> None:
        """Cutting the stream at any single point gives the same events."""
        for cut in range(len(MIXED_STREAM) + 1):
            decoder = SSEDecoder()
            events = decoder.feed(MIXED_STREAM[:cut]) + decoder.feed(MIXED_STREAM[cut:]) + decoder.close()
            assert events == MIXED_EVENTS, f"split at byte {cut}"
            assert decoder.incomplete is True

    @pytest.mark.parametrize("size", [1, 2, 3, 7, 65536])
    def test_fixed_chunk_sizes(self, size: int) -> None:
        assert feed_in_chunks(MIXED_STREAM, size) == (MIXED_EVENTS, True)

    def test_every_split_of_terminated_stream_is_complete(self) -> None:
        """Without the cut tail, no split leaves the stream incomplete."""
        stream = MIXED_STREAM[: MIXED_STREAM.rindex(b"data: cut")]
        for cut in range(len(stream) + 1):
            decoder = SSEDecoder()
            events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) + decoder.close()
            assert events == MIXED_EVENTS
            assert decoder.incomplete is False, f"split at byte {cut}"

    def test_irregular_chunk_sizes(self) -> None:
        assert feed_in_chunks(MIXED_STREAM, [5, 1, 1, 13, 2, 8]) == (MIXED_EVENTS, True)


def _image_event(kind: str, b64: str, **extra: object) -> str:
    body = {
        "type": kind,
        "b64_json": b64,
        "created_at": 1620000000,
        "size": "1024x1024",
        "quality": "high",
        "background": "transparent",
        "output_format": "png",
    }
    body.update(extra)
    return json.dumps(body, separators=(",", ":"))


class TestLargeEvents:
    @pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
    def test_openai_image_stream_with_5mb_partial_image(self, eol: str) -> None:
        """A 5 MB base64 ``data`` line in 64 KiB chunks decodes to the exact JSON text."""
        b64 = base64.b64encode(bytes(range(256)) * (5 * 1024 * 1024 * 3 // 4 // 256)).decode("ascii")
        assert len(b64) >= 5 * 1024 * 1024
        partial = _image_event("image_generation.partial_image", b64, partial_image_index=0)
        usage = {
            "total_tokens": 100,
            "input_tokens": 50,
            "output_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        }
        completed = _image_event("image_generation.completed", b64[:1000], usage=usage)
        text = (
            "event: image_generation.partial_image"
            + eol
            + "data: "
            + partial
            + eol
            + eol
            + "event: image_generation.completed"
            + eol
            + "data: "
            + completed
            + eol
            + eol
        )
        events, incomplete = feed_in_chunks(text.encode("ascii"), 65536)
        assert incomplete is False
        assert [e.event for e in events] == ["image_generation.partial_image", "image_generation.completed"]
        assert events[0].data == partial
        assert json.loads(events[0].data)["b64_json"] == b64
        assert events[1].data == completed
        assert json.loads(events[1].data)["usage"] == usage

    def test_8mb_line_in_1kb_chunks_scans_each_byte_at_most_twice(self) -> None:
        """No line limit, and the work is linear: the scan counter stays within 2x the input."""
        payload = b"A" * (8 * 1024 * 1024)
        stream = b"data: " + payload + b"\r\n\r\n"
        decoder = SSEDecoder()
        events: List[ServerSentEvent] = []
        for start in range(0, len(stream), 1024):
            events.extend(decoder.feed(stream[start : start + 1024]))
        events.extend(decoder.close())
        assert events == [msg(payload.decode("ascii"))]
        assert decoder.incomplete is False
        assert len(stream) <= decoder.bytes_scanned <= 2 * len(stream)

    def test_many_short_lines_in_one_chunk_scan_linearly(self) -> None:
        """With only LF line ends, the CR search must not rescan the rest of the chunk for every line."""
        stream = b"data: x\n\n" * 20000
        decoder = SSEDecoder()
        events = decoder.feed(stream)
        assert len(events) == 20000
        assert decoder.bytes_scanned <= 2 * len(stream)

    @pytest.mark.parametrize("size", [1, 7, 4096])
    def test_scan_count_is_linear_for_any_chunk_size(self, size: int) -> None:
        stream = (b"event: e\r\ndata: " + b"y" * 5000 + b"\r\n\r\n: c\r") * 20
        decoder = SSEDecoder()
        for start in range(0, len(stream), size):
            decoder.feed(stream[start : start + size])
        decoder.close()
        assert decoder.bytes_scanned <= 2 * len(stream)
