"""The stand-in server's images are real files: honest PNGs of the requested size, valid JPEG and WEBP samples."""

import struct
import zlib
from typing import List, NamedTuple

import pytest

from imageprovider._imageinfo import read_image_info
from imageprovider.testing import _images
from imageprovider.testing._images import (
    DEFAULT_DETAIL_BITS,
    SAMPLE_JPEG,
    SAMPLE_WEBP,
    SAMPLE_WEBP_ALPHA,
    make_image,
    make_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SIZES = [(1, 1), (3, 2), (256, 256), (1024, 1024), (1536, 1024), (1024, 1536), (1536, 864)]


class DecodedPNG(NamedTuple):
    width: int
    height: int
    bit_depth: int
    colour_type: int
    #: Chunk types in file order.
    kinds: List[bytes]
    #: The decompressed scanlines, filter bytes included.
    raw: bytes


def decode_png(data: bytes) -> DecodedPNG:
    """Walk the chunks checking every CRC, then inflate the joined IDATs with plain zlib."""
    assert data.startswith(PNG_SIGNATURE)
    position = len(PNG_SIGNATURE)
    kinds: List[bytes] = []
    idat: List[bytes] = []
    header = b""
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack_from(">I", data, position + 8 + length)
        assert len(body) == length
        assert crc == zlib.crc32(kind + body), kind
        kinds.append(kind)
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        position += 12 + length
    assert position == len(data)
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, bit_depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    assert (compression, filtering, interlace) == (0, 0, 0)
    return DecodedPNG(width, height, bit_depth, colour_type, kinds, zlib.decompress(b"".join(idat)))


def samples(decoded: DecodedPNG) -> bytes:
    """The pixel samples without the filter bytes."""
    stride = len(decoded.raw) // decoded.height
    return b"".join(decoded.raw[row + 1 : row + stride] for row in range(0, len(decoded.raw), stride))


# --- PNG structure -------------------------------------------------------------


@pytest.mark.parametrize("width, height", SIZES)
def test_png_is_rgb_of_the_requested_size(width, height):
    decoded = decode_png(make_png(width, height, seed="a lighthouse at dusk"))
    assert (decoded.width, decoded.height, decoded.bit_depth, decoded.colour_type) == (width, height, 8, 2)
    assert len(decoded.raw) == height * (1 + width * 3)
    assert decoded.raw[:: 1 + width * 3] == bytes(height), "every row uses filter 0"


@pytest.mark.parametrize("width, height", SIZES)
def test_transparent_png_is_rgba_with_clear_and_opaque_pixels(width, height):
    decoded = decode_png(make_png(width, height, seed="a glass of water", transparent=True))
    assert (decoded.width, decoded.height, decoded.bit_depth, decoded.colour_type) == (width, height, 8, 6)
    assert len(decoded.raw) == height * (1 + width * 4)
    assert decoded.raw[:: 1 + width * 4] == bytes(height)
    alpha = set(samples(decoded)[3::4])
    # One pixel cannot be both; it is opaque.
    assert alpha == ({255} if width == 1 else {0, 255})


def test_left_and_right_quarters_are_transparent():
    decoded = decode_png(make_png(8, 2, transparent=True))
    assert samples(decoded)[3::4] == (b"\x00\x00" + b"\xff" * 4 + b"\x00\x00") * 2


def test_png_is_split_into_several_idat_chunks():
    """Readers that stop at the first IDAT would see a fraction of a real-sized image."""
    kinds = decode_png(make_png(1024, 1024)).kinds
    assert kinds.count(b"IDAT") > 1
    assert kinds == [b"IHDR"] + [b"IDAT"] * (len(kinds) - 2) + [b"IEND"]


@pytest.mark.parametrize("transparent", [False, True])
def test_noise_stays_in_the_low_bits_and_off_alpha(transparent):
    """With and without noise the images differ only in the low ``detail_bits`` of each colour."""
    smooth = decode_png(make_png(64, 48, seed="s", transparent=transparent, detail_bits=0)).raw
    noisy = decode_png(make_png(64, 48, seed="s", transparent=transparent, detail_bits=3)).raw
    pixel_mask = b"\x07\x07\x07" + (b"\x00" if transparent else b"")
    mask = (b"\x00" + pixel_mask * 64) * 48
    difference = int.from_bytes(smooth, "big") ^ int.from_bytes(noisy, "big")
    assert difference != 0
    assert difference & ~int.from_bytes(mask, "big") == 0


# --- Determinism and size --------------------------------------------------------


def test_same_arguments_give_the_same_bytes():
    first = make_png(300, 200, seed="a red fox", transparent=True)
    _images._make_png.cache_clear()  # or the second call would only be a cache hit
    second = make_png(300, 200, seed="a red fox", transparent=True)
    assert second == first and second is not first
    assert make_image("png", 300, 200, seed="a red fox", transparent=True) == first


def test_repeated_calls_are_served_from_the_cache():
    assert make_png(512, 512, seed="cached") is make_png(512, 512, seed="cached")


def test_different_seeds_give_different_images():
    images = {make_png(64, 64, seed=seed) for seed in ("", "a", "b", "a red fox")}
    assert len(images) == 4
    # Even with no noise the colours differ.
    assert make_png(64, 64, seed="a", detail_bits=0) != make_png(64, 64, seed="b", detail_bits=0)


def test_detail_bits_control_the_compressed_size():
    sizes = [len(make_png(256, 256, seed="size", detail_bits=bits)) for bits in range(9)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    # 8 bits of noise is incompressible: about the raw size.
    assert sizes[8] > 256 * (1 + 256 * 3) * 0.95
    assert sizes[0] < sizes[8] / 50


def test_default_1024_square_png_is_the_size_of_a_real_one():
    assert DEFAULT_DETAIL_BITS == 2
    assert 500_000 <= len(make_png(1024, 1024, seed="a cat in a hat")) <= 1_500_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0, "height": 5},
        {"width": 5, "height": 0},
        {"width": -1, "height": 5},
        {"width": 5, "height": 5, "detail_bits": 9},
        {"width": 5, "height": 5, "detail_bits": -1},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    width, height = kwargs.pop("width"), kwargs.pop("height")
    with pytest.raises(ValueError):
        make_png(width, height, **kwargs)


def test_float_dimensions_are_refused_not_truncated():
    with pytest.raises(TypeError):
        make_png(10.5, 10)


# --- Read back by the library's own header reader -----------------------------------


@pytest.mark.parametrize("width, height", [(1, 1), (1024, 1536), (1536, 864)])
@pytest.mark.parametrize("transparent", [False, True])
def test_read_image_info_reads_the_png(width, height, transparent):
    info = read_image_info(make_png(width, height, transparent=transparent))
    assert info is not None
    assert (info.mime_type, info.width, info.height, info.has_alpha) == ("image/png", width, height, transparent)


def test_sample_jpeg_is_a_jpeg():
    assert SAMPLE_JPEG.startswith(b"\xff\xd8\xff") and SAMPLE_JPEG.endswith(b"\xff\xd9")
    info = read_image_info(SAMPLE_JPEG)
    assert info is not None
    assert info.mime_type == "image/jpeg"
    assert info.width and info.width > 0 and info.height and info.height > 0
    assert info.has_alpha is False


@pytest.mark.parametrize("data, has_alpha", [(SAMPLE_WEBP, False), (SAMPLE_WEBP_ALPHA, True)])
def test_sample_webps_are_webps(data, has_alpha):
    # The RIFF size counts everything after itself.
    assert data[:4] == b"RIFF" and struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    info = read_image_info(data)
    assert info is not None
    assert info.mime_type == "image/webp"
    assert info.width and info.width > 0 and info.height and info.height > 0
    assert info.has_alpha is has_alpha


# --- make_image ----------------------------------------------------------------------


def test_make_image_png_is_make_png():
    assert make_image("png", 40, 30, seed="x", detail_bits=1) == make_png(40, 30, seed="x", detail_bits=1)
    assert decode_png(make_image("png", 40, 30, transparent=True)).colour_type == 6


@pytest.mark.parametrize(
    "output_format, transparent, expected",
    [
        ("jpeg", False, SAMPLE_JPEG),
        ("jpeg", True, SAMPLE_JPEG),
        ("webp", False, SAMPLE_WEBP),
        ("webp", True, SAMPLE_WEBP_ALPHA),
    ],
)
def test_make_image_returns_the_samples(output_format, transparent, expected):
    assert make_image(output_format, 1024, 1024, transparent=transparent) == expected


@pytest.mark.parametrize("output_format", ["gif", "jpg", "PNG", ""])
def test_make_image_refuses_other_formats(output_format):
    with pytest.raises(ValueError, match="output_format"):
        make_image(output_format, 16, 16)
