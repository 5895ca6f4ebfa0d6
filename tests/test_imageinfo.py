"""Input images are described from their header bytes alone: format, size, alpha, and never an exception."""

import random
import struct
import zlib
from typing import Iterator, List, Optional, Tuple

import pytest
from helpers import PNG as HELPER_PNG
from helpers import jpeg_segment, png_chunk

from imageprovider import results
from imageprovider._imageinfo import ImageInfo, read_image_info, sniff_mime_type

# --- PNG: a small but honest encoder (real zlib data, real CRCs) -------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Samples per pixel for each colour type.
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Four palette entries, so a palette tRNS may hold 1 to 4 alpha values.
PALETTE = bytes(range(12))


def make_png(
    width: int,
    height: int,
    colour_type: int,
    *,
    bit_depth: int = 8,
    trns: Optional[bytes] = None,
    trns_after_idat: bool = False,
    before_idat: Tuple[bytes, ...] = (),
) -> bytes:
    """A PNG of all-zero pixels; palette images get a 4-entry PLTE after ``before_idat``."""
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))]
    chunks.extend(before_idat)
    if colour_type == 3:
        chunks.append(png_chunk(b"PLTE", PALETTE))
    transparency = png_chunk(b"tRNS", trns) if trns is not None else b""
    if not trns_after_idat:
        chunks.append(transparency)
    stride = (width * CHANNELS[colour_type] * bit_depth + 7) // 8
    chunks.append(png_chunk(b"IDAT", zlib.compress((b"\x00" + bytes(stride)) * height)))
    if trns_after_idat:
        chunks.append(transparency)
    chunks.append(png_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def iter_png_chunks(data: bytes) -> Iterator[Tuple[bytes, bytes, int]]:
    position = len(PNG_SIGNATURE)
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack_from(">I", data, position + 8 + length)
        yield kind, body, crc
        position += 12 + length


# --- JPEG: valid marker structure; the scan data is not meant to decode -------

JPEG_SOI = b"\xff\xd8"
JPEG_APP0 = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
JPEG_DQT = jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
# One 1-bit code for symbol 0. Its bytes at segment offsets 3 and 5 are
# 0x0100 and 0x0000, which must not be taken for a height and width.
JPEG_DHT = jpeg_segment(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x00")
JPEG_SOS = jpeg_segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00")
JPEG_SCAN = b"\x12\x34\xff\x00\x56\xff\xd9"  # entropy bytes (with a stuffed 0xFF), then EOI


def jpeg_sof(width: int, height: int, marker: int = 0xC0) -> bytes:
    components = b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return jpeg_segment(marker, struct.pack(">BHHB", 8, height, width, 3) + components)


def make_jpeg(width: int, height: int, *, marker: int = 0xC0, before_sof: bytes = b"") -> bytes:
    return (
        JPEG_SOI + JPEG_APP0 + JPEG_DQT + before_sof + jpeg_sof(width, height, marker) + JPEG_DHT + JPEG_SOS + JPEG_SCAN
    )


# --- WEBP: the three first-chunk layouts ---------------------------------------


def riff_webp(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunk(fourcc: bytes, payload: bytes) -> bytes:
    padding = b"\x00" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + padding


def vp8_payload(width: int, height: int, scale: int = 0) -> bytes:
    partition = bytes(8)
    tag = 0 | (0 << 1) | (1 << 4) | (len(partition) << 5)  # key frame, version 0, shown, partition size
    dimensions = struct.pack("<HH", width | (scale << 14), height | (scale << 14))
    return struct.pack("<I", tag)[:3] + b"\x9d\x01\x2a" + dimensions + partition


def make_webp_lossy(width: int, height: int, scale: int = 0) -> bytes:
    return riff_webp(webp_chunk(b"VP8 ", vp8_payload(width, height, scale)))


def make_webp_lossless(width: int, height: int, alpha: bool, version: int = 0) -> bytes:
    bits = (width - 1) | ((height - 1) << 14) | (int(alpha) << 28) | (version << 29)
    return riff_webp(webp_chunk(b"VP8L", b"\x2f" + struct.pack("<I", bits) + bytes(4)))


def make_webp_extended(width: int, height: int, alpha: bool) -> bytes:
    flags = 0x10 if alpha else 0x00
    header = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunks = [webp_chunk(b"VP8X", header)]
    if width <= 0x3FFF and height <= 0x3FFF:  # otherwise just the canvas, as if the frames followed
        if alpha:
            chunks.append(webp_chunk(b"ALPH", bytes(4)))
        chunks.append(webp_chunk(b"VP8 ", vp8_payload(width, height)))
    return riff_webp(*chunks)


BIG_RGBA_PNG = make_png(1024, 1536, 6)

#: Every valid sample, for the truncation and corruption loops.
SAMPLES: List[bytes] = [
    make_png(1, 1, 0),
    make_png(3, 2, 2),
    make_png(3, 2, 3, trns=b"\x00\x80"),
    make_png(3, 2, 4),
    make_png(3, 2, 0, trns=b"\x00\x00"),
    make_png(2, 2, 2, trns=bytes(6), before_idat=(png_chunk(b"gAMA", struct.pack(">I", 45455)),)),
    BIG_RGBA_PNG,
    HELPER_PNG,
    make_jpeg(3, 2),
    make_jpeg(1024, 1536, marker=0xC2),
    make_webp_lossy(3, 2),
    make_webp_lossless(3, 2, alpha=True),
    make_webp_extended(3, 2, alpha=True),
    make_webp_extended(1024, 1536, alpha=False),
]


def assert_well_formed(info: Optional[ImageInfo]) -> None:
    if info is None:
        return
    assert isinstance(info, ImageInfo)
    assert info.mime_type in ("image/png", "image/jpeg", "image/webp")
    assert isinstance(info.has_alpha, bool)
    if info.width is None:
        assert info.height is None
    else:
        assert type(info.width) is int and type(info.height) is int
        assert info.width > 0 and info.height > 0


# --- The public shape -----------------------------------------------------------


def test_image_info_is_a_named_tuple_with_four_fields():
    """Callers may unpack it or use the attribute names."""
    assert ImageInfo._fields == ("mime_type", "width", "height", "has_alpha")
    assert tuple(ImageInfo("image/png", 3, 2, True)) == ("image/png", 3, 2, True)


@pytest.mark.parametrize(
    "data",
    [
        make_png(1, 1, 2),
        make_jpeg(1, 1),
        make_webp_lossy(1, 1),
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"RIFF\x00\x00\x00\x00WEB",
        b"RIFF\x00\x00\x00\x00WAVE",
        b"GIF89a",
        b"",
        b"\x89PNG",
    ],
    ids=[
        "png",
        "jpeg",
        "webp",
        "png-signature",
        "jpeg-signature",
        "riff-webp",
        "riff-web",
        "riff-wave",
        "gif",
        "empty",
        "png-prefix",
    ],
)
def test_sniff_mime_type_behaves_like_the_one_in_results(data):
    """results.py can import it from here without a change in behaviour."""
    assert sniff_mime_type(data) == results.sniff_mime_type(data)


# --- PNG --------------------------------------------------------------------------


def test_png_builder_writes_honest_chunks():
    """The test images are real PNGs: every CRC matches and IDAT inflates to the right size."""
    for data, (width, height, channels) in ((BIG_RGBA_PNG, (1024, 1536, 4)), (SAMPLES[2], (3, 2, 1))):
        chunks = list(iter_png_chunks(data))
        assert [kind for kind, _, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
        for kind, body, crc in chunks:
            assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        idat = b"".join(body for kind, body, _ in chunks if kind == b"IDAT")
        assert len(zlib.decompress(idat)) == height * (1 + width * channels)


@pytest.mark.parametrize(
    "colour_type, width, height, bit_depth, trns, has_alpha",
    [
        (0, 1, 1, 8, None, False),
        (0, 3, 2, 16, None, False),
        (2, 3, 2, 8, None, False),
        (2, 1536, 1024, 8, None, False),
        (3, 1, 1, 8, None, False),
        (3, 3, 2, 4, None, False),
        (4, 1, 1, 8, None, True),
        (4, 3, 2, 8, None, True),
        (6, 1, 1, 8, None, True),
        (6, 3, 2, 16, None, True),
        (6, 1024, 1536, 8, None, True),
        (0, 3, 2, 8, b"\x00\x00", True),
        (2, 3, 2, 8, b"\x00\x00\x00\x00\x00\x00", True),
        (3, 3, 2, 8, b"\x00", True),
        (3, 1024, 1024, 8, b"\x00\x80\xff\xff", True),
    ],
)
def test_png_size_and_alpha(colour_type, width, height, bit_depth, trns, has_alpha):
    """Width and height come from IHDR; alpha from colour types 4 and 6, or a tRNS before IDAT."""
    data = make_png(width, height, colour_type, bit_depth=bit_depth, trns=trns)
    assert read_image_info(data) == ImageInfo("image/png", width, height, has_alpha)


def test_the_shared_helper_png_is_read():
    """tests/helpers.py's PNG is a 2x2 RGB image without transparency."""
    assert read_image_info(HELPER_PNG) == ImageInfo("image/png", 2, 2, False)


def test_png_trns_after_ancillary_chunks_still_counts():
    """The chunk walk steps over gAMA, tEXt and friends to reach tRNS."""
    extras = (
        png_chunk(b"gAMA", struct.pack(">I", 45455)),
        png_chunk(b"tEXt", b"Comment\x00" + b"x" * 5000),
        png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
    )
    assert read_image_info(make_png(3, 2, 2, trns=bytes(6), before_idat=extras)).has_alpha is True


@pytest.mark.parametrize("colour_type, trns", [(0, b"\x00\x00"), (2, bytes(6)), (3, b"\x00")])
def test_png_trns_after_idat_is_not_alpha(colour_type, trns):
    """Only a tRNS before the first IDAT is valid; the walk stops at IDAT."""
    info = read_image_info(make_png(3, 2, colour_type, trns=trns, trns_after_idat=True))
    assert info == ImageInfo("image/png", 3, 2, False)


@pytest.mark.parametrize(
    "colour_type, trns, before_idat",
    [
        (0, bytes(6), ()),
        (2, b"\x00\x00", ()),
        (3, bytes(5), ()),
        (3, b"", ()),
        (3, None, (png_chunk(b"tRNS", b"\x00"),)),
    ],
    ids=["grey-6-bytes", "rgb-2-bytes", "palette-longer-than-PLTE", "palette-empty", "palette-before-PLTE"],
)
def test_png_trns_that_decoders_ignore_is_not_alpha(colour_type, trns, before_idat):
    """A tRNS of the wrong size, or a palette tRNS before PLTE, leaves the decoded image opaque."""
    info = read_image_info(make_png(3, 2, colour_type, trns=trns, before_idat=before_idat))
    assert info == ImageInfo("image/png", 3, 2, False)


@pytest.mark.parametrize(
    "after_ihdr",
    [
        struct.pack(">I", 0xFFFFFFFF) + b"tEXt",
        struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"x" * 100,
        struct.pack(">I", 4) + b"t\x00NS" + bytes(8),
        struct.pack(">I", 2) + b"tRNS\x00",
        b"",
    ],
    ids=["length-over-2**31", "length-past-end", "bad-chunk-type", "truncated-tRNS", "nothing"],
)
def test_png_inconsistent_chunk_list_stops_the_walk(after_ihdr):
    """Dimensions still come from IHDR; the walk just finds no tRNS."""
    head = make_png(3, 2, 0)[:33]  # grey: a 2-byte tRNS would be valid
    assert read_image_info(head + after_ihdr) == ImageInfo("image/png", 3, 2, False)


@pytest.mark.parametrize(
    "data",
    [
        PNG_SIGNATURE,
        PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR",
        PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 3, 2),
        PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBB", 3, 2, 8, 6, 0, 0)),
        PNG_SIGNATURE + png_chunk(b"gAMA", struct.pack(">I", 45455)) + make_png(3, 2, 6)[8:],
        PNG_SIGNATURE + png_chunk(b"IHDX", struct.pack(">IIBBBBB", 3, 2, 8, 6, 0, 0, 0)),
    ],
    ids=["signature-only", "no-ihdr-data", "ihdr-cut-after-size", "ihdr-12-bytes", "ihdr-not-first", "not-ihdr"],
)
def test_png_with_missing_or_short_ihdr_has_no_size(data):
    """The signature says PNG, but there is no size to report: width None, no exception."""
    assert read_image_info(data) == ImageInfo("image/png", None, None, False)


@pytest.mark.parametrize("width, height", [(0, 2), (3, 0), (0x80000000, 2), (3, 0xFFFFFFFF)])
def test_png_out_of_range_size_is_not_reported(width, height):
    """Zero and > 2**31-1 are invalid in PNG, so they are reported as unread."""
    data = PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    assert read_image_info(data) == ImageInfo("image/png", None, None, True)


# --- JPEG -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width, height, marker",
    [
        (1, 1, 0xC0),
        (3, 2, 0xC0),
        (1024, 1536, 0xC0),
        (1536, 1024, 0xC2),
        (2, 3, 0xC2),
        (65535, 65534, 0xC2),
    ],
)
def test_jpeg_size(width, height, marker):
    """Height then width come from the SOF segment; JPEG never has alpha."""
    assert read_image_info(make_jpeg(width, height, marker=marker)) == ImageInfo("image/jpeg", width, height, False)


@pytest.mark.parametrize("marker", sorted(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}), ids=hex)
def test_jpeg_every_sof_marker_holds_the_size(marker):
    """Baseline, progressive, lossless, hierarchical and arithmetic SOFs all have the same layout."""
    assert read_image_info(make_jpeg(5, 7, marker=marker)) == ImageInfo("image/jpeg", 5, 7, False)


@pytest.mark.parametrize("marker", [0xC4, 0xC8, 0xCC], ids=hex)
def test_jpeg_dht_jpg_and_dac_are_not_sof(marker):
    """These sit in the 0xC0-0xCF range but hold tables; with no real SOF there is no size."""
    assert read_image_info(make_jpeg(5, 7, marker=marker)) == ImageInfo("image/jpeg", None, None, False)


def test_jpeg_dht_before_sof_is_skipped():
    """A DHT segment's bytes are not read as a size."""
    assert read_image_info(make_jpeg(640, 480, before_sof=JPEG_DHT)) == ImageInfo("image/jpeg", 640, 480, False)


@pytest.mark.parametrize("fill", [b"\xff", b"\xff\xff", b"\xff" * 50])
def test_jpeg_fill_bytes_before_a_marker_are_skipped(fill):
    """Any number of 0xFF fill bytes may come before a marker's own 0xFF."""
    data = JPEG_SOI + JPEG_APP0 + fill + JPEG_DQT + fill + jpeg_sof(320, 200) + JPEG_SOS + JPEG_SCAN
    assert read_image_info(data) == ImageInfo("image/jpeg", 320, 200, False)


def test_jpeg_standalone_markers_have_no_length():
    """TEM and RSTn are two bytes long, with no length field to read."""
    standalone = b"\xff\x01" + b"\xff\xd0" + b"\xff\xd7"
    assert read_image_info(make_jpeg(9, 4, before_sof=standalone)) == ImageInfo("image/jpeg", 9, 4, False)


@pytest.mark.parametrize(
    "data",
    [
        JPEG_SOI + jpeg_segment(0xE0, b"JFIF\x00")[:2] + b"\xff\xff" + b"JFIF\x00" + jpeg_sof(3, 2),
        JPEG_SOI + JPEG_APP0 + b"\xff\xdb\x10\x00" + bytes(30),
        JPEG_SOI + JPEG_APP0 + b"\xff\xc0\x00\x11\x08\x00\x02",
        JPEG_SOI + JPEG_APP0 + b"\xff",
        JPEG_SOI + JPEG_APP0 + b"\xff\xc0\x00",
        b"\xff\xd8\xff",
    ],
    ids=["app0-65535", "dqt-4096", "sof-cut", "lone-ff", "length-cut", "soi-only"],
)
def test_jpeg_segment_running_past_the_end_has_no_size(data):
    """A length field pointing beyond the data (a truncated file) gives width None."""
    assert read_image_info(data) == ImageInfo("image/jpeg", None, None, False)


@pytest.mark.parametrize(
    "data",
    [
        JPEG_SOI + JPEG_APP0 + JPEG_SOS + JPEG_SCAN + jpeg_sof(3, 2),
        JPEG_SOI + JPEG_APP0 + b"\xff\xd9" + jpeg_sof(3, 2),
        JPEG_SOI + JPEG_APP0 + b"\x00\x00" + jpeg_sof(3, 2),
        JPEG_SOI + JPEG_APP0 + b"\xff\x00" + jpeg_sof(3, 2),
        JPEG_SOI + b"\xff\xe0\x00\x01" + jpeg_sof(3, 2),
        JPEG_SOI + JPEG_APP0 + jpeg_segment(0xC0, b"\x08\x00\x02"),
        make_jpeg(3, 0),
        make_jpeg(0, 2),
    ],
    ids=[
        "sos-first",
        "eoi-first",
        "garbage-between",
        "stuffed-zero",
        "length-1",
        "sof-too-short",
        "height-0",
        "width-0",
    ],
)
def test_jpeg_without_a_usable_sof_has_no_size(data):
    """Scan data, EOI or a broken marker before SOF all end the walk without a size."""
    assert read_image_info(data) == ImageInfo("image/jpeg", None, None, False)


# --- WEBP -------------------------------------------------------------------------


@pytest.mark.parametrize("width, height", [(1, 1), (3, 2), (1024, 1536), (1536, 1024), (16383, 16383)])
def test_webp_lossy_size(width, height):
    """VP8: 14-bit width and height after the key frame start code; no alpha."""
    assert read_image_info(make_webp_lossy(width, height)) == ImageInfo("image/webp", width, height, False)


def test_webp_lossy_scaling_bits_are_not_part_of_the_size():
    """The top two bits of each 16-bit field are an upscaling hint."""
    assert read_image_info(make_webp_lossy(3, 2, scale=3)) == ImageInfo("image/webp", 3, 2, False)


@pytest.mark.parametrize("width, height", [(1, 1), (3, 2), (1024, 1536), (16384, 16384)])
@pytest.mark.parametrize("alpha", [False, True])
def test_webp_lossless_size_and_alpha(width, height, alpha):
    """VP8L: width-1 and height-1 in 14 bits each, then the alpha_is_used bit."""
    assert read_image_info(make_webp_lossless(width, height, alpha)) == ImageInfo("image/webp", width, height, alpha)


@pytest.mark.parametrize("width, height", [(1, 1), (3, 2), (1024, 1536), (1 << 24, 1), (20000, 3)])
@pytest.mark.parametrize("alpha", [False, True])
def test_webp_extended_size_and_alpha(width, height, alpha):
    """VP8X: the canvas size as 24-bit width-1 and height-1; alpha from flag 0x10."""
    assert read_image_info(make_webp_extended(width, height, alpha)) == ImageInfo("image/webp", width, height, alpha)


@pytest.mark.parametrize(
    "data",
    [
        riff_webp(),
        riff_webp(webp_chunk(b"ALPH", bytes(10))),
        riff_webp(webp_chunk(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2b" + bytes(4))),
        riff_webp(webp_chunk(b"VP8 ", vp8_payload(3, 2)[:8])),
        make_webp_lossy(3, 2)[:29],
        riff_webp(webp_chunk(b"VP8L", b"\x2e" + bytes(8))),
        make_webp_lossless(3, 2, alpha=False, version=1),
        make_webp_lossless(3, 2, alpha=False)[:24],
        make_webp_extended(3, 2, alpha=True)[:29],
        riff_webp(webp_chunk(b"VP8X", bytes(6))),
    ],
    ids=[
        "no-chunk",
        "unknown-first-chunk",
        "bad-start-code",
        "short-vp8-chunk",
        "vp8-cut",
        "bad-vp8l-signature",
        "vp8l-version-1",
        "vp8l-cut",
        "vp8x-cut",
        "short-vp8x-chunk",
    ],
)
def test_webp_with_unreadable_first_chunk_has_no_size(data):
    """RIFF....WEBP is enough to say WEBP; a first chunk that cannot be read gives width None."""
    assert read_image_info(data) == ImageInfo("image/webp", None, None, False)


# --- Not an image we accept -----------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a",
        b"\xff\xd8",
        b"GIF89a\x03\x00\x02\x00\x80\x00\x00",
        b"GIF87a",
        b"BM\x36\x00\x00\x00",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"RIFF\x24\x00\x00\x00WEB",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        bytes(100),
    ],
    ids=[
        "empty",
        "short-png-signature",
        "short-jpeg-signature",
        "gif89a",
        "gif87a",
        "bmp",
        "wave",
        "short-riff",
        "svg",
        "zeros",
    ],
)
def test_other_bytes_give_none(data):
    """Only the PNG, JPEG and WEBP signatures are recognised."""
    assert read_image_info(data) is None


def test_random_bytes_give_none():
    """Random data almost never starts with a signature; when it does not, the answer is None."""
    rng = random.Random(0)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        info = read_image_info(data)
        assert (info is None) == (sniff_mime_type(data) is None)
        assert_well_formed(info)


# --- Never raises, stays fast ---------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{sniff_mime_type(s)}-{len(s)}b")
def test_every_truncation_is_handled(sample):
    """Cut at every length: never an exception, and the format is known once the signature is there."""
    for cut in range(len(sample) + 1):
        info = read_image_info(sample[:cut])
        assert_well_formed(info)
        if cut >= 12:
            assert info is not None and info.mime_type == sniff_mime_type(sample)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{sniff_mime_type(s)}-{len(s)}b")
def test_single_byte_corruption_in_the_header_is_handled(sample):
    """Flip or overwrite each of the first 64 bytes in turn; the answer is always well formed."""
    rng = random.Random(0)
    for index in range(min(64, len(sample))):
        original = sample[index]
        for value in {original ^ 0x01, original ^ 0x80, original ^ 0xFF, 0x00, 0xFF, rng.randrange(256)}:
            corrupted = sample[:index] + bytes([value]) + sample[index + 1 :]
            assert_well_formed(read_image_info(corrupted))


def test_random_data_after_each_signature_is_handled():
    """Garbage behind a valid signature or a valid first header never raises."""
    rng = random.Random(0)
    prefixes = [
        PNG_SIGNATURE,
        SAMPLES[1][:33],
        b"\xff\xd8\xff",
        JPEG_SOI + JPEG_APP0 + b"\xff",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"RIFF\xff\xff\xff\xffWEBPVP8 ",
        b"RIFF\x00\x00\x00\x00WEBPVP8L",
        b"RIFF\x00\x00\x00\x00WEBPVP8X",
    ]
    for prefix in prefixes:
        for _ in range(300):
            tail = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
            info = read_image_info(prefix + tail)
            assert info is not None
            assert_well_formed(info)


def test_hostile_files_hit_the_walk_caps_instead_of_walking_on():
    """Each header walk stops at its cap: data placed just beyond it is never reached.

    Without the caps, each of these files would be read to the end and its
    dimensions or alpha found; with them, the walk gives up, in bounded work.
    """
    from imageprovider import _imageinfo

    fill = _imageinfo._JPEG_MAX_STEPS + 10
    assert read_image_info(JPEG_SOI + b"\xff" * fill + jpeg_sof(3, 2)[1:]) == ImageInfo("image/jpeg", None, None, False)
    png_chunks = (
        make_png(3, 2, 0)[:33]
        + png_chunk(b"tEXt", b"") * (_imageinfo._PNG_MAX_CHUNKS + 5)
        + png_chunk(b"tRNS", b"\x00\x00")
    )
    assert read_image_info(png_chunks) == ImageInfo("image/png", 3, 2, False)
    segments = JPEG_SOI + jpeg_segment(0xFE, b"") * (_imageinfo._JPEG_MAX_STEPS + 5) + jpeg_sof(3, 2)
    assert read_image_info(segments) == ImageInfo("image/jpeg", None, None, False)
    # Just under the caps, the same data is found: the caps are what stop the walk.
    assert read_image_info(JPEG_SOI + jpeg_segment(0xFE, b"") * 100 + jpeg_sof(3, 2)).width == 3
