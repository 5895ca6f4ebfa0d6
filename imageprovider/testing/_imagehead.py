"""
imageprovider.testing._imagehead
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

The stand-in's own reader of image headers: the format from the bytes, the
dimensions and whether there is an alpha channel, for the three formats the
API takes as input (PNG, JPEG, WEBP). It is deliberately separate from the
client's reader, so that a bug there is not repeated here.

Only headers are read: PNG ``IHDR`` (colour type) and a ``tRNS`` chunk before
the image data, the JPEG start-of-frame segment, and the WEBP ``VP8``,
``VP8L`` or ``VP8X`` chunk.
"""

import struct
from typing import NamedTuple, Optional

__all__ = ["ImageHead", "read_head", "MIME_TYPES"]

#: Format name -> MIME type.
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers that stand alone, without a length: TEM, RST0-7.
_STANDALONE_MARKERS = frozenset([0x01] + list(range(0xD0, 0xD8)))


class ImageHead(NamedTuple):
    """What the header of an input image says."""

    #: ``"png"``, ``"jpeg"`` or ``"webp"``.
    format: str
    width: int
    height: int
    has_alpha: bool

    @property
    def mime_type(self) -> str:
        """``image/png``, ``image/jpeg`` or ``image/webp``."""
        return MIME_TYPES[self.format]


def read_head(data: bytes) -> Optional[ImageHead]:
    """The format, size and alpha of a PNG, JPEG or WEBP; ``None`` for anything else or a broken header."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            return _png(data)
        if data.startswith(b"\xff\xd8\xff"):
            return _jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        return None
    return None


def _png(data: bytes) -> Optional[ImageHead]:
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        return None
    width, height, _depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    if width == 0 or height == 0 or colour_type not in (0, 2, 3, 4, 6):
        return None
    alpha = colour_type in (4, 6)
    position = 8 + 12 + length
    # A tRNS chunk (before the first IDAT) gives palette and grey/RGB images transparency.
    while not alpha and position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind in (b"IDAT", b"IEND"):
            break
        alpha = kind == b"tRNS"
        position += 12 + length
    return ImageHead("png", width, height, alpha)


def _jpeg(data: bytes) -> Optional[ImageHead]:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or start of scan before any frame header
            return None
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", data, position + 5)
            if width == 0 or height == 0:
                return None
            return ImageHead("jpeg", width, height, False)
        if length < 2:
            return None
        position += 2 + length
    return None


def _webp(data: bytes) -> Optional[ImageHead]:
    kind = data[12:16]
    payload = 20
    if kind == b"VP8X":
        if len(data) < payload + 10:
            return None
        flags = data[payload]
        width = 1 + int.from_bytes(data[payload + 4 : payload + 7], "little")
        height = 1 + int.from_bytes(data[payload + 7 : payload + 10], "little")
        return ImageHead("webp", width, height, bool(flags & 0x10))
    if kind == b"VP8L":
        if data[payload] != 0x2F:
            return None
        (bits,) = struct.unpack_from("<I", data, payload + 1)
        width = 1 + (bits & 0x3FFF)
        height = 1 + ((bits >> 14) & 0x3FFF)
        return ImageHead("webp", width, height, bool((bits >> 28) & 1))
    if kind == b"VP8 ":
        # A 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
        if data[payload + 3 : payload + 6] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", data, payload + 6)
        width, height = width & 0x3FFF, height & 0x3FFF
        if width == 0 or height == 0:
            return None
        return ImageHead("webp", width, height, False)
    return None
