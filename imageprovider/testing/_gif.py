"""
imageprovider.testing._gif
~~~~~~~~~~~~~~~~~~~~~~~~~~

Real animated GIFs for ``output_format="gif"``, made with the standard
library alone: a GIF89a file that loops forever (``NETSCAPE2.0``), with one
Graphic Control Extension (the frame delay) and one full-size image per
frame. Each frame is horizontal colour bands from a hash of the seed with a
light vertical bar that moves from the left edge to the right one over the
animation; with ``transparent``, the left and right quarters are transparent
outside the bar.

Speed comes from the picture being made of long runs of one colour and from
an LZW encoder that works on runs, not pixels: within a run of colour ``c``
it only ever sends codes for the strings ``c``, ``cc``, ``ccc``... and every
code it sends makes the decoder add the next longer one, so a run of ``k``
pixels costs about ``sqrt(2k)`` codes the first time and fewer after. A
1024x1024 GIF of 9 frames takes a few tens of milliseconds.
"""

import functools
import hashlib
import struct
from typing import Dict, Iterable, Iterator, List, Tuple

__all__ = ["make_gif", "delay_centiseconds"]

#: Palette entries; a power of two, so the LZW minimum code size is 7.
_PALETTE_SIZE = 128
_MIN_CODE_SIZE = 7
#: Colour bands from top to bottom (palette entries 0 to _BANDS - 1).
_BANDS = 16
#: Palette entry of the moving bar.
_BAR = _PALETTE_SIZE - 2
#: Palette entry of transparent pixels (black when opaque).
_CLEAR = _PALETTE_SIZE - 1
#: LZW codes are at most 12 bits; the table is restarted before it fills (as giflib does).
_MAX_CODE_SIZE = 12
_RESTART_AT = (1 << _MAX_CODE_SIZE) - 1

Run = Tuple[int, int]  # palette index, pixel count


def delay_centiseconds(frame_duration_ms: int) -> int:
    """A frame duration in GIF units (1/100 s), rounded to the nearest 10 ms, at least 1."""
    return max(1, (frame_duration_ms + 5) // 10)


def make_gif(
    width: int,
    height: int,
    *,
    frame_count: int = 9,
    frame_duration_ms: int = 200,
    seed: str = "",
    transparent: bool = False,
) -> bytes:
    """An animated GIF89a: ``frame_count`` frames of ``width`` x ``height``, each shown ``frame_duration_ms``.

    Usage::

        >>> data = make_gif(64, 32, frame_count=3)
        >>> data[:6], data[-1:]
        (b'GIF89a', b';')

    :raises ValueError: a dimension outside 1-65535, fewer than 1 frame, or a duration below 1 ms.
    """
    if not (1 <= width <= 0xFFFF and 1 <= height <= 0xFFFF):
        raise ValueError(f"width and height must be from 1 to 65535, not {width}x{height}")
    if frame_count < 1 or frame_duration_ms < 1:
        raise ValueError("frame_count and frame_duration_ms must be at least 1")
    return _make_gif(int(width), int(height), int(frame_count), int(frame_duration_ms), str(seed), bool(transparent))


@functools.lru_cache(maxsize=8)
def _make_gif(width: int, height: int, frame_count: int, frame_duration_ms: int, seed: str, transparent: bool) -> bytes:
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    # Logical screen: global colour table of 2**(6+1) entries, 8-bit colour resolution.
    packed = 0x80 | (7 << 4) | (_MIN_CODE_SIZE - 1)
    parts: List[bytes] = [
        b"GIF89a",
        struct.pack("<HHBBB", width, height, packed, _CLEAR if transparent else 0, 0),
        _palette(digest),
        # Loop forever.
        b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00",
    ]
    delay = delay_centiseconds(frame_duration_ms)
    # With transparency each frame replaces the last (disposal 2); else it is drawn over it (disposal 1).
    control = ((2 << 2) | 1) if transparent else (1 << 2)
    bar_width = max(1, width // 8)
    for index in range(frame_count):
        left = (index * (width - bar_width)) // (frame_count - 1) if frame_count > 1 else 0
        parts.append(b"\x21\xf9\x04" + struct.pack("<BHB", control, delay, _CLEAR if transparent else 0) + b"\x00")
        parts.append(b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0))
        parts.append(bytes([_MIN_CODE_SIZE]))
        parts.append(_sub_blocks(_lzw(_frame_runs(width, height, left, bar_width, transparent))))
    parts.append(b"\x3b")
    return b"".join(parts)


def _palette(digest: bytes) -> bytes:
    """Band colours on a gradient through three colours of the digest, a light bar colour, black."""
    stops = (digest[0:3], digest[3:6], digest[6:9])
    colours = []
    for band in range(_BANDS):
        position = 2 * band / (_BANDS - 1)
        segment = min(int(position), 1)
        fraction = position - segment
        start, end = stops[segment], stops[segment + 1]
        colours.append(bytes(int(a + (b - a) * fraction + 0.5) for a, b in zip(start, end)))
    table = b"".join(colours) + b"\x00\x00\x00" * (_PALETTE_SIZE - _BANDS)
    bar = bytes(255 - (value >> 2) for value in digest[9:12])  # light, so it shows on any band
    return table[: 3 * _BAR] + bar + b"\x00\x00\x00"


def _frame_runs(width: int, height: int, left: int, bar_width: int, transparent: bool) -> Iterator[Run]:
    """The frame's pixels, row by row, as runs of one palette entry (equal neighbours merged)."""
    right = left + bar_width
    edge = width // 4 if transparent else 0
    previous_colour, previous_count = -1, 0
    band_of_row = [row * _BANDS // height for row in range(height)]
    row_runs: Dict[int, List[Run]] = {}
    for band in band_of_row:
        runs = row_runs.get(band)
        if runs is None:
            # Columns: [clear][band][bar][band][clear]; empty pieces are dropped.
            cuts = sorted({0, edge, left, right, width - edge, width})
            runs = []
            for start, stop in zip(cuts, cuts[1:]):
                if left <= start < right:
                    colour = _BAR
                elif start < edge or start >= width - edge:
                    colour = _CLEAR
                else:
                    colour = band
                if runs and runs[-1][0] == colour:
                    runs[-1] = (colour, runs[-1][1] + stop - start)
                else:
                    runs.append((colour, stop - start))
            row_runs[band] = runs
        for colour, count in runs:
            if colour == previous_colour:
                previous_count += count
                continue
            if previous_count:
                yield previous_colour, previous_count
            previous_colour, previous_count = colour, count
    if previous_count:
        yield previous_colour, previous_count


def _lzw(runs: Iterable[Run]) -> bytes:
    """GIF LZW data for a stream of runs, minimum code size :data:`_MIN_CODE_SIZE`.

    The encoder keeps the decoder's table in step. The decoder adds one entry
    per code (but the first after a clear): the previous code's string plus the
    first pixel of this one. Every code sent here stands for a run ``c * m``,
    so when the previous code was ``c * L`` and this one starts with ``c``, the
    new entry is ``c * (L + 1)``; ``chains[c][m - 1]`` is the code of ``c * m``.
    A code may also be the entry being added (``c * (L + 1)`` right after
    ``c * L``), the usual LZW special case every decoder handles.
    """
    clear = 1 << _MIN_CODE_SIZE
    end = clear + 1
    out = bytearray()
    bits = 0
    pending = 0

    next_code = end + 1
    size = _MIN_CODE_SIZE + 1
    chains: Dict[int, List[int]] = {}
    previous_colour, previous_length = -1, 0  # previous_length 0: no code since the clear

    # Codes are packed least significant bit first, flushed a byte at a time.
    pending |= clear << bits
    bits += size
    for colour, length in runs:
        remaining = length
        while remaining:
            chain = chains.get(colour)
            if chain is None:
                chain = chains[colour] = [colour]
            longest = len(chain)
            extends = previous_colour == colour and previous_length == longest
            if extends and longest < remaining:
                code, taken = next_code, longest + 1  # the entry the decoder is about to add
            else:
                taken = longest if longest < remaining else remaining
                code = chain[taken - 1]
            pending |= code << bits
            bits += size
            while bits >= 8:
                out.append(pending & 0xFF)
                pending >>= 8
                bits -= 8
            if previous_length:
                if extends:
                    chain.append(next_code)
                next_code += 1
                if next_code == 1 << size and size < _MAX_CODE_SIZE:
                    size += 1
            previous_colour, previous_length = colour, taken
            remaining -= taken
            if next_code >= _RESTART_AT:
                pending |= clear << bits
                bits += size
                next_code, size, chains = end + 1, _MIN_CODE_SIZE + 1, {}
                previous_colour, previous_length = -1, 0
    pending |= end << bits
    bits += size
    while bits > 0:
        out.append(pending & 0xFF)
        pending >>= 8
        bits -= 8
    return bytes(out)


def _sub_blocks(data: bytes) -> bytes:
    """Data sub-blocks of at most 255 bytes, then the block terminator."""
    view = memoryview(data)
    pieces = []
    for start in range(0, len(data), 255):
        piece = view[start : start + 255]
        pieces.append(bytes([len(piece)]) + piece.tobytes())
    pieces.append(b"\x00")
    return b"".join(pieces)
