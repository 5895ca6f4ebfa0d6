"""
imageprovider._decoding
~~~~~~~~~~~~~~~~~~~~~~~

Content decoding with a bound on what comes out. urllib3 inflates a
``gzip`` or ``deflate`` body without limit (and 1.26 inflates stacked
encodings in one read), so a few kilobytes on the wire can become gigabytes
in memory. Bodies are therefore read raw and decoded here, each step asked
for at most a piece at a time, and the decoded total is checked against a
limit before it can grow past it.
"""

import zlib
from typing import Iterable, Iterator, List, Optional

#: Content encodings this library decodes (and so the only ones it asks for).
SUPPORTED = ("gzip", "x-gzip", "deflate", "identity")
#: Most encodings stacked on one body ("gzip, gzip" is legal; more is an attack).
MAX_STACKED = 2
#: Decoded bytes produced at a time, whatever the compression ratio.
PIECE_BYTES = 64 * 1024


class DecodingError(ValueError):
    """A body that cannot be decoded: an unsupported or corrupt encoding, or too many stacked."""


class TooLarge(ValueError):
    """The decoded body passed its limit.

    :ivar limit: the limit, in bytes.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit:,} bytes")
        self.limit = limit


def encodings_of(header: Optional[str]) -> List[str]:
    """The encodings of a ``Content-Encoding`` header, in the order they were applied.

    :raises DecodingError: an encoding this library does not decode, or too many.
    """
    names = [name.strip().lower() for name in (header or "").split(",") if name.strip()]
    names = [name for name in names if name != "identity"]
    for name in names:
        if name not in SUPPORTED:
            raise DecodingError(f"unsupported Content-Encoding {name[:40]!r}")
    if len(names) > MAX_STACKED:
        raise DecodingError(f"{len(names)} stacked content encodings (at most {MAX_STACKED} are decoded)")
    return names


class _Inflater:
    """One zlib stream (gzip members, or deflate with or without its zlib header), bounded per call."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._raw_deflate = False
        self._started = False
        self._new()

    def _new(self) -> None:
        if self._gzip:
            wbits = 16 + zlib.MAX_WBITS
        else:
            wbits = -zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, at most :data:`PIECE_BYTES` at a time."""
        pending = data
        while pending:
            try:
                piece = self._inflater.decompress(pending, PIECE_BYTES)
            except zlib.error as exc:
                if not self._gzip and not self._started and not self._raw_deflate:
                    # "deflate" is sent with and without the zlib header; try raw once, as browsers do.
                    self._raw_deflate = True
                    self._new()
                    continue
                raise DecodingError(f"corrupt compressed body ({exc})") from None
            self._started = True
            if piece:
                yield piece
            pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                rest = self._inflater.unused_data
                if not (self._gzip and rest):
                    return
                # Concatenated gzip members decode as one body.
                self._new()
                pending = rest
            elif not piece and not pending:
                return

    def finish(self) -> Iterator[bytes]:
        """What is left once the input has ended."""
        while True:
            piece = self._inflater.decompress(b"", PIECE_BYTES)
            if not piece:
                return
            yield piece


class ContentDecoder:
    """Decodes a body's stacked encodings, the total checked against ``limit`` as it grows.

    :param header: the ``Content-Encoding`` header.
    :param limit: most decoded bytes allowed (``None``: no limit).
    :raises DecodingError: from the constructor, for an encoding not decoded here.
    """

    def __init__(self, header: Optional[str], limit: Optional[int] = None) -> None:
        self._stages = [_Inflater(name) for name in reversed(encodings_of(header))]
        self.limit = limit
        #: Decoded bytes produced so far.
        self.total = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of the raw ``data``.

        :raises TooLarge: the decoded total passed the limit (before more is held in memory).
        :raises DecodingError: the compressed data is corrupt.
        """
        return self._count(self._through(0, [data]))

    def finish(self) -> Iterator[bytes]:
        """Decoded pieces still held once the raw body has ended."""
        return self._count(self._drain(0))

    def _through(self, stage: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if stage == len(self._stages):
            yield from pieces
            return
        inflater = self._stages[stage]
        for piece in pieces:
            yield from self._through(stage + 1, inflater.feed(piece))

    def _drain(self, stage: int) -> Iterator[bytes]:
        if stage == len(self._stages):
            return
        yield from self._through(stage + 1, self._stages[stage].finish())
        yield from self._drain(stage + 1)

    def _count(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.total += len(piece)
            if self.limit is not None and self.total > self.limit:
                raise TooLarge(self.limit)
            yield piece
