"""
imageprovider.testing._images
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

Real image files for the stand-in images server, made with the standard
library alone. PNGs are drawn to the requested size: a top-to-bottom gradient
whose colours come from a hash of the seed (the prompt), with seeded noise in the
low bits of each colour so that the compressed size, and so the size of the
base64 in a response, is close to what the real API sends. JPEG and WEBP are
small fixed samples: no encoder for them is in the standard library.

Everything here is deterministic: the same arguments give the same bytes
(with the same zlib build), so tests can compare images byte for byte.

These are still images; animated GIFs come from :mod:`._gif` and SVG
documents from :mod:`._svg`.
"""

import base64
import functools
import hashlib
import operator
import random
import struct
import zlib
from typing import List

__all__ = [
    "DEFAULT_DETAIL_BITS",
    "SAMPLE_JPEG",
    "SAMPLE_WEBP",
    "SAMPLE_WEBP_ALPHA",
    "make_image",
    "make_png",
]

#: How many low bits of each colour sample are noise. 0 gives a small, smooth
#: PNG; 2 gives a 1024x1024 RGB PNG of about 1.2 MB, like a real generated image;
#: 8 gives noise alone, which zlib cannot compress.
DEFAULT_DETAIL_BITS = 2

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Level 2: as fast as level 1 here and a little smaller. The noise, not the
#: level, sets the size, and slower levels gain little on it. (zlib-ng's level 1
#: uses fixed Huffman codes, which would not compress the noise at all.)
_ZLIB_LEVEL = 2

#: Scanlines are made, noised and compressed about this many bytes at a time,
#: so a 3840x2160 image never holds more than a few copies of one band.
_BAND_BYTES = 1 << 20

#: Compressed data is split into IDAT chunks of at most this size, as encoders
#: do, so readers that join several IDATs are exercised.
_IDAT_CHUNK_BYTES = 1 << 16

# 16x16 gradients written once by Pillow (quality 75; the WEBP with alpha is
# lossless, its left and right quarters transparent). Pillow is not needed to
# use them; they only have to be valid files of their formats.

#: A small baseline JPEG (16x16, RGB), returned for ``output_format="jpeg"``.
SAMPLE_JPEG: bytes = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAx"
    "NDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
    "MjIyMjIyMjL/wAARCAAQABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
    "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
    "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDz+x0Lp8ldNYaF0+SulsNC6fJXT2OhdPkrTF5r5i4fzvbU/9k="
)

#: A small lossy WEBP (16x16, ``VP8 ``, no alpha), returned for ``output_format="webp"``.
SAMPLE_WEBP: bytes = base64.b64decode(
    "UklGRlAAAABXRUJQVlA4IEQAAADwAQCdASoQABAAAgA0JbACdAEPC/vL1QAA/vxrUVaE1U+Ecy6/cFnZ//BZZvJta7pDdcdXZBV/"
    "+AYL//88f/P0MgAAAA=="
)

#: A small lossless WEBP with alpha (16x16, ``VP8L``), for a transparent background.
SAMPLE_WEBP_ALPHA: bytes = base64.b64decode(
    "UklGRj4AAABXRUJQVlA4TDIAAAAvD8ADELkyRPQ/dhHR/4CZtm0Mofzxdtu5VyCQ4hBGegAFBEX+jzYBCAB80RH0AK6/AQ=="
)


def make_image(
    output_format: str,
    width: int,
    height: int,
    *,
    seed: str = "",
    transparent: bool = False,
    detail_bits: int = DEFAULT_DETAIL_BITS,
) -> bytes:
    """Return an image file in ``output_format`` (``"png"``, ``"jpeg"`` or ``"webp"``).

    Only PNGs are drawn to ``width`` x ``height``: JPEG and WEBP are the fixed
    16x16 samples above (:data:`SAMPLE_WEBP_ALPHA` when ``transparent``; JPEG
    has no alpha, so ``transparent`` is ignored for it).

    :raises ValueError: for any other format, or bad arguments for a PNG.
    """
    if output_format == "png":
        return make_png(width, height, seed=seed, transparent=transparent, detail_bits=detail_bits)
    if output_format == "jpeg":
        return SAMPLE_JPEG
    if output_format == "webp":
        return SAMPLE_WEBP_ALPHA if transparent else SAMPLE_WEBP
    raise ValueError(f"output_format must be 'png', 'jpeg' or 'webp', not {output_format!r}")


def make_png(
    width: int, height: int, *, seed: str = "", transparent: bool = False, detail_bits: int = DEFAULT_DETAIL_BITS
) -> bytes:
    """Return a PNG of exactly ``width`` x ``height`` pixels, 8 bits per sample.

    RGB (colour type 2), or RGBA (colour type 6) when ``transparent``: then the
    left and right quarters are fully transparent and the middle is opaque (an
    image 1 pixel wide is opaque; from 2 pixels on there is always both).
    ``seed`` picks the colours and the noise; ``detail_bits`` (0 to 8) is how
    many low bits of each colour sample are noise. Results are cached, so the
    same call again costs nothing.

    Usage::

        >>> data = make_png(1024, 1024, seed="a red fox")
        >>> data[:8], 500_000 < len(data) < 1_500_000
        (b'\\x89PNG\\r\\n\\x1a\\n', True)

    :raises ValueError: if a dimension is below 1 or ``detail_bits`` is not 0 to 8.
    :raises TypeError: if a dimension or ``detail_bits`` is not an integer.
    """
    # Normalised first, so equal requests share one cache entry however they
    # were spelled; operator.index refuses floats rather than truncating them.
    width, height, detail_bits = operator.index(width), operator.index(height), operator.index(detail_bits)
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be at least 1, not {width}x{height}")
    if not 0 <= detail_bits <= 8:
        raise ValueError(f"detail_bits must be from 0 to 8, not {detail_bits}")
    return _make_png(width, height, str(seed), bool(transparent), detail_bits)


@functools.lru_cache(maxsize=16)
def _make_png(width: int, height: int, seed: str, transparent: bool, detail_bits: int) -> bytes:
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    colours = _row_colours(height, digest)
    channels = 4 if transparent else 3
    stride = 1 + width * channels  # filter byte, then the samples
    # One bit set per noisy bit: never the filter byte (0 = no filter) nor alpha.
    sample_mask = bytes([(1 << detail_bits) - 1]) * 3 + (b"\x00" if transparent else b"")
    mask_row = b"\x00" + sample_mask * width
    # Seeded noise that makes the PNG incompressible, not a secret.
    rng = random.Random(int.from_bytes(digest, "big"))  # noqa: S311 (image noise, not a secret)

    compressor = zlib.compressobj(_ZLIB_LEVEL)
    compressed: List[bytes] = []
    band_rows = max(1, _BAND_BYTES // stride)
    for top in range(0, height, band_rows):
        count = min(band_rows, height - top)
        band = b"".join(_scanline(colour, width, transparent) for colour in colours[top : top + count])
        if detail_bits:
            # Whole-band integer arithmetic: one C-level AND and XOR over a
            # megabyte instead of millions of per-pixel Python operations.
            size = count * stride
            noise = rng.getrandbits(size * 8) & int.from_bytes(mask_row * count, "big")
            band = (int.from_bytes(band, "big") ^ noise).to_bytes(size, "big")
        compressed.append(compressor.compress(band))
    compressed.append(compressor.flush())
    data = b"".join(compressed)

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if transparent else 2, 0, 0, 0)
    chunks = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    view = memoryview(data)
    for start in range(0, len(data), _IDAT_CHUNK_BYTES):
        chunks.append(_chunk(b"IDAT", view[start : start + _IDAT_CHUNK_BYTES].tobytes()))
    chunks.append(_chunk(b"IEND", b""))
    return b"".join(chunks)


def _row_colours(height: int, digest: bytes) -> List[bytes]:
    """One RGB colour per row: a gradient through three colours from the digest."""
    # Only vertical: with no PNG filter, zlib codes each noisy byte on its own,
    # so the cost of a row is about log2(distinct values in it) + detail_bits.
    # One colour per row keeps that to three values; a left-to-right gradient
    # would make every value appear in every row and the file half as big again.
    stops = (digest[0:3], digest[3:6], digest[6:9])
    last = max(height - 1, 1)
    colours = []
    for y in range(height):
        position = 2 * y / last
        segment = min(int(position), 1)
        fraction = position - segment
        start, end = stops[segment], stops[segment + 1]
        colours.append(bytes(int(a + (b - a) * fraction + 0.5) for a, b in zip(start, end)))
    return colours


def _scanline(colour: bytes, width: int, transparent: bool) -> bytes:
    """A filter byte of 0, then ``width`` pixels of ``colour`` (with an alpha mask)."""
    if not transparent:
        return b"\x00" + colour * width
    # Transparent left and right quarters, opaque middle; from 2 pixels on the
    # left quarter has at least one pixel, so every such image has both.
    left = max(1, width // 4) if width > 1 else 0
    right = width // 4
    clear, opaque = colour + b"\x00", colour + b"\xff"
    return b"\x00" + clear * left + opaque * (width - left - right) + clear * right


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))
