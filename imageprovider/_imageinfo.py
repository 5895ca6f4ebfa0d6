"""
imageprovider._imageinfo
~~~~~~~~~~~~~~~~~~~~~~~~

Reads the format, size and alpha of an input image from its header bytes, so
edit inputs can be checked before they are uploaded. Standard library only:
no pixel data is ever decompressed, and the few length fields that are
followed are bounds-checked and walked a bounded number of times, so a
corrupt or hostile file costs microseconds and never raises.
"""

import struct
from typing import Dict, NamedTuple, Optional

__all__ = [
    "ImageInfo",
    "read_image_info",
    "sniff_mime_type",
    "SNIFF_BYTES",
    "EXTENSIONS",
    "FORMAT_NAMES",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_SIGNATURES = (
    (_PNG_SIGNATURE, "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)

#: PNG dimensions above this are invalid (the spec limits them to 2**31 - 1).
_PNG_MAX_DIMENSION = 0x7FFFFFFF

#: How many chunks after IHDR are looked at for a tRNS before giving up.
#: Real files have a dozen or so before IDAT; jumping over a chunk is cheap,
#: but a file made of millions of empty chunks must not loop millions of times.
_PNG_MAX_CHUNKS = 1024

#: How many markers and fill bytes are stepped over looking for the SOF
#: segment. Fill bytes count too, or a run of 0xFF could loop for a long time.
_JPEG_MAX_STEPS = 4096

#: SOFn markers: every 0xC0-0xCF except DHT (0xC4), JPG (0xC8) and DAC (0xCC).
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

#: Markers without a length field: RST0-7, SOI, EOI (handled first) and TEM.
_JPEG_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD9)) | {0x01}


class ImageInfo(NamedTuple):
    """What the header of a PNG, JPEG or WEBP file says about the image."""

    #: ``"image/png"``, ``"image/jpeg"`` or ``"image/webp"``.
    mime_type: str
    #: Pixels; ``None`` when the signature matched but the header could not be read.
    width: Optional[int]
    #: Pixels; ``None`` exactly when ``width`` is.
    height: Optional[int]
    #: Whether the image can be transparent. ``False`` when it could not be told.
    has_alpha: bool


#: File extension for each format :func:`sniff_mime_type` tells.
EXTENSIONS: Dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
}
#: Those formats' names, for messages.
FORMAT_NAMES = "PNG, JPEG, WEBP, GIF or SVG"

#: Bytes of a file read to tell its format: enough for an SVG's XML prolog and a comment or two.
SNIFF_BYTES = 4096

_SVG_SKIPPED = ((b"<?", b"?>"), (b"<!--", b"-->"), (b"<!", b">"))


def sniff_mime_type(data: bytes) -> Optional[str]:
    """The format of an image from its first bytes (:data:`SNIFF_BYTES` suffice), else ``None``.

    ``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif`` (GIF87a,
    GIF89a) or ``image/svg+xml`` (an ``<svg`` element after an optional byte
    order mark, whitespace, XML declaration, comments and doctype).
    """
    for signature, mime_type in _SIGNATURES:
        if data.startswith(signature):
            return mime_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if _is_svg(data[:SNIFF_BYTES]):
        return "image/svg+xml"
    return None


def _is_svg(head: bytes) -> bool:
    position = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    # Each step skips one declaration, comment or doctype, so this ends within len(head) steps.
    while True:
        while position < len(head) and head[position] in b" \t\r\n":
            position += 1
        for start, end in _SVG_SKIPPED:
            if head.startswith(start, position):
                close = head.find(end, position + len(start))
                if close < 0:
                    return False
                position = close + len(end)
                break
        else:
            tag = head[position : position + 5]
            return tag[:4] == b"<svg" and (len(tag) == 4 or tag[4:] in b" \t\r\n/>")


def read_image_info(data: bytes) -> Optional[ImageInfo]:
    """Return the format, size and alpha of a PNG, JPEG or WEBP image from its header.

    Returns ``None`` when the signature is not one of those formats, and an
    :class:`ImageInfo` whose ``width`` and ``height`` are ``None`` when the
    signature matches but the header is truncated, corrupt or out of range.
    Never raises for any ``bytes`` value.

    Usage::

        >>> info = read_image_info(mask_bytes)
        >>> info.mime_type, info.width, info.height, info.has_alpha
        ('image/png', 1024, 1024, True)
    """
    mime_type = sniff_mime_type(data)
    if mime_type == "image/png":
        return _read_png(data)
    if mime_type == "image/jpeg":
        return _read_jpeg(data)
    if mime_type == "image/webp":
        return _read_webp(data)
    return None


def _sized(mime_type: str, width: int, height: int, has_alpha: bool) -> ImageInfo:
    # A zero dimension is never a usable image (a JPEG height of 0 means "defined
    # later by a DNL marker", which is not in the header): report it as unread.
    if width <= 0 or height <= 0:
        return ImageInfo(mime_type, None, None, has_alpha)
    return ImageInfo(mime_type, width, height, has_alpha)


def _read_png(data: bytes) -> ImageInfo:
    # IHDR must come first: length 13, type, then width, height, bit depth,
    # colour type, ... (its CRC is not needed to read the fields).
    if len(data) < 29:
        return ImageInfo("image/png", None, None, False)
    length, chunk_type, width, height, colour_type = struct.unpack_from(">I4sIIxB", data, 8)
    if length != 13 or chunk_type != b"IHDR":
        return ImageInfo("image/png", None, None, False)
    if colour_type in (4, 6):
        has_alpha = True
    elif colour_type in (0, 2, 3):
        has_alpha = _png_has_trns(data, colour_type)
    else:
        has_alpha = False
    if width > _PNG_MAX_DIMENSION or height > _PNG_MAX_DIMENSION:
        return ImageInfo("image/png", None, None, has_alpha)
    return _sized("image/png", width, height, has_alpha)


def _png_has_trns(data: bytes, colour_type: int) -> bool:
    """Whether a valid ``tRNS`` chunk comes before the first ``IDAT``."""
    size = len(data)
    position = 33  # signature (8) + IHDR chunk (4 + 4 + 13 + 4)
    palette_entries = 0
    for _ in range(_PNG_MAX_CHUNKS):
        if position + 8 > size:
            return False
        length, chunk_type = struct.unpack_from(">I4s", data, position)
        if length > _PNG_MAX_DIMENSION or not chunk_type.isalpha():
            return False
        if chunk_type in (b"IDAT", b"IEND"):
            return False
        end = position + 12 + length
        if end > size:
            return False
        if chunk_type == b"PLTE":
            palette_entries = length // 3
        elif chunk_type == b"tRNS":
            # libpng ignores a tRNS of the wrong size (and a palette one with no
            # PLTE before it), so the decoded image would be opaque.
            if colour_type == 0:
                return bool(length == 2)
            if colour_type == 2:
                return bool(length == 6)
            return bool(0 < length <= palette_entries)
        position = end
    return False


def _read_jpeg(data: bytes) -> ImageInfo:
    unread = ImageInfo("image/jpeg", None, None, False)
    size = len(data)
    position = 2  # after SOI
    steps = 0
    while steps < _JPEG_MAX_STEPS:
        if position >= size or data[position] != 0xFF:
            return unread
        # Any number of 0xFF fill bytes may precede a marker.
        while position < size and data[position] == 0xFF and steps < _JPEG_MAX_STEPS:
            position += 1
            steps += 1
        if position >= size or steps >= _JPEG_MAX_STEPS:
            return unread
        marker = data[position]
        position += 1
        if marker in (0x00, 0xD9, 0xDA):
            # A stuffed zero is not a marker; EOI or SOS before any SOF means the
            # header is missing.
            return unread
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if position + 2 > size:
            return unread
        (length,) = struct.unpack_from(">H", data, position)
        end = position + length
        if length < 2 or end > size:
            return unread
        if marker in _JPEG_SOF_MARKERS:
            if length < 8:  # length, precision, height, width, component count
                return unread
            height, width = struct.unpack_from(">HH", data, position + 3)
            return _sized("image/jpeg", width, height, False)
        position = end
    return unread


def _read_webp(data: bytes) -> ImageInfo:
    # RIFF <size> WEBP, then the first chunk: fourcc, little-endian size, data at 20.
    unread = ImageInfo("image/webp", None, None, False)
    size = len(data)
    if size < 20:
        return unread
    chunk_type, chunk_size = struct.unpack_from("<4sI", data, 12)
    if chunk_type == b"VP8 ":
        # Lossy: 3-byte frame tag, start code, 14-bit width and height (the top
        # two bits of each are an upscaling hint, not part of the size).
        if chunk_size < 10 or size < 30 or data[23:26] != b"\x9d\x01\x2a":
            return unread
        width, height = struct.unpack_from("<HH", data, 26)
        return _sized("image/webp", width & 0x3FFF, height & 0x3FFF, False)
    if chunk_type == b"VP8L":
        # Lossless: signature byte, then width-1 (14 bits), height-1 (14 bits),
        # alpha_is_used (1 bit) and a 3-bit version that must be 0.
        if chunk_size < 5 or size < 25 or data[20] != 0x2F:
            return unread
        (bits,) = struct.unpack_from("<I", data, 21)
        if bits >> 29 != 0:
            return unread
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo("image/webp", width, height, bool(bits & (1 << 28)))
    if chunk_type == b"VP8X":
        # Extended: flags (alpha is 0x10), 3 reserved bytes, then canvas
        # width-1 and height-1 as 24-bit little-endian numbers.
        if chunk_size < 10 or size < 30:
            return unread
        has_alpha = bool(data[20] & 0x10)
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("image/webp", width, height, has_alpha)
    return unread
